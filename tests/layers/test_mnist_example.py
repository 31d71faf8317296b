"""End-to-end runs of examples/mnist.py on a tiny synthetic IDX data set, on the real
Fashion-MNIST when installed, and with a missing data set."""

from __future__ import annotations

import gzip
import importlib.util
import os
import re
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tinygraph as tg
from layers import Network
from layers.datasets.mnist import FILES
from layers.network3 import load_data_shared

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "mnist.py"
FASHION = Path("/usr/share/datasets/fashion-mnist")
spec = importlib.util.spec_from_file_location("mnist_example", SCRIPT)
example = importlib.util.module_from_spec(spec)
spec.loader.exec_module(example)


def write_idx_gz(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(gzip.compress(header + array.tobytes(), mtime=0))


def write_fake_mnist(directory: Path, n_train: int = 10200, n_test: int = 50) -> None:
    """Gzipped IDX files with the four standard names; each class lights its own block."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for images_name, labels_name, n in ((FILES[0], FILES[1], n_train),
                                        (FILES[2], FILES[3], n_test)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = rng.integers(0, 40, (n, 28, 28)).astype(np.uint8)
        for digit in range(10):
            images[labels == digit, 2 * digit:2 * digit + 4, 4:24] = 255
        write_idx_gz(directory / f"{images_name}.gz", images)
        write_idx_gz(directory / f"{labels_name}.gz", labels)


def best_accuracy(output: str) -> float:
    match = re.search(r"Best validation accuracy of ([\d.]+)% obtained at epoch (\d+); "
                      r"corresponding test accuracy of ([\d.]+)%", output)
    assert match, output
    return float(match.group(1)) / 100


def test_cli_on_synthetic_data(backend, tmp_path, capsys):
    write_fake_mnist(tmp_path / "mnist")
    model = tmp_path / "net.npz"
    args = ["--data-dir", str(tmp_path), "--device", backend, "--epochs", "2",
            "--train-size", "200", "--hidden", "20", "10", "--activation", "relu",
            "--dropout", "0.2", "--momentum", "0.5", "--lmbda", "0.1", "--no-progress",
            "--save", str(model)]
    plot = importlib.util.find_spec("matplotlib") is not None
    if plot:
        args += ["--plot", str(tmp_path / "curves.png")]
    assert example.main(args) == 0
    output = capsys.readouterr().out
    assert output.startswith("Device: ")
    assert len(re.findall(r"^Epoch \d: training cost [\d.]+, validation accuracy [\d.]+%, "
                          r"test accuracy [\d.]+%, [\d.]+ s, [\d,]+ examples/s$", output,
                          re.M)) == 2
    assert best_accuracy(output) > 0.5
    net = Network.load(model)
    assert [layer.n_out for layer in net.layers] == [20, 10, 10]
    assert (tmp_path / "curves.png").is_file() == plot


@pytest.mark.skipif(not FASHION.is_dir(), reason="Debian's dataset-fashion-mnist is absent")
def test_cli_on_fashion_mnist(backend, capsys):
    # the floor: 70% validation accuracy after 2 epochs on 3000 examples (about 76% seen)
    assert example.main(["--dataset", "fashion-mnist", "--data-dir", str(FASHION),
                         "--device", backend, "--train-size", "3000", "--epochs", "2",
                         "--no-progress"]) == 0
    assert best_accuracy(capsys.readouterr().out) >= 0.70


def test_missing_data_set_exits_with_status_2(tmp_path):
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "TINYGRAPH_DATA": ""}
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), "--data-dir", str(tmp_path / "empty"), "--no-download",
         "--device", "numpy"], capture_output=True, text=True, env=env, timeout=120)
    assert completed.returncode == 2, completed.stderr
    assert "MNIST files not found" in completed.stderr
    assert "Traceback" not in completed.stderr


def test_network3_load_data_shared(tmp_path):
    write_fake_mnist(tmp_path / "mnist", n_train=10030, n_test=20)
    training, validation, test = load_data_shared(tmp_path)
    assert training[0].get_value().shape == (30, 784)
    assert tg.function([], validation[1], device="numpy")().dtype == np.int32
    assert test[0].get_value().shape == (20, 784)
