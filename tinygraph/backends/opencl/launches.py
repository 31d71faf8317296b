"""The steps a plan enqueues per call: kernel launches with preset arguments (only arguments
that change between calls are set again), GEMM launches, uploads and host fallbacks."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyopencl as cl

from .storage import DeviceArray, read


class KernelLaunch:
    """A ``cl.Kernel`` whose static arguments are set once, when the plan is finalised
    (``DeviceArray`` values stand for their buffers); ``dynamic`` holds
    ``(arg index, fn(host_values) -> value)`` for arguments recomputed on every call."""

    def __init__(self, kernel: cl.Kernel, global_size, local_size, static: dict,
                 dynamic: list[tuple[int, Callable]], label: str, source: str) -> None:
        self.kernel = kernel
        self.global_size = tuple(global_size)
        self.local_size = tuple(local_size)
        self.static = static
        self.dynamic = dynamic
        self.label = label
        self.source = source

    def arrays(self) -> list[DeviceArray]:
        return [v for v in self.static.values() if isinstance(v, DeviceArray)]

    def finalize(self, host_values: dict) -> None:
        """Declare the scalar argument types and set every argument once. Typed ``set_args``
        costs under a microsecond, where one untyped ``set_arg`` costs several."""
        count = len(self.static) + len(self.dynamic)
        self._args = [None] * count
        dtypes = [None] * count
        for index, value in self.static.items():
            if isinstance(value, DeviceArray):
                self._args[index] = value.cl_buffer
            else:
                self._args[index] = value
                dtypes[index] = np.asarray(value).dtype
        for index, fn in self.dynamic:
            value = fn(host_values)
            self._args[index] = value
            dtypes[index] = np.asarray(value).dtype
        self.kernel.set_scalar_arg_dtypes(dtypes)
        self.kernel.set_args(*self._args)
        self._bound_values = host_values

    def enqueue(self, queue: cl.CommandQueue, host_values: dict):
        """Enqueue the kernel, setting the dynamic arguments again unless ``host_values`` is
        the very dict they were computed from (a call that reused the host pass)."""
        if self.dynamic and host_values is not self._bound_values:
            args = self._args
            for index, fn in self.dynamic:
                args[index] = fn(host_values)
            self.kernel.set_args(*args)
            self._bound_values = host_values
        return cl.enqueue_nd_range_kernel(queue, self.kernel, self.global_size,
                                          self.local_size)


class _PlannedLaunch:
    """A launch of a plan's kernels (a product's, see gemm.py), bound once when its operands
    and scalars are fixed, else on every call (slice offsets, host-computed alpha or beta).
    Subclasses set ``alpha``, ``beta``, ``label``, ``source`` and define ``arrays``, ``_bind``."""

    def finalize(self, host_values: dict) -> None:
        """Bind the kernels once when no operand offset, alpha or beta changes per call."""
        self._fixed = None
        if not any(callable(v) for v in (self.alpha, self.beta)) and \
                not any(callable(array.offset) for array in self.arrays()):
            self._fixed = self._bind(host_values)

    def enqueue(self, queue: cl.CommandQueue, host_values: dict):
        event = None
        for kernel, grid, local in self._fixed or self._bind(host_values):
            event = cl.enqueue_nd_range_kernel(queue, kernel, grid, local)
        return event

    def _scalars(self, host_values: dict) -> dict:
        """alpha and beta for this call."""
        return {name: value(host_values) if callable(value) else value
                for name, value in (("alpha", self.alpha), ("beta", self.beta))}


def _bound(array: DeviceArray | None, host_values: dict) -> tuple | None:
    """(buffer, offset) of ``array`` for a plan's bind, or None."""
    return None if array is None else (array.cl_buffer, array.resolve_offset(host_values))


class GemmLaunch(_PlannedLaunch):
    """A planned matrix product (see gemm.py); ``a_index`` the row index of a plan reading A
    through one, ``a_copy`` the array it copies those rows into."""

    def __init__(self, plan, a: DeviceArray, b: DeviceArray, c: DeviceArray, label: str,
                 alpha: float | Callable = 1.0, beta: float | Callable = 0.0,
                 bias: DeviceArray | None = None, extras: list[DeviceArray] = (),
                 column_sums: list[DeviceArray] = (), a_index: DeviceArray | None = None,
                 a_copy: DeviceArray | None = None):
        self.plan, self.a, self.b, self.c, self.bias = plan, a, b, c, bias
        self.extras, self.column_sums = list(extras), list(column_sums)
        self.a_index, self.a_copy = a_index, a_copy
        self.alpha, self.beta = alpha, beta
        self.label = label
        self.source = plan.source()

    def arrays(self) -> list[DeviceArray]:
        return [a for a in (self.a, self.b, self.c, self.bias, *self.extras, *self.column_sums,
                            self.a_index, self.a_copy) if a is not None]

    def _bind(self, host_values: dict) -> list[tuple]:
        extra = {}
        if self.bias is not None:
            extra = {"bias": self.bias.cl_buffer,
                     "bias_offset": self.bias.resolve_offset(host_values)}
        if self.a_index is not None:
            extra["a_index"] = _bound(self.a_index, host_values)
        if self.a_copy is not None:
            extra["a_copy"] = _bound(self.a_copy, host_values)
        return self.plan.bind(
            self.a.cl_buffer, self.b.cl_buffer, self.c.cl_buffer,
            a_offset=self.a.resolve_offset(host_values),
            b_offset=self.b.resolve_offset(host_values),
            c_offset=self.c.resolve_offset(host_values),
            extras=[_bound(e, host_values) for e in self.extras],
            column_sums=[_bound(v, host_values) for v in self.column_sums],
            **self._scalars(host_values), **extra)


