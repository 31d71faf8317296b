"""Where a training step spends its time: the kernel table of one workload's compiled SGD step
(OpenCL event times), the launches per step, and the host-side cost of a step.

    python benchmarks/step_profile.py [--workloads W1 W2 W3] [--steps 500]

"device us/step" sums the kernels' event times; "wall us/step" is the time per step of the
same function compiled without profiling, steps enqueued back to back with one sync at the end
(what the trainer does in an epoch); "host us/step" is the time the Python side takes to
enqueue a step, measured the same way but on calls that only return once enqueued.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from training import WORKLOADS, build_network

import tinygraph as tg
from layers import SGD
from layers.datasets import load_fashion_mnist


def compile_step(spec, train_x, train_y, profile: bool) -> tuple[tg.Function, int]:
    net = build_network(spec, seed=0)
    sgd = SGD(net, eta=spec["eta"], lmbda=spec["lmbda"])
    n = len(train_x)
    data_x, data_y = tg.shared(train_x, name="train_x"), tg.shared(train_y, name="train_y")
    perm = tg.shared(np.random.default_rng(0).permutation(n), name="perm")
    tg.config.profile = profile
    try:
        return sgd._compile(data_x, data_y, perm, n), n // spec["batch"]
    finally:
        tg.config.profile = False


def profile_workload(name: str, train, steps: int) -> dict:
    spec = WORKLOADS[name]
    fn, batches = compile_step(spec, *train, profile=True)
    steps = min(steps, batches)
    for index in range(steps):
        fn(index)
    fn.sync()
    rows = fn.profile.rows()
    calls = fn.profile.calls
    launches = sum(count for _, count, *_ in rows) / calls
    device_us = sum(total for _, _, total, *_ in rows) / calls * 1e6
    fn.profile.summary()
    fast, _ = compile_step(spec, *train, profile=False)
    for index in range(10):
        fast(index)
    fast.sync()
    walls = []
    for _ in range(3):
        start = time.perf_counter()
        for index in range(steps):
            fast(index)
        fast.sync()
        walls.append((time.perf_counter() - start) / steps * 1e6)
    return dict(workload=name, launches_per_step=launches, device_us_per_step=device_us,
                wall_us_per_step=float(np.median(walls)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS))
    parser.add_argument("--steps", type=int, default=500)
    args = parser.parse_args()
    (x, y), _, _ = load_fashion_mnist(download=False)
    print(tg.device_info())
    results = [profile_workload(name, (x, y), args.steps) for name in args.workloads]
    for result in results:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
