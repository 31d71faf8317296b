"""Time GemmPlan against NumPy (OpenBLAS) on the shapes an MLP on MNIST uses, and 1024^3.

Run: python benchmarks/gemm.py [--device P:D ...] [--reps N] [--float64] [--only OP,M,K,N ...].
--device takes device D of OpenCL platform P (default: the first PoCL platform's CPU); on this
machine 0:0 is Debian's PoCL 3.1 (AVX-512), 1:0 the pip PoCL 3.0 (AVX2). Each timing is 20
back-to-back launches and one finish, alternating with NumPy. The table shows medians over
the repeats, the ratio numpy time / OpenCL time (>= 1: OpenCL as fast), and "best", the ratio
of the fastest batches, which shows less of the load from other processes. With several
--device options every case runs on each device in the same alternation, and "vs first" is
the median over the repeats of the first device's time divided by this device's (below 1:
slower than the first device): a comparison of devices that a slow spell of the machine hits
alike. One JSON line per row follows.
"""

import argparse
import json
import time

import numpy as np
import pyopencl as cl

from tinygraph.backends.opencl import gemm

SHAPES = [(10, 784, 100), (256, 784, 200), (10, 1000, 1000), (1024, 1024, 1024)]
CASES = [(op, *s) for s in SHAPES for op in ("NN", "NT", "TN")] + [
    ("TN", 784, 10, 100),
    ("NT", 256, 200, 784),
]
SIGMOID = "1 / (1 + exp(-v))"
BATCH = 20
# OpenBLAS worker threads busy-wait for about 0.1 s after a call (THREAD_TIMEOUT, 2^28
# cycles): a batch started sooner shares the cores with them, so batches start this much later.
SETTLE = 0.15
# Seconds of untimed calls before each timed batch, so both sides are timed in their steady
# state, as in training, where kernels run back to back for a whole epoch. On this VM PoCL's
# kernels run up to 1.5x slower for the first 20-50 ms after an idle pause (256x784x200 NN:
# 600-650 us with 3 warm-up calls, 410 us after 50 ms of calls; NumPy 430-450 us either way).
WARM_S = 0.1


def batch_times(fns, reps):
    """Seconds per call of each (fn, finish) pair in reps batches of BATCH calls each.

    The batches of the candidates alternate, so load from other processes hits all alike, each
    after a pause of SETTLE seconds, so none runs beside the previous one's spinning threads,
    and WARM_S seconds of untimed calls.
    """
    times = [[] for _ in fns]
    for i in range(reps + 1):
        for fn, finish, out in zip(*zip(*fns), times):
            time.sleep(SETTLE)
            warm_until = time.perf_counter() + WARM_S
            while time.perf_counter() < warm_until:
                fn()
                finish()
            t0 = time.perf_counter()
            for _ in range(BATCH):
                fn()
            finish()
            if i:
                out.append((time.perf_counter() - t0) / BATCH)
    return [np.array(t) for t in times]


def bench(devices, op, m, k, n, dtype, reps, fused=False):
    """Rows of the table, one per (context, queue) in ``devices``: times for the plan on that
    device and for NumPy on the same operands, all timed in one alternation."""
    rng = np.random.default_rng(0)
    trans_a, trans_b = op[0] == "T", op[1] == "T"
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
    bias = rng.standard_normal(n).astype(dtype)
    c = np.empty((m, n), dtype)
    mf = cl.mem_flags
    candidates, checks = [], []
    for context, queue in devices:
        bufs = [
            cl.Buffer(context, mf.READ_ONLY | mf.COPY_HOST_PTR, hostbuf=x) for x in (a, b, bias)
        ]
        c_buf = cl.Buffer(context, mf.READ_WRITE, c.nbytes)
        plan = gemm.GemmPlan(
            context,
            m,
            n,
            k,
            trans_a=trans_a,
            trans_b=trans_b,
            dtype=dtype,
            bias=fused,
            epilogue=SIGMOID if fused else None,
        )
        extra = {"bias": bufs[2]} if fused else {}
        candidates.append((_enqueuer(plan, queue, bufs[0], bufs[1], c_buf, extra), queue.finish))
        checks.append((queue, c_buf))
    a_op, b_op = (a.T if trans_a else a), (b.T if trans_b else b)
    if fused:

        def numpy_fn():
            np.matmul(a_op, b_op, out=c)
            np.add(c, bias, out=c)
            np.negative(c, out=c)
            with np.errstate(over="ignore"):  # exp overflows to inf: the sigmoid is then 0
                np.exp(c, out=c)
            np.add(c, 1, out=c)
            np.reciprocal(c, out=c)
    else:

        def numpy_fn():
            np.matmul(a_op, b_op, out=c)

    *cl_times, np_times = batch_times(candidates + [(numpy_fn, lambda: None)], reps)
    for queue, c_buf in checks:
        result = np.empty_like(c)
        cl.enqueue_copy(queue, result, c_buf)
        np.testing.assert_allclose(result, c, rtol=1e-3, atol=1e-4 * k)
    t_np, flop = float(np.median(np_times)), 2.0 * m * n * k
    rows = []
    for times in cl_times:
        t_cl = float(np.median(times))
        row = {
            "op": op + (" +bias+sigmoid" if fused else ""),
            "m": m,
            "k": k,
            "n": n,
            "dtype": np.dtype(dtype).name,
            "opencl_us": t_cl * 1e6,
            "numpy_us": t_np * 1e6,
            "opencl_gflops": flop / t_cl / 1e9,
            "numpy_gflops": flop / t_np / 1e9,
            "ratio": t_np / t_cl,
            "best_ratio": float(np_times.min() / times.min()),
        }
        if len(devices) > 1:
            row["vs_first"] = float(np.median(cl_times[0] / times))
        rows.append(row)
    return rows


