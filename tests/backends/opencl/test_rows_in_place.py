"""Minibatch rows read in place (row_gathers.py): the products read A (GemmPlan's a_rows) or H
(BackpropUpdatePlan's h_rows) through an index, the TakeRows kernel writes that index instead
of the rows, and a compiled step decides which gathered arrays stay in place."""

import numpy as np
import pyopencl as cl
import pytest
import tg_kernel_runner as kr  # registered by conftest.py

import tinygraph as tg
from tinygraph.backends.opencl import gemm, row_gathers
from tinygraph.backends.opencl.backprop_update import BackpropUpdatePlan
from tinygraph.backends.opencl.kernels.indexing import take_rows_specs
from tinygraph.ops.elemwise import Elemwise

RELU = "(v > 0 ? v : 0)"


@pytest.fixture(scope="module")
def env(pocl_platform):
    context = cl.Context(pocl_platform.get_devices(cl.device_type.CPU))
    return context, cl.CommandQueue(context)


def _buffer(context, host):
    return cl.Buffer(context, cl.mem_flags.READ_WRITE | cl.mem_flags.COPY_HOST_PTR,
                     hostbuf=np.ascontiguousarray(host))


def _read(queue, buf, shape, dtype):
    out = np.empty(shape, dtype)
    cl.enqueue_copy(queue, out, buf)
    return out


def _update_operands(rng, rows, batch, n_in, n_out):
    """(source, index, D, W, b) of a first layer's update reading H = source[index]."""
    source = rng.standard_normal((rows, n_in)).astype(np.float32)
    index = rng.integers(0, rows, batch).astype(np.int32)
    d = rng.standard_normal((batch, n_out)).astype(np.float32)
    w = rng.standard_normal((n_in, n_out)).astype(np.float32)
    b = rng.standard_normal(n_out).astype(np.float32)
    return source, index, d, w, b


