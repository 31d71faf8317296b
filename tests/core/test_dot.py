"""dot / @ for vector and matrix operands, and outer."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygraph as tg
from tinygraph.testing import strategies as tgs
from tinygraph.testing import verify_grad

_CASES = {"vv": (1, 1), "mv": (2, 1), "vm": (1, 2), "mm": (2, 2)}


def _shapes(case, m, k, n):
    left = (k,) if _CASES[case][0] == 1 else (m, k)
    right = (k,) if _CASES[case][1] == 1 else (k, n)
    return left, right


@pytest.mark.parametrize("case", sorted(_CASES))
@given(data=st.data())
def test_dot_matches_numpy(compile_fn, case, data):
    dtype = data.draw(st.sampled_from(["float32", "float64", "int32", "int64"]))
    m, k, n = (data.draw(st.integers(1, 6)) for _ in range(3))
    left, right = _shapes(case, m, k, n)
    xv = data.draw(tgs.arrays(dtype, left))
    yv = data.draw(tgs.arrays(dtype, right))
    x, y = tg.tensor(dtype, len(left), "x"), tg.tensor(dtype, len(right), "y")
    out = tg.dot(x, y)
    assert out.dtype == dtype and out.ndim == len(left) + len(right) - 2
    by_dot, by_matmul, by_method = compile_fn([x, y], [out, x @ y, x.dot(y)])(xv, yv)
    want = np.dot(xv, yv)
    for got in (by_dot, by_matmul, by_method):
        assert got.dtype == np.dtype(dtype) and got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-5 if dtype == "float32" else 1e-12,
                                   atol=1e-5)


def test_matmul_with_an_ndarray_on_either_side(compile_fn):
    x = tg.dmatrix("x")
    a = np.arange(6.0).reshape(3, 2)
    value = np.arange(6.0).reshape(2, 3)
    left, right = compile_fn([x], [a @ x, x @ a])(value)
    np.testing.assert_allclose(left, a @ value)
    np.testing.assert_allclose(right, value @ a)


def test_dot_promotes_mixed_dtypes(compile_fn):
    x, y = tg.fmatrix("x"), tg.ivector("y")
    out = tg.dot(x, y)
    assert out.dtype == "float64"
    got = compile_fn([x, y], out)(np.ones((2, 3), "float32"), np.array([1, 2, 3], "int32"))
    np.testing.assert_array_equal(got, [6.0, 6.0])


def test_dot_broadcastable_pattern():
    row = tg.tensor("float64", broadcastable=(True, False))
    col = tg.tensor("float64", broadcastable=(False, True))
    assert tg.dot(row, col).broadcastable == (True, True)
    assert tg.dot(row, tg.dvector()).broadcastable == (True,)


def test_dot_errors_name_the_op_and_shapes(compile_fn):
    x, y = tg.dmatrix("x"), tg.dmatrix("y")
    f = compile_fn([x, y], x @ y, name="product")
    with pytest.raises(ValueError) as info:
        f(np.ones((2, 3)), np.ones((4, 5)))
    message = str(info.value)
    assert "dot" in message and "(2, 3)" in message and "(4, 5)" in message
    assert "product" in message
    with pytest.raises(TypeError, match="vectors or matrices"):
        tg.dot(tg.dtensor3(), y)
    with pytest.raises(TypeError, match="vectors or matrices"):
        tg.dot(tg.dscalar(), y)
    with pytest.raises(TypeError, match="bool"):
        tg.dot(tg.bmatrix(), y)


@given(data=st.data())
def test_outer_matches_numpy(compile_fn, data):
    m, n = data.draw(st.integers(1, 6)), data.draw(st.integers(1, 6))
    xv = data.draw(tgs.arrays("float64", (m,)))
    yv = data.draw(tgs.arrays("float64", (n,)))
    x, y = tg.dvector("x"), tg.dvector("y")
    np.testing.assert_allclose(compile_fn([x, y], tg.outer(x, y))(xv, yv), np.outer(xv, yv))
    with pytest.raises(TypeError, match="vectors"):
        tg.outer(tg.dmatrix(), y)


@pytest.mark.parametrize("case", sorted(_CASES))
@given(data=st.data())
def test_dot_gradient(case, data, backend):
    m, k, n = (data.draw(st.integers(1, 5)) for _ in range(3))
    left, right = _shapes(case, m, k, n)
    xv = data.draw(tgs.arrays("float64", left))
    yv = data.draw(tgs.arrays("float64", right))
    verify_grad(tg.dot, [xv, yv])
    verify_grad(lambda x, y: tg.tanh(x @ y), [xv, yv])


def test_outer_gradient(backend):
    rng = np.random.default_rng(3)
    verify_grad(tg.outer, [rng.normal(size=4), rng.normal(size=3)])
