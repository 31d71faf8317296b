"""network3 compatibility: port a network3 script by changing its imports.

``from layers.network3 import Network, FullyConnectedLayer, SoftmaxLayer, ReLU,
load_data_shared`` gives network3's names and signatures on top of :mod:`layers`;
``net.SGD(training_data, epochs, mini_batch_size, eta, validation_data, test_data, lmbda)``
takes NumPy ``(x, y)`` pairs or network3's shared variables (``y`` may be
``tinygraph.cast(shared_y, "int32")``) and prints network3's messages. The L2 term is the same
as network3's (``0.5 * lmbda * sum(w ** 2) / num_training_batches`` per minibatch, passed to
:class:`~layers.SGD` as ``lmbda * mini_batch_size``), minibatches are taken in order (no
shuffling) and the last partial training minibatch is dropped, as in network3.

Differences from network3:

* ties: an epoch is the best only if its validation accuracy is strictly higher (network3
  uses ``>=``, so it reports the last of equal epochs; here the first);
* the best parameters are restored at the end of training (network3 keeps the last ones);
* validation and test sets are evaluated whole: the last partial minibatch counts (network3
  drops it);
* initialisation: Glorot/He weights and zero biases (see :mod:`layers.layers`), where network3
  draws weights from ``N(0, 1/sqrt(n_out))`` and biases from ``N(0, 1)``; the weights of the
  softmax layer are zero in both; the seed is the network's ``seed`` (network3 is unseeded);
* inverted dropout: kept units are scaled by ``1/(1 - p)`` in training and inference uses the
  weights as they are (network3 scales the weights by ``1 - p`` at inference; the expected
  activations are the same);
* no ``ConvPoolLayer``.
"""

from __future__ import annotations

import os

import numpy as np

import tinygraph as tg
from tinygraph import SharedVariable, Variable

from . import network
from .activations import Activation, linear, sigmoid, tanh
from .activations import relu as ReLU  # noqa: N812 - network3's name
from .layers import FullyConnected, Softmax
from .trainer import SGD, EpochRecord, TrainingResult

__all__ = ["FullyConnectedLayer", "Network", "ReLU", "SoftmaxLayer", "linear",
           "load_data_shared", "sigmoid", "tanh"]


class FullyConnectedLayer(FullyConnected):
    """network3's ``FullyConnectedLayer(n_in, n_out, activation_fn=sigmoid, p_dropout=0.0)``."""

    def __init__(self, n_in: int, n_out: int, activation_fn: Activation = sigmoid,
                 p_dropout: float = 0.0) -> None:
        super().__init__(n_in, n_out, activation=activation_fn, p_dropout=p_dropout)


class SoftmaxLayer(Softmax):
    """network3's ``SoftmaxLayer(n_in, n_out, p_dropout=0.0)``."""


def _numpy(value) -> np.ndarray:
    if isinstance(value, SharedVariable):
        return value.get_value()
    if isinstance(value, Variable):
        return np.asarray(tg.function([], value, name="network3_data")())
    return np.asarray(value)


def _pair(data) -> tuple[np.ndarray, np.ndarray]:
    x, y = data
    return _numpy(x), _numpy(y)


class Network(network.Network):
    """network3's ``Network(layers, mini_batch_size)``."""

    def SGD(self, training_data, epochs: int, mini_batch_size: int, eta: float,  # noqa: N802
            validation_data, test_data, lmbda: float = 0.0) -> TrainingResult:
        """Train like network3's ``Network.SGD``, printing its messages."""
        if mini_batch_size != self.mini_batch_size:
            raise ValueError(f"SGD: mini_batch_size {mini_batch_size} differs from the "
                             f"network's {self.mini_batch_size}")
        training = _pair(training_data)
        batches = len(training[0]) // mini_batch_size
        best = [-1.0]

        def report(record: EpochRecord) -> None:
            print(f"Epoch {record.epoch}: validation accuracy {record.validation_accuracy:.2%}")
            if record.validation_accuracy > best[0]:
                best[0] = record.validation_accuracy
                print("This is the best validation accuracy to date.")
                print(f"The corresponding test accuracy is {record.test_accuracy:.2%}")

        trainer = SGD(self, eta, lmbda=lmbda * mini_batch_size)
        result = trainer.fit(training, epochs, _pair(validation_data), _pair(test_data),
                             shuffle=False, progress=False, on_epoch=report)
        iteration = batches * (result.best_epoch + 1) - 1
        print("Finished training network.")
        print(f"Best validation accuracy of {result.best_validation_accuracy:.2%} obtained at "
              f"iteration {iteration}")
        print(f"Corresponding test accuracy of {result.test_accuracy_at_best:.2%}")
        return result


def load_data_shared(data_dir: str | os.PathLike[str] | None = None, dataset: str = "mnist"
                     ) -> list[tuple[SharedVariable, Variable]]:
    """network3's ``load_data_shared``: training, validation and test sets as
    ``(shared_x, cast(shared_y, "int32"))``, read by :func:`layers.datasets.load_dataset`."""
    from .datasets import load_dataset

    return [(tg.shared(x, name="x"), tg.cast(tg.shared(y, name="y"), "int32"))
            for x, y in load_dataset(dataset, data_dir)]
