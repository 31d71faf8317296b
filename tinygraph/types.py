"""Tensor types: a dtype plus a broadcastable pattern (which axes are known to have length 1)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import config

DTYPES = ("float32", "float64", "int32", "int64", "bool", "uint8")
FLOAT_DTYPES = ("float32", "float64")
INT_DTYPES = ("int32", "int64", "uint8")


def canonical_dtype(dtype) -> str:
    """The dtype's name if tinygraph supports it, else a clear error."""
    if dtype is None:
        return config.floatX
    if dtype == "floatX":
        return config.floatX
    try:
        name = np.dtype(dtype).name
    except TypeError as exc:
        raise TypeError(f"unknown dtype {dtype!r}; supported: {', '.join(DTYPES)}") from exc
    if name not in DTYPES:
        raise TypeError(f"dtype {name} is not supported; use one of {', '.join(DTYPES)}")
    return name


def is_float(dtype: str) -> bool:
    return dtype in FLOAT_DTYPES


def is_integer(dtype: str) -> bool:
    return dtype in INT_DTYPES


def is_discrete(dtype: str) -> bool:
    """True for dtypes that carry no gradient (integers and bool)."""
    return not is_float(dtype)


def upcast(*dtypes: str) -> str:
    """NumPy's promotion of several dtypes, restricted to the supported ones."""
    return canonical_dtype(np.result_type(*[np.dtype(d) for d in dtypes]))


@dataclass(frozen=True)
class TensorType:
    """The static type of a symbolic tensor."""

    dtype: str
    broadcastable: tuple[bool, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "dtype", canonical_dtype(self.dtype))
        object.__setattr__(self, "broadcastable", tuple(bool(b) for b in self.broadcastable))

    @property
    def ndim(self) -> int:
        return len(self.broadcastable)

    def __str__(self) -> str:
        pattern = ", ".join("1" if b else "?" for b in self.broadcastable)
        return f"TensorType({self.dtype}, ({pattern}{',' if self.ndim == 1 else ''}))"

    def filter(self, value, name: str = "value", allow_downcast: bool | None = None) -> np.ndarray:
        """Convert ``value`` to an array of this type or raise an error naming ``name``."""
        if allow_downcast is None:
            allow_downcast = config.allow_downcast
        if type(value) is float and is_float(self.dtype):
            value = np.asarray(value, dtype=self.dtype)
        array = np.asarray(value)
        if array.dtype.name != self.dtype:
            array = _cast_checked(array, self.dtype, name, allow_downcast)
        if array.ndim != self.ndim:
            raise TypeError(
                f"{name}: expected a {self.ndim}-d array ({self}), got shape {array.shape}"
            )
        for axis, (size, bcast) in enumerate(zip(array.shape, self.broadcastable)):
            if bcast and size != 1:
                raise ValueError(
                    f"{name}: axis {axis} is declared broadcastable (length 1) in {self}, "
                    f"but the value has shape {array.shape}"
                )
        return array


def _cast_checked(array: np.ndarray, dtype: str, name: str, allow_downcast: bool) -> np.ndarray:
    source = array.dtype
    if source.kind not in "biuf":
        raise TypeError(f"{name}: cannot convert an array of dtype {source} to {dtype}")
    if np.can_cast(source, dtype, casting="safe") or (
        source.kind in "iub" and is_float(dtype) and array.size == 0
    ):
        return array.astype(dtype)
    with np.errstate(invalid="ignore", over="ignore"):
        converted = array.astype(dtype)
        lossless = np.array_equal(converted.astype(source), array, equal_nan=source.kind == "f")
    if lossless or (allow_downcast and source.kind == "f" and is_float(dtype)):
        return converted
    raise TypeError(
        f"{name}: got dtype {source}, expected {dtype}, and the conversion loses information. "
        f"Convert the data yourself (e.g. .astype('{dtype}'))"
        + (" or set tinygraph.config.allow_downcast = True" if is_float(dtype) else "")
    )
