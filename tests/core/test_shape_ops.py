"""Shape ops (dimshuffle, transpose, reshape, flatten, concatenate, stack, shape, arange,
alloc/zeros/ones, one_hot) and a generic check that every op's infer_shape agrees with the
shape its perform produces."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygraph as tg
from tinygraph import rewrite
from tinygraph.graph import Constant, toposort
from tinygraph.ops import blas, elemwise, nnet, reduce, shape, subtensor
from tinygraph.shared import SharedVariable
from tinygraph.testing import strategies as tgs

RNG = np.random.default_rng(42)


def _normal(*shape):
    return RNG.normal(size=shape)


@given(data=st.data())
def test_transpose_and_dimshuffle_permutations(compile_fn, data):
    shape = data.draw(tgs.shapes(min_dims=1, max_dims=4, max_side=4))
    perm = data.draw(st.permutations(range(len(shape))))
    value = data.draw(tgs.arrays("float64", shape))
    x = tg.tensor("float64", len(shape), "x")
    f = compile_fn([x], [x.T, tg.transpose(x, perm), x.transpose(*perm), x.dimshuffle(perm),
                         x.dimshuffle(*perm)])
    t, *permuted = f(value)
    np.testing.assert_array_equal(t, value.T)
    for got in permuted:
        np.testing.assert_array_equal(got, np.transpose(value, perm))


def test_dimshuffle_adds_and_drops_broadcastable_axes(compile_fn):
    x = tg.dmatrix("x")
    value = _normal(2, 3)
    added = x.dimshuffle("x", 1, "x", 0)
    assert added.broadcastable == (True, False, True, False)
    got = compile_fn([x], added)(value)
    np.testing.assert_array_equal(got, value.T[None, :, None, :])
    col = tg.tensor("float64", broadcastable=(False, True), name="col")
    dropped = col.dimshuffle(0)
    assert dropped.broadcastable == (False,)
    np.testing.assert_array_equal(compile_fn([col], dropped)(_normal(4, 1)).shape, (4,))
    both = col.dimshuffle("x", 0)
    got = compile_fn([col], both)(np.arange(3.0).reshape(3, 1))
    np.testing.assert_array_equal(got, [[0.0, 1.0, 2.0]])
    np.testing.assert_array_equal(compile_fn([x], tg.expand_dims(x, -1))(value),
                                  value[:, :, None])


def test_dimshuffle_cannot_drop_a_non_broadcastable_axis():
    x = tg.dtensor3("x")
    with pytest.raises(ValueError, match="drops axis 2, which is not broadcastable"):
        x.dimshuffle(0, 1)
    with pytest.raises(ValueError, match="invalid"):
        x.dimshuffle(0, 1, 1)
    with pytest.raises(ValueError, match="invalid"):
        x.dimshuffle(0, 1, 3)
    with pytest.raises(ValueError, match="permutation"):
        tg.transpose(x, (0, 0, 1))


def test_reshape_with_minus_one_and_symbolic_shapes(compile_fn):
    x = tg.dtensor3("x")
    n = tg.lscalar("n")
    value = _normal(2, 3, 4)
    cases = [
        (x.reshape((6, 4)), (6, 4)),
        (x.reshape((-1, 4)), (6, 4)),
        (x.reshape((2, -1)), (2, 12)),
        (x.reshape(-1), (24,)),
        (tg.reshape(x, (x.shape[0], -1)), (2, 12)),
        (x.reshape((x.shape[2], x.shape[0] * x.shape[1])), (4, 6)),
        (x.reshape((n, -1)), (3, 8)),
        (x.reshape(tg.as_variable([n, 8])), (3, 8)),
        (x.reshape(x.shape[::-1], ndim=3), (4, 3, 2)),
        (x.reshape((1, -1, 1)), (1, 24, 1)),
    ]
    results = compile_fn([x, n], [c for c, _ in cases])(value, 3)
    for got, (_, want_shape) in zip(results, cases):
        np.testing.assert_array_equal(got, value.reshape(want_shape))
    assert x.reshape((1, -1, 1)).broadcastable == (True, False, True)


def test_reshape_errors(compile_fn):
    x = tg.dmatrix("x")
    n = tg.lscalar("n")
    with pytest.raises(ValueError, match="at most one -1"):
        x.reshape((-1, -1))
    f = compile_fn([x, n], x.reshape((n, -1)))
    with pytest.raises(ValueError, match=r"cannot reshape an array of shape \(2, 3\)"):
        f(np.zeros((2, 3)), 4)
    f = compile_fn([x], x.reshape((4, 2)))
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4, 2\)"):
        f(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="ndim"):
        x.reshape(tg.lvector("s"))
    with pytest.raises(TypeError, match="integer"):
        x.reshape((tg.dscalar(), 2))


@given(data=st.data())
def test_flatten(compile_fn, data):
    shape = data.draw(tgs.shapes(min_dims=1, max_dims=4, max_side=4))
    ndim = data.draw(st.integers(1, len(shape)))
    value = data.draw(tgs.arrays("float32", shape))
    x = tg.tensor("float32", len(shape), "x")
    got = compile_fn([x], x.flatten(ndim))(value)
    np.testing.assert_array_equal(got, value.reshape(shape[:ndim - 1] + (-1,)))
    with pytest.raises(ValueError, match="flatten"):
        tg.flatten(x, len(shape) + 1)


@given(data=st.data())
def test_concatenate_and_stack(compile_fn, data):
    shape = data.draw(tgs.shapes(min_dims=1, max_dims=3, max_side=4))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    count = data.draw(st.integers(1, 3))
    sizes = data.draw(st.lists(st.integers(0, 3), min_size=count, max_size=count))
    shapes = [shape[:axis % len(shape)] + (s,) + shape[axis % len(shape) + 1:] for s in sizes]
    values = [data.draw(tgs.arrays("float64", s)) for s in shapes]
    xs = [tg.tensor("float64", len(shape), f"x{i}") for i in range(count)]
    stack_axis = data.draw(st.integers(-len(shape) - 1, len(shape)))
    same = [tg.tensor("float64", len(shape), f"s{i}") for i in range(count)]
    same_values = [data.draw(tgs.arrays("float64", shape)) for _ in range(count)]
    f = compile_fn(xs + same, [tg.concatenate(xs, axis=axis), tg.stack(same, axis=stack_axis)])
    concatenated, stacked = f(*values, *same_values)
    np.testing.assert_array_equal(concatenated, np.concatenate(values, axis=axis))
    np.testing.assert_array_equal(stacked, np.stack(same_values, axis=stack_axis))


def test_concatenate_promotes_and_checks_shapes(compile_fn):
    a, b = tg.ivector("a"), tg.dvector("b")
    out = tg.concatenate([a, b])
    assert out.dtype == "float64"
    np.testing.assert_array_equal(compile_fn([a, b], out)(np.array([1], "int32"), [2.5]),
                                  [1.0, 2.5])
    x, y = tg.dmatrix("x"), tg.dmatrix("y")
    f = compile_fn([x, y], tg.concatenate([x, y], axis=1))
    with pytest.raises(ValueError, match=r"Concatenate.*\(2, 3\).*\(3, 3\)"):
        f(np.zeros((2, 3)), np.zeros((3, 3)))
    with pytest.raises(TypeError, match="equal ndim"):
        tg.concatenate([x, a])


def test_stack_of_scalars_builds_a_vector(compile_fn):
    a, b = tg.lscalar("a"), tg.lscalar("b")
    np.testing.assert_array_equal(compile_fn([a, b], tg.stack([a, b, a * b]))(2, 5), [2, 5, 10])


def test_shape(compile_fn):
    x = tg.dtensor3("x")
    s = x.shape
    assert s.dtype == "int64" and s.ndim == 1
    value = np.zeros((2, 5, 3))
    full, second, last, size = compile_fn([x], [s, s[1], tg.shape(x)[-1], tg.prod(s)])(value)
    np.testing.assert_array_equal(full, [2, 5, 3])
    assert (second, last, size) == (5, 3, 30)
    assert compile_fn([x], s)(value).dtype == np.int64


@pytest.mark.parametrize("args, kwargs", [
    ((5,), {}), ((2, 9), {}), ((1, 10, 3), {}), ((10, 1, -3), {}), ((0.0, 1.0, 0.25), {}),
    ((4,), {"dtype": "float64"}), ((3, 3), {}),
])
def test_arange_constant_arguments(compile_fn, args, kwargs):
    out = tg.arange(*args, **kwargs)
    want = np.arange(*args, dtype=kwargs.get("dtype", out.dtype))
    got = compile_fn([], out)()
    assert got.dtype == np.dtype(out.dtype)
    np.testing.assert_allclose(got, want)
    if all(isinstance(a, int) for a in args) and not kwargs:
        assert out.dtype == "int64"


def test_arange_symbolic_arguments(compile_fn):
    n, start = tg.lscalar("n"), tg.iscalar("start")
    f = compile_fn([n, start], [tg.arange(n), tg.arange(start, n, 2)])
    whole, stepped = f(5, np.int32(1))
    np.testing.assert_array_equal(whole, np.arange(5))
    np.testing.assert_array_equal(stepped, np.arange(1, 5, 2))
    step = tg.lscalar("step")
    f = compile_fn([step], tg.arange(0, 4, step))
    with pytest.raises(ValueError, match="step must not be zero"):
        f(0)


def test_alloc_zeros_ones(compile_fn):
    n, v = tg.lscalar("n"), tg.dscalar("v")
    outs = [tg.zeros((n, 2)), tg.ones((2, n), "int32"), tg.alloc(3.5, (n,)),
            tg.alloc(v, (n, n)), tg.zeros(3, "float64"), tg.ones((1, n))]
    assert outs[0].dtype == tg.config.floatX and outs[1].dtype == "int32"
    assert tg.ones((1, 3)).broadcastable == (True, False)  # constant shapes give the pattern
    results = compile_fn([n, v], outs)(3, 1.5)
    want = [np.zeros((3, 2)), np.ones((2, 3)), np.full(3, 3.5), np.full((3, 3), 1.5),
            np.zeros(3), np.ones((1, 3))]
    for got, out, w in zip(results, outs, want):
        assert got.dtype == np.dtype(out.dtype)
        np.testing.assert_array_equal(got, w)
    f = compile_fn([n], tg.zeros((n, 2)))
    with pytest.raises(ValueError, match="negative"):
        f(-1)


def test_zeros_like_ones_like_follow_the_shape(compile_fn):
    x = tg.ftensor3("x")
    value = np.ones((2, 1, 3), "float32")
    zeros, ones = compile_fn([x], [tg.zeros_like(x), tg.ones_like(x, "int64")])(value)
    assert zeros.dtype == np.float32 and ones.dtype == np.int64
    np.testing.assert_array_equal(zeros, np.zeros((2, 1, 3)))
    np.testing.assert_array_equal(ones, np.ones((2, 1, 3)))


def test_one_hot(compile_fn):
    y, depth = tg.lvector("y"), tg.lscalar("depth")
    f = compile_fn([y, depth], [tg.one_hot(y, 4), tg.one_hot(y, depth, "int32")])
    labels = np.array([0, 3, 1, 1])
    as_float, as_int = f(labels, 5)
    np.testing.assert_array_equal(as_float, np.eye(4)[labels])
    assert as_float.dtype == np.dtype(tg.config.floatX) and as_int.dtype == np.int32
    np.testing.assert_array_equal(as_int, np.eye(5, dtype="int32")[labels])
    with pytest.raises(TypeError, match="integer vector"):
        tg.one_hot(tg.dvector(), 3)


# ---------------------------------------------------------------------------------------------
# infer_shape agrees with perform, for every node of a set of graphs covering every op


def _graphs():
    """(inputs, outputs, values) triples; gradients add the gradient ops to the graphs."""
    x, y, z = tg.dmatrix("x"), tg.dmatrix("y"), tg.dmatrix("z")
    v, w = tg.dvector("v"), tg.dvector("w")
    t = tg.dtensor3("t")
    row = tg.tensor("float64", broadcastable=(True, False), name="row")
    labels, idx = tg.lvector("labels"), tg.lvector("idx")
    i, n = tg.lscalar("i"), tg.lscalar("n")
    values = {x: _normal(4, 3), y: _normal(3, 5), z: _normal(4, 5), v: _normal(3), w: _normal(4),
              t: _normal(2, 4, 3), row: _normal(1, 3), labels: np.array([2, 0, 1, 1]),
              idx: np.array([3, 0, 3]), i: np.array(1), n: np.array(2)}

    def case(outputs, cost=None, wrt=()):
        outputs = list(outputs)
        if cost is not None:
            outputs += tg.grad(cost, list(wrt), disconnected_inputs="ignore")
        return outputs

    cases = [
        case([x + row, tg.exp(x) * 2.0, tg.switch(x > 0, x, row), tg.cast(x, "int32")],
             tg.sum(tg.tanh(x) * row), [x, row]),
        case([x @ y, x @ v, w @ x, v @ v, tg.outer(v, w),
              0.5 * z - 2.0 * ((x * 2.0) @ y)],
             tg.sum(x @ y) + tg.sum(x @ v) + tg.sum(w @ x) + v @ v, [x, y, v, w]),
        case([tg.sum(t, axis=(0, 2)), tg.max(t, axis=1, keepdims=True), tg.prod(t),
              tg.mean(t, axis=-1), tg.argmax(t, axis=1), tg.argmin(t), tg.var(t, axis=0),
              tg.logsumexp(t, axis=2, keepdims=True)],
             tg.sum(tg.max(t, axis=1)) + tg.prod(t) + tg.mean(t), [t]),
        case([t.dimshuffle(2, "x", 0, 1), t.T, t.reshape((-1, 3)), t.flatten(2),
              tg.concatenate([x, x[:2]], axis=0), tg.stack([v, v], axis=1), t.shape,
              tg.arange(n, 10, 3), tg.alloc(v[0], (n, 3)), tg.zeros((2, n)),
              tg.ones_like(x), tg.specify_broadcastable(x[:1], [0])],
             tg.sum(t.reshape((-1, 3)) * v) + tg.sum(tg.concatenate([x, x[:2]])) +
             tg.sum(tg.alloc(v[0], (n, 3))) + tg.sum(row.dimshuffle(1)), [t, v, x, row]),
        case([x[i], x[i:i + n], x[::-1, 1:], x[:, -1], t[1, ::2], x[None, 1:, None],
              tg.set_subtensor(x[i:i + n], 0.0), tg.inc_subtensor(x[:, 1], v[0])],
             tg.sum(x[i:i + n] ** 2) + tg.sum(tg.set_subtensor(x[1:], v * 2.0)) +
             tg.sum(tg.inc_subtensor(x[:, 1], w) * x), [x, v, w]),
        case([x[idx], x[idx, labels[:3]], x[tg.arange(4), labels],
              tg.inc_subtensor(x[idx], v), tg.set_subtensor(x[idx, labels[:3]], 5.0)],
             tg.sum(x[idx] ** 2) + tg.sum(tg.inc_subtensor(x[idx], v) ** 2) +
             tg.sum(tg.set_subtensor(x[idx, labels[:3]], w[:3]) ** 2), [x, v, w]),
        case([tg.softmax(x), tg.log_softmax(t), tg.nll_mean(x, labels),
              tg.categorical_crossentropy(tg.softmax(x), labels), tg.one_hot(labels, 3)],
             tg.nll_mean(x, labels) + tg.sum(tg.softmax(t) * t) + tg.sum(tg.log_softmax(x)),
             [x, t]),
    ]
    # second derivative of the fused crossentropy: CrossentropySoftmaxGrad's own gradient
    ce_grad = tg.grad(tg.nll_mean(x, labels), x)
    cases.append(case([ce_grad], tg.sum(ce_grad ** 2), [x]))
    return cases, values


def _evaluate_checking_infer_shape(outputs, values):
    storage = {var.id: val for var, val in values.items()}
    checked = []
    for node in toposort(outputs):
        inputs = []
        for var in node.inputs:
            if var.id not in storage:
                assert var.owner is None, var
                storage[var.id] = (var.data if isinstance(var, Constant) else
                                   var.get_value() if isinstance(var, SharedVariable) else None)
            inputs.append(storage[var.id])
        results = node.op.perform(node, inputs)
        inferred = node.op.infer_shape(node, [np.shape(a) for a in inputs], inputs)
        assert len(inferred) == len(results) == len(node.outputs), node
        for out_var, result, shape_ in zip(node.outputs, results, inferred):
            result = np.asarray(result)
            assert tuple(shape_) == result.shape, (node, shape_, result.shape)
            assert len(shape_) == out_var.ndim, node
            for axis, b in enumerate(out_var.broadcastable):
                assert not b or result.shape[axis] == 1, (node, out_var.type, result.shape)
            storage[out_var.id] = result
        checked.append(node)
    return checked


_PIPELINES = [rewrite.DEFAULT_PIPELINE] + (
    [rewrite.OPENCL_PIPELINE] if hasattr(rewrite, "OPENCL_PIPELINE") else [])

_EVERY_OP = (
    blas.Dot, elemwise.Elemwise, reduce.Reduce, reduce.Argmax, shape.DimShuffle,
    shape.SpecifyBroadcastable, shape.Shape, shape.Reshape, shape.Concatenate, shape.ARange,
    shape.Alloc, subtensor.Subtensor, subtensor.IncSubtensor, subtensor.AdvancedSubtensor,
    subtensor.AdvancedIncSubtensor, nnet.Softmax, nnet.LogSoftmax, nnet.CrossentropySoftmax,
    nnet.CrossentropySoftmaxGrad,
)


def test_infer_shape_agrees_with_perform_for_every_node():
    cases, values = _graphs()
    seen = set()
    for outputs in cases:
        nodes = _evaluate_checking_infer_shape(outputs, values)
        # the same graphs after the rewrites (fused, stabilised ops), for every pipeline
        for pipeline in _PIPELINES:
            nodes += _evaluate_checking_infer_shape(rewrite.optimize(outputs, pipeline), values)
        seen.update(type(node.op) for node in nodes)
    every_op = _EVERY_OP + ((blas.Gemm,) if hasattr(blas, "Gemm") else ())
    missing = [op.__name__ for op in every_op if op not in seen]
    assert not missing, f"no graph exercises {missing}"
