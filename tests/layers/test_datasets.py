"""Tests for layers.datasets: IDX and CSV readers, file lookup, checksummed downloads."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import http.server
import os
import socket
import struct
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from layers.datasets import (
    DATASETS,
    DatasetError,
    cache_dir,
    download_file,
    load_fashion_mnist,
    load_mnist,
    read_idx,
    read_mnist_csv,
)
from layers.datasets.mnist import FILES

IDX_CODES = {
    np.dtype(np.uint8): 0x08,
    np.dtype(np.int8): 0x09,
    np.dtype(np.int16): 0x0B,
    np.dtype(np.int32): 0x0C,
    np.dtype(np.float32): 0x0D,
    np.dtype(np.float64): 0x0E,
}
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
ORIGINAL_FASHION = DATASETS["fashion-mnist"]


# --- fixture helpers ---------------------------------------------------------------------


def idx_bytes(array: np.ndarray) -> bytes:
    """Serialise ``array`` as an uncompressed IDX file."""
    header = bytes([0, 0, IDX_CODES[array.dtype], array.ndim])
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_idx(path: Path, array: np.ndarray, compress: bool | None = None) -> Path:
    """Write ``array`` to ``path`` as IDX, gzip-compressed if ``compress`` (default: by suffix)."""
    data = idx_bytes(array)
    if compress is None:
        compress = path.suffix == ".gz"
    path.write_bytes(gzip.compress(data, mtime=0) if compress else data)
    return path


def make_arrays(seed: int = 0, n_train: int = 30, n_test: int = 10) -> dict[str, np.ndarray]:
    """Small MNIST-shaped arrays keyed by IDX base file name."""
    rng = np.random.default_rng(seed)
    return {
        FILES[0]: rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        FILES[1]: rng.integers(0, 10, n_train, dtype=np.uint8),
        FILES[2]: rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        FILES[3]: rng.integers(0, 10, n_test, dtype=np.uint8),
    }


def write_dataset(directory: Path, seed: int = 0, gz: bool = True) -> dict[str, np.ndarray]:
    """Write a small fake MNIST into ``directory``; return its arrays."""
    directory.mkdir(parents=True, exist_ok=True)
    arrays = make_arrays(seed)
    for base, array in arrays.items():
        write_idx(directory / (f"{base}.gz" if gz else base), array)
    return arrays


def check_loaded(result, arrays: dict[str, np.ndarray], validation_size: int = 10) -> None:
    (x_train, y_train), (x_valid, y_valid), (x_test, y_test) = result
    images, labels = arrays[FILES[0]], arrays[FILES[1]]
    cut = len(images) - validation_size
    for x, y, imgs, labs in (
        (x_train, y_train, images[:cut], labels[:cut]),
        (x_valid, y_valid, images[cut:], labels[cut:]),
        (x_test, y_test, arrays[FILES[2]], arrays[FILES[3]]),
    ):
        assert x.dtype == np.float32 and x.shape == (len(imgs), 784)
        assert y.dtype == np.int32 and y.shape == (len(labs),)
        np.testing.assert_allclose(x, imgs.reshape(-1, 784) / 255.0, rtol=1e-6)
        np.testing.assert_array_equal(y, labs)


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No TINYGRAPH_DATA, a fresh cache, no real mirrors and no system copies."""
    monkeypatch.delenv("TINYGRAPH_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    for name, spec in list(DATASETS.items()):
        monkeypatch.setitem(DATASETS, name, dataclasses.replace(spec, mirrors=(), system_dirs=()))


# --- IDX ---------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_round_trip(tmp_path, dtype, suffix):
    array = (np.arange(2 * 3 * 4) * 7 % 256).astype(dtype).reshape(2, 3, 4)
    path = write_idx(tmp_path / f"a-idx3-ubyte{suffix}", array)
    out = read_idx(path)
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    np.testing.assert_array_equal(out, array)
    out[0, 0, 0] = 1  # a writable copy, not a view of the file buffer


@settings(max_examples=60, deadline=None)
@given(
    array=hnp.arrays(
        dtype=st.sampled_from(sorted(IDX_CODES, key=str)),
        shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=5),
    ),
    compress=st.booleans(),
)
def test_idx_round_trip_property(array, compress):
    with tempfile.TemporaryDirectory() as tmp:
        out = read_idx(write_idx(Path(tmp) / "x.idx", array, compress=compress))
    assert out.dtype == array.dtype and out.shape == array.shape
    assert out.tobytes() == array.tobytes()  # bit-exact, NaN payloads included


