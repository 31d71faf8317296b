"""The ``TakeRows`` kernel: one launch gathering the rows of several arrays by one index (or by
a row of an index table chosen by a selector), any layouts, long rows split into chunks, bad
indices zeroing their row and setting the error flag."""

import math

import numpy as np
import pytest
import tg_kernel_runner as kr  # registered by conftest.py
from hypothesis import given
from hypothesis import strategies as st

from tinygraph.backends.opencl.kernels.indexing import take_rows_specs
from tinygraph.ops.take_rows import TakeRows

DTYPES = ["float32", "float64", "int32", "int64", "bool", "uint8"]


def take_rows(index_inputs, arrays, flat_size=None, advance=None):
    """(outputs, error flag) of the kernel; ``index_inputs``: [index] or [table, selector];
    ``advance``: take_rows_specs' (k, over the selector), the selector + k the last output."""
    op = TakeRows(flat_size, None if advance is None else advance[0])
    shapes = [tuple(i.shape) for i in index_inputs] + [tuple(a.shape) for a in arrays]
    out_shapes = op.infer_shape(None, shapes, [None] * len(shapes))
    specs = take_rows_specs(out_shapes[0][0], [i.array.dtype for i in index_inputs],
                            [i.shape for i in index_inputs], [i.strides for i in index_inputs],
                            [a.array.dtype for a in arrays], [a.shape for a in arrays],
                            [a.strides for a in arrays], advance=advance)
    assert len(specs) == (1 if out_shapes[0][0] else 0), "one launch for every output"
    dtypes = [a.array.dtype for a in arrays] + [index_inputs[-1].array.dtype] * (
        advance is not None)
    outs, scratch = kr.runner().run(specs, [*index_inputs, *arrays],
                                    list(zip(out_shapes, dtypes)))
    return outs, scratch[0][0] if specs else 0


def reference(index_inputs, arrays, flat_size=None, advance=None):
    return TakeRows(flat_size, advance).perform(None, [np.array(v.array) for v in
                                                       [*index_inputs, *arrays]])


@st.composite
def row_arrays(draw, n):
    """1 to 3 arrays of ``n`` rows, of any dtype and layout (strided, offset, broadcast)."""
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    arrays = []
    for _ in range(draw(st.integers(1, 3))):
        shape = (n,) + tuple(draw(st.lists(st.sampled_from([1, 2, 3, 17]), max_size=2)))
        values = kr.random_array(rng, shape, draw(st.sampled_from(DTYPES)))
        arrays.append(kr.embed(values, **draw(kr.layouts(len(shape)))))
    return arrays


@given(st.data())
def test_plain_index_matches_perform(data):
    n = data.draw(st.integers(1, 6))
    arrays = data.draw(row_arrays(n))
    values = data.draw(st.lists(st.integers(-n, n - 1), min_size=1, max_size=9))
    dtype = data.draw(st.sampled_from(["int32", "int64"]))
    index = kr.embed(np.array(values, dtype), **data.draw(kr.layouts(1, False)))
    outs, err = take_rows([index], arrays)
    for got, want in zip(outs, reference([index], arrays)):
        np.testing.assert_array_equal(got, want)
    assert err == 0


@given(st.data())
def test_table_row_index_matches_perform(data):
    n = data.draw(st.integers(1, 6))
    arrays = data.draw(row_arrays(n))
    rows, width = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 5))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    table = kr.embed(rng.integers(-n, n, (rows, width)), **data.draw(kr.layouts(2, False)))
    picked = data.draw(st.lists(st.integers(-rows, rows - 1), min_size=1, max_size=2))
    selector = kr.embed(np.array(picked, "int64"), **data.draw(kr.layouts(1, False)))
    flat_size = data.draw(st.sampled_from([-1, len(picked) * width]))
    outs, err = take_rows([table, selector], arrays, flat_size)
    for got, want in zip(outs, reference([table, selector], arrays, flat_size)):
        np.testing.assert_array_equal(got, want)
    assert err == 0