class BackpropUpdateLaunch(_PlannedLaunch):
    """A planned backward product with its layer's updates (see backprop_update.py), or the
    updates alone; ``operands`` maps the plan's operand names (h, d, w, w_out and, with the
    backward product, p) to arrays; ``h_index`` is the row index of a plan reading H through
    one."""

    def __init__(self, plan, operands: dict[str, DeviceArray], label: str,
                 alpha: float | Callable, beta: float | Callable,
                 extras: list[DeviceArray], column_sums: list[DeviceArray],
                 h_index: DeviceArray | None = None):
        self.plan, self.operands, self.label = plan, operands, label
        self.alpha, self.beta = alpha, beta
        self.extras, self.column_sums = list(extras), list(column_sums)
        self.h_index = h_index
        self.source = plan.source()

    def arrays(self) -> list[DeviceArray]:
        return [*self.operands.values(), *self.extras, *self.column_sums,
                *([self.h_index] if self.h_index is not None else [])]

    def _bind(self, host_values: dict) -> list[tuple]:
        buffers = {"p": None} | {name: array.cl_buffer for name, array in self.operands.items()}
        offsets = {f"{name}_offset": array.resolve_offset(host_values)
                   for name, array in self.operands.items()}
        return self.plan.bind(
            **buffers, **offsets, **self._scalars(host_values),
            extras=[_bound(e, host_values) for e in self.extras],
            column_sums=[_bound(v, host_values) for v in self.column_sums],
            h_index=_bound(self.h_index, host_values))


class UploadLaunch:
    """Copies a host value (an input, or a small host-computed tensor) to the device."""

    def __init__(self, var_id: int, target: DeviceArray, label: str) -> None:
        self.var_id, self.target, self.label = var_id, target, label
        self.source = ""

    def arrays(self) -> list[DeviceArray]:
        return [self.target]

    def enqueue(self, queue: cl.CommandQueue, host_values: dict):
        value = np.ascontiguousarray(host_values[self.var_id], dtype=self.target.dtype)
        if not value.size:
            return None
        self._pending = value  # the copy is asynchronous: keep the host memory alive
        return cl.enqueue_copy(queue, self.target.cl_buffer, value, is_blocking=False)


class CopyLaunch:
    """A contiguous device-to-device copy (applying updates to shared buffers)."""

    def __init__(self, source_array: DeviceArray, target: DeviceArray, label: str) -> None:
        self.source_array, self.target, self.label, self.source = (source_array, target, label,
                                                                  "")

    def arrays(self) -> list[DeviceArray]:
        return [self.source_array, self.target]

    def enqueue(self, queue: cl.CommandQueue, host_values: dict):
        size = self.target.size * self.target.dtype.itemsize
        if not size:
            return None
        itemsize = self.target.dtype.itemsize
        return cl.enqueue_copy(
            queue, self.target.cl_buffer, self.source_array.cl_buffer, byte_count=size,
            src_offset=self.source_array.resolve_offset(host_values) * itemsize,
            dst_offset=self.target.resolve_offset(host_values) * itemsize)


class HostFallbackLaunch:
    """Runs an op's NumPy ``perform`` on the host: inputs are read back, the result uploaded.
    Correct but synchronous; used for ops without an OpenCL kernel."""

    def __init__(self, node, inputs: list, outputs: list[DeviceArray], label: str) -> None:
        self.node, self.inputs, self.outputs, self.label = node, inputs, outputs, label
        self.source = f"/* {node.op}: NumPy on the host (no OpenCL kernel) */"

    def arrays(self) -> list[DeviceArray]:
        return [a for a in self.inputs + self.outputs if isinstance(a, DeviceArray)]

    def enqueue(self, queue: cl.CommandQueue, host_values: dict):
        values = [read(queue, arr, host_values) if isinstance(arr, DeviceArray)
                  else host_values[arr] for arr in self.inputs]
        results = self.node.op.perform(self.node, values)
        for array, value in zip(self.outputs, results):
            value = np.ascontiguousarray(value, dtype=array.dtype)
            if value.size:
                cl.enqueue_copy(queue, array.cl_buffer, value, is_blocking=True,
                                dst_offset=array.resolve_offset(host_values) *
                                array.dtype.itemsize)
        return None