def test_gzip_detected_by_magic_not_extension(tmp_path):
    array = np.arange(5, dtype=np.uint8)
    gz_without_suffix = write_idx(tmp_path / "labels-idx1-ubyte", array, compress=True)
    raw_with_suffix = write_idx(tmp_path / "labels-idx1-ubyte.gz", array, compress=False)
    np.testing.assert_array_equal(read_idx(gz_without_suffix), array)
    np.testing.assert_array_equal(read_idx(raw_with_suffix), array)


GOOD = idx_bytes(np.arange(10, dtype=np.uint8))
BAD_IDX = {
    "empty": (b"", "empty"),
    "short": (b"\x00\x00", "too short"),
    "bad magic": (b"\x01\x02" + GOOD[2:], "not an IDX file"),
    "type code": (b"\x00\x00\x0a" + GOOD[3:], "unknown IDX type code 0x0A"),
    "zero dims": (b"\x00\x00\x08\x00", "0 dimensions"),
    "short header": (b"\x00\x00\x08\x03" + b"\x00" * 6, "declares 3 dimensions"),
    "truncated": (GOOD[:-4], "expected 10 bytes of data after the 8-byte header"),
    "trailing": (GOOD + b"\x00\x00", "2 trailing bytes"),
}


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("case", sorted(BAD_IDX))
def test_idx_rejects(tmp_path, case, compress):
    data, fragment = BAD_IDX[case]
    path = tmp_path / "broken-idx1-ubyte"
    path.write_bytes(gzip.compress(data) if compress else data)
    with pytest.raises(DatasetError, match=fragment) as info:
        read_idx(path)
    assert "broken-idx1-ubyte" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_idx_truncated_message_is_actionable(tmp_path):
    header = b"\x00\x00\x08\x03" + struct.pack(">3I", 60000, 28, 28)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(header + bytes(1000)))
    with pytest.raises(DatasetError) as info:
        read_idx(path)
    message = str(info.value)
    assert f"{path}: expected 47040000 bytes of data" in message
    assert "found 1000" in message and "truncated" in message
    assert "delete it and download again" in message


@pytest.mark.parametrize("damage", ["cut", "flip"])
def test_idx_corrupt_gzip(tmp_path, damage):
    data = gzip.compress(idx_bytes(np.arange(4096, dtype=np.int32)))
    if damage == "cut":
        data = data[: len(data) // 2]
    else:
        data = data[:-8] + bytes([data[-8] ^ 0xFF]) + data[-7:]  # CRC no longer matches
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(data)
    with pytest.raises(DatasetError, match="corrupt gzip") as info:
        read_idx(path)
    assert "t10k-labels-idx1-ubyte.gz" in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_idx_missing_file(tmp_path):
    with pytest.raises(DatasetError, match="nothing-here"):
        read_idx(tmp_path / "nothing-here")


# --- CSV ---------------------------------------------------------------------------------


def csv_text(images: np.ndarray, labels: np.ndarray, header: bool, newline: str = "\n") -> str:
    lines = [",".join(["label"] + [f"{r}x{c}" for r in range(1, 29) for c in range(1, 29)])]
    lines = lines if header else []
    lines += [",".join(map(str, [lab, *img])) for img, lab in zip(images, labels, strict=True)]
    return newline.join(lines) + newline


@pytest.mark.parametrize("header", [False, True])
def test_csv_good(tmp_path, header):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (5, 784), dtype=np.uint8)
    labels = rng.integers(0, 10, 5, dtype=np.uint8)
    path = tmp_path / "mnist_test.csv"
    path.write_text(csv_text(images, labels, header))
    got_images, got_labels = read_mnist_csv(path)
    assert got_images.dtype == np.uint8 and got_images.shape == (5, 784)
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)


def test_csv_crlf_blank_lines_and_gzip(tmp_path):
    images = np.full((2, 784), 255, dtype=np.uint8)
    labels = np.array([9, 0], dtype=np.uint8)
    path = tmp_path / "mnist.csv.gz"
    path.write_bytes(gzip.compress((csv_text(images, labels, True, "\r\n") + "\r\n\n").encode()))
    got_images, got_labels = read_mnist_csv(path)
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)


