"""MNIST and Fashion-MNIST: find the IDX files, download them if absent, split and scale.

Directories searched, in order, for the four files (each either gzip ``NAME.gz`` or
uncompressed ``NAME``; the first directory holding all four is used):

1. ``data_dir`` if given, then ``data_dir/<name>``;
2. ``$TINYGRAPH_DATA/<name>``, then ``$TINYGRAPH_DATA`` itself, if the variable is set;
3. the cache, ``$XDG_CACHE_HOME/tinygraph/datasets/<name>`` (default
   ``~/.cache/tinygraph/datasets/<name>``);
4. system copies: for Fashion-MNIST Debian's ``/usr/share/datasets/fashion-mnist``
   (package ``dataset-fashion-mnist``).

``<name>`` is ``mnist`` or ``fashion-mnist``. Both data sets use the same file names, so a
``TINYGRAPH_DATA`` holding files directly serves whichever loader is called. If no directory
is complete and ``download`` is true, the missing ``.gz`` files are downloaded into the
cache from the mirrors of ``DATASETS[<name>]``, tried in order, and checked against the
SHA-256 sums there. Files found locally are not checksummed (Debian recompresses its copy),
only checked for a well-formed IDX structure.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from .download import Progress, download_file
from .errors import DatasetError
from .idx import read_idx

ENV_VAR = "TINYGRAPH_DATA"

#: Base names of the training images, training labels, test images and test labels.
FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

Split = tuple[np.ndarray, np.ndarray]


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """Where a data set lives: cache name, download mirrors, checksums and system copies."""

    name: str
    title: str
    mirrors: tuple[str, ...]
    #: SHA-256 of each ``<file>.gz`` as served by the mirrors.
    sha256: Mapping[str, str]
    system_dirs: tuple[str, ...] = ()


#: The registry of known data sets; tests replace entries to point at a local server.
DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        name="mnist",
        title="MNIST",
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ),
        sha256={
            "train-images-idx3-ubyte.gz":
                "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "train-labels-idx1-ubyte.gz":
                "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "t10k-images-idx3-ubyte.gz":
                "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "t10k-labels-idx1-ubyte.gz":
                "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        },
    ),
    "fashion-mnist": DatasetSpec(
        name="fashion-mnist",
        title="Fashion-MNIST",
        mirrors=(
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        ),
        sha256={
            "train-images-idx3-ubyte.gz":
                "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            "train-labels-idx1-ubyte.gz":
                "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            "t10k-images-idx3-ubyte.gz":
                "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            "t10k-labels-idx1-ubyte.gz":
                "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        },
        system_dirs=("/usr/share/datasets/fashion-mnist",),
    ),
}


def cache_dir(name: str) -> Path:
    """The download cache of data set ``name``: ``$XDG_CACHE_HOME/tinygraph/datasets/<name>``."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):  # unset, empty or relative: ignored, as the XDG spec says
        base = os.path.join(Path.home(), ".cache")
    return Path(base) / "tinygraph" / "datasets" / name


