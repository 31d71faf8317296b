"""``SGD``: minibatch stochastic gradient descent with L2, momentum, early stopping and
checkpoints.

The training set lives on the device; each epoch a shuffled permutation (a shared int64
matrix, one row of example indices per minibatch, set from a NumPy ``Generator``) selects the
minibatches through ``givens``. The row is chosen by a step counter that also lives on the
device and advances with every call, so a training step takes no arguments and the host only
enqueues it. An epoch runs ``n // mini_batch_size`` minibatches: the last partial minibatch is
left out of training (with shuffling, different examples each epoch); validation and test sets
are evaluated whole. Epochs are numbered from 0, as in network3.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import time
from collections.abc import Callable

import numpy as np
from tqdm import tqdm

import tinygraph as tg

from .model_io import ModelFileError, read_npz, write_npz
from .network import Network

CHECKPOINT_FORMAT = "tinygraph.layers.checkpoint"
CHECKPOINT_VERSION = 1


@dataclasses.dataclass
class EpochRecord:
    """What one epoch did: training cost (the mean of the minibatches' data costs, plus the
    L2 penalty of the weights at the end of the epoch), accuracies (None without that data
    set), training seconds and training examples per second."""

    epoch: int
    training_cost: float
    validation_accuracy: float | None
    test_accuracy: float | None
    seconds: float
    examples_per_second: float


@dataclasses.dataclass
class TrainingResult:
    """The history of a :meth:`SGD.fit` run and its best epoch (by validation accuracy)."""

    history: list[EpochRecord]
    best_epoch: int | None
    best_validation_accuracy: float | None
    test_accuracy_at_best: float | None
    stopped_early: bool = False

    def plot(self, path: str | os.PathLike[str]) -> None:
        """Save the training cost and accuracies per epoch as an image (needs matplotlib)."""
        try:
            from matplotlib.figure import Figure
        except ImportError:
            raise ImportError('TrainingResult.plot needs matplotlib: pip install '
                              '"tinygraph[plot]"') from None
        epochs = [r.epoch for r in self.history]
        figure = Figure(figsize=(10, 4))
        cost_axes, accuracy_axes = figure.subplots(1, 2)
        cost_axes.plot(epochs, [r.training_cost for r in self.history], marker="o")
        cost_axes.set(xlabel="epoch", ylabel="training cost")
        for label, values in (("validation", [r.validation_accuracy for r in self.history]),
                              ("test", [r.test_accuracy for r in self.history])):
            if any(v is not None for v in values):
                accuracy_axes.plot(epochs, [math.nan if v is None else v for v in values],
                                   marker="o", label=label)
        if self.best_epoch is not None:
            accuracy_axes.axvline(self.best_epoch, color="grey", linestyle=":", label="best")
        accuracy_axes.set(xlabel="epoch", ylabel="accuracy")
        accuracy_axes.legend()
        figure.tight_layout()
        figure.savefig(path)


def _dataset(data, net: Network, what: str) -> tuple[np.ndarray, np.ndarray]:
    x, y = data
    x = np.asarray(x, dtype=tg.config.floatX)
    y = np.asarray(y)
    if x.ndim != 2 or x.shape[1] != net.n_in:
        raise ValueError(f"{what}: inputs must have shape (n, {net.n_in}), got {x.shape}")
    if y.shape != (len(x),) or y.dtype.kind not in "iu":
        raise ValueError(f"{what}: labels must be {len(x)} integers, got {y.dtype} {y.shape}")
    if len(y) and (y.min() < 0 or y.max() >= net.n_out):
        raise ValueError(f"{what}: labels must be in 0..{net.n_out - 1}")
    return x, y.astype("int32")


class SGD:
    """Minibatch SGD on ``net``: learning rate ``eta``, L2 weight ``lmbda`` (the cost gains
    ``lmbda / (2 n) * sum(W ** 2)`` over weight matrices, ``n`` the training set size) and
    ``momentum`` (``v <- momentum * v - eta * g``, ``W <- W + v``)."""

    def __init__(self, net: Network, eta: float, lmbda: float = 0.0,
                 momentum: float = 0.0) -> None:
        if not eta > 0:
            raise ValueError(f"SGD: eta must be positive, got {eta}")
        if not lmbda >= 0:
            raise ValueError(f"SGD: lmbda must be non-negative, got {lmbda}")
        if not 0 <= momentum < 1:
            raise ValueError(f"SGD: momentum must be in [0, 1), got {momentum}")
        self.net, self.eta, self.lmbda, self.momentum = net, float(eta), float(lmbda), \
            float(momentum)
        self.velocities = [tg.shared(np.zeros_like(p.get_value()), name=f"v_{p.name}")
                           for p in net.params] if momentum else []
        #: the compiled training step of the last :meth:`fit`; each call (no arguments) trains
        #: the next minibatch of the epoch
        self.train_fn: tg.Function | None = None
        self._cost_sum = tg.shared(np.zeros(1, "float64"), name="cost_sum")
        #: the index of the next minibatch within the epoch
        self._step = tg.shared(np.zeros(1, "int64"), name="step")

    def _compile(self, data_x, data_y, perm, n: int) -> tg.Function:
        net, size = self.net, self.net.mini_batch_size
        data_cost = net.cost(net.x, net.y, train=True)
        cost = data_cost + self._penalty(n) if self.lmbda else data_cost
        grads = tg.grad(cost, net.params)
        updates = []
        if self.momentum:
            for p, v, g in zip(net.params, self.velocities, grads):
                step = self.momentum * v - self.eta * g
                updates += [(v, step), (p, p + step)]
        else:
            updates += [(p, p - self.eta * g) for p, g in zip(net.params, grads)]
        # the minibatch costs are summed on the device, so a step never waits for the device;
        # the L2 penalty (a pass over every weight) is added once per epoch instead
        updates.append((self._cost_sum,
                        self._cost_sum + tg.cast(data_cost, self._cost_sum.dtype)))
        updates.append((self._step, self._step + 1))
        rows = tg.reshape(perm[self._step], (size,))
        return tg.function([], [], updates=updates,
                           givens={net.x: data_x[rows], net.y: data_y[rows]}, name="train")

    def _penalty(self, n: int) -> tg.Variable:
        """The L2 term of the cost: ``lmbda / (2 n)`` times the sum of squared weights."""
        penalty = tg.sum(self.net.weights[0] ** 2)
        for w in self.net.weights[1:]:
            penalty = penalty + tg.sum(w ** 2)
        return self.lmbda / (2 * n) * penalty

    def fit(self, training_data, epochs: int, validation_data=None, test_data=None,
            shuffle: bool = True, seed: int | None = None, patience: int | None = None,
            checkpoint: str | os.PathLike[str] | None = None,
            resume_from: str | os.PathLike[str] | None = None, progress: bool = True,
            on_epoch: Callable[[EpochRecord], None] | None = None) -> TrainingResult:
        """Train for ``epochs`` epochs (in total, counting those of ``resume_from``).

        ``seed`` (default: the network's seed) seeds the shuffling. After each epoch the
        validation accuracy is measured; a strictly better one snapshots the parameters and
        records the test accuracy. ``patience``: stop after that many epochs without
        improvement. At the end the best parameters are restored. ``checkpoint``: a file
        rewritten after every epoch, from which ``resume_from`` continues exactly where it
        left off. ``on_epoch`` is called with each epoch's record.
        """
        net, size = self.net, self.net.mini_batch_size
        train_x, train_y = _dataset(training_data, net, "training_data")
        validation = None if validation_data is None else _dataset(validation_data, net,
                                                                    "validation_data")
        test = None if test_data is None else _dataset(test_data, net, "test_data")
        n = len(train_x)
        batches = n // size
        if batches == 0:
            raise ValueError(f"fit: {n} training examples do not fill one minibatch of {size}")
        if patience is not None and (validation is None or patience < 1):
            raise ValueError("fit: patience needs validation_data and must be at least 1")
        data_x, data_y = tg.shared(train_x, name="train_x"), tg.shared(train_y, name="train_y")
        perm = tg.shared(np.arange(batches * size, dtype="int64").reshape(batches, size),
                         name="perm")
        self.train_fn = self._compile(data_x, data_y, perm, n)
        penalty_fn = tg.function([], self._penalty(n), name="penalty") if self.lmbda else None
        generator = np.random.default_rng(net.seed if seed is None else seed)
        state = {"epoch": 0, "history": [], "best_epoch": None, "best_validation_accuracy": None,
                 "test_accuracy_at_best": None, "since_best": 0}
        best_params = None
        hyper = {"eta": self.eta, "lmbda": self.lmbda, "momentum": self.momentum,
                 "shuffle": shuffle, "n": n}
        if resume_from is not None:
            state, best_params = self._resume(resume_from, generator, hyper)
        history = [EpochRecord(**r) for r in state["history"]]
        stopped = False
        disable = not progress or not sys.stderr.isatty()
        for epoch in range(state["epoch"], epochs):
            if patience is not None and state["since_best"] >= patience:
                stopped = True
                break
            if shuffle:
                perm.set_value(generator.permutation(n)[:batches * size].reshape(batches, size))
            self._cost_sum.set_value(np.zeros(1, "float64"))
            self._step.set_value(np.zeros(1, "int64"))
            start = time.perf_counter()
            for _ in tqdm(range(batches), desc=f"epoch {epoch}", unit="batch",
                          disable=disable, leave=False):
                self.train_fn()
            self.train_fn.sync()
            cost = float(self._cost_sum.get_value()[0]) / batches
            if penalty_fn is not None:
                cost += float(penalty_fn())
            seconds = time.perf_counter() - start
            record = EpochRecord(epoch, cost,
                                 None if validation is None else net.accuracy(validation),
                                 None if test is None else net.accuracy(test),
                                 seconds, batches * size / seconds)
            history.append(record)
            best = state["best_validation_accuracy"]
            if record.validation_accuracy is not None:
                if best is None or record.validation_accuracy > best:
                    best_params = [p.get_value() for p in net.params]
                    state.update(best_epoch=epoch, since_best=0,
                                 best_validation_accuracy=record.validation_accuracy,
                                 test_accuracy_at_best=record.test_accuracy)
                else:
                    state["since_best"] += 1
            state["epoch"] = epoch + 1
            state["history"] = [dataclasses.asdict(r) for r in history]
            if checkpoint is not None:
                self._write_checkpoint(checkpoint, state, hyper, generator, best_params)
            if on_epoch is not None:
                on_epoch(record)
        if best_params is not None:
            for p, value in zip(net.params, best_params):
                p.set_value(value)
        return TrainingResult(history, state["best_epoch"], state["best_validation_accuracy"],
                              state["test_accuracy_at_best"], stopped)

    def _write_checkpoint(self, path, state: dict, hyper: dict, generator, best_params) -> None:
        metadata = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **state,
                    "hyper": hyper, "shuffle_state": generator.bit_generator.state}
        arrays = {f"param{i}": p.get_value() for i, p in enumerate(self.net.params)}
        arrays.update({f"velocity{i}": v.get_value() for i, v in enumerate(self.velocities)})
        arrays.update({f"best{i}": v for i, v in enumerate(best_params or [])})
        arrays.update({f"rng{i}": s for i, s in enumerate(self.net.srng.get_state())})
        write_npz(path, metadata, arrays)

    def _resume(self, path, generator, hyper: dict):
        metadata, arrays = read_npz(path, CHECKPOINT_FORMAT, CHECKPOINT_VERSION)
        if metadata.get("hyper") != hyper:
            raise ValueError(f"{path}: the checkpoint was made with {metadata.get('hyper')}, "
                             f"this run has {hyper}")
        params = self.net.params
        groups = {prefix: [arrays.get(f"{prefix}{i}") for i in range(count)]
                  for prefix, count in (("param", len(params)), ("velocity", len(params)),
                                        ("best", len(params)),
                                        ("rng", len(self.net.srng.states)))}
        try:
            for p, value in zip(params, groups["param"]):
                _check_shape(path, p, value)
                p.set_value(value)
            for v, value in zip(self.velocities, groups["velocity"]):
                _check_shape(path, v, value)
                v.set_value(value)
            self.net.srng.set_state(groups["rng"])
            generator.bit_generator.state = metadata["shuffle_state"]
            state = {key: metadata[key] for key in ("epoch", "history", "best_epoch",
                                                    "best_validation_accuracy",
                                                    "test_accuracy_at_best", "since_best")}
        except ModelFileError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(f"{path}: checkpoint does not fit this network: {exc}") from None
        best = None
        if metadata["best_epoch"] is not None:
            best = groups["best"]
            for p, value in zip(params, best):
                _check_shape(path, p, value)
        return state, best


def _check_shape(path, variable, value) -> None:
    expected = variable.get_value(borrow=True)
    if value is None or value.shape != expected.shape or value.dtype != expected.dtype:
        found = "missing" if value is None else f"{value.dtype} {value.shape}"
        raise ModelFileError(f"{path}: {variable.name} is {found}, expected {expected.dtype} "
                             f"{expected.shape}")