def _enqueuer(plan, queue, a, b, c, extra):
    """A function enqueueing the plan's product of these buffers on ``queue``."""
    return lambda: plan.enqueue(queue, a, b, c, **extra)


def _device(spec):
    """The OpenCL device of a "P:D" spec, or the first PoCL platform's CPU for None."""
    if spec:
        p, d = (int(i) for i in spec.split(":"))
        return cl.get_platforms()[p].get_devices()[d]
    platform = next(p for p in cl.get_platforms() if "Portable Computing Language" in p.name)
    return platform.get_devices(cl.device_type.CPU)[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=15, help="timed batches per measurement")
    parser.add_argument("--float64", action="store_true", help="also time float64")
    parser.add_argument(
        "--device",
        metavar="P:D",
        action="append",
        help="OpenCL platform and device index; repeat to compare devices",
    )
    parser.add_argument(
        "--only", nargs="+", metavar="OP,M,K,N", help="time only these cases (e.g. NT,10,784,100)"
    )
    args = parser.parse_args()
    devices = []
    for index, spec in enumerate(args.device or [None]):
        device = _device(spec)
        context = cl.Context([device])
        devices.append((context, cl.CommandQueue(context)))
        print(f"device {index}: {device.platform.version} / {device.name}")
    cases = CASES
    if args.only:
        cases = [(op, *map(int, rest)) for op, *rest in (c.split(",") for c in args.only)]
    dtypes = [np.float32] + ([np.float64] if args.float64 else [])
    rows = []
    for dtype in dtypes:
        for op, m, k, n in cases:
            rows.append(bench(devices, op, m, k, n, dtype, args.reps))
        if not args.only:
            rows.append(bench(devices, "NN", 10, 784, 100, dtype, args.reps, fused=True))
    several = len(devices) > 1
    print(
        f"{'op':<16}{'m':>6}{'k':>6}{'n':>6} {'dtype':<8}"
        + (f"{'dev':>4}" if several else "")
        + f"{'OpenCL us':>11}{'numpy us':>10}{'OpenCL GF/s':>13}{'numpy GF/s':>12}{'ratio':>7}"
        f"{'best':>6}" + (f"{'vs first':>9}" if several else "")
    )
    for case in rows:
        for index, r in enumerate(case):
            print(
                f"{r['op']:<16}{r['m']:>6}{r['k']:>6}{r['n']:>6} {r['dtype']:<8}"
                + (f"{index:>4}" if several else "")
                + f"{r['opencl_us']:>11.1f}{r['numpy_us']:>10.1f}{r['opencl_gflops']:>13.1f}"
                f"{r['numpy_gflops']:>12.1f}{r['ratio']:>7.2f}{r['best_ratio']:>6.2f}"
                + (f"{r['vs_first']:>9.2f}" if several else "")
            )
    for case in rows:
        for index, r in enumerate(case):
            r = ({"device": index} if several else {}) | r
            print(
                json.dumps(
                    {key: round(v, 3) if isinstance(v, float) else v for key, v in r.items()}
                )
            )
    for _, queue in devices:
        queue.finish()


if __name__ == "__main__":
    main()
