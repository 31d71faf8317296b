"""Tests for layers.trainer: SGD updates, L2, momentum, best epoch, early stopping,
checkpoints and resume, reproducibility, plotting."""

from __future__ import annotations

import re
import sys

import numpy as np
import pytest

import tinygraph as tg
from layers import SGD, Dropout, FullyConnected, ModelFileError, Network, Softmax


def blobs(n: int, seed: int, classes: int = 3, dim: int = 8, noise: float = 1.0):
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).normal(scale=2.0, size=(classes, dim))
    y = rng.integers(0, classes, n).astype("int32")
    x = (centres[y] + rng.normal(scale=noise, size=(n, dim))).astype(tg.config.floatX)
    return x, y


TRAIN, VALID, TEST = blobs(203, 0), blobs(60, 1), blobs(60, 2)


def mlp(seed: int = 0, p: float = 0.0, batch: int = 10) -> Network:
    return Network([FullyConnected(8, 16, "tanh"), Dropout(p), FullyConnected(16, 12, "relu",
                                                                        p_dropout=p),
                    Softmax(12, 3, p_dropout=p)], batch, seed=seed)


def params_of(net: Network) -> list[np.ndarray]:
    return [p.get_value() for p in net.params]


@pytest.mark.parametrize("momentum, lmbda", [(0.0, 0.0), (0.9, 0.5)])
def test_training_learns(backend, momentum, lmbda):
    net = mlp(p=0.2)
    result = SGD(net, 0.05, lmbda=lmbda, momentum=momentum).fit(
        TRAIN, 4, VALID, TEST, progress=False)
    assert len(result.history) == 4
    assert result.history[-1].training_cost < result.history[0].training_cost
    assert result.best_validation_accuracy > 0.9
    assert net.accuracy(VALID) == result.best_validation_accuracy
    record = result.history[result.best_epoch]
    assert result.test_accuracy_at_best == record.test_accuracy
    assert record.seconds > 0 and record.examples_per_second > 0


def test_update_gemm_in_place_on_opencl(backend):
    if backend != "opencl":
        pytest.skip("OpenCL only")
    trainer = SGD(mlp(), 0.1, lmbda=0.1)
    trainer.fit(TRAIN, 1, progress=False)
    source = trainer.train_fn.kernels_source()
    labels = re.findall(r"^/\* (BackpropUpdate|Gemm\w*|SoftmaxLayerStep).* in place \*/$",
                        source, re.MULTILINE)
    assert sorted(labels) == ["BackpropUpdate", "GemmColumnSums", "SoftmaxLayerStep"], \
        "each layer's updates are one in-place kernel, with the backward product above the " \
        "first, the output layer's with its logits and crossentropy"



def test_an_opencl_training_step_is_few_kernels(backend, monkeypatch):
    """network3's first example as the trainer compiles it: every update runs in place (no
    copies), nothing falls back to the host, and the step stays at 4 launches: 1 gather
    (the minibatch's images and labels, by the row of the permutation table the step counter
    selects, which also advances the counter in place), the hidden layer's product with fused
    bias and activation, the output layer's whole step (its logits, the crossentropy's
    gradient and the running cost total, its backward product times the sigmoid's
    derivative, its in-place weight and bias updates), and the hidden layer's in-place weight
    product that also updates its bias."""
    if backend != "opencl":
        pytest.skip("OpenCL only")
    monkeypatch.setattr(tg.config, "profile", True)
    net = Network([FullyConnected(8, 16, "sigmoid"), Softmax(16, 3)], 10, seed=0)
    trainer = SGD(net, 0.1)
    trainer.fit(TRAIN, 1, progress=False)
    profile = trainer.train_fn.profile
    labels = [label for label, *_ in profile.rows()]
    launches = sum(calls for _, calls, *_ in profile.rows()) / profile.calls
    assert launches == 4, profile.summary()
    assert not any(label.startswith(("update", "copy")) for label in labels), labels
    assert "NumPy on the host" not in trainer.train_fn.kernels_source()


