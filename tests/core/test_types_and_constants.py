"""Tensor types and constructors, config.floatX, constants, and dtype promotion rules."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tinygraph as tg
from tinygraph.types import TensorType

ROOT = Path(__file__).resolve().parents[2]

_PREFIXES = {"": None, "i": "int32", "l": "int64", "f": "float32", "d": "float64", "b": "bool"}
_RANKS = {"scalar": 0, "vector": 1, "matrix": 2, "tensor3": 3, "tensor4": 4}


@pytest.fixture
def float_x():
    """Restores config.floatX after a test changes it."""
    saved = tg.config.floatX
    yield
    tg.config.floatX = saved


@pytest.mark.parametrize("prefix", sorted(_PREFIXES))
@pytest.mark.parametrize("kind", sorted(_RANKS))
def test_constructors_give_dtype_and_rank(prefix, kind):
    var = getattr(tg, prefix + kind)("v")
    assert var.dtype == (_PREFIXES[prefix] or tg.config.floatX)
    assert var.ndim == _RANKS[kind]
    assert var.broadcastable == (False,) * _RANKS[kind]
    assert var.name == "v" and var.owner is None


def test_unprefixed_constructors_accept_a_dtype():
    assert tg.matrix(dtype="int64").dtype == "int64"
    assert tg.vector("v", "float64").type == TensorType("float64", (False,))


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64", "bool", "uint8"])
@pytest.mark.parametrize("ndim", [0, 1, 2, 5])
def test_tensor_dtype_ndim(dtype, ndim):
    var = tg.tensor(dtype, ndim, name="t")
    assert (var.dtype, var.ndim, var.name) == (dtype, ndim, "t")


def test_tensor_with_broadcastable_pattern():
    var = tg.tensor("float64", broadcastable=(True, False))
    assert var.broadcastable == (True, False) and var.ndim == 2
    assert str(var.type) == "TensorType(float64, (1, ?))"
    assert str(tg.dvector().type) == "TensorType(float64, (?,))"


def test_tensor_needs_a_rank_and_a_supported_dtype():
    with pytest.raises(TypeError, match="ndim"):
        tg.tensor("float32")
    with pytest.raises(TypeError, match="not supported"):
        tg.tensor("int8", 1)
    with pytest.raises(TypeError, match="complex64"):
        tg.tensor("complex64", 1)
    with pytest.raises(TypeError, match="unknown dtype"):
        tg.tensor("no-such-type", 1)


def _run_python(code: str, floatx: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TINYGRAPH_FLOATX"}
    if floatx is not None:
        env["TINYGRAPH_FLOATX"] = floatx
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=60)


_SHOW = ("import tinygraph as tg; x = tg.ivector(); "
         "print(tg.config.floatX, tg.matrix().dtype, tg.constant(1.5).dtype, (x * 0.5).dtype)")


def test_floatx_defaults_to_float32_without_environment():
    result = _run_python(_SHOW, None)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["float32"] * 4


def test_floatx_read_from_environment_at_import():
    result = _run_python(_SHOW, "float64")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["float64"] * 4


def test_invalid_floatx_in_environment_is_a_clear_error():
    result = _run_python("import tinygraph", "float16")
    assert result.returncode != 0
    assert "config.floatX must be one of" in result.stderr and "float16" in result.stderr


def test_floatx_settable_in_code(float_x):
    tg.config.floatX = "float64"
    assert tg.matrix().dtype == "float64"
    assert tg.scalar().dtype == "float64"
    assert tg.fmatrix().dtype == "float32"
    assert (tg.ivector() / 2).dtype == "float64"
    tg.config.floatX = "float32"
    assert tg.matrix().dtype == "float32"
    with pytest.raises(ValueError, match="floatX"):
        tg.config.floatX = "float16"
    assert tg.config.floatX == "float32"


def test_python_floats_do_not_upcast_float32(compile_fn):
    x = tg.fvector("x")
    for expr in (x * 2.0, 2.0 * x, x + 0.1, 1.5 - x, x / 3.0, 3.0 / x, x ** 2.0,
                 tg.maximum(x, 0.5), tg.switch(x > 0.0, x, 0.5), tg.clip(x, -1.0, 1.0)):
        assert expr.dtype == "float32", expr
    f = compile_fn([x], [x * 2.0, 1.5 - x])
    doubled, rsub = f(np.array([1.0, 2.5], "float32"))
    assert doubled.dtype == np.float32 and rsub.dtype == np.float32
    np.testing.assert_array_equal(doubled, [2.0, 5.0])
    np.testing.assert_array_equal(rsub, [0.5, -1.0])


@pytest.mark.parametrize("floatx", ["float32", "float64"])
@pytest.mark.parametrize("int_dtype", ["int32", "int64", "uint8"])
def test_int_tensor_times_python_float_is_floatx(compile_fn, float_x, floatx, int_dtype):
    tg.config.floatX = floatx
    x = tg.tensor(int_dtype, 1, name="x")
    exprs = [x * 0.5, 0.5 * x, x + 0.25, x - 1.5, tg.maximum(x, 0.5)]
    assert all(e.dtype == floatx for e in exprs)
    assert (x < 0.5).dtype == "bool"
    value = np.array([0, 1, 3], int_dtype)
    results = compile_fn([x], exprs + [x < 0.5])(value)
    expected = [value * 0.5, value * 0.5, value + 0.25, value - 1.5, np.maximum(value, 0.5),
                value < 0.5]
    for got, want in zip(results, expected):
        assert got.dtype == want.dtype if want.dtype == bool else got.dtype == floatx
        np.testing.assert_allclose(got, want)


def test_python_ints_keep_the_tensor_dtype(compile_fn):
    for dtype in ("int32", "uint8", "float32", "float64", "int64"):
        x = tg.tensor(dtype, 1)
        assert (x + 1).dtype == dtype and (2 * x).dtype == dtype
    b = tg.bvector()
    assert (b + 1).dtype == "int64"
    assert (b * 1.5).dtype == tg.config.floatX
    x = tg.ivector()
    np.testing.assert_array_equal(compile_fn([x], x * 3 - 1)(np.array([1, 2], "int32")),
                                  [2, 5])


def test_python_int_that_does_not_fit_the_tensor_dtype_is_an_error():
    with pytest.raises(ValueError, match="does not fit"):
        tg.tensor("uint8", 1) + 300


_ARITH_DTYPES = ["float32", "float64", "int32", "int64", "uint8", "bool"]


@pytest.mark.parametrize("a", _ARITH_DTYPES)
@pytest.mark.parametrize("b", _ARITH_DTYPES)
def test_promotion_between_tensors_follows_numpy(compile_fn, a, b):
    x, y = tg.tensor(a, 1, "x"), tg.tensor(b, 1, "y")
    xv = np.array([1, 0, 1]).astype(a)
    yv = np.array([1, 1, 0]).astype(b)
    numpy_dtype = np.result_type(xv, yv).name
    # documented exception: arithmetic on two bools counts in int64 (True + True == 2)
    arith = "int64" if numpy_dtype == "bool" else numpy_dtype
    xa, ya = xv.astype(arith), yv.astype(arith)
    cases = [(x + y, arith, xa + ya), (x - y, arith, xa - ya), (x * y, arith, xa * ya),
             (tg.maximum(x, y), numpy_dtype, np.maximum(xv, yv)),
             (tg.minimum(x, y), numpy_dtype, np.minimum(xv, yv)),
             (x < y, "bool", xv < yv), (tg.eq(x, y), "bool", xv == yv)]
    for expr, dtype, _ in cases:
        assert expr.dtype == dtype
    results = compile_fn([x, y], [expr for expr, _, _ in cases])(xv, yv)
    for got, (_, dtype, want) in zip(results, cases):
        assert got.dtype.name == dtype
        np.testing.assert_array_equal(got, want)


def test_true_division_of_integers_gives_floatx_and_floats_promote():
    assert (tg.ivector() / tg.lvector()).dtype == tg.config.floatX
    assert (tg.fvector() / tg.lvector()).dtype == "float64"
    assert (tg.fvector() / tg.dvector()).dtype == "float64"
    assert tg.exp(tg.ivector()).dtype == tg.config.floatX


def test_constants():
    c = tg.constant(np.arange(3, dtype="int32"))
    assert c.dtype == "int32" and c.broadcastable == (False,)
    np.testing.assert_array_equal(c.data, [0, 1, 2])
    with pytest.raises(ValueError):
        c.data[0] = 5  # constant data is read-only
    assert tg.constant(2.5).dtype == tg.config.floatX and tg.constant(2.5).weak
    assert tg.constant(3).dtype == "int64" and tg.constant(3).weak
    assert not tg.constant(3, "int32").weak
    assert tg.constant(np.ones((1, 4))).broadcastable == (True, False)
    assert tg.constant([1.0, 2.0], dtype="float32").dtype == "float32"
    with pytest.raises(ValueError, match="does not fit"):
        tg.constant(300, "uint8")
    with pytest.raises(ValueError, match="does not fit"):
        tg.constant(-1, "uint8")


def test_as_variable():
    x = tg.dvector()
    assert tg.as_variable(x) is x
    assert tg.as_variable(x, "float32").dtype == "float32"
    assert isinstance(tg.as_variable(1.5), tg.Constant)
    stacked = tg.as_variable([tg.lscalar(), 3])
    assert stacked.ndim == 1 and stacked.dtype == "int64"


def test_variables_have_no_truth_value_and_cannot_be_iterated():
    x = tg.dvector("x")
    with pytest.raises(TypeError, match="truth value"):
        bool(x > 0)
    with pytest.raises(TypeError, match="iterated"):
        list(x)


def test_equality_is_identity_so_variables_can_be_dict_keys():
    x, y = tg.dvector(), tg.dvector()
    assert x == x and not (x == y)
    assert {x: 1, y: 2}[y] == 2
    assert tg.eq(x, y).dtype == "bool"


def test_type_filter_errors_name_the_value():
    t = TensorType("float32", (True, False))
    with pytest.raises(ValueError, match="thing.*axis 0.*broadcastable"):
        t.filter(np.zeros((2, 3), "float32"), name="thing")
    with pytest.raises(TypeError, match="thing.*2-d"):
        t.filter(np.zeros(3, "float32"), name="thing")
    assert t.filter(np.zeros((1, 3), "float64"), name="x").dtype == np.float32
