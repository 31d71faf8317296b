"""End to end: softmax (logistic) regression on a synthetic, fixed-seed 4-class problem, trained
with minibatch SGD through function(..., updates=..., givens=...).

Stated result: 500 training points from four Gaussian blobs (centres (+-2, +-2), standard
deviation 0.8; the Bayes accuracy is about 98.8%) and 20 epochs of minibatches of 20 reach at
least 95% accuracy on the training set and on 500 fresh test points.
"""

import numpy as np

import tinygraph as tg
from tinygraph.graph import toposort
from tinygraph.ops.nnet import CrossentropySoftmax, CrossentropySoftmaxWithGrad

CENTRES = np.array([[2, 2], [-2, 2], [-2, -2], [2, -2]], dtype="float32")


def make_blobs(n, rng):
    labels = rng.integers(0, 4, size=n).astype("int32")
    points = CENTRES[labels] + rng.normal(scale=0.8, size=(n, 2)).astype("float32")
    return points, labels


def test_logistic_regression_reaches_95_percent(compile_fn):
    rng = np.random.default_rng(1234)
    train_x, train_y = make_blobs(500, rng)
    test_x, test_y = make_blobs(500, rng)
    data_x, data_y = tg.shared(train_x, name="data_x"), tg.shared(train_y, name="data_y")

    x, y, i = tg.matrix("x"), tg.ivector("y"), tg.lscalar("i")
    W = tg.shared(np.zeros((2, 4), "float32"), name="W")
    b = tg.shared(np.zeros(4, "float32"), name="b")
    p = tg.softmax(x @ W + b)
    cost = -tg.mean(tg.log(p)[tg.arange(y.shape[0]), y])
    gW, gb = tg.grad(cost, [W, b])
    n, eta = 20, 0.1
    train = compile_fn([i], cost, updates=[(W, W - eta * gW), (b, b - eta * gb)],
                       givens={x: data_x[i * n:(i + 1) * n], y: data_y[i * n:(i + 1) * n]},
                       name="train")
    accuracy = compile_fn([x, y], tg.mean(tg.eq(tg.argmax(p, axis=1), y)), name="accuracy")
    stable = {CrossentropySoftmax, CrossentropySoftmaxWithGrad}  # the latter on OpenCL
    assert stable & {type(node.op) for node in toposort(train.outputs)}

    assert accuracy(test_x, test_y) < 0.5  # all-zero weights: one class for everything
    epoch_costs = []
    for _ in range(20):
        costs = [train(j) for j in range(len(train_x) // n)]
        assert all(c.dtype == np.float32 and np.isfinite(c) for c in costs)
        epoch_costs.append(float(np.mean(costs)))

    assert W.get_value().dtype == np.float32 and np.any(W.get_value() != 0)
    assert epoch_costs[-1] < epoch_costs[0] < np.log(4)
    assert epoch_costs[-1] < 0.15
    train_accuracy = accuracy(train_x, train_y)
    test_accuracy = accuracy(test_x, test_y)
    assert train_accuracy >= 0.95, train_accuracy
    assert test_accuracy >= 0.95, test_accuracy
