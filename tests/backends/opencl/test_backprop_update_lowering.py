"""A dense layer's backward product with its weight and bias updates (``BackpropUpdate``) on
OpenCL: one kernel for small minibatches, in place when no later kernel reads the weights,
two products otherwise; the first layer's updates alone stream W by rows for small
minibatches too. All match the NumPy reference step for step."""

import re

import numpy as np
import pytest

import tinygraph as tg

pytest.importorskip("pyopencl")


def _two_layer_step(batch_rows, dtype="float32", output_old_weights=False):
    """The updates of a relu layer and the dropout-masked layer above it, from the gradient
    d at the top: the upper layer's backward product reads a mask and the activations."""
    rng = np.random.default_rng(batch_rows)
    x, d, mask = tg.matrix("x", dtype), tg.matrix("d", dtype), tg.matrix("mask", dtype)
    w1 = tg.shared(rng.normal(size=(23, 37)).astype(dtype), name="w1")
    b1 = tg.shared(rng.normal(size=37).astype(dtype), name="b1")
    w2 = tg.shared(rng.normal(size=(37, 45)).astype(dtype), name="w2")
    b2 = tg.shared(rng.normal(size=45).astype(dtype), name="b2")
    h = tg.relu(x @ w1 + b1) * mask
    d1 = (d @ w2.T) * mask * (h > 0)
    updates = [(w2, w2 * 0.999 - 0.1 * (h.T @ d)), (b2, b2 - 0.1 * tg.sum(d, axis=0)),
               (w1, w1 - 0.1 * (x.T @ d1)), (b1, b1 - 0.1 * tg.sum(d1, axis=0))]
    outputs = [w2 * 1] if output_old_weights else []
    values = [rng.normal(size=(batch_rows, 23)).astype(dtype),
              rng.normal(size=(batch_rows, 45)).astype(dtype),
              (2 * (rng.random((batch_rows, 37)) < 0.5)).astype(dtype)]
    return [x, d, mask], outputs, updates, values


def _run(device, batch_rows, calls=3, **options):
    inputs, outputs, updates, values = _two_layer_step(batch_rows, **options)
    fn = tg.function(inputs, outputs, updates=updates, device=device)
    results = [fn(*values) for _ in range(calls)]
    return results, [target.get_value() for target, _ in updates], fn


@pytest.mark.parametrize("batch_rows, dtype", [(10, "float32"), (1, "float32"),
                                               (10, "float64"), (256, "float32")])
def test_backward_product_and_updates_match_numpy(batch_rows, dtype):
    _, want, _ = _run("numpy", batch_rows, dtype=dtype)
    _, got, fn = _run("opencl", batch_rows, dtype=dtype)
    tolerance = 1e-4 if dtype == "float32" else 1e-10
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=tolerance, atol=tolerance)
    source = fn.kernels_source()
    in_place = re.findall(r"^/\* (\w+)\{.* in place \*/$", source, re.MULTILINE)
    row_kernels = source.count("__kernel void backprop_update(")
    if batch_rows <= 10:
        assert sorted(in_place) == ["BackpropUpdate", "GemmColumnSums"], in_place
        assert "/* DotEpilogue{Composite{mul(mul" not in source, "the backward product is fused"
        assert row_kernels == 2, "the first layer's update streams W by rows too"
    else:
        assert sorted(in_place) == ["GemmColumnSums"] * 2, in_place
        assert row_kernels == 0, "large minibatches update by GEMM"
    assert "NumPy on the host" not in source and "/* update" not in source


def test_weights_read_after_the_call_are_not_updated_in_place():
    """The old weights are an output: the fused kernel writes the new ones into a buffer of
    its own and the update copies them over after the output was computed."""
    want_outputs, want, _ = _run("numpy", 10, output_old_weights=True)
    got_outputs, got, fn = _run("opencl", 10, output_old_weights=True)
    for g, w in zip(got_outputs, want_outputs):
        np.testing.assert_allclose(g[0], w[0], rtol=1e-4, atol=1e-4)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4)
    source = fn.kernels_source()
    assert "/* BackpropUpdate" in source
    assert not any(line.startswith("/* BackpropUpdate") and line.endswith(" in place */")
                   for line in source.splitlines())
