"""Gradients: verify_grad (float64 finite differences) for every differentiable op with random
shapes and broadcasting, second derivatives, known_grads, and the error cases.

dot/outer gradients are in test_dot.py and indexing gradients in test_indexing.py."""

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygraph as tg
from tinygraph.testing import strategies as tgs
from tinygraph.testing import verify_grad


def _floats(low, high):
    return st.floats(low, high, allow_nan=False, allow_infinity=False)


# value kinds keeping finite differences away from kinks, poles and domain edges
_ELEMENTS = {
    "real": _floats(-3, 3),
    "positive": _floats(0.2, 3),
    "nonzero": st.one_of(_floats(0.2, 3), _floats(-3, -0.2)),
    # fractional part in (0.1, 0.4) or (0.6, 0.9): away from integers and half-integers
    "low_frac": st.builds(lambda k, f: k + f, st.integers(-3, 2), _floats(0.1, 0.4)),
    "high_frac": st.builds(lambda k, f: k + f, st.integers(-3, 2), _floats(0.6, 0.9)),
    "off_integer": st.builds(lambda k, f: k + f, st.integers(-3, 2),
                             st.one_of(_floats(0.1, 0.4), _floats(0.6, 0.9))),
    # away from the clip bounds -1 and 1
    "off_bounds": st.one_of(_floats(-3, -1.1), _floats(-0.9, 0.9), _floats(1.1, 3)),
}


def _array(data, shape, kind="real"):
    return data.draw(hnp.arrays("float64", shape, elements=_ELEMENTS[kind]))


UNARY = {
    "neg": (lambda x: -x, "real"),
    "abs": (tg.abs, "nonzero"),
    "exp": (tg.exp, "real"),
    "log": (tg.log, "positive"),
    "log1p": (tg.log1p, "positive"),
    "expm1": (tg.expm1, "real"),
    "sqrt": (tg.sqrt, "positive"),
    "square": (tg.square, "real"),
    "sin": (tg.sin, "real"),
    "cos": (tg.cos, "real"),
    "tanh": (tg.tanh, "real"),
    "sigmoid": (tg.sigmoid, "real"),
    "softplus": (tg.softplus, "real"),
    "relu": (tg.relu, "nonzero"),
    "sign": (lambda x: tg.sign(x) * x, "nonzero"),
    "floor": (lambda x: tg.floor(x) + x, "off_integer"),
    "ceil": (lambda x: tg.ceil(x) * x, "off_integer"),
    "round": (lambda x: tg.round(x) * x, "off_integer"),
    "pow_const": (lambda x: x ** 3, "real"),
    "pow_half": (lambda x: x ** 0.5, "positive"),
    "cast_float32": (lambda x: tg.cast(x, "float32"), "real"),
    "identity_ops": (lambda x: (x + 0) * 1 - 0, "real"),
}


@pytest.mark.parametrize("name", sorted(UNARY))
@given(data=st.data())
def test_unary_gradients(name, data, backend):
    fn, kind = UNARY[name]
    shape = data.draw(tgs.shapes(max_dims=3, max_side=4))
    value = _array(data, shape, kind)
    if name == "cast_float32":  # float32 rounding: larger steps and tolerances
        verify_grad(fn, [value], eps=1e-2, abs_tol=1e-3, rel_tol=1e-3)
    else:
        verify_grad(fn, [value])


BINARY = {
    "add": (lambda x, y: x + y, "real", "real"),
    "sub": (lambda x, y: x - y, "real", "real"),
    "mul": (lambda x, y: x * y, "real", "real"),
    "true_div": (lambda x, y: x / y, "real", "nonzero"),
    "pow": (lambda x, y: x ** y, "positive", "real"),
    "maximum": (tg.maximum, "low_frac", "high_frac"),
    "minimum": (tg.minimum, "high_frac", "low_frac"),
    "expression": (lambda x, y: tg.tanh(x * y) + tg.exp(-x) / (1.0 + y * y), "real", "real"),
}


@pytest.mark.parametrize("name", sorted(BINARY))
@given(data=st.data())
def test_binary_gradients_with_broadcasting(name, data, backend):
    fn, x_kind, y_kind = BINARY[name]
    x_shape = data.draw(tgs.shapes(max_dims=3, max_side=4))
    y_shape = data.draw(tgs.broadcastable_shapes(x_shape))
    if data.draw(st.booleans()):
        x_shape, y_shape = y_shape, x_shape
    verify_grad(fn, [_array(data, x_shape, x_kind), _array(data, y_shape, y_kind)])


