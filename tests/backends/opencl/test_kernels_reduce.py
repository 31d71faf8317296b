"""Reduction and argmax kernels against the ops' NumPy ``perform`` on strided views."""


import numpy as np
import pytest
import tg_kernel_runner as kr  # registered by conftest.py
from hypothesis import given
from hypothesis import strategies as st

from tinygraph.backends.opencl.kernels import argmax_specs, reduce_specs
from tinygraph.graph import Variable
from tinygraph.ops.reduce import Argmax, Reduce
from tinygraph.types import TensorType

DTYPES = ["float32", "float64", "int32", "int64", "bool"]
SIZES = [1, 2, 3, 5, 7, 16, 17, 40]


def _node(op, x):
    return op.make_node(Variable(TensorType(x.dtype.name, (False,) * x.ndim)))


def run_reduce(kind, x: "kr.Strided", axes):
    node = _node(Reduce(kind, axes), x.array)
    out = node.outputs[0]
    (ref,) = node.op.perform(node, [np.array(x.array)])
    specs = reduce_specs(kind, x.array.dtype, out.dtype, x.shape, x.strides, axes)
    (got,), _ = kr.runner().run(specs, [x], [(ref.shape, out.dtype)])
    return got, ref, specs


def check_reduce(kind, x, axes, rtol):
    got, ref, specs = run_reduce(kind, x, axes)
    if ref.dtype.kind == "f":
        data = np.abs(np.array(x.array, dtype=np.float64))
        scale = data.sum(axis=axes) if data.size else 0.0
        scale = np.maximum(scale / max(1, int(np.prod([x.shape[a] for a in axes]))), 1) \
            if kind == "mean" else np.maximum(scale, 1)
        np.testing.assert_allclose(got, ref, rtol=rtol, atol=rtol * np.max(scale, initial=1))
    else:
        np.testing.assert_array_equal(got, ref)
    return specs


@st.composite
def reduce_cases(draw):
    shape = tuple(draw(st.lists(st.sampled_from(SIZES), max_size=4)))
    if np.prod(shape) > 6000:
        shape = shape[:2]
    kind = draw(st.sampled_from(["sum", "prod", "max", "min", "mean"]))
    dtype = draw(st.sampled_from(DTYPES))
    axes = tuple(sorted(draw(st.sets(st.sampled_from(range(len(shape)))))
                        if shape else ()))
    if not axes and kind != "mean":
        axes = tuple(range(len(shape)))
    return shape, kind, dtype, axes, draw(kr.layouts(len(shape))), draw(st.integers(0, 2**16))


@given(reduce_cases())
def test_reduce_matches_perform(case):
    shape, kind, dtype, axes, layout, seed = case
    rng = np.random.default_rng(seed)
    low, high = (0.8, 1.25) if kind == "prod" else (-2.0, 2.0)
    x = kr.embed(kr.random_array(rng, shape, dtype, low, high), **layout)
    check_reduce(kind, x, axes, rtol=2e-5 if dtype == "float32" else 1e-12)


@pytest.mark.parametrize("kind", ["sum", "mean", "max", "min", "prod"])
@pytest.mark.parametrize("shape, axes, layout", [
    ((256, 784), (0, 1), {}),
    ((256, 784), (0, 1), {"order": (1, 0), "pads": (1, 0), "offset": 3}),
    ((256, 200), (0,), {}),
    ((10, 100), (0,), {"offset": 1}),
    ((5003, 3), (0,), {}),
    ((3, 5003), (1,), {"order": (1, 0)}),
    ((9001, 17), (0,), {"pads": (0, 2)}),
    ((2, 9001, 2), (0, 1), {"order": (2, 1, 0), "offset": 5}),
])
def test_reduce_long_and_split(kind, shape, axes, layout):
    rng = np.random.default_rng(1)
    low, high = (0.999, 1.001) if kind == "prod" else (-2.0, 2.0)
    x = kr.embed(kr.random_array(rng, shape, "float32", low, high), **layout)
    check_reduce(kind, x, axes, rtol=2e-5)


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "bool"])
@pytest.mark.parametrize("kind", ["sum", "max", "mean"])
@pytest.mark.parametrize("shape, axes, layout", [
    ((10, 16), (0,), {}),
    ((10, 17), (0,), {"offset": 3}),
    ((256, 60), (0,), {"pads": (0, 1)}),
    ((256, 200), (0,), {"offset": 1}),
    ((10, 1000), (0,), {}),
    ((3, 70, 131), (1,), {"pads": (1, 0, 2), "offset": 2}),
    ((70, 3, 131), (0,), {"order": (1, 0, 2)}),
])
def test_column_sums(dtype, kind, shape, axes, layout):
    """Axis-0 style reductions (bias gradients): each work-item sums several vectors of
    adjacent columns, the last ones shifted left; rows not a multiple of the vector width."""
    rng = np.random.default_rng(9)
    x = kr.embed(kr.random_array(rng, shape, dtype), **layout)
    specs = check_reduce(kind, x, axes, rtol=2e-5 if dtype == "float32" else 1e-12)
    assert "_u;" in specs[0].source  # the vector (col) kernel


