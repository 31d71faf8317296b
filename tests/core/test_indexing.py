"""Indexing: basic slicing with symbolic bounds, integer-array indexing, set/inc_subtensor,
and their gradients (scatter-add for repeated indices)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygraph as tg
from tinygraph.testing import strategies as tgs
from tinygraph.testing import verify_grad

RNG = np.random.default_rng(7)


def test_minibatch_slice_with_symbolic_bounds(compile_fn):
    data = tg.dmatrix("data")
    i, n = tg.lscalar("i"), tg.lscalar("n")
    value = RNG.normal(size=(10, 3))
    f = compile_fn([data, i, n], data[i * n:(i + 1) * n])
    for index, size in [(0, 3), (1, 3), (2, 3), (3, 3), (0, 10), (4, 2)]:
        np.testing.assert_array_equal(f(value, index, size),
                                      value[index * size:(index + 1) * size])


@st.composite
def _slices(draw, size):
    def bound():
        return draw(st.none() | st.integers(-size - 2, size + 2))

    return slice(bound(), bound(), draw(st.none() | st.sampled_from([1, 2, -1, -2, 3])))


@given(data=st.data())
def test_basic_indexing_matches_numpy(compile_fn, data):
    shape = data.draw(tgs.shapes(min_dims=1, max_dims=3, max_side=5))
    value = data.draw(tgs.arrays("float64", shape))
    index = []
    for size in shape[:data.draw(st.integers(1, len(shape)))]:
        if data.draw(st.booleans()):
            index.append(data.draw(st.integers(-size, size - 1)))
        else:
            index.append(data.draw(_slices(size)))
    index = tuple(index)
    x = tg.tensor("float64", len(shape), "x")
    # the same index with every bound given symbolically
    scalars, values = [], []

    def symbolic(bound):
        if bound is None:
            return None
        scalars.append(tg.lscalar(f"s{len(scalars)}"))
        values.append(bound)
        return scalars[-1]

    sym_index = tuple(slice(symbolic(e.start), symbolic(e.stop), symbolic(e.step))
                      if isinstance(e, slice) else symbolic(e) for e in index)
    f = compile_fn([x, *scalars], [x[index], x[sym_index]])
    constant_result, symbolic_result = f(value, *values)
    np.testing.assert_array_equal(constant_result, value[index])
    np.testing.assert_array_equal(symbolic_result, value[index])


def test_none_ellipsis_and_negative_indices(compile_fn):
    x = tg.dtensor3("x")
    value = RNG.normal(size=(2, 3, 4))
    cases = [(..., 0), (0, ...), (None, 1), (slice(None), None, -1), (-1, slice(None, None, -1)),
             (..., None), (1, ..., slice(1, 3))]
    results = compile_fn([x], [x[c] for c in cases])(value)
    for got, c in zip(results, cases):
        np.testing.assert_array_equal(got, value[c])
    assert x[None].broadcastable == (True, False, False, False)


def test_basic_indexing_errors(compile_fn):
    x = tg.dmatrix("x")
    i = tg.lscalar("i")
    with pytest.raises(IndexError, match="too many indices"):
        x[0, 0, 0]
    with pytest.raises(TypeError, match="integer scalars"):
        x[tg.dscalar():]
    with pytest.raises(IndexError, match="single ellipsis"):
        x[..., ...]
    f = compile_fn([x, i], x[i])
    with pytest.raises(IndexError, match=r"index 5 is out of bounds for axis 0 with size 3"):
        f(np.zeros((3, 2)), 5)
    step = tg.lscalar("step")
    f = compile_fn([x, step], x[::step])
    with pytest.raises(ValueError, match="step cannot be zero"):
        f(np.zeros((3, 2)), 0)


def test_row_picking_by_label(compile_fn):
    logp = tg.dmatrix("logp")
    y = tg.lvector("y")
    value = RNG.normal(size=(5, 4))
    labels = np.array([3, 0, 0, 2, 1])
    out = logp[tg.arange(y.shape[0]), y]
    np.testing.assert_array_equal(compile_fn([logp, y], out)(value, labels),
                                  value[np.arange(5), labels])


def test_integer_array_indexing_with_repeats_and_negatives(compile_fn):
    x = tg.dmatrix("x")
    idx = tg.lvector("idx")
    imat = tg.lmatrix("imat")
    value = RNG.normal(size=(4, 3))
    rows = np.array([1, 1, -1, 0, 1])
    grid = np.array([[0, 3], [2, 2]])
    f = compile_fn([x, idx, imat], [x[idx], x[imat], x[imat, idx[:2]], x[[0, 0, 2]],
                                    x[idx, 1], x[2, idx[:3] % 3]])
    results = f(value, rows, grid)
    want = [value[rows], value[grid], value[grid, rows[:2]], value[[0, 0, 2]], value[rows, 1],
            value[2, rows[:3] % 3]]
    for got, w in zip(results, want):
        np.testing.assert_array_equal(got, w)


def test_integer_array_indexing_errors(compile_fn):
    x = tg.dmatrix("x")
    idx = tg.lvector("idx")
    with pytest.raises(TypeError, match="integers"):
        x[tg.dvector()]
    with pytest.raises(TypeError, match="boolean masks"):
        x[tg.bvector()]
    with pytest.raises(IndexError, match="leading axes"):
        x[1:, idx]
    f = compile_fn([x, idx], x[idx])
    with pytest.raises(IndexError, match=r"index 4 is out of bounds for axis 0 with size 4"):
        f(np.zeros((4, 2)), np.array([0, 4]))
    f = compile_fn([x, idx], x[idx, idx[:2]])
    with pytest.raises(IndexError, match="cannot be broadcast"):
        f(np.zeros((4, 2)), np.array([0, 1, 1]))


def test_gradient_of_repeated_indices_accumulates(compile_fn):
    v = tg.dvector("v")
    idx = tg.lvector("idx")
    weights = np.array([1.0, 2.0, 3.0, 4.0])
    g = tg.grad(tg.sum(v[idx] * weights), v)
    got = compile_fn([v, idx], g)(np.arange(5.0), np.array([1, 1, 3, 1]))
    np.testing.assert_array_equal(got, [0.0, 1.0 + 2.0 + 4.0, 0.0, 3.0, 0.0])
    m = tg.dmatrix("m")
    g = tg.grad(tg.sum(m[idx]), m)
    got = compile_fn([m, idx], g)(np.zeros((3, 2)), np.array([2, 2, 0, 2]))
    np.testing.assert_array_equal(got, [[1, 1], [0, 0], [3, 3]])


def test_set_and_inc_subtensor_basic(compile_fn):
    x = tg.dmatrix("x")
    i = tg.lscalar("i")
    v = tg.dvector("v")
    value = RNG.normal(size=(5, 3))
    f = compile_fn([x, i, v], [tg.set_subtensor(x[i:i + 2], 0.0), tg.inc_subtensor(x[1], v),
                               tg.inc_subtensor(x[:, 1:], 1.0), tg.set_subtensor(x[-1], v)])
    vv = np.array([10.0, 20.0, 30.0])
    set_rows, inc_row, inc_cols, set_last = f(value, 2, vv)
    expected = value.copy()
    expected[2:4] = 0.0
    np.testing.assert_array_equal(set_rows, expected)
    expected = value.copy()
    expected[1] += vv
    np.testing.assert_array_equal(inc_row, expected)
    expected = value.copy()
    expected[:, 1:] += 1.0
    np.testing.assert_array_equal(inc_cols, expected)
    expected = value.copy()
    expected[-1] = vv
    np.testing.assert_array_equal(set_last, expected)
    np.testing.assert_array_equal(compile_fn([x], x)(value), value)  # inputs not modified


def test_set_and_inc_subtensor_advanced(compile_fn):
    x = tg.dvector("x")
    idx = tg.lvector("idx")
    y = tg.dvector("y")
    value = np.zeros(4)
    f = compile_fn([x, idx, y], [tg.inc_subtensor(x[idx], y), tg.set_subtensor(x[idx], y),
                                 tg.inc_subtensor(x[idx], 1.0)])
    inc, set_, inc_scalar = f(value, np.array([0, 2, 0, 0]), np.array([1.0, 2.0, 3.0, 4.0]))
    np.testing.assert_array_equal(inc, [8.0, 0.0, 2.0, 0.0])  # repeated indices accumulate
    assert set_[2] == 2.0 and set_[0] in (1.0, 3.0, 4.0) and set_[1] == set_[3] == 0.0
    np.testing.assert_array_equal(inc_scalar, [3.0, 0.0, 1.0, 0.0])


def test_set_subtensor_needs_an_indexed_target_and_matching_shapes(compile_fn):
    x = tg.dmatrix("x")
    with pytest.raises(TypeError, match="indexed variable"):
        tg.set_subtensor(x, 0.0)
    v = tg.dvector("v")
    f = compile_fn([x, v], tg.set_subtensor(x[1:3], v))
    with pytest.raises(ValueError, match=r"cannot write a value of shape \(4,\)"):
        f(np.zeros((4, 3)), np.zeros(4))


@given(data=st.data())
def test_indexing_gradients(data, backend):
    shape = data.draw(tgs.shapes(min_dims=2, max_dims=3, min_side=2, max_side=4))
    value = data.draw(tgs.arrays("float64", shape))
    n = shape[0]
    idx = tg.constant(np.array(data.draw(st.lists(st.integers(-n, n - 1), min_size=1,
                                                  max_size=6))))
    start = data.draw(st.integers(0, n - 1))
    row_value = data.draw(tgs.arrays("float64", shape[1:]))
    verify_grad(lambda x: x[start:] * 2.0, [value])
    verify_grad(lambda x: x[::-1, 1:], [value])
    verify_grad(lambda x: x[start] ** 2, [value])
    verify_grad(lambda x: x[idx] ** 2, [value])
    verify_grad(lambda x, r: tg.set_subtensor(x[start], r) ** 2, [value, row_value])
    verify_grad(lambda x, r: tg.inc_subtensor(x[start:], r) ** 2, [value, row_value])
    verify_grad(lambda x, r: tg.inc_subtensor(x[idx], r) ** 2, [value, row_value])
    verify_grad(lambda x: tg.set_subtensor(x[idx], 0.0) * x, [value])


def test_inc_subtensor_broadcasts_only_declared_broadcastable_values(compile_fn):
    x = tg.dvector("x")
    idx = tg.lvector("idx")
    y = tg.dvector("y")
    y1 = tg.tensor("float64", broadcastable=(True,), name="y1")
    weights = tg.constant(np.arange(5.0))
    for target in (x[1:4], x[idx]):
        out = tg.inc_subtensor(target, y)
        f = compile_fn([x, y, idx], out, on_unused_input="ignore")
        with pytest.raises(ValueError, match=r"shape \(1,\).*region of shape"):
            f(np.zeros(5), np.ones(1), np.array([1, 2, 3]))
        out = tg.inc_subtensor(target, y1)
        g = tg.grad(tg.sum(out * weights), y1)
        f = compile_fn([x, y1, idx], [out, g], on_unused_input="ignore")
        value, grad_value = f(np.zeros(5), np.ones(1), np.array([1, 2, 3]))
        np.testing.assert_array_equal(value, [0.0, 1.0, 1.0, 1.0, 0.0])
        np.testing.assert_array_equal(grad_value, [1.0 + 2.0 + 3.0])
