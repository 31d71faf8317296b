"""A softmax output layer on OpenCL against the NumPy reference: its logits computed by its
crossentropy kernel (``DotCrossentropyGradTotal``), and with a layer below, its whole step in
one kernel (``SoftmaxLayerStep``), for small layers; the product kernels for large ones."""

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


def _two_layer_step(rows, hidden, classes, activation, dtype="float32", lmbda=0.0, seed=1):
    """An SGD step of a hidden layer under a softmax layer, the output weights decayed by
    ``lmbda`` (L2 regularisation)."""
    rng = np.random.default_rng(seed)
    x, y = tg.matrix("x", dtype=dtype), tg.ivector("y")
    params = [tg.shared(rng.normal(size=shape).astype(dtype) * 0.5, name=name)
              for name, shape in (("w1", (7, hidden)), ("b1", (hidden,)),
                                  ("w", (hidden, classes)), ("b", (classes,)))]
    w1, b1, w, b = params
    total = tg.shared(np.zeros(1), name="total")
    h = activation(x @ w1 + b1)
    cost = -tg.mean(tg.log(tg.softmax(h @ w + b))[tg.arange(y.shape[0]), y])
    updates = [(p, p * (1 - 0.1 * lmbda) - 0.1 * tg.grad(cost, p)) if p is w else
               (p, p - 0.1 * tg.grad(cost, p)) for p in params]
    updates.append((total, total + tg.cast(cost, "float64")))
    values = (rng.normal(size=(rows, 7)).astype(dtype),
              rng.integers(0, classes, rows).astype("int32"))
    return [x, y], updates, [*params, total], values


@pytest.mark.parametrize(("rows", "hidden", "classes", "activation", "lmbda", "fused"), [
    (10, 100, 10, tg.sigmoid, 0.0, True),  # network3's first example
    (1, 1, 1, tg.tanh, 0.0, True),
    (5, 20, 17, tg.relu, 0.1, True),  # L2 decay: beta < 1
    (300, 9, 3, tg.sigmoid, 0.0, True),  # more rows than the work-group's work-items
    (10, 1000, 10, tg.relu, 0.0, False),  # too much work for one work-group
])
def test_the_whole_softmax_layer_step_matches_numpy(rows, hidden, classes, activation, lmbda,
                                                    fused):
    results = {}
    for device in ("numpy", "opencl"):
        inputs, updates, shared, values = _two_layer_step(rows, hidden, classes, activation,
                                                          lmbda=lmbda)
        fn = tg.function(inputs, [], updates=updates, device=device, name="step")
        for _ in range(3):
            fn(*values)
        results[device] = [v.get_value() for v in shared], fn
    for got, want in zip(results["opencl"][0], results["numpy"][0]):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6)
    fn = results["opencl"][1]
    source = fn.kernels_source()
    assert ("tg_softmax_layer_step" in source) == fused
    (plan,) = fn._program._plans.values()
    assert plan.update_copies == []  # every update written in place
    assert any(line.startswith("/* SoftmaxLayerStep") and line.endswith(" in place */")
               for line in source.splitlines()) == fused


def test_the_whole_step_in_float64_matches_numpy():
    results = {}
    for device in ("numpy", "opencl"):
        inputs, updates, shared, values = _two_layer_step(6, 5, 4, tg.sigmoid, "float64")
        fn = tg.function(inputs, [], updates=updates, device=device, name="step")
        fn(*values)
        results[device] = [v.get_value() for v in shared], fn
    for got, want in zip(results["opencl"][0], results["numpy"][0]):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert "tg_softmax_layer_step" in results["opencl"][1].kernels_source()


def test_output_layer_weights_read_after_the_step_are_not_written_in_place():
    """The call also returns the output weights as they were: the kernel writes the new
    ones to an array of their own, which the update then copies, and the values stay right."""
    results = {}
    for device in ("numpy", "opencl"):
        inputs, updates, shared, values = _two_layer_step(4, 6, 3, tg.sigmoid)
        before = shared[2].get_value()
        fn = tg.function(inputs, shared[2], updates=updates, device=device, name="step")
        returned = fn(*values)
        np.testing.assert_array_equal(returned, before)
        results[device] = [v.get_value() for v in shared], fn
    for got, want in zip(results["opencl"][0], results["numpy"][0]):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6)
    fn = results["opencl"][1]
    source = fn.kernels_source()
    assert "/* SoftmaxLayerStep{" in source
    assert not any(line.startswith("/* SoftmaxLayerStep") and line.endswith(" in place */")
                   for line in source.splitlines())
    (plan,) = fn._program._plans.values()
    assert [launch.label for launch in plan.update_copies] == ["update w"]
