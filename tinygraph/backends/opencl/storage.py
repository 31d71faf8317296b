"""Device memory: ``DeviceArray`` views and the device copy of shared variables."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyopencl as cl

#: an element offset fixed for a plan, or computed per call from the host values
Offset = int | Callable[[dict], int]


@dataclass
class DeviceArray:
    """A tensor in a device buffer: element ``offset``, ``shape`` and element ``strides``."""

    buffer: cl.Buffer
    offset: Offset
    shape: tuple[int, ...]
    strides: tuple[int, ...]
    dtype: np.dtype

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def is_contiguous(self) -> bool:
        expected = contiguous_strides(self.shape)
        return all(size == 1 or a == b
                   for size, a, b in zip(self.shape, self.strides, expected))

    def resolve_offset(self, host_values: dict) -> int:
        return self.offset(host_values) if callable(self.offset) else self.offset


def contiguous_strides(shape) -> tuple[int, ...]:
    strides, step = [], 1
    for size in reversed(shape):
        strides.append(step)
        step *= size
    return tuple(reversed(strides))


def allocate(context: cl.Context, shape, dtype) -> DeviceArray:
    """A new contiguous array (at least one element of storage, so empty arrays work)."""
    dtype = np.dtype(dtype)
    size = max(int(np.prod(shape)), 1)
    buffer = cl.Buffer(context, cl.mem_flags.READ_WRITE, size * dtype.itemsize)
    return DeviceArray(buffer, 0, tuple(shape), contiguous_strides(shape), dtype)


def read(queue: cl.CommandQueue, array: DeviceArray, host_values: dict) -> np.ndarray:
    """Copy the contiguous ``array`` to a new NumPy array (waits for the device)."""
    if not array.is_contiguous():
        raise ValueError("read() needs a contiguous device array; copy views on the device")
    out = np.empty(array.shape, dtype=array.dtype)
    if out.size:
        cl.enqueue_copy(queue, out, array.buffer,
                        src_offset=array.resolve_offset(host_values) * array.dtype.itemsize)
    return out


class SharedStorage:
    """The device copy of a shared variable. Whichever side changed last is authoritative;
    ``generation`` changes whenever the buffer object is replaced (a new shape)."""

    def __init__(self, context: cl.Context, queue: cl.CommandQueue) -> None:
        self.context = context
        self.queue = queue
        self.array: DeviceArray | None = None
        self.device_is_newer = False
        self.host_is_newer = True
        self.generation = 0

    def device_array(self, var) -> DeviceArray:
        """The device copy of ``var``, uploaded first if the host value changed."""
        if self.host_is_newer:
            value = np.ascontiguousarray(var._value)
            if self.array is None or self.array.shape != value.shape:
                self.array = allocate(self.context, value.shape, value.dtype)
                self.generation += 1
            if value.size:
                cl.enqueue_copy(self.queue, self.array.buffer, value)
            self.host_is_newer = False
        return self.array

    def mark_device_written(self) -> None:
        self.device_is_newer = True

    def sync_to_host(self, var) -> None:
        if self.device_is_newer and self.array is not None:
            var._value = read(self.queue, self.array, {})
            self.device_is_newer = False

    def host_changed(self, var) -> None:
        self.host_is_newer = True
        self.device_is_newer = False
