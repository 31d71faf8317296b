"""softmax, log_softmax, crossentropies and the fused CrossentropySoftmax op."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygraph as tg
from tinygraph.ops.nnet import CrossentropySoftmax
from tinygraph.testing import strategies as tgs


def np_log_softmax(x):
    # computed in float64 with the log-sum-exp trick, independently of tinygraph
    x = np.asarray(x, "float64")
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


def _tol(dtype):
    return {"rtol": 1e-5, "atol": 1e-6} if dtype == "float32" else {"rtol": 1e-12,
                                                                     "atol": 1e-12}


@given(data=st.data())
def test_softmax_and_log_softmax_match_numpy(compile_fn, data):
    dtype = data.draw(st.sampled_from(["float32", "float64"]))
    shape = data.draw(tgs.shapes(min_dims=1, max_dims=3))
    domain = data.draw(st.sampled_from(["real", "large"]))
    value = data.draw(tgs.arrays(dtype, shape, domain))
    x = tg.tensor(dtype, len(shape), "x")
    sm, lsm = compile_fn([x], [tg.softmax(x), tg.log_softmax(x)])(value)
    assert sm.dtype == np.dtype(dtype) and lsm.dtype == np.dtype(dtype)
    want = np_log_softmax(value)
    np.testing.assert_allclose(sm, np.exp(want), **_tol(dtype))
    np.testing.assert_allclose(lsm, want, rtol=_tol(dtype)["rtol"],
                               atol=_tol(dtype)["atol"] * max(1.0, np.abs(want).max()))
    np.testing.assert_allclose(sm.sum(axis=-1), 1.0, rtol=1e-5)


def test_log_softmax_is_finite_for_logits_of_1e4(compile_fn):
    x = tg.fmatrix("x")
    value = np.array([[1e4, 0.0, -1e4], [-1e4, -1e4, -1e4]], "float32")
    lsm, sm = compile_fn([x], [tg.log_softmax(x), tg.softmax(x)])(value)
    assert np.all(np.isfinite(lsm))
    np.testing.assert_allclose(lsm, [[0.0, -1e4, -2e4], [-np.log(3.0)] * 3], rtol=1e-6)
    np.testing.assert_allclose(sm, [[1.0, 0.0, 0.0], [1 / 3] * 3], rtol=1e-6)


def test_softmax_needs_a_float_tensor_with_an_axis():
    with pytest.raises(TypeError, match="float tensor"):
        tg.softmax(tg.dscalar())
    with pytest.raises(TypeError, match="float tensor"):
        tg.log_softmax(tg.lmatrix())


@given(data=st.data())
def test_categorical_crossentropy_integer_labels_and_one_hot(compile_fn, data):
    rows, classes = data.draw(st.integers(1, 6)), data.draw(st.integers(1, 5))
    logits = data.draw(tgs.arrays("float64", (rows, classes)))
    labels = np.array(data.draw(st.lists(st.integers(0, classes - 1), min_size=rows,
                                         max_size=rows)))
    z, y, t = tg.dmatrix("z"), tg.lvector("y"), tg.dmatrix("t")
    p = tg.softmax(z)
    f = compile_fn([z, y, t], [tg.categorical_crossentropy(p, y),
                               tg.categorical_crossentropy(p, t),
                               tg.categorical_crossentropy(p, tg.one_hot(y, classes, "float64")),
                               tg.nll_mean(z, y)])
    by_label, by_dist, by_one_hot, nll = f(logits, labels, np.eye(classes)[labels])
    want = -np_log_softmax(logits)[np.arange(rows), labels]
    for got in (by_label, by_dist, by_one_hot):
        assert got.shape == (rows,)
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(nll, want.mean(), rtol=1e-10, atol=1e-12)


def test_categorical_crossentropy_with_soft_targets(compile_fn):
    p, t = tg.dmatrix("p"), tg.dmatrix("t")
    probs = np.array([[0.2, 0.8], [0.5, 0.5]])
    targets = np.array([[0.25, 0.75], [1.0, 0.0]])
    got = compile_fn([p, t], tg.categorical_crossentropy(p, t))(probs, targets)
    np.testing.assert_allclose(got, -(targets * np.log(probs)).sum(axis=1))
    with pytest.raises(TypeError, match="true_dist"):
        tg.categorical_crossentropy(p, tg.dvector())


@given(data=st.data())
def test_binary_crossentropy_matches_numpy(compile_fn, data):
    shape = data.draw(tgs.shapes(min_dims=1, max_dims=2))
    out_value = data.draw(tgs.arrays("float64", shape, "unit"))
    target = data.draw(tgs.arrays("float64", shape, "unit"))
    o, t = tg.dmatrix("o") if len(shape) == 2 else tg.dvector("o"), tg.tensor(
        "float64", len(shape), "t")
    got = compile_fn([o, t], tg.binary_crossentropy(o, t))(out_value, target)
    want = -(target * np.log(out_value) + (1 - target) * np.log(1 - out_value))
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_binary_crossentropy_of_a_sigmoid_is_stable(compile_fn):
    x, t = tg.dvector("x"), tg.dvector("t")
    cost = tg.sum(tg.binary_crossentropy(tg.sigmoid(x), t))
    g = tg.grad(cost, x)
    logits = np.array([50.0, -50.0, 800.0, -800.0, 0.5])
    targets = np.array([0.0, 1.0, 0.0, 1.0, 0.3])
    value, grad = compile_fn([x, t], [cost, g])(logits, targets)
    # bce(sigmoid(x), t) = softplus(x) - t * x, with gradient sigmoid(x) - t
    want = np.logaddexp(0, logits) - targets * logits
    np.testing.assert_allclose(value, want.sum(), rtol=1e-12)
    with np.errstate(over="ignore"):
        sigmoid = 1 / (1 + np.exp(-logits))
    np.testing.assert_allclose(grad, sigmoid - targets, rtol=1e-12)


def test_fused_crossentropy_values_and_label_checks(compile_fn):
    z, y = tg.dmatrix("z"), tg.lvector("y")
    logits = np.array([[1e4, 0.0, -1e4], [0.0, 1.0, 2.0]])
    labels = np.array([2, 0])
    f = compile_fn([z, y], CrossentropySoftmax()(z, y))
    np.testing.assert_allclose(f(logits, labels), -np_log_softmax(logits)[[0, 1], labels])
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        f(logits, np.array([0, 3]))
    with pytest.raises(ValueError, match="2 rows of logits but 3 labels"):
        f(logits, np.array([0, 1, 1]))
    with pytest.raises(TypeError, match="integer vector"):
        CrossentropySoftmax()(z, tg.dvector())
    with pytest.raises(TypeError, match="float matrix"):
        CrossentropySoftmax()(tg.dvector(), y)
