"""Training speed: tinygraph against the same network written by hand in NumPy and in PyTorch
on the CPU (when importable), in the same run, on real Fashion-MNIST.

Workloads (issue 5): W1 784-100-10 sigmoid, minibatch 10, eta 0.1 (network3's first example);
W2 784-200-60-10 ReLU, minibatch 256, eta 0.1; W3 784-1000-1000-10 ReLU, dropout 0.5 on both
hidden layers, minibatch 10, eta 0.03, lmbda 0.1 (L2 on the weights, not the biases). Plain
SGD on the mean softmax NLL, float32. All implementations start from tinygraph's initial
weights and train on the same shuffle order (dropout masks differ, so W3's accuracies only
agree closely). PyTorch uses as many threads as this process has cores.

Each run trains the three side by side, epoch by epoch: a tinygraph epoch, then a NumPy
epoch, then a PyTorch epoch, then tinygraph's next, with a 0.3 s pause before each (OpenBLAS's
and PyTorch's worker threads busy-wait after their last call and would take a core from the
next epoch), so that machine load hits all alike. ``--repeats`` runs start again from the same
seed; the first epoch of every run is a warm-up and is not timed. Prints a header, a table,
then JSON lines (a header with the machine and versions, one line per workload and
implementation): median seconds per timed epoch over all runs, min and max, examples/s,
validation and test accuracy after the last epoch (mean over runs), and tinygraph's time as a
ratio to each reference: the median over timed epochs of tinygraph's epoch time divided by
the reference's epoch run right after it (the JSON also has the spread of those ratios and the
ratio of the medians).

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


#: seconds of idle before each epoch, longer than OpenBLAS's and PyTorch's threads busy-wait
PAUSE_S = 0.3


class NumpyRun:
    """``NumpyMLP`` trained epoch by epoch in the trainer's shuffle order."""

    def __init__(self, spec, data, initial, seed: int) -> None:
        (self.x, self.y), self.validation, self.test = data
        self.spec = spec
        self.model = NumpyMLP(initial, spec["activation"], spec["dropout"], seed)
        self.generator = np.random.default_rng(seed)

    def epoch(self) -> float:
        """Train one epoch; its seconds."""
        spec, n = self.spec, len(self.x)
        batch = spec["batch"]
        order = self.generator.permutation(n)
        start = time.perf_counter()
        for i in range(n // batch):
            rows = order[i * batch:(i + 1) * batch]
            self.model.step(self.x[rows], self.y[rows], spec["eta"], spec["lmbda"] / n)
        return time.perf_counter() - start

    def accuracies(self) -> tuple[float, float]:
        return self.model.accuracy(*self.validation), self.model.accuracy(*self.test)


class TorchRun:
    """The PyTorch version a careful user writes, epoch by epoch: nn.Linear layers set from
    the initial arrays, F.cross_entropy, optim.SGD with weight decay lmbda/n on the weights
    only."""

    def __init__(self, spec, data, initial, seed: int) -> None:
        (x, y), self.validation, self.test = data
        self.spec = spec
        torch.manual_seed(seed)
        modules = []
        for w, b in zip(initial[0:-2:2], initial[1:-2:2]):
            modules += [self._linear(w, b), torch.nn.Sigmoid()
                        if spec["activation"] == "sigmoid" else torch.nn.ReLU()]
            if spec["dropout"]:
                modules.append(torch.nn.Dropout(spec["dropout"]))
        self.model = torch.nn.Sequential(*modules, self._linear(initial[-2], initial[-1]))
        linears = [m for m in self.model if isinstance(m, torch.nn.Linear)]
        self.optimizer = torch.optim.SGD(
            [{"params": [m.weight for m in linears], "weight_decay": spec["lmbda"] / len(x)},
             {"params": [m.bias for m in linears]}], lr=spec["eta"])
        self.x, self.y = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))
        self.generator = np.random.default_rng(seed)

    @staticmethod
    def _linear(w, b):
        layer = torch.nn.Linear(*w.shape)
        with torch.no_grad():
            layer.weight.copy_(torch.from_numpy(w.T))
            layer.bias.copy_(torch.from_numpy(b))
        return layer

    def epoch(self) -> float:
        """Train one epoch; its seconds."""
        n, batch = len(self.x), self.spec["batch"]
        order = torch.from_numpy(self.generator.permutation(n))
        self.model.train()
        start = time.perf_counter()
        for i in range(n // batch):
            rows = order[i * batch:(i + 1) * batch]
            loss = F.cross_entropy(self.model(self.x[rows]), self.y[rows])
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
        return time.perf_counter() - start

    def accuracies(self) -> tuple[float, float]:
        self.model.eval()
        with torch.no_grad():
            return tuple(float((self.model(torch.from_numpy(vx)).argmax(1).numpy() == vy).mean())
                         for vx, vy in (self.validation, self.test))


def run_side_by_side(spec, data, epochs: int, seed: int, device: str, with_torch: bool) -> dict:
    """One run: tinygraph's ``layers.SGD.fit`` with the references' epochs run between its
    epochs, all from tinygraph's initial weights. Returns {impl: (epoch seconds, validation
    accuracy, test accuracy)}."""
    tg.config.device = device
    net = build_network(spec, seed)
    initial = [p.get_value() for p in net.params]
    references = {"numpy": NumpyRun(spec, data, initial, seed)}
    if with_torch:
        references["torch"] = TorchRun(spec, data, initial, seed)
    times = {name: [] for name in references}

    def reference_epochs(_record) -> None:
        for name, reference in references.items():
            time.sleep(PAUSE_S)
            times[name].append(reference.epoch())
        time.sleep(PAUSE_S)

    time.sleep(PAUSE_S)
    sgd = SGD(net, eta=spec["eta"], lmbda=spec["lmbda"])
    result = sgd.fit(data[0], epochs, validation_data=data[1], test_data=data[2], seed=seed,
                     progress=False, on_epoch=reference_epochs)
    last = result.history[-1]
    runs = {"tinygraph": ([r.seconds for r in result.history], last.validation_accuracy,
                          last.test_accuracy)}
    for name, reference in references.items():
        runs[name] = (times[name], *reference.accuracies())
    return runs


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


def add_ratios(row: dict, reference: dict, runs, reference_runs) -> None:
    """tinygraph's time over the reference's, epoch by epoch (each timed epoch against the
    reference's epoch right after it): the median, min and max, and the ratio of medians."""
    impl = reference["impl"]
    paired = [t / r for (times, _, _), (ref_times, _, _) in zip(runs, reference_runs)
              for t, r in zip(times[1:], ref_times[1:])]
    row[f"ratio_to_{impl}"] = statistics.median(paired)
    row[f"ratio_to_{impl}_min"], row[f"ratio_to_{impl}_max"] = min(paired), max(paired)
    row[f"ratio_of_medians_to_{impl}"] = row["epoch_s"] / reference["epoch_s"]


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
        runs = {}
        for _ in range(args.repeats):
            run = run_side_by_side(spec, data, args.epochs, args.seed, args.device,
                                   with_torch=torch is not None and not args.no_torch)
            for impl, result in run.items():
                runs.setdefault(impl, []).append(result)
        trained = len(data[0][0]) // spec["batch"] * spec["batch"]
        rows = [summarise(name, impl, r, trained) for impl, r in runs.items()]
        for reference in rows[1:]:
            add_ratios(rows[0], reference, runs["tinygraph"], runs[reference["impl"]])
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