def search_dirs(spec: DatasetSpec, data_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """The directories searched for ``spec``'s files, in order (see the module docstring)."""
    dirs = []
    if data_dir is not None:
        root = Path(data_dir).expanduser()
        dirs += [root, root / spec.name]
    env = os.environ.get(ENV_VAR)
    if env:
        root = Path(env).expanduser()
        dirs += [root / spec.name, root]
    dirs.append(cache_dir(spec.name))
    dirs += [Path(d) for d in spec.system_dirs]
    return dirs


def _find(directory: Path, base: str) -> Path | None:
    for candidate in (directory / f"{base}.gz", directory / base):
        if candidate.is_file():
            return candidate
    return None


def _locate(
    spec: DatasetSpec,
    data_dir: str | os.PathLike[str] | None,
    download: bool,
    mirrors: Sequence[str] | None,
    timeout: float,
    progress: Progress | None,
) -> list[Path]:
    """Return the paths of the four files, downloading missing ones into the cache."""
    dirs = search_dirs(spec, data_dir)
    for directory in dirs:
        found = [_find(directory, base) for base in FILES]
        if all(found):
            return found
    wanted = ", ".join(f"{base}.gz" for base in FILES)
    where = "\n".join(f"  {d}" for d in dirs)
    advice = (
        f"Put {wanted} (gzip or uncompressed) in one of:\n{where}\n"
        f"or set {ENV_VAR} to a directory holding them directly or in a "
        f"'{spec.name}/' subdirectory."
    )
    if not download:
        raise DatasetError(f"{spec.title} files not found and download=False.\n{advice}")
    cache = cache_dir(spec.name)
    paths = []
    for base in FILES:
        path = _find(cache, base)
        if path is None:
            name = f"{base}.gz"
            try:
                path = download_file(
                    name,
                    cache,
                    mirrors=spec.mirrors if mirrors is None else mirrors,
                    sha256=spec.sha256[name],
                    timeout=timeout,
                    progress=progress,
                )
            except DatasetError as exc:
                raise DatasetError(f"{spec.title}: {exc}\n{advice}") from None
        paths.append(path)
    return paths


def _check_pair(
    images: np.ndarray, labels: np.ndarray, image_path: Path, label_path: Path
) -> None:
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DatasetError(
            f"{image_path}: expected uint8 images of shape (n, 28, 28), found "
            f"{images.dtype} {images.shape}"
        )
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise DatasetError(
            f"{label_path}: expected uint8 labels of shape (n,), found {labels.dtype} "
            f"{labels.shape}"
        )
    if len(images) != len(labels):
        raise DatasetError(
            f"{image_path} has {len(images)} images but {label_path} has {len(labels)} labels"
        )
    if labels.size and labels.max() > 9:
        index = int(np.argmax(labels > 9))
        raise DatasetError(
            f"{label_path}: label {labels[index]} at index {index} is out of range 0..9"
        )


def load_dataset(
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    validation_size: int = 10000,
    download: bool = True,
    dtype: str | np.dtype = "float32",
    mirrors: Sequence[str] | None = None,
    timeout: float = 30.0,
    progress: Progress | None = None,
) -> tuple[Split, Split, Split]:
    """Load registered data set ``name`` as ``(train, validation, test)`` pairs ``(x, y)``.

    ``x`` is ``dtype`` (float32 or float64) of shape (n, 784) scaled to [0, 1], ``y`` int32
    of shape (n,). The last ``validation_size`` training images form the validation set.
    ``mirrors`` overrides the registry's mirror list; ``timeout`` is per network operation.
    """
    spec = DATASETS[name]
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    paths = _locate(spec, data_dir, download, mirrors, timeout, progress)
    train_images, train_labels, test_images, test_labels = (read_idx(p) for p in paths)
    _check_pair(train_images, train_labels, paths[0], paths[1])
    _check_pair(test_images, test_labels, paths[2], paths[3])
    if not 0 <= validation_size <= len(train_images):
        raise ValueError(
            f"validation_size must be between 0 and {len(train_images)}, got {validation_size}"
        )

    def pair(images: np.ndarray, labels: np.ndarray) -> Split:
        x = images.reshape(len(images), 28 * 28).astype(dtype)
        x /= 255
        return x, labels.astype(np.int32)

    cut = len(train_images) - validation_size
    return (
        pair(train_images[:cut], train_labels[:cut]),
        pair(train_images[cut:], train_labels[cut:]),
        pair(test_images, test_labels),
    )


def load_mnist(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    validation_size: int = 10000,
    download: bool = True,
    dtype: str | np.dtype = "float32",
    mirrors: Sequence[str] | None = None,
    timeout: float = 30.0,
    progress: Progress | None = None,
) -> tuple[Split, Split, Split]:
    """MNIST digits as ``(train, validation, test)``: 50,000 / 10,000 / 10,000 by default."""
    return load_dataset(
        "mnist", data_dir, validation_size=validation_size, download=download, dtype=dtype,
        mirrors=mirrors, timeout=timeout, progress=progress,
    )


def load_fashion_mnist(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    validation_size: int = 10000,
    download: bool = True,
    dtype: str | np.dtype = "float32",
    mirrors: Sequence[str] | None = None,
    timeout: float = 30.0,
    progress: Progress | None = None,
) -> tuple[Split, Split, Split]:
    """Fashion-MNIST as ``(train, validation, test)``: 50,000 / 10,000 / 10,000 by default."""
    return load_dataset(
        "fashion-mnist", data_dir, validation_size=validation_size, download=download,
        dtype=dtype, mirrors=mirrors, timeout=timeout, progress=progress,
    )
