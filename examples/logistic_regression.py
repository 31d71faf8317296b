"""Train a softmax (logistic) regression on a synthetic 4-class problem with tinygraph.

Run: python examples/logistic_regression.py [--epochs 20] [--seed 0]
"""

from __future__ import annotations

import argparse

import numpy as np

import tinygraph as tg


def make_blobs(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Four Gaussian blobs in 2-d, one per class."""
    centres = np.array([[2, 2], [-2, 2], [-2, -2], [2, -2]], dtype="float32")
    labels = rng.integers(0, 4, size=n).astype("int32")
    points = centres[labels] + rng.normal(scale=0.8, size=(n, 2)).astype("float32")
    return points, labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=20)
    parser.add_argument("--eta", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    train_x, train_y = make_blobs(2000, rng)
    test_x, test_y = make_blobs(500, rng)
    data_x, data_y = tg.shared(train_x, name="data_x"), tg.shared(train_y, name="data_y")

    x, y, i = tg.matrix("x"), tg.ivector("y"), tg.lscalar("i")
    W = tg.shared(np.zeros((2, 4), "float32"), name="W")
    b = tg.shared(np.zeros(4, "float32"), name="b")
    p = tg.softmax(x @ W + b)
    cost = -tg.mean(tg.log(p)[tg.arange(y.shape[0]), y])
    gW, gb = tg.grad(cost, [W, b])
    n = args.batch_size
    train = tg.function([i], cost, updates=[(W, W - args.eta * gW), (b, b - args.eta * gb)],
                        givens={x: data_x[i * n:(i + 1) * n], y: data_y[i * n:(i + 1) * n]},
                        name="train")
    accuracy = tg.function([x, y], tg.mean(tg.eq(tg.argmax(p, axis=1), y)), name="accuracy")

    for epoch in range(args.epochs):
        costs = [train(j) for j in range(len(train_x) // n)]
        print(f"epoch {epoch}: cost {np.mean(costs):.4f}, "
              f"test accuracy {accuracy(test_x, test_y):.2%}")


if __name__ == "__main__":
    main()
