"""The launch benchmark: its probe kernel computes what it claims, and its rows and JSON lines
carry the measured times, with a second set from one PoCL worker thread."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinygraph.backends.opencl.vector_target import pocl_cpu

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "launches.py"
_SPEC = importlib.util.spec_from_file_location("tinygraph_launches_benchmark", SCRIPT)
launches = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(launches)


@pytest.fixture
def device(opencl_device):
    return opencl_device.device


def test_probe_computes_the_chain_in_every_work_group(device):
    x = np.linspace(-1, 1, 8, dtype=np.float32)
    expected = launches.chain(x, 300)
    assert not np.allclose(expected, x)
    np.testing.assert_allclose(launches.Probe(device).run(8, 300, x), expected, rtol=1e-5)


def test_measure_reports_times_and_how_parallel_the_groups_ran(device):
    rows = launches.measure(device, launches=4, reps=2, cases=[(1, 200), (2, 2000)])
    assert [(r["groups"], r["steps"]) for r in rows] == [(1, 200), (2, 2000)]
    for r in rows:
        assert r["group_us"] > 0 and r["kernel_us"] > 0 and r["wall_us"] > 0
        assert r["gap_us"] >= 0
        assert r["parallel"] == pytest.approx(r["groups"] * r["group_us"] / r["kernel_us"])
    # a longer chain takes longer: the probe's work is not optimised away
    assert rows[1]["group_us"] > rows[0]["group_us"]


def test_script_prints_the_table_and_json_for_all_threads_and_one(opencl_device):
    device, spec = opencl_device.device, opencl_device.spec.removeprefix("opencl:")
    run = subprocess.run([sys.executable, str(SCRIPT), "--device", spec,
                          "--launches", "3", "--reps", "1"],
                         capture_output=True, text=True, timeout=600, check=False)
    assert run.returncode == 0, run.stderr
    assert "parallel" in run.stdout.splitlines()[1]
    rows = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    threads = ["all"] + (["1"] if pocl_cpu(device) else [])
    assert sorted({r["threads"] for r in rows}) == sorted(threads)
    for name in threads:
        cases = [(r["groups"], r["steps"]) for r in rows if r["threads"] == name]
        assert cases == launches.CASES