def bad_csv_line(label: str = "3", pixel: str = "0", columns: int = 785) -> str:
    return ",".join([label, pixel] + ["0"] * (columns - 2))


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        (bad_csv_line(columns=784), "expected 785 comma-separated values .* found 784"),
        (bad_csv_line(columns=786), "expected 785 .* found 786"),
        (bad_csv_line(pixel="1.5"), "column 2: '1.5' is not an integer"),
        (bad_csv_line(label="x"), "column 1: 'x' is not an integer"),
        (bad_csv_line(pixel="256"), "pixel value 256 in column 2 is out of range 0..255"),
        (bad_csv_line(pixel="-1"), "pixel value -1 .* out of range"),
        (bad_csv_line(label="10"), "label 10 is out of range 0..9"),
        (bad_csv_line(pixel="9" * 30), "pixel value 9{30} in column 2 is out of range"),
    ],
)
def test_csv_bad_line_reports_line_number(tmp_path, line, fragment):
    path = tmp_path / "train.csv"
    good = bad_csv_line()
    # header, two good lines, a blank line, the bad line (line 5), one more good line
    path.write_text(csv_text(np.zeros((0, 784)), [], True) + f"{good}\n{good}\n\n{line}\n{good}\n")
    with pytest.raises(DatasetError, match=f"train.csv: line 5: {fragment}"):
        read_mnist_csv(path)


def test_csv_bad_header_and_empty(tmp_path):
    path = tmp_path / "h.csv"
    path.write_text("label,1x1,1x2\n" + bad_csv_line() + "\n")
    with pytest.raises(DatasetError, match="h.csv: line 1: the header has 3 columns"):
        read_mnist_csv(path)
    path.write_text("\n\n")
    with pytest.raises(DatasetError, match="h.csv: the file has no data lines"):
        read_mnist_csv(path)


# --- local lookup and loading ------------------------------------------------------------


@pytest.mark.parametrize("gz", [True, False])
def test_load_from_data_dir(tmp_path, gz):
    arrays = write_dataset(tmp_path / "data", gz=gz)
    result = load_mnist(tmp_path / "data", validation_size=10, download=False)
    check_loaded(result, arrays)
    assert result[0][0].min() >= 0.0 and result[0][0].max() <= 1.0


def test_dtype_and_validation_size(tmp_path):
    write_dataset(tmp_path / "d")
    (x, _), (xv, yv), _ = load_mnist(tmp_path / "d", validation_size=0, dtype="float64")
    assert x.dtype == np.float64 and x.shape == (30, 784) and xv.shape == (0, 784)
    assert yv.shape == (0,)
    with pytest.raises(ValueError, match="validation_size must be between 0 and 30"):
        load_mnist(tmp_path / "d")  # the default 10,000 exceeds 30 training images
    with pytest.raises(ValueError, match="dtype must be float32 or float64"):
        load_mnist(tmp_path / "d", validation_size=10, dtype="int32")


def test_lookup_order(tmp_path, monkeypatch):
    explicit = write_dataset(tmp_path / "explicit", seed=1)
    env = write_dataset(tmp_path / "env" / "mnist", seed=2)
    cached = write_dataset(cache_dir("mnist"), seed=3)
    monkeypatch.setenv("TINYGRAPH_DATA", str(tmp_path / "env"))
    check_loaded(load_mnist(tmp_path / "explicit", validation_size=10, download=False), explicit)
    check_loaded(load_mnist(validation_size=10, download=False), env)
    monkeypatch.delenv("TINYGRAPH_DATA")
    check_loaded(load_mnist(validation_size=10, download=False), cached)


def test_lookup_subdirectories_and_incomplete_dirs(tmp_path, monkeypatch):
    nested = write_dataset(tmp_path / "root" / "mnist", seed=4)
    check_loaded(load_mnist(tmp_path / "root", validation_size=10, download=False), nested)
    direct = write_dataset(tmp_path / "flat", seed=5, gz=False)
    monkeypatch.setenv("TINYGRAPH_DATA", str(tmp_path / "flat"))
    check_loaded(load_fashion_mnist(validation_size=10, download=False), direct)
    (tmp_path / "flat" / FILES[3]).unlink()  # an incomplete directory is skipped
    cached = write_dataset(cache_dir("fashion-mnist"), seed=6)
    check_loaded(load_fashion_mnist(validation_size=10, download=False), cached)