def _assert_updated(queue, w_buf, b_buf, source, index, d, w, b):
    """W and b after ``W -= 0.1 H^T D``, ``b -= 0.1 * column sums of D``, H = source[index]."""
    np.testing.assert_allclose(_read(queue, w_buf, w.shape, np.float32),
                               w - 0.1 * source[index].T @ d, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(_read(queue, b_buf, b.shape, np.float32),
                               b - 0.1 * d.sum(0), rtol=1e-5, atol=1e-5)


# -- the plans ---------------------------------------------------------------------------------

@pytest.mark.parametrize("op,copy", [("NN", False), ("NT", False), ("TN", False),
                                     ("TT", False), ("NN", True), ("NT", True)])
@pytest.mark.parametrize("m,k,n", [(10, 784, 100), (256, 784, 200), (7, 33, 5), (3, 5, 70)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gemm_reads_a_through_the_index(env, op, copy, m, k, n, dtype):
    """op(A) = source[index] (or its transpose), with a bias and an epilogue, against NumPy:
    every path a plan reading A through an index takes (no gemm_dot, gemm_narrow or packed
    A^T then); with ``copy`` the product also stores source[index]."""
    context, queue = env
    trans_a, trans_b = op[0] == "T", op[1] == "T"
    rng = np.random.default_rng(m * k + n)
    rows = 41
    source = rng.standard_normal((rows, m if trans_a else k)).astype(dtype)
    index = rng.integers(0, rows, k if trans_a else m).astype(np.int32)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
    bias = rng.standard_normal(n).astype(dtype)
    plan = gemm.GemmPlan(context, m, n, k, trans_a=trans_a, trans_b=trans_b, dtype=dtype,
                         bias=True, epilogue=RELU, a_rows=rows, a_copy=copy)
    c = cl.Buffer(context, cl.mem_flags.READ_WRITE, m * n * np.dtype(dtype).itemsize)
    copied = _buffer(context, np.zeros(m * k + 2, dtype))
    plan.enqueue(queue, _buffer(context, source), _buffer(context, b), c,
                 bias=_buffer(context, bias), a_index=(_buffer(context, index), 0),
                 **({"a_copy": (copied, 2)} if copy else {}))
    if copy:
        np.testing.assert_array_equal(_read(queue, copied, m * k + 2, dtype)[2:],
                                      source[index].ravel())
    a = source[index].T if trans_a else source[index]
    want = np.maximum(a.astype(np.float64) @ (b.T if trans_b else b) + bias, 0)
    np.testing.assert_allclose(_read(queue, c, (m, n), dtype), want, rtol=1e-4,
                               atol=1e-4 * np.sqrt(k))
    assert "gemm_dot" not in plan._gemm.function_name
    assert "narrow" not in plan._gemm.function_name


def test_gemm_update_with_column_sums_reads_a_through_an_offset_index(env):
    """W - 0.1 * X[index].T @ D in place with the bias update beside it, the index at an
    offset in its buffer."""
    context, queue = env
    rng = np.random.default_rng(7)
    rows, batch, n_in, n_out = 300, 96, 50, 40
    source, index, d, w, b = _update_operands(rng, rows, batch, n_in, n_out)
    plan = gemm.GemmPlan(context, n_in, n_out, batch, trans_a=True,
                         column_epilogue="o0 - 0.1f * s", columns=1, a_rows=rows)
    w_buf, b_buf = _buffer(context, w), _buffer(context, b)
    index_buf = _buffer(context, np.concatenate([[-5, 99999, 7], index]).astype(np.int32))
    plan.enqueue(queue, _buffer(context, source), _buffer(context, d), w_buf,
                 column_sums=[(b_buf, 0), (b_buf, 0)], a_index=(index_buf, 3),
                 alpha=-0.1, beta=1.0)
    _assert_updated(queue, w_buf, b_buf, source, index, d, w, b)


def test_gemm_index_arguments_are_checked(env):
    context, queue = env
    a, b, c = (cl.Buffer(context, cl.mem_flags.READ_WRITE, 4 * 4 * 6) for _ in range(3))
    index = cl.Buffer(context, cl.mem_flags.READ_WRITE, 4 * 3)
    with pytest.raises(ValueError, match="a_rows must be a positive int"):
        gemm.GemmPlan(context, 4, 4, 4, a_rows=0)
    plan = gemm.GemmPlan(context, 4, 4, 4, a_rows=6)
    with pytest.raises(ValueError, match="built with a_rows=6; pass a_index="):
        plan.enqueue(queue, a, b, c)
    with pytest.raises(ValueError, match="a_index needs 4 elements from offset 0 but its "
                                         "buffer holds 3"):
        plan.enqueue(queue, a, b, c, a_index=(index, 0))
    with pytest.raises(ValueError, match="a needs 24 elements from offset 1"):
        plan.enqueue(queue, a, b, c, a_offset=1, a_index=(a, 0))
    with pytest.raises(ValueError, match="built with a_rows=None; pass a_index="):
        gemm.GemmPlan(context, 4, 4, 4).enqueue(queue, a, b, c, a_index=(index, 0))
    for options in ({}, {"a_rows": 6, "trans_a": True}):
        with pytest.raises(ValueError, match="a_copy needs a_rows and trans_a=False"):
            gemm.GemmPlan(context, 4, 4, 4, a_copy=True, **options)
    copying = gemm.GemmPlan(context, 4, 4, 4, a_rows=6, a_copy=True)
    index = cl.Buffer(context, cl.mem_flags.READ_WRITE, 4 * 4)
    with pytest.raises(ValueError, match="built with a_copy=True; pass a_copy="):
        copying.enqueue(queue, a, b, c, a_index=(index, 0))
    with pytest.raises(ValueError, match="a_copy needs 16 elements from offset 9"):
        copying.enqueue(queue, a, b, c, a_index=(index, 0), a_copy=(c, 9))


@pytest.mark.parametrize("batch,n_in,n_out", [(10, 784, 100), (1, 33, 7), (64, 100, 60)])
def test_update_kernel_reads_h_through_the_index(env, batch, n_in, n_out):
    """The first layer's update without the backward product, H = source[index], in place."""
    context, queue = env
    rng = np.random.default_rng(batch)
    rows = 77
    source, index, d, w, b = _update_operands(rng, rows, batch, n_in, n_out)
    plan = BackpropUpdatePlan(context, batch, n_in, n_out, column_epilogue="o0 - 0.1f * s",
                              columns=1, backward=False, h_rows=rows)
    w_buf, b_buf = _buffer(context, w), _buffer(context, b)
    plan.enqueue(queue, _buffer(context, source), _buffer(context, d), w_buf, w_buf, None,
                 column_sums=[(b_buf, 0), (b_buf, 0)], h_index=(_buffer(context, index), 0),
                 alpha=-0.1)
    _assert_updated(queue, w_buf, b_buf, source, index, d, w, b)


def test_update_kernel_index_arguments_are_checked(env):
    context, queue = env
    with pytest.raises(ValueError, match="h_rows .* needs backward=False"):
        BackpropUpdatePlan(context, 4, 8, 8, column_epilogue="o0 - s", columns=1, h_rows=9)
    plan = BackpropUpdatePlan(context, 4, 8, 8, column_epilogue="o0 - s", columns=1,
                              backward=False, h_rows=9)
    bufs = [cl.Buffer(context, cl.mem_flags.READ_WRITE, 4 * 9 * 8) for _ in range(5)]
    h, d, w, v, o = bufs
    with pytest.raises(ValueError, match="built with h_rows=9; pass h_index="):
        plan.enqueue(queue, h, d, w, w, None, column_sums=[(v, 0), (o, 0)])
    short = cl.Buffer(context, cl.mem_flags.READ_WRITE, 4 * 3)
    with pytest.raises(ValueError, match="h_index needs 4 elements"):
        plan.enqueue(queue, h, d, w, w, None, column_sums=[(v, 0), (o, 0)],
                     h_index=(short, 0))


# -- the TakeRows kernel -----------------------------------------------------------------------

def test_take_rows_writes_the_checked_index_of_rows_left_in_place():
    """Array 0 stays in place: its output is the index, negatives wrapped and bad entries 0;
    array 1 is copied as before; a bad entry still flags."""
    images = kr.contiguous(np.arange(8 * 3, dtype=np.float32).reshape(8, 3))
    labels = kr.contiguous(np.arange(8, dtype=np.int64) + 1)
    index = kr.contiguous(np.array([2, -1, 9, 0], np.int64))
    specs = take_rows_specs(4, ["int64"], [(4,)], [(1,)], ["float32", "int64"],
                            [images.shape, labels.shape], [images.strides, labels.strides],
                            in_place={0})
    outs, scratch = kr.runner().run(specs, [index, images, labels],
                                    [((4,), "int32"), ((4,), "int64")])
    np.testing.assert_array_equal(outs[0], [2, 7, 0, 0])
    np.testing.assert_array_equal(outs[1], [3, 8, 0, 1])
    assert scratch[0][0] == 1


# -- compiled steps ----------------------------------------------------------------------------

def _sgd_step(device, batch, n=300, width=784, hidden=30, extra_outputs=lambda x: []):
    """A two-layer SGD step on a minibatch read as the trainer reads it (a permutation table's
    row chosen by a step counter): (function, parameters, permutation table)."""
    rng = np.random.default_rng(batch)
    perm = tg.shared(rng.permutation(n)[:n // batch * batch].reshape(-1, batch), name="perm")
    step = tg.shared(np.zeros(1, "int64"), name="step")
    data_x = tg.shared(rng.random((n, width), dtype=np.float32), name="data_x")
    data_y = tg.shared(rng.integers(0, 10, n).astype("int32"), name="data_y")
    rows = tg.reshape(perm[step], (batch,))
    x, y = data_x[rows], data_y[rows]
    w1 = tg.shared(rng.normal(0, 0.05, (width, hidden)).astype("float32"), name="w1")
    b1 = tg.shared(np.zeros(hidden, "float32"), name="b1")
    w2 = tg.shared(rng.normal(0, 0.2, (hidden, 10)).astype("float32"), name="w2")
    b2 = tg.shared(np.zeros(10, "float32"), name="b2")
    h = tg.relu(x @ w1 + b1)
    p = tg.softmax(h @ w2 + b2)
    cost = -tg.mean(tg.log(p)[tg.arange(y.shape[0]), y])
    params = [w1, b1, w2, b2]
    updates = [(v, v - 0.1 * g) for v, g in zip(params, tg.grad(cost, params))]
    f = tg.function([], [cost, *extra_outputs(x)], updates=updates + [(step, step + 1)],
                    device=device)
    return f, params, perm


def _plan(f):
    (plan,) = f._program._plans.values()
    return plan


def _run(device, batch, steps=3, **options):
    f, params, _ = _sgd_step(device, batch, **options)
    outputs = [f() for _ in range(steps)]
    return outputs, [v.get_value() for v in params], f


def _assert_same_training(batch, **options):
    want, want_params, _ = _run("numpy", batch, **options)
    got, got_params, f = _run("opencl", batch, **options)
    for g, w in zip(got, want):
        for g_out, w_out in zip(g, w):
            np.testing.assert_allclose(g_out, w_out, rtol=1e-4, atol=1e-6)
    for g, w in zip(got_params, want_params):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-6)
    return f


def test_a_small_minibatch_is_read_in_place_by_both_products():
    """Batch 10: the first layer's product and its update (the update kernel) read the images
    through the index; the step trains exactly as on NumPy."""
    f = _assert_same_training(10)
    plan = _plan(f)
    direct = [var_id for var_id, rows in plan.rows_in_place.items()
              if rows.transpose_of is None]
    assert len(plan.rows_in_place) == 2 and len(direct) == 1, "the images and their transpose"
    assert direct[0] not in plan.arrays, "the images are never copied"
    source = f.kernels_source()
    assert "__global const int *A_rows" in source and "__global const int *H_rows" in source
    assert source.count("tg_take_rows(") == 1


def test_a_large_minibatch_is_copied_by_the_forward_product():
    """Batch 100: the update is a GEMM, which reads scattered rows slower than a copy; the
    forward product, reading them first, stores the copy as it reads."""
    f = _assert_same_training(100)
    plan = _plan(f)
    (rows,) = [r for r in plan.rows_in_place.values() if r.transpose_of is None]
    assert rows.copied_by_first_reader
    source = f.kernels_source()
    assert source.count("__global float *A_copy") == 1 and "H_rows" not in source
    assert source.count("tg_take_rows(") == 1


def test_every_costly_reader_after_the_forward_product_reads_its_copy():
    """A second product of the transposed rows (a GEMM, costly in place) reads the copy the
    forward product stored."""
    d = tg.shared(np.random.default_rng(3).random((10, 5), dtype=np.float32), name="d")
    f = _assert_same_training(10, extra_outputs=lambda x: [x.T @ d])
    (rows,) = [r for r in _plan(f).rows_in_place.values() if r.transpose_of is None]
    assert rows.copied_by_first_reader and "A_copy" in f.kernels_source()


@pytest.mark.parametrize("batch", [10, 100])
def test_rows_a_transposing_product_reads_first_are_copied(batch):
    """When no product can copy the rows as it reads them (the first reads their transpose),
    the TakeRows kernel copies them."""
    results = {}
    for device in ("numpy", "opencl"):
        rng = np.random.default_rng(batch)
        perm = tg.shared(rng.permutation(300).reshape(-1, batch), name="perm")
        step = tg.shared(np.zeros(1, "int64"), name="step")
        data_x = tg.shared(rng.random((300, 784), dtype=np.float32), name="data_x")
        d = tg.shared(rng.random((batch, 5), dtype=np.float32), name="d")
        x = data_x[tg.reshape(perm[step], (batch,))]
        f = tg.function([], x.T @ d, updates=[(step, step + 1)], device=device)
        results[device] = [f() for _ in range(3)]
    for got, want in zip(results["opencl"], results["numpy"]):
        np.testing.assert_allclose(got, want, rtol=1e-5)
    assert not _plan(f).rows_in_place and "tg_take_rows(" in f.kernels_source()


def test_rows_read_by_anything_but_a_product_are_copied():
    f = _assert_same_training(10, extra_outputs=lambda x: [x.sum(axis=1)])
    assert not _plan(f).rows_in_place


def test_a_reader_that_needs_the_rows_gets_them_copied_then(monkeypatch):
    """A lowering that asks for rows left in place gets them copied by a second TakeRows
    kernel on the checked index (here an elementwise op, declared a reader for the test)."""
    monkeypatch.setitem(row_gathers._READERS, Elemwise, 0)
    f = _assert_same_training(10, extra_outputs=lambda x: [x * 2.0])
    assert _plan(f).rows_in_place
    assert f.kernels_source().count("tg_take_rows(") == 2


@pytest.mark.parametrize("device", ["numpy", "opencl"])
def test_a_bad_index_raises_as_on_numpy(device):
    f, _, perm = _sgd_step(device, 10)
    f()
    perm.set_value(np.full(perm.get_value().shape, 300))
    with pytest.raises(IndexError, match="index 300 is out of bounds for axis 0 with size 300"):
        f()
    if device == "opencl":
        assert _plan(f).rows_in_place
