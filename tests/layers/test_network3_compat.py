"""Tests for layers.network3: a network3 script runs with only the import changed."""

from __future__ import annotations

import numpy as np
import pytest

import tinygraph as tg
from layers import SGD, FullyConnected, Softmax
from layers.network3 import (
    FullyConnectedLayer,
    Network,
    ReLU,
    SoftmaxLayer,
    sigmoid,
)


def shared_data(n: int, seed: int):
    """network3-style data: a shared x and ``cast(shared_y, "int32")``."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    x = (np.eye(4)[y] @ rng.normal(size=(4, 12)) + 0.3 * rng.normal(size=(n, 12)))
    return tg.shared(x.astype("float32")), tg.cast(tg.shared(y.astype("float64")), "int32")


def test_network3_script_trains(backend, capsys):
    training_data, validation_data, test_data = (shared_data(n, s) for n, s in
                                                 ((200, 0), (55, 1), (45, 2)))
    mini_batch_size = 10
    net = Network([FullyConnectedLayer(n_in=12, n_out=20, activation_fn=ReLU),
                   FullyConnectedLayer(n_in=20, n_out=10, activation_fn=sigmoid, p_dropout=0.5),
                   SoftmaxLayer(n_in=10, n_out=4, p_dropout=0.5)], mini_batch_size)
    net.SGD(training_data, 1, mini_batch_size, 0.1, validation_data, test_data, lmbda=0.1)
    output = capsys.readouterr().out
    assert "Epoch 0: validation accuracy" in output
    assert "This is the best validation accuracy to date." in output
    assert "Best validation accuracy of" in output and "obtained at iteration 19" in output
    assert net.layers[0].activation_name == "relu"


def test_l2_is_network3s():
    x, y = (v.get_value() if hasattr(v, "get_value") else tg.function([], v)()
            for v in shared_data(100, 3))
    compat = Network([FullyConnectedLayer(12, 6), SoftmaxLayer(6, 4)], 10)
    compat.SGD((x, y), 2, 10, 0.5, (x, y), (x, y), lmbda=3.0)
    plain = Network([FullyConnected(12, 6), Softmax(6, 4)], 10)
    SGD(plain, 0.5, lmbda=3.0 * 10).fit((x, y), 2, (x, y), (x, y), shuffle=False,
                                         progress=False)
    for a, b in zip(compat.params, plain.params):
        np.testing.assert_array_equal(a.get_value(), b.get_value())


def test_mini_batch_size_must_match():
    net = Network([SoftmaxLayer(12, 4)], 10)
    data = shared_data(40, 0)
    with pytest.raises(ValueError, match="mini_batch_size 5 differs"):
        net.SGD(data, 1, 5, 0.1, data, data)