def test_system_dirs_come_after_cache(tmp_path, monkeypatch):
    system = write_dataset(tmp_path / "system", seed=7)
    spec = dataclasses.replace(DATASETS["fashion-mnist"], system_dirs=(str(tmp_path / "system"),))
    monkeypatch.setitem(DATASETS, "fashion-mnist", spec)
    check_loaded(load_fashion_mnist(validation_size=10, download=False), system)
    cached = write_dataset(cache_dir("fashion-mnist"), seed=8)
    check_loaded(load_fashion_mnist(validation_size=10, download=False), cached)


def test_cache_dir_locations(tmp_path, monkeypatch):
    assert cache_dir("mnist") == tmp_path / "cache" / "tinygraph" / "datasets" / "mnist"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    expected = tmp_path / "home" / ".cache" / "tinygraph" / "datasets" / "fashion-mnist"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")  # ignored, as the XDG spec says
    assert cache_dir("fashion-mnist") == expected
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_dir("fashion-mnist") == expected


def test_missing_without_download(tmp_path):
    with pytest.raises(DatasetError) as info:
        load_mnist(tmp_path / "nowhere", download=False)
    message = str(info.value)
    assert "download=False" in message and "train-images-idx3-ubyte.gz" in message
    assert str(tmp_path / "nowhere") in message and str(cache_dir("mnist")) in message
    assert "TINYGRAPH_DATA" in message


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (lambda a: a.update({FILES[1]: a[FILES[1]][:-1]}), "has 30 images but .* has 29 labels"),
        (lambda a: a.update({FILES[2]: a[FILES[2]][:, :, :27]}), r"shape \(n, 28, 28\)"),
        (lambda a: a[FILES[3]].__setitem__(4, 10), "label 10 at index 4 is out of range 0..9"),
        (lambda a: a.update({FILES[1]: a[FILES[1]].astype(np.int32)}), "uint8 labels"),
    ],
)
def test_load_validates_contents(tmp_path, edit, fragment):
    arrays = make_arrays()
    edit(arrays)
    (tmp_path / "d").mkdir()
    for base, array in arrays.items():
        write_idx(tmp_path / "d" / base, array)
    with pytest.raises(DatasetError, match=fragment):
        load_mnist(tmp_path / "d", validation_size=10, download=False)


def test_corrupt_cached_file_is_reported(tmp_path):
    write_dataset(cache_dir("mnist"))
    path = cache_dir("mnist") / f"{FILES[0]}.gz"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DatasetError, match=f"{FILES[0]}.gz: corrupt gzip .* download again"):
        load_mnist(validation_size=10)


@pytest.mark.skipif(not DEBIAN_FASHION.is_dir(), reason="Debian's dataset-fashion-mnist is absent")
def test_debian_fashion_mnist(monkeypatch):
    spec = dataclasses.replace(ORIGINAL_FASHION, mirrors=())  # real lookup, never the network
    monkeypatch.setitem(DATASETS, "fashion-mnist", spec)
    (x, y), (xv, yv), (xt, yt) = load_fashion_mnist(download=False)
    assert x.shape == (50000, 784) and xv.shape == (10000, 784) and xt.shape == (10000, 784)
    assert y.shape == (50000,) and yv.shape == (10000,) and yt.shape == (10000,)
    assert x.dtype == np.float32 and y.dtype == np.int32
    assert 0.0 <= x.min() and x.max() == 1.0
    assert np.array_equal(np.bincount(yt), np.full(10, 1000))


# --- downloads from a local server -------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        self.server.requests.append(self.path)
        if self.path.startswith("/slow/"):
            self.server.release.wait(5)
            return
        body = self.server.routes.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.routes, srv.requests, srv.release = {}, [], threading.Event()
    srv.url = f"http://127.0.0.1:{srv.server_port}"
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield srv
    srv.release.set()
    srv.shutdown()
    srv.server_close()
    thread.join()


