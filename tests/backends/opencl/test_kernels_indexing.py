"""Gather and scatter kernels against AdvancedSubtensor / AdvancedIncSubtensor.perform."""


import math

import numpy as np
import pytest
import tg_kernel_runner as kr  # registered by conftest.py
from hypothesis import given
from hypothesis import strategies as st

from tinygraph.backends.opencl.kernels import gather_specs, scatter_specs
from tinygraph.graph import Variable
from tinygraph.ops.subtensor import AdvancedIncSubtensor, AdvancedSubtensor
from tinygraph.types import TensorType

DTYPES = ["float32", "float64", "int32", "int64", "bool"]


@st.composite
def index_cases(draw):
    """(x shape, index arrays as Strided, dtype, x layout, seed): k index arrays over the
    leading axes, broadcasting together, with in-range (also negative) values."""
    x_shape = tuple(draw(st.lists(st.sampled_from([1, 2, 3, 5, 8]), min_size=1, max_size=3)))
    k = draw(st.integers(1, len(x_shape)))
    bshape = tuple(draw(st.lists(st.sampled_from([1, 2, 3, 7]), max_size=2)))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    indices = []
    for axis in range(k):
        drop = draw(st.integers(0, len(bshape)))
        shape = tuple(1 if draw(st.booleans()) else s for s in bshape[drop:])
        dtype = draw(st.sampled_from(["int32", "int64", "uint8"]))
        n = x_shape[axis]
        low = 0 if dtype == "uint8" else -n
        values = rng.integers(low, n, shape).astype(dtype)
        indices.append(kr.embed(values, **draw(kr.layouts(len(shape), False))))
    return (x_shape, indices, draw(st.sampled_from(DTYPES)), draw(kr.layouts(len(x_shape))),
            rng)


def _var(array, broadcastable=False):
    return Variable(TensorType(array.dtype.name, tuple(broadcastable and s == 1
                                                       for s in array.shape)))


def gather(x, indices):
    specs = gather_specs(x.array.dtype, x.shape, x.strides, [i.array.dtype for i in indices],
                         [i.shape for i in indices], [i.strides for i in indices])
    out_shape = np.broadcast_shapes(*(i.shape for i in indices)) + x.shape[len(indices):]
    (got,), (err,) = kr.runner().run(specs, [x, *indices], [(out_shape, x.array.dtype)])
    return got, err[0]


@given(index_cases())
def test_gather_matches_perform(case):
    x_shape, indices, dtype, layout, rng = case
    x = kr.embed(kr.random_array(rng, x_shape, dtype), **layout)
    got, err = gather(x, indices)
    (ref,) = AdvancedSubtensor().perform(None, [np.array(x.array)] + [i.array for i in indices])
    np.testing.assert_array_equal(got, ref)
    assert err == 0


@pytest.mark.parametrize("bad", [-11, 10, 100])
def test_gather_flags_out_of_range(bad):
    x = kr.contiguous(np.arange(30, dtype=np.float32).reshape(10, 3))
    idx = np.array([1, -1, bad, 4], np.int64)
    got, err = gather(x, [kr.contiguous(idx)])
    assert err == 1
    np.testing.assert_array_equal(got[[0, 1, 3]], x.array[[1, -1, 4]])


def last_write_wins(x, y, indices):
    """x[indices] = y with repeated positions resolved in C order of the broadcast index
    shape (NumPy leaves the order unspecified; with non-contiguous index arrays it differs)."""
    out = x.copy()
    bshape = np.broadcast_shapes(*(i.shape for i in indices))
    ys = np.broadcast_to(y, bshape + x.shape[len(indices):])
    for b in np.ndindex(bshape):
        out[tuple(int(np.broadcast_to(i, bshape)[b]) for i in indices)] = ys[b]
    return out


