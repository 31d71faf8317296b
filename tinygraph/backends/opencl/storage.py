"""Device memory: ``DeviceArray`` views and the device copy of shared variables."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyopencl as cl

#: an element offset fixed for a plan, or computed per call from the host values
Offset = int | Callable[[dict], int]


class LogicalBuffer:
    """Plan-internal storage: bound to a physical ``cl.Buffer`` when the plan is finalised,
    shared with other logical buffers whose lifetimes do not overlap."""

    def __init__(self, nbytes: int) -> None:
        self.nbytes = nbytes
        self.physical: cl.Buffer | None = None


@dataclass
class DeviceArray:
    """A tensor in a device buffer: element ``offset``, ``shape`` and element ``strides``."""

    buffer: cl.Buffer | LogicalBuffer
    offset: Offset
    shape: tuple[int, ...]
    strides: tuple[int, ...]
    dtype: np.dtype

    @property
    def cl_buffer(self) -> cl.Buffer:
        """The physical buffer (after the plan is finalised for logical ones)."""
        if isinstance(self.buffer, LogicalBuffer):
            return self.buffer.physical
        return self.buffer

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


def allocate_logical(shape, dtype) -> DeviceArray:
    """A contiguous plan-internal array whose storage is assigned at finalisation."""
    dtype = np.dtype(dtype)
    nbytes = max(int(np.prod(shape)), 1) * dtype.itemsize
    return DeviceArray(LogicalBuffer(nbytes), 0, tuple(shape), contiguous_strides(shape), dtype)


def allocate_buffer(context: cl.Context, nbytes: int, what: str) -> cl.Buffer:
    """A device buffer, or a MemoryError that says what did not fit."""
    device = context.devices[0]
    if nbytes > device.max_mem_alloc_size:
        raise MemoryError(
            f"cannot allocate {what} ({nbytes / 2**20:.1f} MiB) on {device.name.strip()!r}: "
            f"its largest allocation is {device.max_mem_alloc_size / 2**20:.0f} MiB. Use "
            "smaller minibatches or data chunks, or the NumPy backend")
    try:
        return cl.Buffer(context, cl.mem_flags.READ_WRITE, nbytes)
    except cl.Error as exc:
        raise MemoryError(
            f"the OpenCL device {device.name.strip()!r} is out of memory allocating {what} "
            f"({nbytes / 2**20:.1f} MiB): {exc}. Free functions or shared variables you no "
            "longer need, or use smaller shapes") from exc


def allocate(context: cl.Context, shape, dtype) -> DeviceArray:
    """A new contiguous array (at least one element of storage, so empty arrays work)."""
    dtype = np.dtype(dtype)
    nbytes = max(int(np.prod(shape)), 1) * dtype.itemsize
    buffer = allocate_buffer(context, nbytes, f"a {dtype} array of shape {tuple(shape)}")
    return DeviceArray(buffer, 0, tuple(shape), contiguous_strides(shape), dtype)


def read(queue: cl.CommandQueue, array: DeviceArray, host_values: dict,
         wait: bool = True) -> np.ndarray:
    """Copy the contiguous ``array`` to a new NumPy array; with ``wait=False`` the copy is
    only enqueued (finish the queue before using the result)."""
    if not array.is_contiguous():
        raise ValueError("read() needs a contiguous device array; copy views on the device")
    out = np.empty(array.shape, dtype=array.dtype)
    if out.size:
        cl.enqueue_copy(queue, out, array.cl_buffer, is_blocking=wait,
                        src_offset=array.resolve_offset(host_values) * array.dtype.itemsize)
    return out


def read_view(queue: cl.CommandQueue, array: DeviceArray, host_values: dict) -> np.ndarray:
    """Copy any (strided) ``array`` to NumPy by reading its whole buffer; for error paths."""
    flat = np.empty(array.cl_buffer.size // array.dtype.itemsize, dtype=array.dtype)
    cl.enqueue_copy(queue, flat, array.cl_buffer)
    offset = array.resolve_offset(host_values)
    return np.lib.stride_tricks.as_strided(
        flat[offset:], array.shape, [s * array.dtype.itemsize for s in array.strides]).copy()


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
