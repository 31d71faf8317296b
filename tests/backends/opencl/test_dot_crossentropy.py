"""A softmax output layer's logits computed by its crossentropy kernel
(``DotCrossentropyGradTotal``): the same weights, bias and cost total as the NumPy reference,
one kernel for small layers, the product kernels for large ones."""

import numpy as np
import pytest

import tinygraph as tg

pytest.importorskip("pyopencl")


def _softmax_step(rows, hidden, classes, dtype="float32", activation=None, seed=0):
    """An SGD step of a softmax layer with a bias, adding the mean cost to a running total."""
    rng = np.random.default_rng(seed)
    x, y = tg.matrix("x", dtype=dtype), tg.ivector("y")
    w = tg.shared(rng.normal(size=(hidden, classes)).astype(dtype), name="w")
    b = tg.shared(rng.normal(size=classes).astype(dtype), name="b")
    total = tg.shared(np.full(1, 0.5), name="total")
    z = x @ w + b
    if activation is not None:
        z = activation(z)
    cost = -tg.mean(tg.log(tg.softmax(z))[tg.arange(y.shape[0]), y])
    updates = [(w, w - 0.1 * tg.grad(cost, w)), (b, b - 0.1 * tg.grad(cost, b)),
               (total, total + tg.cast(cost, "float64"))]
    values = (rng.normal(size=(rows, hidden)).astype(dtype),
              rng.integers(0, classes, rows).astype("int32"))
    return [x, y], updates, (w, b, total), values


def _run_both(rows, hidden, classes, **options):
    results = {}
    for device in ("numpy", "opencl"):
        inputs, updates, shared, values = _softmax_step(rows, hidden, classes, **options)
        fn = tg.function(inputs, [], updates=updates, device=device, name="step")
        for _ in range(3):
            fn(*values)
        results[device] = [v.get_value() for v in shared], fn
    return results


@pytest.mark.parametrize(("rows", "hidden", "classes", "fused"), [
    (10, 100, 10, True),  # network3's first example
    (1, 1, 1, True),
    (3, 7, 17, True),  # classes covered by 16 + 1 lanes
    (100, 100, 10, True),
    (300, 5, 32, True),  # more rows than the work-group's work-items
    (4, 3, 33, False),  # too many classes for the one-group kernel
    (256, 60, 10, False),  # too much work for one work-group
])
def test_the_softmax_layer_matches_numpy(rows, hidden, classes, fused):
    results = _run_both(rows, hidden, classes)
    for got, want in zip(results["opencl"][0], results["numpy"][0]):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6)
    fn = results["opencl"][1]
    source = fn.kernels_source()
    assert ("tg_dot_crossentropy_total" in source) == fused
    assert ("tg_crossentropy_total" in source) != fused
    (plan,) = fn._program._plans.values()
    assert plan.update_copies == []  # the total, weights and bias all written in place


def test_float64_and_a_scaling_of_the_logits_match_numpy():
    """The logits' own epilogue (here a temperature: 2 z, whose gradient does not read z) is
    applied before the softmax, in float64."""
    results = _run_both(12, 9, 5, dtype="float64", activation=lambda z: z * 2)
    for got, want in zip(results["opencl"][0], results["numpy"][0]):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert "tg_dot_crossentropy_total" in results["opencl"][1].kernels_source()


def test_logits_also_read_elsewhere_keep_their_product():
    """Logits that are also an output are not folded into the crossentropy kernel: the call
    returns them, computed from the weights before its update."""
    inputs, updates, (w, b, _), values = _softmax_step(10, 6, 4)
    expected = values[0] @ w.get_value() + b.get_value()
    fn = tg.function(inputs, inputs[0] @ w + b, updates=updates, device="opencl", name="step")
    np.testing.assert_allclose(fn(*values), expected, rtol=1e-5, atol=1e-5)
    source = fn.kernels_source()
    assert "tg_dot_crossentropy_total" not in source and "tg_crossentropy_total" in source


def test_a_bad_label_raises_the_crossentropy_error():
    inputs, updates, _, (x, y) = _softmax_step(10, 6, 4)
    fn = tg.function(inputs, [], updates=updates, device="opencl", name="step")
    y[3] = 7
    fn(x, y)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 4\), got values from 0 to 7"):
        fn.sync()
