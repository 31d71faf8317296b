"""Reader for MNIST in CSV form (the "mnist-in-csv" layout): ``label,p0,...,p783`` per line.

An optional header line whose first field is ``label`` (such as ``label,1x1,1x2,...,28x28``)
is skipped; blank lines are ignored. The file may be gzip-compressed.
"""

from __future__ import annotations

import os
import re

import numpy as np

from .errors import DatasetError
from .idx import read_bytes

N_PIXELS = 784
_INTEGER = re.compile(r"\s*[+-]?[0-9]+\s*")


def _line_problem(line: str) -> str | None:
    """Describe what is wrong with one data line, or return None if it is valid."""
    fields = line.split(",")
    if len(fields) != N_PIXELS + 1:
        return (
            f"expected {N_PIXELS + 1} comma-separated values (a label and {N_PIXELS} "
            f"pixels), found {len(fields)}"
        )
    for column, field in enumerate(fields, 1):
        if not _INTEGER.fullmatch(field):
            return f"column {column}: {field.strip()!r} is not an integer"
        value = int(field)
        if column == 1 and not 0 <= value <= 9:
            return f"label {value} is out of range 0..9"
        if column > 1 and not 0 <= value <= 255:
            return f"pixel value {value} in column {column} is out of range 0..255"
    return None


def read_mnist_csv(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """Read an MNIST CSV file into ``(images, labels)``: uint8 (n, 784) and uint8 (n,)."""
    name = os.fspath(path)
    text = read_bytes(path).decode("utf-8-sig", errors="replace")
    rows = [
        (number, line.rstrip("\r"))
        for number, line in enumerate(text.split("\n"), 1)
        if line.strip()
    ]
    if rows and rows[0][1].split(",", 1)[0].strip().lower() == "label":
        number, header = rows.pop(0)
        if header.count(",") != N_PIXELS:
            raise DatasetError(
                f"{name}: line {number}: the header has {header.count(',') + 1} columns, "
                f"expected {N_PIXELS + 1}"
            )
    if not rows:
        raise DatasetError(f"{name}: the file has no data lines")

    def fail(index: int) -> DatasetError:
        number, line = rows[index]
        return DatasetError(f"{name}: line {number}: {_line_problem(line)}")

    for index, (_, line) in enumerate(rows):
        if line.count(",") != N_PIXELS:
            raise fail(index)
    try:
        values = np.loadtxt(
            [line for _, line in rows], delimiter=",", dtype=np.int64, comments=None, ndmin=2
        )
    except ValueError as exc:
        for index, (_, line) in enumerate(rows):
            if _line_problem(line) is not None:
                raise fail(index) from None
        raise DatasetError(f"{name}: cannot parse the file: {exc}") from None
    labels, pixels = values[:, 0], values[:, 1:]
    bad = ((labels < 0) | (labels > 9)) | ((pixels < 0) | (pixels > 255)).any(axis=1)
    if bad.any():
        raise fail(int(np.argmax(bad)))
    return pixels.astype(np.uint8), labels.astype(np.uint8)