@given(data=st.data())
def test_mod_and_floor_div_gradients(data, backend):
    shape = data.draw(tgs.shapes(max_dims=2, max_side=4))
    y = _array(data, shape, "nonzero")
    x = y * _array(data, shape, "off_integer")  # x / y stays away from integers
    verify_grad(lambda a, b: a % b, [x, y])
    verify_grad(lambda a, b: (a // b) * a, [x, y])


@given(data=st.data())
def test_switch_gradient_with_broadcasting(data, backend):
    shape = data.draw(tgs.shapes(max_dims=3, max_side=4))
    a_shape, b_shape = data.draw(tgs.broadcastable_shapes(shape)), shape
    cond = data.draw(tgs.arrays("bool", data.draw(tgs.broadcastable_shapes(shape))))
    c = tg.constant(cond)
    verify_grad(lambda a, b: tg.switch(c, a, b), [_array(data, a_shape), _array(data, b_shape)])
    verify_grad(lambda a: tg.switch(a > 0, a * a, -a), [_array(data, shape, "nonzero")])


@given(data=st.data())
def test_clip_gradient_wrt_value_and_bounds(data, backend):
    shape = data.draw(tgs.shapes(max_dims=3, max_side=4))
    x = _array(data, shape, "off_bounds")
    verify_grad(lambda v: tg.clip(v, -1.0, 1.0), [x])
    verify_grad(lambda v, lo, hi: tg.clip(v, lo, hi), [x, np.array(-1.0), np.array(1.0)])


def _axes(data, ndim):
    if ndim == 0 or data.draw(st.booleans()):
        return None
    return tuple(data.draw(st.lists(st.integers(0, ndim - 1), unique=True, min_size=1,
                                    max_size=ndim)))


REDUCTIONS = {
    "sum": (tg.sum, "real"),
    "mean": (tg.mean, "real"),
    "prod": (tg.prod, "nonzero"),
    "max": (tg.max, "unique"),
    "min": (tg.min, "unique"),
    "var": (tg.var, "real"),
    "std": (tg.std, "unique"),
    "logsumexp": (tg.logsumexp, "real"),
}


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@given(data=st.data())
def test_reduction_gradients(name, data, backend):
    fn, kind = REDUCTIONS[name]
    shape = data.draw(tgs.shapes(min_dims=0, max_dims=3, max_side=4))
    axis = _axes(data, len(shape))
    keepdims = data.draw(st.booleans())
    if kind == "unique":  # values at least 0.2 apart: no near-ties for max/min, std > 0
        size = int(np.prod(shape, dtype=int))
        order = np.array(data.draw(st.permutations(range(size))), dtype=float)
        jitter = _array(data, (size,), "low_frac") % 1.0 - 0.1
        value = ((order + jitter) * 0.5 - 1.0).reshape(shape)
        reduced = [shape[a] for a in (range(len(shape)) if axis is None else axis)]
        if name == "std" and np.prod(reduced, dtype=int) < 2:
            return
    else:
        value = _array(data, shape, kind)
    verify_grad(lambda x: fn(x, axis, keepdims=keepdims), [value])


@pytest.mark.parametrize("zeros", [1, 2])
def test_prod_gradient_with_zeros(compile_fn, zeros):
    x = tg.dvector("x")
    value = np.array([2.0, 0.0, 3.0, 0.0 if zeros == 2 else 5.0])
    g = compile_fn([x], tg.grad(tg.prod(x), x))(value)
    want = [0.0, 30.0, 0.0, 0.0] if zeros == 1 else [0.0, 0.0, 0.0, 0.0]
    np.testing.assert_array_equal(g, want)
    rng = np.random.default_rng(0)
    matrix = rng.normal(size=(3, 4))
    matrix[0, 1] = 0.0
    matrix[2, :2] = 0.0
    verify_grad(lambda m: tg.prod(m, axis=1), [matrix])


@given(data=st.data())
def test_shape_op_gradients(data, backend):
    shape = data.draw(tgs.shapes(min_dims=2, max_dims=3, max_side=4))
    value = _array(data, shape)
    other = _array(data, shape)
    perm = data.draw(st.permutations(range(len(shape))))
    verify_grad(lambda x: x.dimshuffle(*perm) * 2.0, [value])
    verify_grad(lambda x: x.dimshuffle("x", *range(len(shape)), "x") ** 2, [value])
    verify_grad(lambda x: x.T ** 2, [value])
    verify_grad(lambda x: x.reshape((-1,)) ** 2, [value])
    verify_grad(lambda x: tg.reshape(x, (x.shape[0], -1)) ** 2, [value])
    verify_grad(lambda x: x.flatten(2) ** 2, [value])
    axis = data.draw(st.integers(0, len(shape) - 1))
    verify_grad(lambda x, y: tg.concatenate([x, y * 2.0, x], axis=axis) ** 2, [value, other])
    verify_grad(lambda x, y: tg.stack([x, y], axis=axis) ** 2, [value, other])
    verify_grad(lambda s: tg.alloc(s, (2, 3)) * tg.constant(np.arange(6.0).reshape(2, 3)),
                [np.array(1.5)])
    verify_grad(lambda x: tg.fill(x, 2.0) * x + tg.zeros_like(x) + tg.ones_like(x) * x,
                [value])


def test_dimshuffle_gradient_of_a_broadcastable_axis(backend):
    col = np.random.default_rng(1).normal(size=(4, 1))
    verify_grad(lambda c: c.dimshuffle(0) * tg.constant(np.arange(4.0)), [col])
    verify_grad(lambda c: c * tg.constant(np.ones((4, 3))), [col])


@given(data=st.data())
def test_nnet_gradients(data, backend):
    rows, classes = data.draw(st.integers(1, 4)), data.draw(st.integers(2, 5))
    logits = _array(data, (rows, classes))
    labels = tg.constant(np.array(data.draw(st.lists(st.integers(0, classes - 1),
                                                     min_size=rows, max_size=rows))))
    target = data.draw(hnp.arrays("float64", (rows, classes), elements=_floats(0.05, 0.95)))
    t = tg.constant(target)
    verify_grad(tg.softmax, [logits])
    verify_grad(tg.log_softmax, [logits])
    verify_grad(lambda z: tg.softmax(z.dimshuffle("x", 0, 1)), [logits])
    verify_grad(lambda z: tg.categorical_crossentropy(tg.softmax(z), labels), [logits])
    verify_grad(lambda z: tg.categorical_crossentropy(tg.softmax(z), t), [logits])
    verify_grad(lambda z: tg.nll_mean(z, labels), [logits])
    verify_grad(lambda z: -tg.mean(tg.log(tg.softmax(z))[tg.arange(labels.shape[0]), labels]),
                [logits])
    verify_grad(lambda z: tg.binary_crossentropy(tg.sigmoid(z), t), [logits])
    verify_grad(lambda p: tg.binary_crossentropy(p, t), [target])


# --- second derivatives -----------------------------------------------------------------------

SECOND = {
    "tanh": (lambda x: tg.sum(tg.tanh(x)), (3, 4)),
    "sigmoid": (lambda x: tg.sum(tg.sigmoid(x)), (5,)),
    "mul": (lambda x: tg.sum(x * x * tg.constant(np.arange(1.0, 6.0))), (5,)),
    "softmax": (lambda x: tg.sum(tg.softmax(x) * tg.constant(np.arange(12.0).reshape(3, 4))),
                (3, 4)),
    "fused_crossentropy": (lambda x: tg.nll_mean(x, tg.constant(np.array([1, 0, 3]))),
                           (3, 4)),
    "network3_cost": (lambda x: -tg.mean(tg.log(tg.softmax(x))[tg.arange(3),
                                                                tg.constant(np.array([2, 2, 0]))]),
                      (3, 4)),
}


@pytest.mark.parametrize("name", sorted(SECOND))
def test_grad_of_grad(name, backend):
    cost, shape = SECOND[name]
    value = np.random.default_rng(2).normal(size=shape)
    verify_grad(lambda x: tg.grad(cost(x), x), [value])


def test_grad_of_grad_values(compile_fn):
    x = tg.dvector("x")
    g = tg.grad(tg.sum(x ** 3), x)
    h = tg.grad(tg.sum(g), x)
    value = np.array([1.0, -2.0, 0.5])
    first, second = compile_fn([x], [g, h])(value)
    np.testing.assert_allclose(first, 3 * value ** 2)
    np.testing.assert_allclose(second, 6 * value)
    s = tg.dscalar("s")
    d2 = tg.grad(tg.grad(tg.tanh(s), s), s)
    t = np.tanh(0.3)
    np.testing.assert_allclose(compile_fn([s], d2)(0.3), -2 * t * (1 - t ** 2))


# --- API and errors -------------------------------------------------------------------------------


def test_gradient_dtypes_and_list_results(compile_fn):
    x, w = tg.fvector("x"), tg.dvector("w")
    cost = tg.sum(x * 2.0) + tg.sum(w * w)
    gx, gw = tg.grad(cost, [x, w])
    assert gx.dtype == "float32" and gw.dtype == "float64"
    single = tg.grad(cost, x)
    assert isinstance(single, tg.Variable)
    rx, rw = compile_fn([x, w], [gx, gw])(np.ones(2, "float32"), np.array([1.0, 3.0]))
    np.testing.assert_array_equal(rx, [2.0, 2.0])
    np.testing.assert_array_equal(rw, [2.0, 6.0])


def test_non_scalar_cost_is_an_error():
    x = tg.dvector("x")
    with pytest.raises(TypeError, match="cost must be a scalar.*tinygraph.mean"):
        tg.grad(x * 2, x)
    with pytest.raises(TypeError, match="float scalar"):
        tg.grad(tg.sum(tg.cast(x, "int64")), x)


def test_integer_wrt_is_an_error():
    i = tg.lvector("i")
    with pytest.raises(TypeError, match="cannot differentiate with respect to i of dtype int64"):
        tg.grad(tg.sum(tg.cast(i, "float64")), i)
    with pytest.raises(TypeError, match="symbolic variables"):
        tg.grad(tg.sum(tg.dvector()), [np.zeros(3)])


def test_disconnected_inputs_raise_warn_ignore(compile_fn):
    x, w = tg.dvector("x"), tg.dmatrix("w")
    cost = tg.sum(x ** 2)
    with pytest.raises(tg.DisconnectedInputError, match="does not depend on w"):
        tg.grad(cost, [x, w])
    with pytest.warns(UserWarning, match="does not depend on w") as record:
        gx, gw = tg.grad(cost, [x, w], disconnected_inputs="warn")
    assert record[0].filename == __file__  # the warning points at the caller
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gx2, gw2 = tg.grad(cost, [x, w], disconnected_inputs="ignore")
    for grad_x, grad_w in ((gx, gw), (gx2, gw2)):
        rx, rw = compile_fn([x, w], [grad_x, grad_w])(np.array([1.0, 2.0]), np.ones((2, 3)))
        np.testing.assert_array_equal(rx, [2.0, 4.0])
        np.testing.assert_array_equal(rw, np.zeros((2, 3)))
    with pytest.raises(ValueError, match="disconnected_inputs must be one of"):
        tg.grad(cost, x, disconnected_inputs="sometimes")


def test_cost_through_argmax_only_is_a_clear_error():
    x = tg.dmatrix("x")
    cost = tg.sum(tg.cast(tg.argmax(x, axis=1), "float64"))
    with pytest.raises(tg.DisconnectedInputError,
                       match="depends on x only through operations without a gradient.*argmax"):
        tg.grad(cost, x)
    cost = tg.sum(tg.cast(x > 0, "float64") * 3.0)
    with pytest.raises(tg.DisconnectedInputError, match="without a gradient"):
        tg.grad(cost, x)


def test_partly_non_differentiable_paths_still_give_the_differentiable_part(compile_fn):
    x = tg.dvector("x")
    cost = tg.sum(x * tg.cast(tg.argmax(x), "float64"))
    g = compile_fn([x], tg.grad(cost, x))(np.array([1.0, 5.0, 2.0]))
    np.testing.assert_array_equal(g, [1.0, 1.0, 1.0])


def test_known_grads(compile_fn):
    x = tg.dvector("x")
    h = tg.tanh(x)
    upstream = np.array([1.0, 2.0, 3.0])
    gx = tg.grad(None, x, known_grads={h: tg.constant(upstream)})
    value = np.array([0.1, -0.5, 2.0])
    expected = upstream * (1 - np.tanh(value) ** 2)
    np.testing.assert_allclose(compile_fn([x], gx)(value), expected)
    both = tg.grad(tg.sum(h), x, known_grads={h: tg.constant(upstream)})
    np.testing.assert_allclose(compile_fn([x], both)(value),
                               expected + (1 - np.tanh(value) ** 2))
    ones = tg.grad(None, x, known_grads={h: np.ones(3)})  # plain arrays are accepted
    np.testing.assert_allclose(compile_fn([x], ones)(value), 1 - np.tanh(value) ** 2)
    with pytest.raises(ValueError, match="known gradient for .* has 2 dims"):
        tg.grad(None, x, known_grads={h: tg.dmatrix()})
    with pytest.raises(ValueError, match="cost, known_grads, or both"):
        tg.grad(None, x)


def test_op_without_gradient_is_named():
    class NoGrad(tg.Op):
        def make_node(self, x):
            x = tg.as_variable(x)
            return tg.Apply(self, [x], [x.type])

        def perform(self, node, inputs):
            return [inputs[0].copy()]

    x = tg.dvector("x")
    with pytest.raises(NotImplementedError, match="NoGrad"):
        tg.grad(tg.sum(NoGrad()(x)), x)


def test_gradient_is_a_graph_of_the_wrt_variables(compile_fn):
    x = tg.dmatrix("x")
    b = tg.dvector("b")
    cost = tg.mean(tg.sigmoid(x @ b))
    gb = tg.grad(cost, b)
    assert gb.type == b.type
    xv = np.array([[1.0, 2.0], [0.0, -1.0]])
    bv = np.array([0.3, -0.2])
    s = 1 / (1 + np.exp(-(xv @ bv)))
    want = (s * (1 - s)) @ xv / 2
    np.testing.assert_allclose(compile_fn([x, b], gb)(xv, bv), want, rtol=1e-12)
