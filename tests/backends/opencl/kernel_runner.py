"""Test-only runner for kernel generators: builds ``KernelSpec`` sources on the PoCL CPU
device, binds operands (inputs may be strided views at an offset), launches, reads back.

Test modules load it by path with a small ``_load`` helper, as pytest runs with
``--import-mode=importlib``.
"""

from __future__ import annotations

import atexit
import time
from dataclasses import dataclass

import numpy as np
import pyopencl as cl
from hypothesis import strategies as st

from tinygraph.backends.opencl.device import select_device
from tinygraph.backends.opencl.kernel_spec import Operand
from tinygraph.backends.opencl.kernels import RandomBase, RandomKey

_SENTINEL = {"f": 1e30, "i": 999_999, "u": 77, "b": True}


@dataclass
class Strided:
    """An array operand stored in ``buffer`` (1-D) at element ``offset`` with element
    ``strides``; ``array`` is the NumPy view of it."""

    buffer: np.ndarray
    offset: int
    shape: tuple
    strides: tuple

    @property
    def array(self) -> np.ndarray:
        size = self.buffer.itemsize
        return np.lib.stride_tricks.as_strided(
            self.buffer[self.offset:], self.shape, tuple(s * size for s in self.strides),
            writeable=False)


def contiguous(x) -> Strided:
    x = np.ascontiguousarray(x)
    strides = tuple(s // x.itemsize for s in x.strides) if x.size else (0,) * x.ndim
    return Strided(x.reshape(-1).copy(), 0, x.shape, strides)


def embed(x, order=None, pads=None, offset=0, broadcast=()) -> Strided:
    """``x`` stored with its axes laid out in memory in ``order`` (outermost first), each
    padded by ``pads[a]`` elements, at ``offset``; axes in ``broadcast`` get stride 0 and
    hold ``x``'s first entry along them. Padding holds a large sentinel value."""
    x = np.asarray(x)
    order = tuple(range(x.ndim)) if order is None else tuple(order)
    pads = (0,) * x.ndim if pads is None else tuple(pads)
    strides = [0] * x.ndim
    running = 1
    for a in reversed(order):
        if a not in broadcast:
            strides[a] = running
            running *= x.shape[a] + pads[a]
    buffer = np.full(offset + running + 3, _SENTINEL[x.dtype.kind], x.dtype)
    out = Strided(buffer, offset, x.shape, tuple(strides))
    first = tuple(slice(0, 1) if a in broadcast else slice(None) for a in range(x.ndim))
    view = np.lib.stride_tricks.as_strided(buffer[offset:], x.shape,
                                           tuple(s * x.itemsize for s in strides))
    if x.size:
        view[...] = np.broadcast_to(x[first], x.shape)
    return out


def random_array(rng, shape, dtype, low=-2.0, high=2.0) -> np.ndarray:
    """Test data: floats uniform in [low, high), integers in [-5, 5], random booleans."""
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return rng.random(shape) < 0.5
    if dtype.kind == "f":
        return rng.uniform(low, high, shape).astype(dtype)
    return rng.integers(-5, 6, shape).astype(dtype)


@st.composite
def layouts(draw, ndim: int, broadcast: bool = True) -> dict:
    """Keyword arguments of ``embed``: axis order, padding, offset and broadcast axes."""
    axes = list(range(ndim))
    return {"order": draw(st.permutations(axes)),
            "pads": draw(st.lists(st.integers(0, 2), min_size=ndim, max_size=ndim)),
            "offset": draw(st.integers(0, 7)),
            "broadcast": tuple(draw(st.sets(st.sampled_from(axes), max_size=1)))
            if broadcast and ndim else ()}


class Runner:
    """Builds programs (cached per source), allocates buffers, launches spec lists."""

    def __init__(self) -> None:
        self.context = cl.Context([select_device().device])
        self.queue = cl.CommandQueue(self.context)
        self._programs: dict[str, cl.Program] = {}
        self._kernels: dict[tuple[str, str], cl.Kernel] = {}

    def close(self) -> None:
        self.queue.finish()
        self._kernels.clear()
        self._programs.clear()

    def kernel(self, source: str, name: str) -> cl.Kernel:
        if source not in self._programs:
            self._programs[source] = cl.Program(self.context, source).build()
        if (source, name) not in self._kernels:
            self._kernels[source, name] = cl.Kernel(self._programs[source], name)
        return self._kernels[source, name]

    def _buffer(self, array: np.ndarray) -> cl.Buffer:
        flags = cl.mem_flags.READ_WRITE | cl.mem_flags.COPY_HOST_PTR
        return cl.Buffer(self.context, flags, hostbuf=array if array.size else np.zeros(1))

    def prepare(self, specs, inputs, outputs, out_init=None, key=0, base=0, out_offset=5):
        """Bind ``specs`` to buffers; returns a ``Launch``. ``inputs`` are arrays,
        ``Strided`` or NumPy scalars (passed by value; None where unused), ``outputs``
        (shape, dtype) pairs, ``out_init`` arrays to preload outputs with."""
        ins = [None if x is None else x if isinstance(x, (Strided, np.generic)) else
               contiguous(x) for x in inputs]
        in_bufs = [None if x is None or isinstance(x, np.generic) else self._buffer(x.buffer)
                   for x in ins]
        host_outs = []
        for i, (shape, dtype) in enumerate(outputs):
            size = int(np.prod(shape))
            host = np.full(out_offset + size + 4, _SENTINEL[np.dtype(dtype).kind], dtype)
            if out_init is not None and out_init[i] is not None:
                host[out_offset:out_offset + size] = np.asarray(out_init[i]).reshape(-1)
            host_outs.append(host)
        out_bufs = [self._buffer(h) for h in host_outs]
        scratch_specs = {}
        for spec in specs:
            for i, (size, dtype) in enumerate(zip(spec.scratch_sizes, spec.scratch_dtypes)):
                old = scratch_specs.get(i, (0, dtype))[0]
                scratch_specs[i] = (max(old, size), dtype)
        host_scratch = [np.zeros(max(scratch_specs[i][0], 1), scratch_specs[i][1])
                        for i in range(len(scratch_specs))]
        scratch_bufs = [self._buffer(h) for h in host_scratch]
        launches = []
        for spec in specs:
            args = []
            for arg in spec.args:
                if isinstance(arg, Operand):
                    if arg.kind == "in":
                        args += [in_bufs[arg.index], np.int64(ins[arg.index].offset)]
                    elif arg.kind == "value":
                        args.append(ins[arg.index])
                    elif arg.kind == "out":
                        args += [out_bufs[arg.index], np.int64(out_offset)]
                    else:
                        args += [scratch_bufs[arg.index], np.int64(0)]
                elif isinstance(arg, RandomKey):
                    args.append(np.uint64(key))
                elif isinstance(arg, RandomBase):
                    args.append(np.uint64(base))
                else:
                    args.append(arg)
            kernel = self.kernel(spec.source, spec.name)
            launches.append((kernel, args, spec.global_size, spec.local_size))
        return Launch(self, launches, outputs, host_outs, out_bufs, host_scratch,
                      scratch_bufs, out_offset)

    def run(self, specs, inputs, outputs, **kwargs):
        """Launch ``specs``; returns (outputs, scratch arrays)."""
        launch = self.prepare(specs, inputs, outputs, **kwargs)
        launch.enqueue()
        return launch.read()


class Launch:
    """A bound list of kernel launches (see ``Runner.prepare``)."""

    def __init__(self, runner, launches, outputs, host_outs, out_bufs, host_scratch,
                 scratch_bufs, out_offset):
        self.runner = runner
        self.launches = launches
        self.outputs = outputs
        self.host_outs = host_outs
        self.out_bufs = out_bufs
        self.host_scratch = host_scratch
        self.scratch_bufs = scratch_bufs
        self.out_offset = out_offset

    def enqueue(self) -> None:
        queue = self.runner.queue
        for kernel, args, gsize, lsize in self.launches:
            kernel.set_args(*args)
            cl.enqueue_nd_range_kernel(queue, kernel, gsize, lsize)

    def read(self):
        """Outputs (checked for writes outside them) and scratch arrays."""
        queue = self.runner.queue
        outs = []
        for (shape, _), host, buf in zip(self.outputs, self.host_outs, self.out_bufs):
            got = np.empty_like(host)
            cl.enqueue_copy(queue, got, buf)
            size = int(np.prod(shape))
            lo, hi = self.out_offset, self.out_offset + size
            assert np.array_equal(got[:lo], host[:lo]) and np.array_equal(got[hi:], host[hi:]), \
                "kernel wrote outside its output"
            outs.append(got[lo:hi].reshape(shape))
        scratch = []
        for host, buf in zip(self.host_scratch, self.scratch_bufs):
            got = np.empty_like(host)
            cl.enqueue_copy(queue, got, buf)
            scratch.append(got)
        queue.finish()
        return outs, scratch

    def time(self, reps: int = 200) -> float:
        """Microseconds per launch of the whole list, back to back, best of 5 batches."""
        self.enqueue()
        self.runner.queue.finish()
        best = float("inf")
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(reps):
                for kernel, _args, gsize, lsize in self.launches:
                    cl.enqueue_nd_range_kernel(self.runner.queue, kernel, gsize, lsize)
            self.runner.queue.finish()
            best = min(best, (time.perf_counter() - start) / reps)
        return best * 1e6


_RUNNER: list[Runner] = []


def runner() -> Runner:
    """The session's runner (created on first use, released at exit)."""
    if not _RUNNER:
        _RUNNER.append(Runner())
        atexit.register(_RUNNER[0].close)
    return _RUNNER[0]


def check_product(got, ref, k: int, dtype) -> None:
    """A product's result against its float64 reference, the tolerance growing with the
    length ``k`` of its sums."""
    tol = (2e-6 if np.dtype(dtype) == np.float32 else 1e-14) * (k + 10)
    np.testing.assert_allclose(got, ref, rtol=tol, atol=tol)