@pytest.fixture
def served(server, monkeypatch):
    """Fake MNIST .gz files under /good/ (right bytes) and /bad/ (wrong bytes), registered."""
    arrays = make_arrays(seed=9)
    sums = {}
    for base, array in arrays.items():
        data = gzip.compress(idx_bytes(array), mtime=0)
        sums[f"{base}.gz"] = hashlib.sha256(data).hexdigest()
        server.routes[f"/good/{base}.gz"] = data
        server.routes[f"/bad/{base}.gz"] = gzip.compress(idx_bytes(array[::-1].copy()))
    for name in DATASETS:
        monkeypatch.setitem(DATASETS, name, dataclasses.replace(DATASETS[name], sha256=sums))
    return arrays


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/"


def cache_listing(name: str = "mnist") -> list[str]:
    directory = cache_dir(name)
    return sorted(os.listdir(directory)) if directory.is_dir() else []


def test_download_falls_through_404_then_loads(server, served):
    seen = []
    mirrors = [f"{server.url}/missing/", f"{server.url}/good"]
    result = load_mnist(validation_size=10, mirrors=mirrors, progress=lambda *a: seen.append(a))
    check_loaded(result, served)
    assert cache_listing() == sorted(f"{base}.gz" for base in FILES)
    assert server.requests[:2] == [f"/missing/{FILES[0]}.gz", f"/good/{FILES[0]}.gz"]
    assert seen[-1][0] == f"{FILES[3]}.gz" and seen[-1][1] == seen[-1][2]
    server.requests.clear()
    check_loaded(load_mnist(validation_size=10, mirrors=mirrors), served)
    assert server.requests == []  # the cache is used from now on


def test_download_uses_registry_mirrors_and_only_missing_files(server, served, monkeypatch):
    spec = dataclasses.replace(DATASETS["fashion-mnist"], mirrors=(f"{server.url}/good/",))
    monkeypatch.setitem(DATASETS, "fashion-mnist", spec)
    cache_dir("fashion-mnist").mkdir(parents=True)
    write_idx(cache_dir("fashion-mnist") / FILES[0], served[FILES[0]])  # cached uncompressed
    check_loaded(load_fashion_mnist(validation_size=10), served)
    assert sorted(server.requests) == sorted(f"/good/{base}.gz" for base in FILES[1:])


def test_checksum_mismatch_leaves_no_file(server, served):
    with pytest.raises(DatasetError, match="SHA-256 mismatch") as info:
        load_mnist(validation_size=10, mirrors=[f"{server.url}/bad/"])
    assert f"{server.url}/bad/{FILES[0]}.gz" in str(info.value)
    assert cache_listing() == []  # neither the final name nor a leftover temporary file
    check_loaded(
        load_mnist(validation_size=10, mirrors=[f"{server.url}/bad/", f"{server.url}/good/"]),
        served,
    )
    assert cache_listing() == sorted(f"{base}.gz" for base in FILES)


def test_all_mirrors_failing_gives_offline_error(server, served):
    mirrors = [f"{server.url}/missing/", closed_port_url()]
    with pytest.raises(DatasetError) as info:
        load_mnist(validation_size=10, mirrors=mirrors, timeout=5)
    message = str(info.value)
    assert "could not download train-images-idx3-ubyte.gz" in message
    assert "HTTP 404" in message and "cannot connect" in message
    assert str(cache_dir("mnist")) in message and "TINYGRAPH_DATA" in message
    assert cache_listing() == []


def test_no_mirrors_configured(tmp_path):
    with pytest.raises(DatasetError, match="no mirrors configured"):
        load_mnist(tmp_path)


def test_download_timeout(server, served, tmp_path):
    name = f"{FILES[1]}.gz"
    sha = DATASETS["mnist"].sha256[name]
    with pytest.raises(DatasetError, match="timed out"):
        download_file(name, tmp_path, mirrors=[f"{server.url}/slow/"], sha256=sha, timeout=0.3)
    assert os.listdir(tmp_path) == []
    path = download_file(
        name, tmp_path, mirrors=[f"{server.url}/slow/", f"{server.url}/good/"], sha256=sha,
        timeout=0.3,
    )
    assert path == tmp_path / name
    np.testing.assert_array_equal(read_idx(path), served[FILES[1]])


def test_unwritable_download_directory(tmp_path):
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(DatasetError, match="cannot write to the directory"):
        download_file("x.gz", tmp_path / "file" / "sub", mirrors=[closed_port_url()], sha256="0")
