"""Training speed: tinygraph against the same network written by hand in NumPy (and PyTorch on
the CPU when importable), in the same run, on real Fashion-MNIST.

Workloads (issue 5): W1 784-100-10 sigmoid, minibatch 10, eta 0.1 (network3's first example);
W2 784-200-60-10 ReLU, minibatch 256, eta 0.1; W3 784-1000-1000-10 ReLU, dropout 0.5 on both
hidden layers, minibatch 10, eta 0.03, lmbda 0.1. All use the same initial weights and the
same shuffle order. Prints a table and one JSON line per (workload, implementation): median
seconds per epoch after a warm-up epoch, the spread, examples/s, validation and test accuracy,
and tinygraph's time as a ratio of each reference.

    python benchmarks/training.py [--workloads W1 W2] [--epochs 3] [--train-size 50000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

import tinygraph as tg
from layers import SGD, Dropout, FullyConnected, Network, Softmax
from layers.datasets import load_fashion_mnist

WORKLOADS = {
    "W1": dict(hidden=[100], activation="sigmoid", batch=10, eta=0.1, lmbda=0.0, dropout=0.0),
    "W2": dict(hidden=[200, 60], activation="relu", batch=256, eta=0.1, lmbda=0.0, dropout=0.0),
    "W3": dict(hidden=[1000, 1000], activation="relu", batch=10, eta=0.03, lmbda=0.1,
               dropout=0.5),
}


def build_network(spec, seed: int) -> Network:
    layers, width = [], 784
    for size in spec["hidden"]:
        layers.append(FullyConnected(width, size, activation=spec["activation"]))
        if spec["dropout"]:
            layers.append(Dropout(spec["dropout"]))
        width = size
    layers.append(Softmax(width, 10))
    return Network(layers, spec["batch"], seed=seed)


def run_tinygraph(spec, data, epochs: int, seed: int, device: str):
    tg.config.device = device
    net = build_network(spec, seed)
    initial = [p.get_value() for p in net.params]
    sgd = SGD(net, eta=spec["eta"], lmbda=spec["lmbda"])
    result = sgd.fit(data[0], epochs, validation_data=data[1], test_data=data[2], seed=seed,
                     progress=False)
    last = result.history[-1]
    return initial, [r.seconds for r in result.history], last.validation_accuracy, \
        last.test_accuracy


class NumpyMLP:
    """The careful by-hand version: vectorised minibatch backprop, float32 throughout."""

    def __init__(self, params, activation: str, dropout: float, seed: int) -> None:
        self.weights = [p.copy() for p in params[0::2]]
        self.biases = [p.copy() for p in params[1::2]]
        self.activation = activation
        self.dropout = dropout
        self.rng = np.random.default_rng(seed + 1)

    def _act(self, z):
        return 1 / (1 + np.exp(-z)) if self.activation == "sigmoid" else np.maximum(z, 0)

    def _act_grad(self, a):
        return a * (1 - a) if self.activation == "sigmoid" else (a > 0).astype(a.dtype)

    def step(self, x, y, eta: float, l2: float) -> None:
        inputs, hidden, masks = [x], [], []
        for w, b in zip(self.weights[:-1], self.biases[:-1]):
            a = self._act(inputs[-1] @ w + b)
            hidden.append(a)
            if self.dropout:
                keep = self.rng.random(a.shape, dtype=np.float32) >= self.dropout
                masks.append(keep.astype(np.float32) / (1 - self.dropout))
                a = a * masks[-1]
            inputs.append(a)
        z = inputs[-1] @ self.weights[-1] + self.biases[-1]
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        p[np.arange(len(y)), y] -= 1
        delta = p / len(y)
        for layer in range(len(self.weights) - 1, -1, -1):
            gw = inputs[layer].T @ delta
            gb = delta.sum(axis=0)
            if layer:
                delta = delta @ self.weights[layer].T
                if self.dropout:
                    delta *= masks[layer - 1]
                delta *= self._act_grad(hidden[layer - 1])
            if l2:
                self.weights[layer] *= 1 - eta * l2
            self.weights[layer] -= eta * gw
            self.biases[layer] -= eta * gb

    def accuracy(self, x, y) -> float:
        a = x
        for w, b in zip(self.weights[:-1], self.biases[:-1]):
            a = self._act(a @ w + b)
        return float(np.mean(np.argmax(a @ self.weights[-1] + self.biases[-1], axis=1) == y))


def run_numpy(spec, data, initial, epochs: int, seed: int):
    (x, y), validation, test = data
    model = NumpyMLP(initial, spec["activation"], spec["dropout"], seed)
    generator = np.random.default_rng(seed)
    batch, n = spec["batch"], len(x)
    times = []
    for _ in range(epochs):
        order = generator.permutation(n)
        start = time.perf_counter()
        for i in range(n // batch):
            rows = order[i * batch:(i + 1) * batch]
            model.step(x[rows], y[rows], spec["eta"], spec["lmbda"] / n)
        times.append(time.perf_counter() - start)
    return times, model.accuracy(*validation), model.accuracy(*test)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train-size", type=int, default=50000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="opencl")
    args = parser.parse_args()
    train, validation, test = load_fashion_mnist(download=False)
    train = (train[0][:args.train_size], train[1][:args.train_size])
    data = (train, validation, test)
    print(tg.device_info(args.device) if args.device != "numpy" else "NumPy backend")
    rows = []
    for name in args.workloads:
        spec = WORKLOADS[name]
        initial, tg_times, tg_val, tg_test = run_tinygraph(spec, data, args.epochs, args.seed,
                                                           args.device)
        np_times, np_val, np_test = run_numpy(spec, data, initial, args.epochs, args.seed)
        for impl, times, val, tst in (("tinygraph", tg_times, tg_val, tg_test),
                                      ("numpy", np_times, np_val, np_test)):
            timed = times[1:] or times
            rows.append(dict(workload=name, impl=impl, epoch_s=statistics.median(timed),
                             spread_s=max(timed) - min(timed),
                             examples_per_s=len(train[0]) / statistics.median(timed),
                             validation=val, test=tst))
        rows[-2]["ratio_to_numpy"] = rows[-2]["epoch_s"] / rows[-1]["epoch_s"]
    print(f"{'workload':8} {'impl':10} {'s/epoch':>8} {'spread':>7} {'ex/s':>8} "
          f"{'val':>6} {'test':>6} {'ratio':>6}")
    for r in rows:
        ratio = f"{r['ratio_to_numpy']:.2f}" if "ratio_to_numpy" in r else ""
        print(f"{r['workload']:8} {r['impl']:10} {r['epoch_s']:8.2f} {r['spread_s']:7.2f} "
              f"{r['examples_per_s']:8.0f} {r['validation']:6.2%} {r['test']:6.2%} {ratio:>6}")
    for r in rows:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
