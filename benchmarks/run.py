"""Every benchmark of issue 5 on one or more OpenCL devices, in one command: the training
workloads against NumPy and PyTorch (training.py), the per-step kernel table and launch count
(step_profile.py), the GEMM micro-benchmark (gemm.py) and the cost of a launch (launches.py).

    python benchmarks/run.py [--devices opencl:0:0 opencl:1:0] [--epochs 3] [--repeats 2]
        [--out benchmarks/results]

Each script runs as its own process (one OpenCL platform per process keeps the PoCLs apart);
its output is printed and also written to ``<out>/<date>-<HHMM>-<device>-<script>.txt`` (the
date and time the command started), whose JSON lines are the machine-readable results.
"""

from __future__ import annotations

import argparse
import datetime
import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).parent


def run(script: str, args: list[str], out: pathlib.Path) -> None:
    command = [sys.executable, str(HERE / script), *args]
    print("$", " ".join(command), flush=True)
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    out.write_text(result.stdout + result.stderr)
    print(result.stdout + result.stderr, flush=True)
    if result.returncode:
        raise SystemExit(f"{script} failed with exit code {result.returncode}; see {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", nargs="+", default=["opencl"])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--workloads", nargs="+", default=["W1", "W2", "W3"])
    parser.add_argument("--out", type=pathlib.Path, default=HERE / "results")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    started = datetime.datetime.now().strftime("%Y-%m-%d-%H%M")
    for device in args.devices:
        stem = f"{started}-{device.replace(':', '_')}"
        run("training.py", ["--device", device, "--epochs", str(args.epochs),
                            "--repeats", str(args.repeats), "--workloads", *args.workloads],
            args.out / f"{stem}-training.txt")
        run("step_profile.py", ["--device", device, "--workloads", *args.workloads],
            args.out / f"{stem}-step_profile.txt")
        gemm_device = device.split(":", 1)[1] if device.count(":") == 2 else None
        run("gemm.py", ["--reps", "10"] + (["--device", gemm_device] if gemm_device else []),
            args.out / f"{stem}-gemm.txt")
        run("launches.py", ["--device", gemm_device] if gemm_device else [],
            args.out / f"{stem}-launches.txt")


if __name__ == "__main__":
    main()
