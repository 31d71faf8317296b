"""Data sets for ``layers``: IDX and CSV readers, and MNIST / Fashion-MNIST loaders.

``load_mnist()`` and ``load_fashion_mnist()`` return ``(train, validation, test)``, each an
``(x, y)`` pair with ``x`` float32 (n, 784) in [0, 1] and ``y`` int32 (n,). See
:mod:`layers.datasets.mnist` for where files are looked for and downloaded to.
"""

from .csv import read_mnist_csv
from .download import download_file
from .errors import DatasetError
from .idx import read_idx
from .mnist import DATASETS, DatasetSpec, cache_dir, load_dataset, load_fashion_mnist, load_mnist

__all__ = [
    "DATASETS",
    "DatasetError",
    "DatasetSpec",
    "cache_dir",
    "download_file",
    "load_dataset",
    "load_fashion_mnist",
    "load_mnist",
    "read_idx",
    "read_mnist_csv",
]
