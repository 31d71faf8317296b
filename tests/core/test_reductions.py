"""Reductions over any axes, with and without keepdims, against NumPy."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygraph as tg
from tinygraph.testing import strategies as tgs


def _close(got, want, dtype):
    assert got.dtype == np.dtype(dtype), (got.dtype, dtype)
    assert got.shape == np.shape(want), (got.shape, np.shape(want))
    if np.dtype(dtype).kind == "f":
        tol = 1e-5 if dtype == "float32" else 1e-11
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    else:
        np.testing.assert_array_equal(got, want)


@st.composite
def _axes(draw, ndim):
    """None, an int, or a tuple of distinct axes, some given as negative numbers."""
    kind = draw(st.sampled_from(["none", "int", "tuple"]))
    if kind == "none" or ndim == 0:
        return None
    if kind == "int":
        axis = draw(st.integers(0, ndim - 1))
        return axis - ndim if draw(st.booleans()) else axis
    axes = draw(st.lists(st.integers(0, ndim - 1), unique=True, max_size=ndim))
    return tuple(a - ndim if draw(st.booleans()) else a for a in axes)


def _np_logsumexp(x, axis, keepdims):
    m = np.max(x, axis=axis, keepdims=True)
    out = m + np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))
    if keepdims:
        return out
    return np.squeeze(out, axis=tuple(range(x.ndim)) if axis is None else axis)


# name: (tinygraph reduction, NumPy reference, dtypes, output dtype for integer inputs)
REDUCTIONS = {
    "sum": (tg.sum, np.sum, ["float32", "float64", "int32", "int64", "bool"], "int64"),
    "prod": (tg.prod, np.prod, ["float32", "float64", "int32", "int64"], "int64"),
    "max": (tg.max, np.max, ["float32", "float64", "int32", "int64", "uint8"], None),
    "min": (tg.min, np.min, ["float32", "float64", "int32", "int64", "uint8"], None),
    "mean": (tg.mean, np.mean, ["float32", "float64", "int32", "int64"], "floatX"),
    "var": (tg.var, np.var, ["float32", "float64"], None),
    "std": (tg.std, np.std, ["float32", "float64"], None),
    "logsumexp": (tg.logsumexp, _np_logsumexp, ["float32", "float64"], None),
}


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@given(data=st.data())
def test_reductions_match_numpy(compile_fn, name, data):
    fn, ref, dtypes, int_out = REDUCTIONS[name]
    dtype = data.draw(st.sampled_from(dtypes))
    shape = data.draw(tgs.shapes(min_dims=0, max_dims=4, max_side=4))
    value = data.draw(tgs.arrays(dtype, shape))
    axis = data.draw(_axes(len(shape)))
    keepdims = data.draw(st.booleans())
    x = tg.tensor(dtype, len(shape), "x")
    out = fn(x, axis, keepdims=keepdims)
    if dtype in ("float32", "float64") or int_out is None:
        out_dtype = dtype
    else:
        out_dtype = tg.config.floatX if int_out == "floatX" else int_out
    assert out.dtype == out_dtype
    want = ref(value, axis=axis, keepdims=keepdims)
    got = compile_fn([x], out)(value)
    _close(got, want, out_dtype)
    method = getattr(x, name, None)
    if method is not None:  # x.sum(axis, keepdims) etc. build the same thing
        _close(compile_fn([x], method(axis, keepdims=keepdims))(value), want, out_dtype)


@pytest.mark.parametrize("name", ["argmax", "argmin"])
@given(data=st.data())
def test_argmax_argmin_match_numpy(compile_fn, name, data):
    dtype = data.draw(st.sampled_from(["float32", "float64", "int64"]))
    shape = data.draw(tgs.shapes(min_dims=1, max_dims=3, max_side=4))
    elements = (st.floats(-1e3, 1e3, width=32 if dtype == "float32" else 64)
                if dtype != "int64" else st.integers(-10**6, 10**6))
    value = data.draw(hnp.arrays(dtype, shape, elements=elements, unique=True))  # no ties
    axis = data.draw(st.none() | st.integers(-len(shape), len(shape) - 1))
    keepdims = data.draw(st.booleans())
    x = tg.tensor(dtype, len(shape), "x")
    f = compile_fn([x], [getattr(tg, name)(x, axis, keepdims=keepdims),
                         getattr(x, name)(axis, keepdims=keepdims)])
    want = getattr(np, name)(value, axis=axis, keepdims=keepdims)
    for got in f(value):
        _close(got, want, "int64")


def test_logsumexp_is_stable_for_large_values(compile_fn):
    x = tg.dmatrix("x")
    value = np.array([[1e4, 1e4 - 1.0, -1e4], [-1e4, -1e4, -1e4]])
    got = compile_fn([x], tg.logsumexp(x, axis=1))(value)
    np.testing.assert_allclose(got, [1e4 + np.log1p(np.exp(-1.0)), -1e4 + np.log(3.0)],
                               rtol=1e-12)


def test_reduction_of_broadcastable_axes_keeps_the_pattern():
    x = tg.tensor("float64", broadcastable=(False, True, False))
    assert tg.sum(x, axis=0).broadcastable == (True, False)
    assert tg.sum(x, axis=0, keepdims=True).broadcastable == (True, True, False)
    assert tg.max(x, axis=(0, 2)).broadcastable == (True,)
    assert tg.argmax(x, axis=2, keepdims=True).broadcastable == (False, True, True)


def test_bad_axes_are_errors():
    x = tg.dmatrix("x")
    with pytest.raises(ValueError, match="out of range"):
        tg.sum(x, axis=2)
    with pytest.raises(ValueError, match="out of range"):
        tg.mean(x, axis=-3)
    with pytest.raises(ValueError, match="repeated axis"):
        tg.max(x, axis=(0, -2))


def test_max_of_an_empty_axis_is_a_clear_error(compile_fn):
    x = tg.dmatrix("x")
    f = compile_fn([x], tg.max(x, axis=1))
    with pytest.raises(ValueError, match="empty axis"):
        f(np.zeros((2, 0)))
    np.testing.assert_array_equal(compile_fn([x], tg.sum(x, axis=1))(np.zeros((2, 0))), [0, 0])
