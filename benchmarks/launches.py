"""How the OpenCL device runs short kernels: the cost of a launch, and whether a kernel's
work-groups share the cores, by kernel length and work-group count.

    python benchmarks/launches.py [--device P:D] [--launches 200] [--reps 5] [--no-one-thread]

A probe kernel runs a dependent chain of ``steps`` float multiply-adds in each of ``groups``
one-item work-groups. Per (groups, steps) the table shows, as medians over the repeats:

* ``group us``: the event time of a kernel of one work-group of that length;
* ``kernel us``: the event time of the kernel, launched back to back on a profiling queue;
* ``gap us``: from one kernel's end to the next one's start in that stream;
* ``wall us``: wall time per launch of ``--launches`` launches back to back on a plain queue
  and one finish (what an epoch of training steps sees);
* ``parallel``: groups x group us / kernel us: 1 when the work-groups ran one after the other,
  the number of cores when they all ran at once.

On a PoCL device the same runs again in a child process with ``POCL_MAX_PTHREAD_COUNT=1``
(PoCL's pthread device with one worker thread), and "1 thread" rows follow: comparing them
shows what the second worker thread adds to or costs a kernel of each length. JSON lines
follow the table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
import pyopencl as cl

from tinygraph.backends.opencl.device import select_device
from tinygraph.backends.opencl.vector_target import pocl_cpu

SOURCE = """
__kernel void probe(__global float *x, const int steps) {
  const size_t i = get_global_id(0);
  float s = x[i];
  for (int k = 0; k < steps; ++k)
    s = s * 0.999f + 1.0f;
  x[i] = s;
}
"""
CASES = [(groups, steps) for steps in (1000, 5000, 20000, 80000) for groups in (1, 2, 8)]


def chain(x: np.ndarray, steps: int) -> np.ndarray:
    """What the probe computes from ``x``, in float32 on the host."""
    s = x.astype(np.float32)
    for _ in range(steps):
        s = s * np.float32(0.999) + np.float32(1.0)
    return s


class Probe:
    """The probe kernel on one device, with a plain and a profiling in-order queue."""

    def __init__(self, device) -> None:
        self.context = cl.Context([device])
        self.queue = cl.CommandQueue(self.context)
        self.profiled = cl.CommandQueue(
            self.context, properties=cl.command_queue_properties.PROFILING_ENABLE)
        self.kernel = cl.Kernel(cl.Program(self.context, SOURCE).build(), "probe")
        self.kernel.set_scalar_arg_dtypes([None, np.int32])
        self.buffer = cl.Buffer(self.context, cl.mem_flags.READ_WRITE, 4 * max(g for g, _ in
                                                                            CASES))

    def run(self, groups: int, steps: int, x: np.ndarray) -> np.ndarray:
        """The probe's result for ``x`` (``groups`` values): the check that it computes."""
        cl.enqueue_copy(self.queue, self.buffer, x.astype(np.float32))
        self.kernel.set_args(self.buffer, steps)
        cl.enqueue_nd_range_kernel(self.queue, self.kernel, (groups,), (1,))
        out = np.empty(groups, np.float32)
        cl.enqueue_copy(self.queue, out, self.buffer)
        return out

    def events(self, groups: int, steps: int, launches: int) -> tuple[float, float]:
        """Median event time of a kernel and median gap between kernels, in us, of
        ``launches`` launches back to back on the profiling queue."""
        self.kernel.set_args(self.buffer, steps)
        events = [cl.enqueue_nd_range_kernel(self.profiled, self.kernel, (groups,), (1,))
                  for _ in range(launches)]
        self.profiled.finish()
        times = [(e.profile.start, e.profile.end) for e in events]
        kernel = np.median([end - start for start, end in times]) / 1e3
        gap = np.median([b[0] - a[1] for a, b in zip(times, times[1:])]) / 1e3 \
            if launches > 1 else 0.0
        return float(kernel), float(gap)

    def wall(self, groups: int, steps: int, launches: int) -> float:
        """Wall time per launch, in us, of ``launches`` launches back to back and one finish."""
        self.kernel.set_args(self.buffer, steps)  # typed: set once, then only enqueues
        kernel, queue = self.kernel, self.queue
        queue.finish()
        start = time.perf_counter()
        for _ in range(launches):
            cl.enqueue_nd_range_kernel(queue, kernel, (groups,), (1,))
        self.queue.finish()
        return (time.perf_counter() - start) / launches * 1e6


def measure(device, launches: int, reps: int, cases=CASES) -> list[dict]:
    """One row per (groups, steps) of ``cases``: medians over ``reps`` repeats."""
    probe = Probe(device)
    rows = []
    for groups, steps in cases:
        samples = []
        for _ in range(reps):
            single, _ = probe.events(1, steps, launches)
            kernel, gap = probe.events(groups, steps, launches)
            samples.append((single, kernel, gap, probe.wall(groups, steps, launches)))
        single, kernel, gap, wall = (float(np.median(column)) for column in zip(*samples))
        rows.append({"groups": groups, "steps": steps, "group_us": single, "kernel_us": kernel,
                     "gap_us": gap, "wall_us": wall,
                     "parallel": groups * single / kernel if kernel > 0 else float("nan")})
    return rows


def one_thread_rows(args) -> list[dict]:
    """The rows of the same run in a child process with one PoCL worker thread."""
    command = [sys.executable, __file__, "--json-only", "--no-one-thread",
               "--launches", str(args.launches), "--reps", str(args.reps)]
    command += ["--device", args.device] if args.device else []
    env = dict(os.environ, POCL_MAX_PTHREAD_COUNT="1")
    child = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if child.returncode:
        raise SystemExit(f"the one-thread run failed:\n{child.stderr}")
    return [json.loads(line) for line in child.stdout.splitlines() if line.startswith("{")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", metavar="P:D",
                        help="OpenCL platform and device index (default: tinygraph's choice)")
    parser.add_argument("--launches", type=int, default=200, help="launches per timing")
    parser.add_argument("--reps", type=int, default=5, help="repeats per case")
    parser.add_argument("--no-one-thread", action="store_true",
                        help="skip the run with one PoCL worker thread")
    parser.add_argument("--json-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    device = select_device(f"opencl:{args.device}" if args.device else "opencl").device
    x = np.linspace(0, 1, 8, dtype=np.float32)
    if not np.allclose(Probe(device).run(8, 1000, x), chain(x, 1000), rtol=1e-4):
        raise SystemExit("the probe kernel computed a wrong result on this device")
    rows = [{"threads": "all"} | row for row in measure(device, args.launches, args.reps)]
    if not args.no_one_thread and pocl_cpu(device):
        rows += [row | {"threads": "1"} for row in one_thread_rows(args)]
    if not args.json_only:
        print(f"device: {device.platform.version} / {device.name}, "
              f"{device.max_compute_units} compute units")
        print(f"{'threads':>8}{'groups':>7}{'steps':>7}{'group us':>10}{'kernel us':>11}"
              f"{'gap us':>8}{'wall us':>9}{'parallel':>10}")
        for r in rows:
            print(f"{r['threads']:>8}{r['groups']:>7}{r['steps']:>7}{r['group_us']:>10.1f}"
                  f"{r['kernel_us']:>11.1f}{r['gap_us']:>8.1f}{r['wall_us']:>9.1f}"
                  f"{r['parallel']:>10.2f}")
    for r in rows:
        print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in r.items()}))


if __name__ == "__main__":
    main()
