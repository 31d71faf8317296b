"""Elementwise ops: values and dtypes against NumPy, broadcasting, and broadcasting errors."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygraph as tg
from tinygraph.testing import strategies as tgs

FLOATS = ["float32", "float64"]
INTS = ["int32", "int64"]
NUMERIC = FLOATS + INTS


def sym(dtype, shape, name):
    """A symbolic input whose length-1 axes are broadcastable (so it can broadcast)."""
    return tg.tensor(dtype, broadcastable=tuple(s == 1 for s in shape), name=name)


def assert_matches(got, want, dtype):
    assert got.dtype == np.dtype(dtype), (got.dtype, dtype)
    assert got.shape == np.shape(want)
    if np.dtype(dtype).kind == "f":
        tol = 2e-6 if dtype == "float32" else 1e-12
        np.testing.assert_allclose(got, np.asarray(want, dtype), rtol=tol, atol=tol)
    else:
        np.testing.assert_array_equal(got, want)


def _float_out(dtype):
    return dtype if dtype in FLOATS else tg.config.floatX


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


# name: (tinygraph function, NumPy reference, domain, dtypes, output dtype rule)
UNARY = {
    "neg": (lambda x: -x, np.negative, "real", NUMERIC, "same"),
    "abs": (abs, np.abs, "real", NUMERIC, "same"),
    "tg.abs": (tg.abs, np.abs, "real", NUMERIC + ["uint8"], "same"),
    "exp": (tg.exp, np.exp, "real", NUMERIC, "float"),
    "log": (tg.log, np.log, "positive", NUMERIC, "float"),
    "log1p": (tg.log1p, np.log1p, "positive", FLOATS, "float"),
    "expm1": (tg.expm1, np.expm1, "real", FLOATS, "float"),
    "sqrt": (tg.sqrt, np.sqrt, "positive", NUMERIC, "float"),
    "square": (tg.square, np.square, "real", NUMERIC, "same"),
    "sin": (tg.sin, np.sin, "real", NUMERIC, "float"),
    "cos": (tg.cos, np.cos, "real", FLOATS, "float"),
    "tanh": (tg.tanh, np.tanh, "real", NUMERIC, "float"),
    "sigmoid": (tg.sigmoid, _sigmoid, "real", FLOATS, "float"),
    "sigmoid_large": (tg.sigmoid, _sigmoid, "large", FLOATS, "float"),
    "softplus": (tg.softplus, lambda x: np.logaddexp(0, x), "real", FLOATS, "float"),
    "softplus_large": (tg.softplus, lambda x: np.logaddexp(0, x), "large", FLOATS, "float"),
    "relu": (tg.relu, lambda x: np.maximum(x, 0), "real", NUMERIC, "same"),
    "sign": (tg.sign, np.sign, "real", NUMERIC, "same"),
    "floor": (tg.floor, np.floor, "real", NUMERIC, "same"),
    "ceil": (tg.ceil, np.ceil, "real", NUMERIC, "same"),
    "round": (tg.round, np.round, "real", NUMERIC, "same"),
    "logical_not": (tg.logical_not, np.logical_not, "real", ["bool"], "bool"),
    "invert": (lambda x: ~x, np.logical_not, "real", ["bool"], "bool"),
}


@pytest.mark.parametrize("name", sorted(UNARY))
@given(data=st.data())
def test_unary_ops_match_numpy(compile_fn, name, data):
    fn, ref, domain, dtypes, rule = UNARY[name]
    dtype = data.draw(st.sampled_from(dtypes))
    shape = data.draw(tgs.shapes(max_dims=3))
    value = data.draw(tgs.arrays(dtype, shape, domain))
    x = sym(dtype, shape, "x")
    out = fn(x)
    out_dtype = {"same": dtype, "float": _float_out(dtype), "bool": "bool"}[rule]
    assert out.dtype == out_dtype and out.broadcastable == x.broadcastable
    got = compile_fn([x], out)(value)
    with np.errstate(all="ignore"):
        want = ref(value.astype(out_dtype) if rule == "float" else value)
    assert_matches(got, want, out_dtype)


def _nonzero_ints(dtype, shape):
    return hnp.arrays(dtype, shape, elements=st.integers(1, 3) | st.integers(-3, -1))


def _nonzero_floats(dtype, shape):
    width = 32 if dtype == "float32" else 64
    magnitude = st.floats(0.25, 3.0, width=width)
    return hnp.arrays(dtype, shape, elements=st.one_of(magnitude, magnitude.map(lambda v: -v)))


# name: (tinygraph function, NumPy reference, x domain, y domain, dtypes, output dtype rule)
BINARY = {
    "add": (lambda x, y: x + y, np.add, "real", "real", NUMERIC, "same"),
    "sub": (lambda x, y: x - y, np.subtract, "real", "real", NUMERIC, "same"),
    "mul": (lambda x, y: x * y, np.multiply, "real", "real", NUMERIC, "same"),
    "true_div": (lambda x, y: x / y, np.true_divide, "real", "nonzero", NUMERIC, "float"),
    "floor_div": (lambda x, y: x // y, np.floor_divide, "real", "nonzero", NUMERIC, "same"),
    "mod": (lambda x, y: x % y, np.mod, "real", "nonzero", NUMERIC, "same"),
    "pow": (lambda x, y: x ** y, np.power, "positive", "real", FLOATS, "float"),
    "maximum": (tg.maximum, np.maximum, "real", "real", NUMERIC, "same"),
    "minimum": (tg.minimum, np.minimum, "real", "real", NUMERIC, "same"),
    "eq": (tg.eq, np.equal, "real", "real", INTS + ["bool"], "bool"),
    "neq": (tg.neq, np.not_equal, "real", "real", INTS + ["bool"], "bool"),
    "lt": (lambda x, y: x < y, np.less, "real", "real", NUMERIC, "bool"),
    "le": (lambda x, y: x <= y, np.less_equal, "real", "real", NUMERIC, "bool"),
    "gt": (lambda x, y: x > y, np.greater, "real", "real", NUMERIC, "bool"),
    "ge": (lambda x, y: x >= y, np.greater_equal, "real", "real", NUMERIC, "bool"),
    "and": (lambda x, y: x & y, np.logical_and, "real", "real", ["bool"], "bool"),
    "or": (lambda x, y: x | y, np.logical_or, "real", "real", ["bool"], "bool"),
    "logical_and": (tg.logical_and, np.logical_and, "real", "real", ["bool"], "bool"),
    "logical_or": (tg.logical_or, np.logical_or, "real", "real", ["bool"], "bool"),
    "logical_xor": (tg.logical_xor, np.logical_xor, "real", "real", ["bool"], "bool"),
}


@pytest.mark.parametrize("name", sorted(BINARY))
@given(data=st.data())
def test_binary_ops_match_numpy_with_broadcasting(compile_fn, name, data):
    fn, ref, x_domain, y_domain, dtypes, rule = BINARY[name]
    dtype = data.draw(st.sampled_from(dtypes))
    x_shape = data.draw(tgs.shapes(max_dims=3))
    y_shape = data.draw(tgs.broadcastable_shapes(x_shape))
    if data.draw(st.booleans()):
        x_shape, y_shape = y_shape, x_shape
    xv = data.draw(tgs.arrays(dtype, x_shape, x_domain))
    if y_domain == "nonzero":
        make = _nonzero_ints if dtype in INTS else _nonzero_floats
        yv = data.draw(make(dtype, y_shape))
    else:
        yv = data.draw(tgs.arrays(dtype, y_shape, y_domain))
    x, y = sym(dtype, x_shape, "x"), sym(dtype, y_shape, "y")
    out = fn(x, y)
    out_dtype = {"same": dtype, "float": _float_out(dtype), "bool": "bool"}[rule]
    assert out.dtype == out_dtype
    got = compile_fn([x, y], out)(xv, yv)
    if rule == "float":
        xv, yv = xv.astype(out_dtype), yv.astype(out_dtype)
    assert_matches(got, ref(xv, yv), out_dtype)


@given(data=st.data())
def test_switch_and_where_with_broadcasting(compile_fn, data):
    dtype = data.draw(st.sampled_from(NUMERIC))
    shape = data.draw(tgs.shapes(max_dims=3))
    shapes = [data.draw(tgs.broadcastable_shapes(shape)) for _ in range(2)] + [shape]
    order = data.draw(st.permutations(range(3)))
    c_shape, a_shape, b_shape = (shapes[i] for i in order)
    cv = data.draw(tgs.arrays("bool", c_shape))
    av = data.draw(tgs.arrays(dtype, a_shape))
    bv = data.draw(tgs.arrays(dtype, b_shape))
    c, a, b = sym("bool", c_shape, "c"), sym(dtype, a_shape, "a"), sym(dtype, b_shape, "b")
    f = compile_fn([c, a, b], [tg.switch(c, a, b), tg.where(c, b, a)])
    got_switch, got_where = f(cv, av, bv)
    assert_matches(got_switch, np.where(cv, av, bv), dtype)
    assert_matches(got_where, np.where(cv, bv, av), dtype)


def test_switch_with_comparison_condition_and_python_scalars(compile_fn):
    x = tg.fvector("x")
    f = compile_fn([x], tg.switch(x > 0, x, 0.5 * x))
    value = np.array([-2.0, 0.0, 3.0], "float32")
    assert_matches(f(value), np.where(value > 0, value, 0.5 * value), "float32")


@given(data=st.data())
def test_clip_matches_numpy(compile_fn, data):
    dtype = data.draw(st.sampled_from(NUMERIC))
    shape = data.draw(tgs.shapes(max_dims=3))
    value = data.draw(tgs.arrays(dtype, shape))
    low = data.draw(st.integers(-3, 0))
    high = data.draw(st.integers(0, 3))
    x = sym(dtype, shape, "x")
    lo, hi = tg.tensor(dtype, 0, "lo"), tg.tensor(dtype, 0, "hi")
    f = compile_fn([x, lo, hi], [tg.clip(x, lo, hi), x.clip(low, high)])
    by_function, by_method = f(value, np.array(low, dtype), np.array(high, dtype))
    assert_matches(by_function, np.clip(value, low, high), dtype)
    assert_matches(by_method, np.clip(value, low, high), dtype)


_CAST_DTYPES = ["float32", "float64", "int32", "int64", "uint8", "bool"]


@pytest.mark.parametrize("target", _CAST_DTYPES)
@given(data=st.data())
def test_cast_matches_numpy_astype(compile_fn, target, data):
    source = data.draw(st.sampled_from(_CAST_DTYPES))
    shape = data.draw(tgs.shapes(max_dims=2))
    value = data.draw(tgs.arrays(source, shape, "large" if source in FLOATS else "real"))
    if target == "uint8" and source != "bool":  # keep the values representable
        value = np.abs(value) % 200
    x = sym(source, shape, "x")
    out = tg.cast(x, target)
    assert out.dtype == target
    assert x.astype(target).dtype == target
    assert tg.cast(x, source) is x
    assert_matches(compile_fn([x], out)(value), value.astype(target), target)


def test_round_is_half_to_even_and_floor_ceil_of_negatives(compile_fn):
    x = tg.dvector("x")
    value = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.7, 2.7])
    rounded, floored, ceiled = compile_fn([x], [tg.round(x), tg.floor(x), tg.ceil(x)])(value)
    np.testing.assert_array_equal(rounded, [0, 2, 2, -0.0, -2, -3, 3])
    np.testing.assert_array_equal(floored, np.floor(value))
    np.testing.assert_array_equal(ceiled, np.ceil(value))


def test_integer_floor_div_and_mod_follow_numpy_signs(compile_fn):
    x, y = tg.ivector("x"), tg.ivector("y")
    xv = np.array([7, -7, 7, -7, 0], "int32")
    yv = np.array([2, 2, -2, -2, 3], "int32")
    quotient, remainder = compile_fn([x, y], [x // y, x % y])(xv, yv)
    assert_matches(quotient, xv // yv, "int32")
    assert_matches(remainder, xv % yv, "int32")


def test_ndarray_on_the_left_builds_a_graph(compile_fn):
    x = tg.dvector("x")
    out = np.array([1.0, 2.0]) + x
    assert isinstance(out, tg.Variable)
    out = np.array([10.0, 20.0]) - out * 2
    np.testing.assert_array_equal(compile_fn([x], out)(np.array([1.0, 1.0])), [6.0, 14.0])


def test_rank_is_padded_on_the_left(compile_fn):
    v, m = tg.dvector("v"), tg.dmatrix("m")
    with pytest.raises(ValueError, match="do not match"):
        compile_fn([v, m], v + m)(np.ones(3), np.ones((2, 2)))
    row = tg.tensor("float64", broadcastable=(True,), name="row")
    f = compile_fn([row, m], row * m)
    np.testing.assert_array_equal(f(np.array([2.0]), np.ones((2, 3))), np.full((2, 3), 2.0))


def test_broadcasting_a_non_broadcastable_axis_names_the_op_and_shapes(compile_fn):
    x, y = tg.dmatrix("x"), tg.dmatrix("y")
    f = compile_fn([x, y], x + y)
    with pytest.raises(ValueError) as info:
        f(np.ones((2, 3)), np.ones((1, 3)))
    message = str(info.value)
    assert "Elemwise{add}" in message and "(2, 3)" in message and "(1, 3)" in message
    assert "broadcast" in message
    with pytest.raises(ValueError, match=r"Elemwise\{mul\}.*\(2, 3\).*\(2, 4\)"):
        compile_fn([x, y], x * y)(np.ones((2, 3)), np.ones((2, 4)))


def test_declared_broadcastable_axis_must_have_length_one(compile_fn):
    row = tg.tensor("float64", broadcastable=(True, False), name="row")
    f = compile_fn([row], row * 2.0)
    with pytest.raises(ValueError, match="row.*broadcastable"):
        f(np.ones((3, 2)))


def test_bool_operands_rejected_where_undefined():
    b = tg.bvector("b")
    for fn in (lambda v: -v, tg.square, tg.relu, tg.sign):
        with pytest.raises(TypeError, match="bool"):
            fn(b)


def test_wrong_number_of_operands():
    with pytest.raises(TypeError, match="takes 2 inputs"):
        tg.add(tg.dvector())


def test_fill_zeros_like_ones_like(compile_fn):
    x = tg.imatrix("x")
    value = np.arange(6, dtype="int32").reshape(2, 3)
    zeros, ones, ones_f, filled = compile_fn(
        [x], [tg.zeros_like(x), tg.ones_like(x), tg.ones_like(x, "float64"), tg.fill(x, 7)]
    )(value)
    assert_matches(zeros, np.zeros((2, 3)), "int32")
    assert_matches(ones, np.ones((2, 3)), "int32")
    assert_matches(ones_f, np.ones((2, 3)), "float64")
    assert_matches(filled, np.full((2, 3), 7), "int32")
