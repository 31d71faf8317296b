"""Where a training step spends its time: the kernel table of one workload's compiled SGD step
(OpenCL event times), the launches per step, and the host-side cost of a step.

    python benchmarks/step_profile.py [--workloads W1 W2 W3] [--steps 500] [--device opencl]

"device us/step" sums the kernels' event times (each kernel waited for, so it includes no
overlap); "wall us/step" is the median time per step of the same function compiled without
profiling, steps enqueued back to back with one sync at the end (what the trainer does in an
epoch), over three repeats after a warm-up; "host us/step" the CPU time the Python thread
spends per step in those calls (host pass and enqueueing: the per-launch overhead).
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
    n, size = len(train_x), spec["batch"]
    batches = n // size
    data_x, data_y = tg.shared(train_x, name="train_x"), tg.shared(train_y, name="train_y")
    order = np.random.default_rng(0).permutation(n)[:batches * size]
    perm = tg.shared(order.reshape(batches, size), name="perm")
    tg.config.profile = profile
    try:
        return sgd._compile(data_x, data_y, perm, n), batches, sgd
    finally:
        tg.config.profile = False


def profile_workload(name: str, train, steps: int) -> dict:
    spec = WORKLOADS[name]
    fn, batches, _ = compile_step(spec, *train, profile=True)
    steps = min(steps, batches)
    for _ in range(steps):
        fn()
    fn.sync()
    rows = fn.profile.rows()
    calls = fn.profile.calls
    launches = sum(count for _, count, *_ in rows) / calls
    device_us = sum(total for _, _, total, *_ in rows) / calls * 1e6
    fn.profile.summary()
    fast, _, sgd = compile_step(spec, *train, profile=False)
    walls, hosts = [], []
    for _ in range(4):
        sgd._step.set_value(np.zeros(1, "int64"))
        start, host_start = time.perf_counter(), time.thread_time()
        for _ in range(steps):
            fast()
        hosts.append((time.thread_time() - host_start) / steps * 1e6)
        fast.sync()
        walls.append((time.perf_counter() - start) / steps * 1e6)
    print(f"{name}: {launches:.0f} launches per step, kernels {device_us:.0f} us, host "
          f"{np.median(hosts[1:]):.0f} us, wall {np.median(walls[1:]):.0f} us per step\n")
    return dict(workload=name, launches_per_step=launches, device_us_per_step=device_us,
                host_us_per_step=float(np.median(hosts[1:])),
                wall_us_per_step=float(np.median(walls[1:])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS))
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--device", default="opencl")
    args = parser.parse_args()
    tg.config.device = args.device
    (x, y), _, _ = load_fashion_mnist(download=False)
    print(tg.device_info(args.device))
    results = [profile_workload(name, (x, y), args.steps) for name in args.workloads]
    for result in results:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