def test_dropout_masks_are_drawn_and_applied_in_one_kernel_each(backend, monkeypatch):
    """With dropout on both hidden layers (the benchmarks' W3), each layer's mask is drawn and
    applied to the layer's activations by one kernel (RandomDrawMap), not a draw kernel and
    an elementwise kernel: 8 launches per step (the gather, which also advances the counter,
    per hidden layer its product and its mask, the output layer's whole step, the hidden
    layers' updates)."""
    if backend != "opencl":
        pytest.skip("OpenCL only")
    monkeypatch.setattr(tg.config, "profile", True)
    net = Network([FullyConnected(8, 16, "relu"), Dropout(0.5), FullyConnected(16, 16, "relu"),
                   Dropout(0.5), Softmax(16, 3)], 10, seed=0)
    trainer = SGD(net, 0.1, lmbda=0.1)
    trainer.fit(TRAIN, 1, progress=False)
    profile = trainer.train_fn.profile
    labels = [label for label, *_ in profile.rows()]
    calls = {label: count / profile.calls for label, count, *_ in profile.rows()}
    maps = [label for label in labels if label.startswith("RandomDrawMap{binomial")]
    assert len(maps) == 1 and calls[maps[0]] == 2, profile.summary()
    assert not any(label.startswith("RandomDraw{") for label in labels), labels
    assert sum(calls.values()) == 8, profile.summary()


def reference_softmax_sgd(x, y, eta, lmbda, momentum, batch, steps, n):
    """Plain NumPy SGD of a zero-initialised softmax regression, in order."""
    w, b = np.zeros((x.shape[1], 3)), np.zeros(3)
    vw, vb = np.zeros_like(w), np.zeros_like(b)
    for step in range(steps):
        xb, yb = x[step * batch:(step + 1) * batch], y[step * batch:(step + 1) * batch]
        z = xb @ w + b
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        p[np.arange(batch), yb] -= 1
        gw = xb.T @ p / batch + lmbda / n * w
        gb = p.mean(axis=0)
        vw, vb = momentum * vw - eta * gw, momentum * vb - eta * gb
        w, b = w + vw, b + vb
    return w, b