@pytest.mark.parametrize("over_selector", [False, True])
@pytest.mark.parametrize("row_shape", [(3,), (784,)])
def test_an_advanced_selector_is_the_last_output(row_shape, over_selector):
    """selector + k from a selector at an offset, after rows of one work-group (over the selector)
    or of a grid (into its own buffer)."""
    rng = np.random.default_rng(5)
    arrays = [kr.embed(rng.normal(size=(9,) + row_shape).astype("float32"))]
    table = kr.embed(rng.integers(-9, 9, (4, 3)))
    selector = kr.embed(np.array([3, -2], "int64"), pads=(1,), offset=1)
    outs, err = take_rows([table, selector], arrays, 6, advance=(5, over_selector))
    for got, want in zip(outs, reference([table, selector], arrays, 6, advance=5)):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(outs[-1], [8, 3])
    assert err == 0


@pytest.mark.parametrize("row_shape", [(7,), (16,), (784,), (40_003,)])
def test_long_rows_split_into_chunks_with_a_small_array(row_shape):
    """The widest output sets the chunks (long rows: several work-items per row); a narrow
    array rides along in the same work-items."""
    rng = np.random.default_rng(3)
    wide = kr.embed(kr.random_array(rng, (5,) + row_shape, "float32"), offset=3)
    labels = kr.embed(kr.random_array(rng, (5,), "int64"), offset=1)
    strided = kr.embed(kr.random_array(rng, (5, 19), "float64"), order=(1, 0), pads=(1, 0))
    index = kr.contiguous(np.array([4, -1, 0], np.int64))
    specs = take_rows_specs(3, ["int64"], [(3,)], [(1,)], ["float32", "int64", "float64"],
                            [wide.shape, labels.shape, strided.shape],
                            [wide.strides, labels.strides, strided.strides])
    if math.prod(row_shape) >= 40_000:
        assert specs[0].global_size[0] > 3, "long rows are split over several work-items"
    outs, err = take_rows([index], [wide, labels, strided])
    for got, array in zip(outs, [wide, labels, strided]):
        np.testing.assert_array_equal(got, array.array[[4, -1, 0]])
    assert err == 0


@pytest.mark.parametrize("bad", [-11, 10, 100])
@pytest.mark.parametrize("row_shape", [(50,), (40_003,)])
def test_a_bad_index_zeroes_its_row_in_every_output_and_flags(bad, row_shape):
    wide = kr.contiguous(np.arange(10 * math.prod(row_shape), dtype=np.float32)
                         .reshape((10,) + row_shape))
    labels = kr.contiguous(np.arange(10, dtype=np.int32) + 1)
    outs, err = take_rows([kr.contiguous(np.array([2, bad, -1], np.int64))], [wide, labels])
    assert err == 1
    for got, array in zip(outs, [wide, labels]):
        np.testing.assert_array_equal(got[[0, 2]], array.array[[2, -1]])
        np.testing.assert_array_equal(got[1], 0)


def test_an_index_valid_for_one_array_only_flags():
    long_, short = kr.contiguous(np.ones((8, 3), "float32")), kr.contiguous(np.ones(4, "int64"))
    _, err = take_rows([kr.contiguous(np.array([0, 5], np.int64))], [long_, short])
    assert err == 1


@pytest.mark.parametrize("picked", [[3], [-4]])
def test_a_bad_table_row_flags(picked):
    table = kr.contiguous(np.zeros((3, 4), "int64"))
    x = kr.contiguous(np.ones((5, 2), "float32"))
    outs, err = take_rows([table, kr.contiguous(np.array(picked))], [x], 4)
    assert err == 1
    np.testing.assert_array_equal(outs[0], 0)


def test_empty_rows_still_check_the_index():
    empty = kr.contiguous(np.zeros((4, 0), "float32"))
    outs, err = take_rows([kr.contiguous(np.array([1, 7], np.int64))], [empty])
    assert outs[0].shape == (2, 0) and err == 1