@pytest.mark.parametrize("set_", [False, True])
@given(case=index_cases(), data=st.data())
def test_scatter_matches_perform(set_, case, data):
    x_shape, indices, dtype, _, rng = case
    idx_shape = np.broadcast_shapes(*(i.shape for i in indices)) + x_shape[len(indices):]
    y_dims = data.draw(st.integers(0, len(idx_shape)))
    y_shape = tuple(1 if data.draw(st.booleans()) else s
                    for s in idx_shape[len(idx_shape) - y_dims:])
    x = kr.random_array(rng, x_shape, dtype)
    y = kr.embed(kr.random_array(rng, y_shape, dtype), **data.draw(kr.layouts(len(y_shape))))
    ix = [i.array for i in indices]
    op = AdvancedIncSubtensor(set_)
    node = op.make_node(_var(x), _var(y.array, True), *(_var(i) for i in ix))
    (ref,) = op.perform(node, [x, np.array(y.array), *ix])
    specs = scatter_specs(dtype, x_shape, [i.dtype for i in ix], [i.shape for i in ix],
                          [i.strides for i in indices], y.shape, y.strides, set_)
    (got,), (err,) = kr.runner().run(specs, [None, y, *indices], [(x_shape, dtype)],
                                     out_init=[x])
    assert err[0] == 0
    if set_:
        np.testing.assert_array_equal(got, last_write_wins(x, np.array(y.array), ix))
        positions = np.broadcast_arrays(*(i % n for i, n in zip(ix, x_shape)))
        if len(set(zip(*(p.reshape(-1) for p in positions)))) < positions[0].size:
            return  # repeated positions: NumPy's order is unspecified
    if dtype.startswith("float"):
        np.testing.assert_allclose(got, ref, rtol=1e-6)
    else:
        np.testing.assert_array_equal(got, ref)


def test_scatter_add_repeats_accumulate_and_flags_bad_indices():
    x = np.zeros((4, 3), np.float32)
    rows = kr.contiguous(np.array([0, 2, 0, 9, -1], np.int32))
    cols = kr.contiguous(np.array([1, 1, 1, 0, 2], np.int64))
    y = kr.contiguous(np.array([1, 2, 3, 4, 5], np.float32))
    specs = scatter_specs("float32", x.shape, ["int32", "int64"], [(5,), (5,)], [(1,), (1,)],
                          (5,), (1,), False)
    (got,), (err,) = kr.runner().run(specs, [None, y, rows, cols], [(x.shape, "float32")],
                                     out_init=[x])
    expected = np.zeros((4, 3), np.float32)
    expected[0, 1], expected[2, 1], expected[3, 2] = 4, 2, 5
    np.testing.assert_array_equal(got, expected)
    assert err[0] == 1


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("row_shape", [(), (7,), (16,), (3, 11), (784,), (40_003,)])
def test_gather_contiguous_rows(dtype, row_shape):
    """Whole rows copied as vectors: row lengths off the vector width, unaligned input and
    output offsets, negative indices, long rows split over several work-items."""
    rng = np.random.default_rng(6)
    x = kr.embed(kr.random_array(rng, (9,) + row_shape, dtype), offset=3)
    idx = np.array([[4, -1, 0], [8, 4, -9]], np.int64)
    specs = gather_specs(dtype, x.shape, x.strides, ["int64"], [idx.shape], [(3, 1)])
    assert ("_u;" in specs[0].source) == (math.prod(row_shape) >= 16)  # the vector typedef
    got, err = gather(x, [kr.contiguous(idx)])
    np.testing.assert_array_equal(got, x.array[idx])
    assert err == 0


@pytest.mark.parametrize("layout", [{"order": (0, 2, 1)}, {"pads": (0, 0, 1)},
                                    {"broadcast": (2,)}])
def test_gather_strided_rows(layout):
    """Rows that are not contiguous in x are copied element by element."""
    rng = np.random.default_rng(7)
    x = kr.embed(kr.random_array(rng, (6, 5, 17), "float32"), offset=2, **layout)
    rows = kr.embed(np.array([5, 0, -2, 3], np.int32), offset=1)
    specs = gather_specs("float32", x.shape, x.strides, ["int32"], [(4,)], [(1,)])
    assert "_u;" not in specs[0].source
    got, err = gather(x, [rows])
    np.testing.assert_array_equal(got, x.array[[5, 0, -2, 3]])
    assert err == 0


def test_gather_broadcast_indices_contiguous_rows():
    rng = np.random.default_rng(8)
    x = kr.embed(kr.random_array(rng, (4, 5, 33), "float64"), offset=1)
    i0 = np.array([[0], [3], [-1]], np.int64)
    i1 = np.array([4, -5], np.int32)
    got, err = gather(x, [kr.contiguous(i0), kr.contiguous(i1)])
    np.testing.assert_array_equal(got, x.array[i0, i1])
    assert err == 0


@pytest.mark.parametrize("row_shape, layout", [((50,), {}), ((40_003,), {}),
                                               ((50,), {"order": (1, 0)})])
def test_gather_bad_index_zeroes_its_row(row_shape, layout):
    x = kr.embed(np.arange(10 * math.prod(row_shape), dtype=np.float32)
                 .reshape((10,) + row_shape), **layout)
    got, err = gather(x, [kr.contiguous(np.array([2, 10, -1], np.int64))])
    assert err == 1
    np.testing.assert_array_equal(got[[0, 2]], x.array[[2, -1]])
    np.testing.assert_array_equal(got[1], 0)