@pytest.mark.parametrize("kind", ["sum", "max", "mean"])
@pytest.mark.parametrize("dtype", ["int32", "int64", "bool"])
def test_integer_split_reductions(kind, dtype):
    x = kr.embed(kr.random_array(np.random.default_rng(2), (3, 7001), dtype), order=(1, 0))
    specs = check_reduce(kind, x, (0, 1), rtol=1e-6)
    assert len(specs) == 2
    assert "int32" not in specs[0].scratch_dtypes  # int32 scratch means an error flag


@pytest.mark.parametrize("n", [10**6, 10**6 + 3])
def test_float32_sum_of_a_million_is_accurate(n):
    x = np.random.default_rng(3).random(n, dtype=np.float32)
    got, _, _ = run_reduce("sum", kr.contiguous(x), (0,))
    exact = np.sum(x, dtype=np.float64)
    assert abs(float(got) - exact) <= 1e-6 * exact
    col = kr.embed(x[: n // 2 * 2].reshape(-1, 2), order=(1, 0), offset=3)
    got, _, _ = run_reduce("sum", col, (0,))
    exact = col.array.astype(np.float64).sum(axis=0)
    np.testing.assert_allclose(got, exact, rtol=1e-6)


@pytest.mark.parametrize("kind", ["max", "min"])
@pytest.mark.parametrize("shape", [(9, 1000), (9000,)])
def test_max_propagates_nan(kind, shape):
    x = np.random.default_rng(4).random(shape, dtype=np.float32)
    x.reshape(-1)[[5, 4000]] = np.nan
    got, ref, _ = run_reduce(kind, kr.contiguous(x), tuple(range(len(shape))))
    assert np.isnan(got) and np.isnan(ref)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("kind, expected", [("sum", 0), ("prod", 1), ("mean", np.nan)])
def test_empty_reductions(kind, expected):
    got, ref, _ = run_reduce(kind, kr.contiguous(np.zeros((3, 0, 2), np.float32)), (1,))
    np.testing.assert_array_equal(got, np.full((3, 2), expected, np.float32))
    np.testing.assert_array_equal(got, ref)


@st.composite
def argmax_cases(draw):
    shape = tuple(draw(st.lists(st.sampled_from(SIZES), min_size=1, max_size=3)))
    axis = draw(st.one_of(st.none(), st.sampled_from(range(len(shape)))))
    return (shape, draw(st.sampled_from(["max", "min"])), draw(st.sampled_from(DTYPES)), axis,
            draw(kr.layouts(len(shape))), draw(st.integers(0, 2**16)))


def check_argmax(kind, x, axis):
    node = _node(Argmax(kind, axis), x.array)
    (ref,) = node.op.perform(node, [np.array(x.array)])
    specs = argmax_specs(kind, x.array.dtype, x.shape, x.strides, axis)
    (got,), _ = kr.runner().run(specs, [x], [(ref.shape, "int64")])
    np.testing.assert_array_equal(got, ref)
    return specs


@given(argmax_cases())
def test_argmax_matches_perform(case):
    shape, kind, dtype, axis, layout, seed = case
    rng = np.random.default_rng(seed)
    data = kr.random_array(rng, shape, dtype)
    if dtype.startswith("float"):
        data = np.round(data)  # ties: the first occurrence must win
        data.reshape(-1)[rng.integers(0, data.size, 2)] = np.where(rng.random(2) < 0.3, np.nan,
                                                                  1)
    check_argmax(kind, kr.embed(data, **layout), axis)


@pytest.mark.parametrize("kind", ["max", "min"])
@pytest.mark.parametrize("shape, axis, layout", [
    ((3000, 7), None, {"order": (1, 0)}),
    ((7, 9001), 1, {"offset": 2}),
    ((20001,), 0, {}),
])
def test_argmax_split(kind, shape, axis, layout):
    rng = np.random.default_rng(5)
    data = np.round(kr.random_array(rng, shape, "float32") * 3)
    assert len(check_argmax(kind, kr.embed(data, **layout), axis)) == 2
    specs = check_argmax(kind, kr.embed(data.astype(np.int32), **layout), axis)
    assert "int32" not in specs[0].scratch_dtypes
    data.reshape(-1)[[9000, 700, 15000 % data.size]] = np.nan
    check_argmax(kind, kr.embed(data, **layout), axis)
