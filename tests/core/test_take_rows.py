"""``TakeRows`` (the rows of several arrays gathered by one index) on every backend, and the
rewrite that makes one from a trainer's minibatch gathers on OpenCL."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygraph as tg
from tinygraph.graph import toposort
from tinygraph.ops.shape import Reshape
from tinygraph.ops.subtensor import AdvancedSubtensor
from tinygraph.ops.take_rows import TakeRows
from tinygraph.rewrite import DEFAULT_PIPELINE, OPENCL_PIPELINE, optimize
from tinygraph.testing import strategies as tgs

RNG = np.random.default_rng(11)


def _arrays(n: int):
    """Symbolic arrays of several kinds with values of ``n`` rows: float32 rows, int labels, a
    3-d array, a transposed (strided) matrix and a slice starting at an offset."""
    x, y = tg.fmatrix("x"), tg.lvector("y")
    t, w = tg.ftensor3("t"), tg.imatrix("w")
    values = [RNG.normal(size=(n, 37)).astype("float32"), RNG.integers(0, 10, n),
              RNG.normal(size=(n, 3, 4)).astype("float32"),
              RNG.integers(-50, 50, (5, n)).astype("int32")]
    arrays = [x, y, t, w.T, x[:, 3:]]
    expected = [values[0], values[1], values[2], values[3].T, values[0][:, 3:]]
    return [x, y, t, w], values, arrays, expected


def test_form_a_gathers_every_array_by_one_index(compile_fn):
    idx = tg.lvector("idx")
    inputs, values, arrays, expected = _arrays(6)
    f = compile_fn([idx, *inputs], TakeRows()(idx, *arrays))
    index = np.array([5, 0, -1, 2, 2, -6])
    for got, want in zip(f(index, *values), expected):
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want[index])


@pytest.mark.parametrize("flat_size, selector", [(4, [2]), (4, [-3]), (8, [1, 0]), (-1, [2, 1])])
def test_form_b_reads_the_index_from_a_table_row(compile_fn, flat_size, selector):
    table, sel = tg.imatrix("table"), tg.lvector("sel")
    inputs, values, arrays, expected = _arrays(7)
    f = compile_fn([table, sel, *inputs], TakeRows(flat_size)(table, sel, *arrays))
    table_value = RNG.integers(-7, 7, (3, 4)).astype("int32")
    index = table_value[selector].reshape(-1)
    for got, want in zip(f(table_value, np.array(selector), *values), expected):
        np.testing.assert_array_equal(got, want[index])


def test_float64_and_empty_index(compile_fn, backend):
    if backend == "opencl":
        from tinygraph.backends.opencl.device import get_context

        if not get_context("opencl").has_fp64:
            pytest.skip("the OpenCL device has no float64")
    idx, x, v = tg.lvector("idx"), tg.dmatrix("x"), tg.dvector("v")
    f = compile_fn([idx, x, v], TakeRows()(idx, x, v))
    x_value, v_value = RNG.normal(size=(4, 5)), RNG.normal(size=4)
    for index in (np.array([3, -4, 1]), np.zeros(0, "int64")):
        got_x, got_v = f(index, x_value, v_value)
        assert got_x.dtype == got_v.dtype == np.float64
        np.testing.assert_array_equal(got_x, x_value[index])
        np.testing.assert_array_equal(got_v, v_value[index])


def test_out_of_range_indices_raise_as_the_gathers_do(compile_fn):
    idx, x, y = tg.lvector("idx"), tg.fmatrix("x"), tg.lvector("y")
    f = compile_fn([idx, x, y], TakeRows()(idx, x, y))
    x_value, y_value = np.zeros((6, 3), "float32"), np.zeros(4, "int64")
    with pytest.raises(IndexError, match=r"index 4 is out of bounds for axis 0 with size 4"):
        f(np.array([0, 4]), x_value, y_value)
    with pytest.raises(IndexError, match=r"index -7 is out of bounds for axis 0 with size 6"):
        f(np.array([1, -7]), x_value, np.zeros(6, "int64"))
    np.testing.assert_array_equal(f(np.array([-4]), x_value, y_value)[1], [0])  # works again


def test_table_errors_raise_as_the_unfused_graph_does(compile_fn):
    table, sel, x = tg.lmatrix("table"), tg.lvector("sel"), tg.fmatrix("x")
    f = compile_fn([table, sel, x], TakeRows(3)(table, sel, x))
    table_value, x_value = np.array([[0, 1, 2], [3, 4, 9]]), np.ones((5, 2), "float32")
    with pytest.raises(IndexError, match=r"index 2 is out of bounds for axis 0 with size 2 "
                                         r"\(input shape \(2, 3\)\)"):
        f(table_value, np.array([2]), x_value)
    with pytest.raises(IndexError, match=r"index 9 is out of bounds for axis 0 with size 5"):
        f(table_value, np.array([1]), x_value)
    with pytest.raises(ValueError, match=r"cannot reshape an array of shape \(2, 3\) "
                                         r"\(6 elements\) to \(3,\)"):
        f(table_value, np.array([0, 0]), x_value)
    np.testing.assert_array_equal(f(table_value, np.array([-2]), x_value), np.ones((3, 2)))


def test_types_shapes_and_gradient():
    idx, x = tg.lvector("idx"), tg.ftensor3("x")
    y = tg.tensor("int64", broadcastable=(False, True), name="y")
    out_x, out_y = TakeRows()(idx, x, y)
    assert (out_x.type, out_y.type) == (x.type, y.type)
    node = out_x.owner
    assert node.op.infer_shape(node, [(7,), (4, 2, 3), (4, 1)], [None] * 3) == \
        [(7, 2, 3), (7, 1)]
    assert TakeRows(1)(tg.lmatrix("table"), idx, x).broadcastable == (True, False, False)
    assert TakeRows(-1).infer_shape(None, [(5, 2), (3,), (4, 2, 3)], [None] * 3) == \
        [(6, 2, 3)]
    with pytest.raises(ValueError, match="cannot reshape"):
        TakeRows(4).infer_shape(None, [(5, 2), (3,), (4, 2, 3)], [None] * 3)
    with pytest.raises(TypeError, match=r"index must be a 1-d integer tensor, got .*float64"):
        TakeRows()(tg.dvector(), x)
    with pytest.raises(TypeError, match="the table must be a 2-d integer"):
        TakeRows(3)(idx, idx, x)
    with pytest.raises(TypeError, match="at least one axis"):
        TakeRows()(idx, tg.dscalar())
    with pytest.raises(TypeError, match="no arrays"):
        TakeRows()(idx)
    with pytest.raises(NotImplementedError, match="created by a rewrite after differentiation"):
        tg.grad(tg.sum(out_x), x)


@given(data=st.data())
def test_matches_numpy_fancy_indexing(compile_fn, data):
    n = data.draw(st.integers(1, 6))
    shapes = data.draw(st.lists(tgs.shapes(min_dims=0, max_dims=2, max_side=4), min_size=1,
                                max_size=3))
    dtypes = data.draw(st.lists(st.sampled_from(["float32", "int64", "int32", "uint8"]),
                                min_size=len(shapes), max_size=len(shapes)))
    index = np.array(data.draw(st.lists(st.integers(-n, n - 1), max_size=8)), "int64")
    values = [data.draw(tgs.arrays(d, (n, *s))) for d, s in zip(dtypes, shapes)]
    arrays = [tg.tensor(d, 1 + len(s)) for d, s in zip(dtypes, shapes)]
    idx = tg.lvector("idx")
    f = compile_fn([idx, *arrays], TakeRows().make_node(idx, *arrays).outputs)
    for got, value in zip(f(index, *values), values):
        np.testing.assert_array_equal(got, value[index])


# ---------------------------------------------------------------------------------------------
# the rewrite


def _trainer_graph(n=20, batches=4, size=5, width=784):
    """(perm, step, images, labels): a training step's minibatch as the SGD trainer builds
    it, a row of a shared permutation table chosen by a shared step counter."""
    perm = tg.shared(RNG.permutation(n)[:batches * size].reshape(batches, size), name="perm")
    step = tg.shared(np.zeros(1, "int64"), name="step")
    data_x = tg.shared(RNG.normal(size=(n, width)).astype("float32"), name="data_x")
    data_y = tg.shared(RNG.integers(0, 10, n), name="data_y")
    rows = tg.reshape(perm[step], (size,))
    return perm, step, data_x[rows], data_y[rows]


def _ops(outputs, pipeline=OPENCL_PIPELINE):
    return [type(node.op) for node in toposort(optimize(outputs, pipeline))]


def test_the_trainer_minibatch_is_one_take_rows_node():
    _, _, x_rows, y_rows = _trainer_graph()
    ops = _ops([x_rows.sum(), y_rows.sum()])
    assert ops.count(TakeRows) == 1
    assert AdvancedSubtensor not in ops and Reshape not in ops
    assert TakeRows not in _ops([x_rows.sum(), y_rows.sum()], DEFAULT_PIPELINE)


def test_the_trainer_step_computes_what_the_numpy_backend_does(backend):
    _, step, x_rows, y_rows = _trainer_graph()
    outputs = [x_rows.sum(), y_rows.sum(), x_rows, y_rows]
    results = {}
    for device in ("numpy", backend):
        step.set_value(np.zeros(1, "int64"))
        f = tg.function([], outputs, updates=[(step, step + 1)], device=device)
        results[device] = [f() for _ in range(4)]
    if backend == "opencl":
        assert TakeRows in [type(node.op) for node in toposort(f.outputs)]
    for want, got in zip(results["numpy"], results[backend]):
        np.testing.assert_allclose(got[0], want[0], rtol=1e-5)
        for g, w in zip(got[1:], want[1:]):
            np.testing.assert_array_equal(g, w)
    assert not np.array_equal(results["numpy"][0][2], results["numpy"][1][2])  # step advanced


def test_the_fused_step_raises_what_the_unfused_graph_raises(backend):
    perm, _, x_rows, y_rows = _trainer_graph()
    f = tg.function([], [x_rows.sum(), y_rows.sum()], device=backend)
    perm.set_value(np.full((4, 5), 25))
    with pytest.raises(IndexError, match=r"index 25 is out of bounds for axis 0 with size 20"):
        f()
    perm.set_value(np.zeros((4, 6), "int64"))
    with pytest.raises(ValueError, match=r"cannot reshape an array of shape \(1, 6\)"):
        f()


def test_gathers_by_one_plain_index_are_grouped(compile_fn):
    idx, x, y = tg.lvector("idx"), tg.dmatrix("x"), tg.lvector("y")
    outputs = [x[idx] * 2.0, y[idx] + 1, x[idx, idx]]
    ops = _ops(outputs)
    assert ops.count(TakeRows) == 1 and ops.count(AdvancedSubtensor) == 1  # x[idx, idx] stays
    f = compile_fn([idx, x, y], outputs)
    x_value, y_value, index = RNG.normal(size=(4, 4)), np.arange(4), np.array([3, -1, 0])
    got = f(index, x_value, y_value)
    for g, w in zip(got, [x_value[index] * 2.0, y_value[index] + 1, x_value[index, index]]):
        np.testing.assert_array_equal(g, w)


def test_gathers_by_different_indices_are_left_alone():
    idx, other, x, y = tg.lvector("idx"), tg.lvector("other"), tg.dmatrix("x"), tg.lvector("y")
    ops = _ops([x[idx], y[other]])
    assert TakeRows not in ops and ops.count(AdvancedSubtensor) == 2
    ops = _ops([x[idx]])  # one gather by a plain vector: nothing to gain
    assert TakeRows not in ops and ops.count(AdvancedSubtensor) == 1


def test_a_gather_of_another_gathers_result_stays_out_of_its_group(compile_fn):
    idx, x, y = tg.lvector("idx"), tg.dmatrix("x"), tg.dvector("y")
    first = x[idx]
    outputs = [first, y[idx], tg.exp(first)[idx]]
    ops = _ops(outputs)
    assert ops.count(TakeRows) == 1 and ops.count(AdvancedSubtensor) == 1
    f = compile_fn([idx, x, y], outputs)
    x_value, y_value, index = RNG.normal(size=(3, 2)), RNG.normal(size=3), np.array([2, 0, 1])
    got = f(index, x_value, y_value)
    for g, w in zip(got, [x_value[index], y_value[index], np.exp(x_value[index])[index]]):
        np.testing.assert_allclose(g, w, rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# the advanced selector: the step counter advanced by the node that reads it


@pytest.mark.parametrize("advance", [1, -2])
def test_form_b_with_advance_also_gives_the_selector_plus_k(compile_fn, advance):
    table, sel = tg.imatrix("table"), tg.lvector("sel")
    inputs, values, arrays, expected = _arrays(7)
    *rows, advanced = TakeRows(8, advance)(table, sel, *arrays)
    assert advanced.type == sel.type
    f = compile_fn([table, sel, *inputs], [*rows, advanced])
    table_value = RNG.integers(-7, 7, (3, 4)).astype("int32")
    selector = np.array([2, -3])
    *got_rows, got_advanced = f(table_value, selector, *values)
    index = table_value[selector].reshape(-1)
    for got, want in zip(got_rows, expected):
        np.testing.assert_array_equal(got, want[index])
    assert got_advanced.dtype == np.int64
    np.testing.assert_array_equal(got_advanced, selector + advance)


def test_advance_needs_the_table_form():
    with pytest.raises(ValueError, match="advance needs the table form"):
        TakeRows(advance=1)
    assert str(TakeRows(5, 1)) == "TakeRows{table[selector] as 5 rows, selector + 1}"
    assert TakeRows(4, 1).infer_shape(None, [(5, 2), (2,), (9, 3)], [None] * 3) == \
        [(4, 3), (2,)]


def _advanced_node(outputs):
    nodes = [node for node in toposort(optimize(outputs, OPENCL_PIPELINE))
             if isinstance(node.op, TakeRows)]
    assert len(nodes) == 1
    return nodes[0]


def test_the_step_counter_update_becomes_the_gathers_advanced_selector():
    _, step, x_rows, y_rows = _trainer_graph()
    for update, k in ((step + 1, 1), (1 + step, 1), (step + np.array([3], "int64"), 3)):
        assert _advanced_node([x_rows.sum(), y_rows.sum(), update]).op.advance == k
    ops = _ops([x_rows.sum(), step + 1])
    assert ops.count(TakeRows) == 1 and tg.ops.elemwise.Elemwise not in ops


@pytest.mark.parametrize("make", [lambda step: step * 2, lambda step: step + step,
                                  lambda step: step + tg.lvector("k"),
                                  lambda step: tg.cast(step, "int32") + 1])
def test_other_expressions_of_the_selector_are_left_alone(make):
    _, step, x_rows, _ = _trainer_graph()
    assert _advanced_node([x_rows.sum(), make(step)]).op.advance is None


def test_the_trainer_step_with_an_advanced_counter_matches_numpy(backend):
    """The counter advanced by the gather on OpenCL: each call gathers the rows of the table
    row the counter selected before the call, as the NumPy backend's separate update does."""
    _, step, x_rows, y_rows = _trainer_graph(n=400, batches=6, size=64, width=8)
    results = {}
    for device in ("numpy", backend):
        step.set_value(np.zeros(1, "int64"))
        f = tg.function([], [x_rows, y_rows], updates=[(step, step + 1)], device=device)
        results[device] = [f() for _ in range(5)]
        assert step.get_value()[0] == 5
    for want, got in zip(results["numpy"], results[backend]):
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w)
