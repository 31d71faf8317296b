"""Training speed: tinygraph against the same network written by hand in NumPy and in PyTorch
on the CPU (when importable), in the same run, on real Fashion-MNIST.

Workloads (issue 5): W1 784-100-10 sigmoid, minibatch 10, eta 0.1 (network3's first example);
W2 784-200-60-10 ReLU, minibatch 256, eta 0.1; W3 784-1000-1000-10 ReLU, dropout 0.5 on both
hidden layers, minibatch 10, eta 0.03, lmbda 0.1 (L2 on the weights, not the biases). Plain
SGD on the mean softmax NLL, float32. All implementations start from tinygraph's initial
weights and train on the same shuffle order (dropout masks differ, so W3's accuracies only
agree closely). PyTorch uses as many threads as this process has cores.

Each implementation runs ``--repeats`` times, interleaved (tinygraph, numpy, torch, tinygraph,
...) so that machine load hits all alike; the first epoch of every run is a warm-up and is not
timed. Prints a header, a table, then JSON lines (a header with the machine and versions, one
line per workload and implementation): median seconds per timed epoch over all runs, min and
max, examples/s, validation and test accuracy after the last epoch (mean over runs), and
tinygraph's time as a ratio to each reference.

    python benchmarks/training.py [--workloads W1 W2 W3] [--epochs 3] [--repeats 1]
        [--train-size 50000] [--device opencl] [--seed 0]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import time
from pathlib import Path

import numpy as np

import tinygraph as tg
from layers import SGD, Dropout, FullyConnected, Network, Softmax
from layers.datasets import load_fashion_mnist

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    torch = None

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
    """Train with layers.SGD; returns the initial parameters and (epoch seconds, accuracies)."""
    tg.config.device = device
    net = build_network(spec, seed)
    initial = [p.get_value() for p in net.params]
    sgd = SGD(net, eta=spec["eta"], lmbda=spec["lmbda"])
    result = sgd.fit(data[0], epochs, validation_data=data[1], test_data=data[2], seed=seed,
                     progress=False)
    last = result.history[-1]
    return initial, ([r.seconds for r in result.history], last.validation_accuracy,
                     last.test_accuracy)


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


def run_torch(spec, data, initial, epochs: int, seed: int):
    """The PyTorch version a careful user writes: nn.Linear layers set from the initial arrays,
    F.cross_entropy, optim.SGD with weight decay lmbda/n on the weights only."""
    (x, y), validation, test = data
    torch.manual_seed(seed)

    def linear(w, b):
        layer = torch.nn.Linear(*w.shape)
        with torch.no_grad():
            layer.weight.copy_(torch.from_numpy(w.T))
            layer.bias.copy_(torch.from_numpy(b))
        return layer

    modules = []
    for w, b in zip(initial[0:-2:2], initial[1:-2:2]):
        modules += [linear(w, b),
                    torch.nn.Sigmoid() if spec["activation"] == "sigmoid" else torch.nn.ReLU()]
        if spec["dropout"]:
            modules.append(torch.nn.Dropout(spec["dropout"]))
    model = torch.nn.Sequential(*modules, linear(initial[-2], initial[-1]))
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    n, batch = len(x), spec["batch"]
    optimizer = torch.optim.SGD([{"params": [m.weight for m in linears],
                                  "weight_decay": spec["lmbda"] / n},
                                 {"params": [m.bias for m in linears]}], lr=spec["eta"])
    x, y = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))
    generator = np.random.default_rng(seed)
    times = []
    model.train()
    for _ in range(epochs):
        order = torch.from_numpy(generator.permutation(n))
        start = time.perf_counter()
        for i in range(n // batch):
            rows = order[i * batch:(i + 1) * batch]
            loss = F.cross_entropy(model(x[rows]), y[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        times.append(time.perf_counter() - start)
    model.eval()
    with torch.no_grad():
        accuracies = [float((model(torch.from_numpy(vx)).argmax(1).numpy() == vy).mean())
                      for vx, vy in (validation, test)]
    return times, *accuracies


def machine_info(args) -> dict:
    """The machine, versions and device this run measured (the JSON header line)."""
    cpu = re.search(r"^model name\s*:\s*(.*)$", Path("/proc/cpuinfo").read_text(), re.M)
    device = tg.device_info(args.device)
    pocl = re.search(r"PoCL (\S+)", device) if args.device.startswith("opencl") else None
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True,
                            text=True, cwd=Path(__file__).parent)
    blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    return dict(kind="header", date=datetime.datetime.now().isoformat(timespec="seconds"),
                cpu=cpu and cpu.group(1), cores=len(os.sched_getaffinity(0)),
                loadavg=os.getloadavg(),
                python=platform.python_version(), numpy=np.__version__,
                blas=f"{blas['name']} {blas['version']}",
                torch=torch and torch.__version__, torch_threads=torch and torch.get_num_threads(),
                tinygraph_commit=commit.stdout.strip() or None, device=args.device,
                device_info=device, pocl=pocl and pocl.group(1), args=vars(args))


def summarise(workload: str, impl: str, runs, trained: int) -> dict:
    """Median and spread over the timed epochs of all runs; accuracies averaged over runs."""
    timed = [t for times, _, _ in runs for t in times[1:]]
    median = statistics.median(timed)
    return dict(kind="result", workload=workload, impl=impl, epoch_s=median,
                min_s=min(timed), max_s=max(timed), examples_per_s=trained / median,
                validation=statistics.mean(r[1] for r in runs),
                test=statistics.mean(r[2] for r in runs),
                epoch_s_all=[[round(t, 4) for t in times] for times, _, _ in runs])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", nargs="+", choices=list(WORKLOADS), default=list(WORKLOADS))
    parser.add_argument("--epochs", type=int, default=3, help="per run, the first a warm-up")
    parser.add_argument("--repeats", type=int, default=1, help="runs per implementation")
    parser.add_argument("--train-size", type=int, default=50000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="opencl", help="tinygraph's device")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch reference")
    args = parser.parse_args()
    if args.epochs < 2 or args.repeats < 1:
        parser.error("need --epochs >= 2 (the first is a warm-up) and --repeats >= 1")
    if torch is not None:
        torch.set_num_threads(len(os.sched_getaffinity(0)))
    train, validation, test = load_fashion_mnist(download=False)
    data = ((train[0][:args.train_size], train[1][:args.train_size]), validation, test)
    header = machine_info(args)
    print(f"{header['date']}  {header['cpu']}, {header['cores']} cores  numpy {header['numpy']} "
          f"({header['blas']})  torch {header['torch']} ({header['torch_threads']} threads)  "
          f"tinygraph {header['tinygraph_commit']}  load {header['loadavg'][0]:.2f}\n"
          f"{header['device_info']}")
    results = []
    for name in args.workloads:
        spec = WORKLOADS[name]
        runs = {"tinygraph": [], "numpy": [], "torch": []}
        for _ in range(args.repeats):
            initial, run = run_tinygraph(spec, data, args.epochs, args.seed, args.device)
            runs["tinygraph"].append(run)
            runs["numpy"].append(run_numpy(spec, data, initial, args.epochs, args.seed))
            if torch is not None and not args.no_torch:
                runs["torch"].append(run_torch(spec, data, initial, args.epochs, args.seed))
        trained = len(data[0][0]) // spec["batch"] * spec["batch"]
        rows = [summarise(name, impl, r, trained) for impl, r in runs.items() if r]
        for reference in rows[1:]:
            rows[0][f"ratio_to_{reference['impl']}"] = rows[0]["epoch_s"] / reference["epoch_s"]
        results += rows
    print(f"\n{'workload':8} {'impl':10} {'s/epoch':>8} {'min':>7} {'max':>7} {'ex/s':>8} "
          f"{'val':>7} {'test':>7} {'tg/numpy':>8} {'tg/torch':>8}")
    for r in results:
        ratios = [f"{r[k]:.2f}" if k in r else "" for k in ("ratio_to_numpy", "ratio_to_torch")]
        print(f"{r['workload']:8} {r['impl']:10} {r['epoch_s']:8.3f} {r['min_s']:7.3f} "
              f"{r['max_s']:7.3f} {r['examples_per_s']:8.0f} {r['validation']:7.2%} "
              f"{r['test']:7.2%} {ratios[0]:>8} {ratios[1]:>8}")
    header["loadavg_end"] = os.getloadavg()
    print(f"load average (1, 5, 15 min) at the end: {header['loadavg_end']}\n")
    for line in [header, *results]:
        print(json.dumps(line))


if __name__ == "__main__":
    main()
