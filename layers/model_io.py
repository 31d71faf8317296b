"""Model files: one ``.npz`` holding a JSON metadata string and the weight arrays.

The metadata records the format name and version, the layers (kind and constructor
arguments, activations by name) and the minibatch size. Files are read with
``allow_pickle=False`` and written atomically (a temporary file in the same directory, then
``os.replace``), so a failed save leaves an existing file intact. Unreadable files raise
:class:`ModelFileError` naming the file and the problem.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from .layers import LAYER_KINDS, FullyConnected
from .network import Network

FORMAT = "tinygraph.layers.model"
VERSION = 1


class ModelFileError(ValueError):
    """A model or checkpoint file that cannot be read: truncated, corrupt, of another format
    or version, or inconsistent with what it should hold."""


def write_npz(path: str | os.PathLike[str], metadata: dict, arrays: dict[str, np.ndarray]
              ) -> None:
    """Write ``metadata`` (as JSON) and ``arrays`` to ``path`` atomically."""
    path = Path(path)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as file:
            np.savez(file, metadata=np.array(json.dumps(metadata)), **arrays)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read_npz(path: str | os.PathLike[str], expected_format: str, version: int
             ) -> tuple[dict, dict[str, np.ndarray]]:
    """``(metadata, arrays)`` of a file written by :func:`write_npz`, checking its format
    name and version."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except FileNotFoundError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise ModelFileError(f"{path}: not a readable .npz file (truncated or corrupt?): "
                             f"{exc}") from None
    raw = arrays.pop("metadata", None)
    if raw is None or raw.shape != () or raw.dtype.kind != "U":
        raise ModelFileError(f"{path}: no metadata string; not a {expected_format} file")
    try:
        metadata = json.loads(str(raw))
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"{path}: corrupt metadata: {exc}") from None
    if not isinstance(metadata, dict) or metadata.get("format") != expected_format:
        raise ModelFileError(f"{path}: not a {expected_format} file")
    if metadata.get("version") != version:
        raise ModelFileError(f"{path}: format version {metadata.get('version')!r} is not "
                             f"supported (this version of layers reads version {version})")
    return metadata, arrays


def save(net: Network, path: str | os.PathLike[str]) -> None:
    """Write ``net``'s architecture and weights to ``path``."""
    layers = []
    for index, layer in enumerate(net.layers):
        config = layer.config()
        if isinstance(layer, FullyConnected) and layer.activation_name is None:
            raise ValueError(f"save: layer {index} ({type(layer).__name__}) has a custom "
                             f"activation {layer.activation!r}; model files can only name "
                             "sigmoid, tanh, relu or linear")
        layers.append({"kind": layer.kind, **config})
    metadata = {"format": FORMAT, "version": VERSION, "layers": layers,
                "mini_batch_size": net.mini_batch_size, "seed": net.seed}
    arrays = {f"param{i}": p.get_value() for i, p in enumerate(net.params)}
    write_npz(path, metadata, arrays)


def load(path: str | os.PathLike[str]) -> Network:
    """The network saved in ``path`` by :func:`save`."""
    metadata, arrays = read_npz(path, FORMAT, VERSION)
    try:
        layers = []
        for spec in metadata["layers"]:
            spec = dict(spec)
            kind = spec.pop("kind")
            if kind not in LAYER_KINDS:
                raise ModelFileError(f"{path}: unknown layer kind {kind!r}")
            layers.append(LAYER_KINDS[kind](**spec))
        net = Network(layers, metadata["mini_batch_size"], seed=metadata.get("seed", 0))
    except ModelFileError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: invalid architecture in metadata: {exc}") from None
    if len(arrays) != len(net.params):
        raise ModelFileError(f"{path}: holds {len(arrays)} arrays, the architecture needs "
                             f"{len(net.params)}")
    for i, param in enumerate(net.params):
        value = arrays.get(f"param{i}")
        expected = param.get_value(borrow=True)
        if value is None or value.shape != expected.shape or value.dtype != expected.dtype:
            found = "missing" if value is None else f"{value.dtype} {value.shape}"
            raise ModelFileError(f"{path}: parameter {i} is {found}, expected "
                                 f"{expected.dtype} {expected.shape}")
        param.set_value(value)
    return net
