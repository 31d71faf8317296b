"""``KernelSpec``: what a kernel generator hands the OpenCL linker.

Generators bake shapes, strides and dtypes into the source (plans are made per input-shape
signature, so every launch has static shapes). Array operands are passed as a pointer plus an
element offset, so a view (a slice of a data set, a transpose) is an offset and strides, not a
copy. The linker binds ``args`` in order:

- ``Operand("in", i)`` / ``Operand("out", i)``: two kernel arguments, the buffer of input or
  output ``i`` of the node and its element offset as a ``long``;
- ``Operand("value", i)``: one argument, the host value of the 0-d input ``i`` by value;
- ``Operand("scratch", i)``: two arguments, a buffer of ``scratch_sizes[i]`` elements (dtype
  ``scratch_dtypes[i]``) owned by the plan, and offset 0;
- a NumPy scalar (``np.float32(0.5)``, ``np.int64(3)``, ``np.uint64(key)``): passed as is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Operand:
    """An argument: ``kind`` is "in", "out", "value" or "scratch", ``index`` which one."""

    kind: str
    index: int


@dataclass
class KernelSpec:
    """One kernel launch: source, kernel name, sizes and arguments."""

    source: str
    name: str
    global_size: tuple[int, ...]
    local_size: tuple[int, ...]
    args: list = field(default_factory=list)
    scratch_sizes: tuple[int, ...] = ()
    scratch_dtypes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if len(self.global_size) != len(self.local_size):
            raise ValueError(f"{self.name}: global {self.global_size} and local "
                             f"{self.local_size} sizes differ in rank")
        for g, loc in zip(self.global_size, self.local_size):
            if g % loc:
                raise ValueError(f"{self.name}: global size {self.global_size} is not a "
                                 f"multiple of the local size {self.local_size}")


C_TYPES = {"float32": "float", "float64": "double", "int32": "int", "int64": "long",
           "bool": "uchar", "uint8": "uchar"}


def c_type(dtype) -> str:
    """The OpenCL C type storing ``dtype`` (bool is stored as one byte, as in NumPy)."""
    return C_TYPES[np.dtype(dtype).name]


def fp64_pragma(*dtypes) -> str:
    """The extension pragma a program needs when any of ``dtypes`` is float64."""
    if any(np.dtype(d) == np.float64 for d in dtypes):
        return "#pragma OPENCL EXTENSION cl_khr_fp64 : enable\n"
    return ""


def element_index(flat: str, shape, strides, offset: str) -> str:
    """C expression of the storage index of the element at C-order position ``flat`` of an
    array of ``shape`` with element ``strides`` starting at ``offset`` (all baked in)."""
    terms = [offset]
    total = int(np.prod(shape))
    div = 1
    for size, stride in reversed(list(zip(shape, strides))):
        if size != 1 and stride != 0:
            coordinate = f"({flat} / {div}L)" if div != 1 else flat
            if div * size != total:
                coordinate = f"({coordinate} % {size}L)"
            terms.append(f"{coordinate} * {stride}L" if stride != 1 else coordinate)
        div *= size
    return " + ".join(terms)


def c_literal(value, dtype) -> str:
    """``value`` as an exact OpenCL C literal of ``dtype``."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        v = float(dtype.type(value))
        if math.isnan(v):
            return "NAN"
        if math.isinf(v):
            return "INFINITY" if v > 0 else "(-INFINITY)"
        return f"{v.hex()}{'f' if dtype == np.float32 else ''}"
    v = int(value)
    if dtype.itemsize == 8:
        return "LONG_MIN" if v == -(2**63) else f"{v}L"
    return "INT_MIN" if v == -(2**31) else str(v)
