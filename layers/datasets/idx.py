"""Reader for the IDX format of MNIST and Fashion-MNIST, raw or gzip-compressed.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of
dimensions), one big-endian uint32 per dimension, then the big-endian data in C order.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib

import numpy as np

from .errors import DatasetError

GZIP_MAGIC = b"\x1f\x8b"

#: IDX type code -> big-endian numpy dtype of the data.
IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

_REFETCH = "delete it and download again"


def read_bytes(path: str | os.PathLike[str]) -> bytes:
    """Return the contents of ``path``, decompressed if it starts with the gzip magic bytes."""
    name = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise DatasetError(f"{name}: cannot read the file: {exc.strerror or exc}") from exc
    if not data.startswith(GZIP_MAGIC):
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise DatasetError(
            f"{name}: corrupt gzip stream ({exc}); the file is damaged or "
            f"truncated — {_REFETCH}"
        ) from None


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (raw or gzip) into a native-endian array of its declared shape."""
    name = os.fspath(path)
    data = read_bytes(path)
    if not data:
        raise DatasetError(f"{name}: the file is empty — {_REFETCH}")
    if len(data) < 4:
        raise DatasetError(
            f"{name}: {len(data)} bytes is too short for the 4-byte IDX magic number — {_REFETCH}"
        )
    zero0, zero1, code, ndim = data[:4]
    if zero0 or zero1:
        raise DatasetError(
            f"{name}: not an IDX file: the magic number starts with bytes "
            f"0x{zero0:02x} 0x{zero1:02x}, expected 0x00 0x00"
        )
    if code not in IDX_TYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_TYPES)
        raise DatasetError(f"{name}: unknown IDX type code 0x{code:02X} (expected one of {known})")
    if ndim == 0:
        raise DatasetError(f"{name}: the IDX header declares 0 dimensions")
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise DatasetError(
            f"{name}: the header declares {ndim} dimensions ({header_size} header bytes) but "
            f"the file has only {len(data)} bytes; the file is truncated — {_REFETCH}"
        )
    shape = struct.unpack(f">{ndim}I", data[4:header_size])
    dtype = IDX_TYPES[code]
    expected = math.prod(shape) * dtype.itemsize
    found = len(data) - header_size
    described = f"shape {'x'.join(map(str, shape))} of {dtype.newbyteorder('=').name}"
    if found < expected:
        raise DatasetError(
            f"{name}: expected {expected} bytes of data after the {header_size}-byte header "
            f"({described}), found {found}; the file is truncated — {_REFETCH}"
        )
    if found > expected:
        raise DatasetError(
            f"{name}: expected {expected} bytes of data after the {header_size}-byte header "
            f"({described}), found {found} ({found - expected} trailing bytes); the file is "
            f"corrupt — {_REFETCH}"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header_size).reshape(shape)
    return array.astype(dtype.newbyteorder("="))
