"""The training benchmark end to end on a slice of the real Fashion-MNIST: tinygraph and the
NumPy reference train side by side from the same weights in the same order, so their W1
accuracies agree, and each ratio is the median of the per-epoch ratios."""

import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "training.py"
FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.skipif(not FASHION.is_dir(), reason="needs Debian's dataset-fashion-mnist")
def test_w1_trains_side_by_side_with_numpy(backend):
    if backend != "opencl":
        pytest.skip("the benchmark trains on OpenCL")
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--workloads", "W1", "--epochs", "3",
         "--train-size", "2000", "--no-torch", "--device", "opencl"],
        capture_output=True, text=True, timeout=600, check=False)
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    results = {line["impl"]: line for line in lines if line["kind"] == "result"}
    assert set(results) == {"tinygraph", "numpy"}
    ours, numpy = results["tinygraph"], results["numpy"]
    assert ours["validation"] > 0.5
    assert abs(ours["validation"] - numpy["validation"]) <= 0.001
    assert abs(ours["test"] - numpy["test"]) <= 0.001
    (our_epochs,), (numpy_epochs,) = ours["epoch_s_all"], numpy["epoch_s_all"]
    assert len(our_epochs) == len(numpy_epochs) == 3
    paired = [a / b for a, b in zip(our_epochs[1:], numpy_epochs[1:])]
    # epoch_s_all is rounded to 0.1 ms, the ratios are not
    rounding = 0.5e-4 * (1 / min(our_epochs[1:]) + 1 / min(numpy_epochs[1:]))
    assert ours["ratio_to_numpy"] == pytest.approx(statistics.median(paired), rel=rounding)
    assert ours["ratio_to_numpy_min"] <= ours["ratio_to_numpy"] <= ours["ratio_to_numpy_max"]
