"""The GEMM benchmark's rows: one per device, all timed in one alternation, with each device's
time paired against the first device's batch by batch."""

import importlib.util
from pathlib import Path

import numpy as np
import pyopencl as cl
import pytest

_SPEC = importlib.util.spec_from_file_location(
    "tinygraph_gemm_benchmark", Path(__file__).parents[2] / "benchmarks" / "gemm.py")
gemm_benchmark = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(gemm_benchmark)


@pytest.fixture
def devices(opencl_device):
    """Two contexts with a queue each on the tests' OpenCL device."""
    device = opencl_device.device
    contexts = [cl.Context([device]) for _ in range(2)]
    return [(context, cl.CommandQueue(context)) for context in contexts]


def test_rows_pair_each_device_with_the_first(devices, monkeypatch):
    batches = [np.array([1.0, 2.0, 3.0]), np.array([2.0, 2.0, 6.0]), np.array([4.0, 4.0, 4.0])]
    timed = []

    def fake_batch_times(fns, reps):
        timed.append(len(fns))
        for fn, finish in fns:
            fn()
            finish()
        return batches

    monkeypatch.setattr(gemm_benchmark, "batch_times", fake_batch_times)
    first, second = gemm_benchmark.bench(devices, "NT", 5, 40, 24, np.float32, reps=3)
    assert timed == [3]  # both devices and NumPy in one alternation
    assert first["vs_first"] == 1.0
    assert second["vs_first"] == pytest.approx(0.5)  # median of 1/2, 2/2, 3/6
    assert first["ratio"] == pytest.approx(2.0) and second["ratio"] == pytest.approx(2.0)
    assert first["numpy_us"] == second["numpy_us"] == pytest.approx(4e6)
    assert first["best_ratio"] == pytest.approx(4.0) and second["best_ratio"] == pytest.approx(2.0)


def test_one_device_has_no_pairing(devices, monkeypatch):
    monkeypatch.setattr(gemm_benchmark, "SETTLE", 0.0)
    monkeypatch.setattr(gemm_benchmark, "WARM_S", 0.001)
    (row,) = gemm_benchmark.bench(devices[:1], "TN", 12, 30, 20, np.float32, reps=1)
    assert "vs_first" not in row
    assert row["opencl_us"] > 0 and row["ratio"] == pytest.approx(
        row["numpy_us"] / row["opencl_us"])


def test_every_device_computes_the_product(devices, monkeypatch):
    """bench checks each device's result against NumPy: a wrong product on one fails."""
    real_plan = gemm_benchmark.gemm.GemmPlan
    made = []

    def plan_with_wrong_alpha_on_second(*args, **kwargs):
        plan = real_plan(*args, **kwargs)
        made.append(plan)
        if len(made) == 2:
            enqueue = plan.enqueue
            plan.enqueue = lambda *a, **k: enqueue(*a, **k, alpha=2.0)
        return plan

    monkeypatch.setattr(gemm_benchmark, "SETTLE", 0.0)
    monkeypatch.setattr(gemm_benchmark, "WARM_S", 0.001)
    monkeypatch.setattr(gemm_benchmark.gemm, "GemmPlan", plan_with_wrong_alpha_on_second)
    with pytest.raises(AssertionError):
        gemm_benchmark.bench(devices, "NN", 6, 30, 20, np.float32, reps=1)
