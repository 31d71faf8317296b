"""RandomDrawMap: a draw and the elementwise op reading its sample (a dropout mask and the
masked activations) as one node; on OpenCL one kernel when the draws are vector kernels and
the other operands have the sample's shape, else the draw's and the elementwise kernels. Every
result is the draw's Philox reference and NumPy's arithmetic, bit for bit, on both backends."""

import numpy as np
import pytest

import tinygraph as tg
from tinygraph.graph import toposort
from tinygraph.random import philox
from tinygraph.random.draw_map import RandomDrawMap
from tinygraph.random.op import RandomDraw
from tinygraph.rewrite import fuse_random_draw_maps

SEED = 21
KEY = philox.derive_key(SEED, 0)


def _reference_masks(shape, calls, p=0.5):
    base, masks = 0, []
    for _ in range(calls):
        masks.append(philox.binomial(KEY, base, shape, 1, p, "float32"))
        base += philox.blocks_used("binomial", int(np.prod(shape)), "float32", 1)
    return masks


def _fused_launches(f) -> int:
    return f.kernels_source().count("/* RandomDrawMap")


@pytest.mark.parametrize("shape", [(10, 1000), (3, 7), (64,), (5, 64), (2, 3, 40)])
def test_dropout_mask_and_masked_activations(backend, shape):
    """The vector kernels' chunks (64 draws per work-item) with and without a tail."""
    h_value = np.random.default_rng(0).standard_normal(shape).astype("float32")
    h = tg.shared(h_value, name="h")
    mask = tg.RandomStreams(SEED).binomial(h.shape, p=0.5, dtype="float32")
    f = tg.function([], [h * mask * 2.0, mask])
    for (out, got_mask), want_mask in zip([f(), f(), f()], _reference_masks(shape, 3)):
        np.testing.assert_array_equal(got_mask, want_mask)
        np.testing.assert_array_equal(out, h_value * want_mask * np.float32(2.0))
    assert _fused_launches(f) == (1 if backend == "opencl" else 0)


def test_uniform_draw_with_two_operands(backend):
    a_value, b_value = (np.random.default_rng(s).standard_normal((7, 33)).astype("float32")
                        for s in (1, 2))
    a, b = tg.shared(a_value), tg.shared(b_value)
    u = tg.RandomStreams(SEED).uniform(a.shape, low=-1.0, high=2.0)
    f = tg.function([], a - u * b)
    want = philox.uniform(KEY, 0, (7, 33), "float32", -1.0, 2.0)
    np.testing.assert_array_equal(f(), a_value - want * b_value)
    assert _fused_launches(f) == (1 if backend == "opencl" else 0)


def test_parts_when_one_kernel_cannot_compute_it(backend):
    """A normal draw (no vector kernel) and an operand broadcast along the draw's rows: the
    fused node's draw and elementwise kernels, same results."""
    row_value = np.arange(5, dtype="float32")[None, :]
    x = tg.matrix("x")
    row = tg.shared(row_value, broadcastable=(True, False))
    srng = tg.RandomStreams(SEED)
    z = srng.normal(x.shape, 1.0, 2.0)
    masked = row * srng.binomial(x.shape, p=0.5, dtype="float32")
    f = tg.function([x], [x + z, masked])
    data = np.ones((4, 5), "float32")
    got_sum, got_masked = f(data)
    np.testing.assert_array_equal(got_sum, data + philox.normal(KEY, 0, (4, 5), "float32",
                                                                1.0, 2.0))
    mask = philox.binomial(philox.derive_key(SEED, 1), 0, (4, 5), 1, 0.5, "float32")
    np.testing.assert_array_equal(got_masked, row_value * mask)
    assert _fused_launches(f) == 0


def test_mismatched_operand_raises_the_elementwise_error(backend):
    h = tg.shared(np.ones((3, 4), "float32"))
    x = tg.matrix("x")
    mask = tg.RandomStreams(SEED).binomial((x.shape[0], 5), p=0.5, dtype="float32")
    f = tg.function([x], h * mask)
    with pytest.raises(ValueError, match="do not match on axis 1"):
        f(np.ones((3, 2), "float32"))


def _fused_nodes(outputs):
    return [node for node in toposort(outputs) if isinstance(node.op, RandomDrawMap)]


def test_rewrite_keeps_the_sample_for_its_other_readers():
    h = tg.matrix("h")
    mask = tg.RandomStreams(SEED).binomial(h.shape, p=0.5, dtype="float32")
    outputs = fuse_random_draw_maps([h * mask, mask + 1.0])
    (node,) = _fused_nodes(outputs)
    assert node.outputs[2] is outputs[0]
    assert outputs[1].owner.inputs[0] is node.outputs[1]
    assert not any(type(n.op) is RandomDraw for n in toposort(outputs))


def test_rewrite_leaves_readers_of_values_computed_from_the_sample():
    """mask * exp(mask) cannot be one node with the draw (it reads the draw twice); exp(mask)
    can, and the product then reads both outputs."""
    h = tg.matrix("h")
    mask = tg.RandomStreams(SEED).binomial(h.shape, p=0.5, dtype="float32")
    (product,) = fuse_random_draw_maps([mask * tg.exp(mask)])
    (node,) = _fused_nodes([product])
    assert str(node.op.elemwise) == "Elemwise{exp}"
    assert {v.id for v in product.owner.inputs} == {node.outputs[1].id, node.outputs[2].id}


def test_op_runs_on_the_numpy_backend_and_is_not_differentiable(backend):
    h_value = np.full((4, 6), 3.0, "float32")
    h = tg.shared(h_value)
    mask = tg.RandomStreams(SEED).binomial(h.shape, p=0.5, dtype="float32")
    masked, kept = fuse_random_draw_maps([h * mask, mask])
    assert isinstance(masked.owner.op, RandomDrawMap)
    f = tg.function([], [masked, kept])
    (want,) = _reference_masks((4, 6), 1)
    got_masked, got_mask = f()
    np.testing.assert_array_equal(got_mask, want)
    np.testing.assert_array_equal(got_masked, h_value * want)
    with pytest.raises(NotImplementedError, match="created by a rewrite"):
        tg.grad(tg.sum(masked), h)
    op = masked.owner.op
    with pytest.raises(TypeError, match="sample's 2 axes"):
        op(*masked.owner.inputs[:4], tg.vector("v"))
    with pytest.raises(TypeError, match="the sample and 1 other inputs, got 2"):
        op(*masked.owner.inputs[:4], h, h)