@pytest.mark.parametrize("momentum", [0.0, 0.5])
def test_l2_and_momentum_updates(backend, momentum):
    x, y = TRAIN[0][:25], TRAIN[1][:25]  # two minibatches of 10 and a dropped remainder of 5
    net = Network([Softmax(8, 3)], 10)
    SGD(net, 0.3, lmbda=2.0, momentum=momentum).fit((x, y), 3, shuffle=False, progress=False)
    # three epochs of the same two minibatches, in order, with the L2 term of n = 25
    w_all, b_all = reference_softmax_sgd(np.concatenate([x[:20]] * 3).astype("float64"),
                                         np.concatenate([y[:20]] * 3), 0.3, 2.0, momentum, 10,
                                         6, 25)
    np.testing.assert_allclose(net.layers[0].w.get_value(), w_all, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(net.layers[0].b.get_value(), b_all, rtol=1e-4, atol=1e-5)


def test_same_seed_same_run_and_other_seed_differs(backend):
    runs = []
    for seed in (5, 5, 6):
        net = mlp(seed, p=0.5)
        result = SGD(net, 0.05, momentum=0.5).fit(TRAIN, 2, VALID, progress=False)
        runs.append((params_of(net), [r.training_cost for r in result.history]))
    for a, b in zip(runs[0][0], runs[1][0]):
        np.testing.assert_array_equal(a, b)
    assert runs[0][1] == runs[1][1]
    assert runs[0][1] != runs[2][1]


def test_best_epoch_is_picked_and_restored(backend):
    # validation labels are noise: the accuracy wanders while training goes on
    noisy_valid = (VALID[0], np.random.default_rng(7).integers(0, 3, len(VALID[1])))
    net = mlp(seed=1)
    snapshots = []
    result = SGD(net, 0.5).fit(TRAIN, 6, noisy_valid, TEST, progress=False,
                               on_epoch=lambda record: snapshots.append(params_of(net)))
    accuracies = [r.validation_accuracy for r in result.history]
    assert result.best_epoch == int(np.argmax(accuracies))  # the first of equal maxima
    assert result.best_validation_accuracy == max(accuracies)
    assert result.test_accuracy_at_best == result.history[result.best_epoch].test_accuracy
    assert result.best_epoch < len(accuracies) - 1, "the data should peak before the end"
    for got, want in zip(params_of(net), snapshots[result.best_epoch]):
        np.testing.assert_array_equal(got, want)
    assert net.accuracy(noisy_valid) == result.best_validation_accuracy


def test_early_stopping(backend):
    # a softmax regression predicts the majority class (0) on zero inputs after every epoch:
    # the validation accuracy is 1 at epoch 0 and never improves
    x, y = TRAIN
    y = np.where(np.arange(len(y)) % 2 == 0, 0, y).astype("int32")
    valid = (np.zeros((5, 8), tg.config.floatX), np.zeros(5, "int32"))
    result = SGD(Network([Softmax(8, 3)], 10), 0.1).fit((x, y), 20, valid, patience=2,
                                                          progress=False)
    assert [r.validation_accuracy for r in result.history] == [1.0, 1.0, 1.0]
    assert result.stopped_early and result.best_epoch == 0


def test_resume_equals_uninterrupted_run(backend, tmp_path):
    def trainer(net):
        return SGD(net, 0.05, lmbda=0.1, momentum=0.5)

    whole = mlp(seed=3, p=0.5)
    full = trainer(whole).fit(TRAIN, 4, VALID, TEST, progress=False,
                              checkpoint=tmp_path / "full.ckpt")
    first = mlp(seed=3, p=0.5)
    trainer(first).fit(TRAIN, 2, VALID, TEST, progress=False, checkpoint=tmp_path / "part.ckpt")
    resumed_net = mlp(seed=42, p=0.5)  # every random state comes from the checkpoint
    resumed = trainer(resumed_net).fit(TRAIN, 4, VALID, TEST, progress=False,
                                       resume_from=tmp_path / "part.ckpt")
    for a, b in zip(params_of(whole), params_of(resumed_net)):
        np.testing.assert_array_equal(a, b)
    assert [r.training_cost for r in full.history] == [r.training_cost for r in resumed.history]
    assert (full.best_epoch, full.best_validation_accuracy, full.test_accuracy_at_best) == \
        (resumed.best_epoch, resumed.best_validation_accuracy, resumed.test_accuracy_at_best)
    with pytest.raises(ValueError, match="checkpoint was made with"):
        SGD(mlp(p=0.5), 0.1).fit(TRAIN, 4, resume_from=tmp_path / "part.ckpt", progress=False)
    with pytest.raises(ModelFileError, match="does not fit|expected"):
        trainer(Network([FullyConnected(8, 5), Softmax(5, 3)], 10)).fit(
            TRAIN, 4, resume_from=tmp_path / "part.ckpt", progress=False)
    (tmp_path / "bad.ckpt").write_bytes((tmp_path / "part.ckpt").read_bytes()[:100])
    with pytest.raises(ModelFileError, match="bad.ckpt"):
        trainer(mlp(p=0.5)).fit(TRAIN, 4, resume_from=tmp_path / "bad.ckpt", progress=False)


def test_fit_argument_errors():
    net = Network([Softmax(8, 3)], 10)
    with pytest.raises(ValueError, match="do not fill one minibatch"):
        SGD(net, 0.1).fit((TRAIN[0][:5], TRAIN[1][:5]), 1)
    with pytest.raises(ValueError, match="patience needs validation_data"):
        SGD(net, 0.1).fit(TRAIN, 1, patience=2)
    with pytest.raises(ValueError, match="labels must be in 0..2"):
        SGD(net, 0.1).fit((TRAIN[0], TRAIN[1] + 3), 1)
    with pytest.raises(ValueError, match="eta must be positive"):
        SGD(net, 0.0)


def test_plot(tmp_path, monkeypatch):
    net = Network([Softmax(8, 3)], 10)
    result = SGD(net, 0.1).fit(TRAIN, 2, VALID, TEST, progress=False)
    pytest.importorskip("matplotlib")
    result.plot(tmp_path / "curves.png")
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_without_matplotlib(monkeypatch):
    net = Network([Softmax(8, 3)], 10)
    result = SGD(net, 0.1).fit(TRAIN, 1, progress=False)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r'pip install "tinygraph\[plot\]"'):
        result.plot("unused.png")
