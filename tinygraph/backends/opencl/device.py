"""Choose the OpenCL device and hold one process-wide context, queues and program cache per device.

A device spec is ``"opencl"`` (the default rule of :func:`select_device`) or ``"opencl:P:D"``
(platform ``P``, device ``D``, indices in ``pyopencl.get_platforms()`` order).
"""

from __future__ import annotations

import atexit
import gc
import re
import sys
import threading
from dataclasses import dataclass
from typing import Any

from ...config import config
from .program_cache import ProgramCache

try:
    import pyopencl as cl
except ImportError as exc:  # select_device reports it with the install hint
    cl = None
    _IMPORT_ERROR = f"pyopencl is not importable ({exc})"

INSTALL_HINT = (
    'Install an OpenCL runtime: pip install "pyopencl[pocl]" (or pip install ".[pocl]" in the '
    "tinygraph repository), or on Debian/Ubuntu apt-get install pocl-opencl-icd. "
    "Or use the NumPy backend: TINYGRAPH_DEVICE=numpy or tinygraph.config.device = \"numpy\"."
)

_SPEC = re.compile(r"opencl(?::(\d+):(\d+))?")
_POCL_VERSION = re.compile(r"\bpocl\s+(\d+)\.(\d+)(?:\.(\d+))?(-[a-z]+(\d*))?", re.IGNORECASE)
_GIB = 2**30


class OpenCLUnavailableError(RuntimeError):
    """No OpenCL device can be used; the message says how to install one or use NumPy instead."""


@dataclass(frozen=True)
class DeviceChoice:
    """A resolved device: its indices, pyopencl objects and the rule that picked it."""

    platform_index: int
    device_index: int
    platform: Any
    device: Any
    rule: str

    @property
    def spec(self) -> str:
        """The explicit ``opencl:P:D`` spec naming this device."""
        return f"opencl:{self.platform_index}:{self.device_index}"


def _parse_spec(spec: str) -> tuple[int, int] | None:
    """``(P, D)`` for ``"opencl:P:D"``, ``None`` for ``"opencl"``; ValueError otherwise."""
    match = _SPEC.fullmatch(spec) if isinstance(spec, str) else None
    if match is None:
        raise ValueError(f"bad OpenCL device spec {spec!r}: expected 'opencl' or 'opencl:P:D'")
    return None if match.group(1) is None else (int(match.group(1)), int(match.group(2)))


def _platform_devices(platform: Any) -> list:
    try:
        return list(platform.get_devices())
    except cl.Error:  # a platform without devices raises DEVICE_NOT_FOUND
        return []


def _enumerate() -> list[tuple[Any, list]]:
    """Every platform with its devices; OpenCLUnavailableError if there is no device at all."""
    if cl is None:
        raise OpenCLUnavailableError(f"{_IMPORT_ERROR}. {INSTALL_HINT}")
    try:
        platforms = cl.get_platforms()
    except cl.Error as exc:
        raise OpenCLUnavailableError(f"No OpenCL platform found ({exc}). {INSTALL_HINT}") from exc
    listing = [(platform, _platform_devices(platform)) for platform in platforms]
    if not any(devices for _, devices in listing):
        raise OpenCLUnavailableError(f"No OpenCL platform with a device found. {INSTALL_HINT}")
    return listing


def _oneline(text: str) -> str:
    return " ".join(str(text).split())


def _type_name(device: Any) -> str:
    names = [n for n in ("GPU", "CPU", "ACCELERATOR") if device.type & getattr(cl.device_type, n)]
    return "/".join(names) or "other"


def _available(listing: list[tuple[Any, list]]) -> str:
    lines = []
    for p, (platform, devices) in enumerate(listing):
        lines.append(f"  platform {p}: {_oneline(platform.name)} ({_oneline(platform.version)})")
        lines += [
            f"    opencl:{p}:{d}  {_oneline(device.name)} ({_type_name(device)})"
            for d, device in enumerate(devices)
        ]
    return "\n".join(lines)


def _pocl_version(platform_version: str) -> tuple[int, ...] | None:
    """A comparable PoCL version from a platform version string (a pre-release sorts lower)."""
    match = _POCL_VERSION.search(platform_version)
    if match is None:
        return None
    major, minor, patch, pre, pre_number = match.groups()
    final = 0 if pre else 1
    return (int(major), int(minor), int(patch or 0), final, int(pre_number or 0))


def _default_choice(listing: list[tuple[Any, list]]) -> DeviceChoice:
    devices = [(p, d, dev) for p, (_, devs) in enumerate(listing) for d, dev in enumerate(devs)]
    gpus = [entry for entry in devices if entry[2].type & cl.device_type.GPU]
    cpus = [entry for entry in devices if entry[2].type & cl.device_type.CPU]
    if gpus:
        p, d, _ = gpus[0]
        rule = "default rule: the first GPU in platform order"
    elif cpus:
        versions = {p: _pocl_version(listing[p][0].version) for p, _, _ in cpus}
        p, d, _ = max(cpus, key=lambda e: (versions[e[0]] is not None, versions[e[0]] or (), -e[0]))
        if versions[p] is None:
            rule = "default rule: no GPU and no PoCL platform, the first CPU in platform order"
        else:
            newest = _POCL_VERSION.search(listing[p][0].version).group(0)
            rule = f"default rule: no GPU, so the CPU of the platform with the newest {newest}"
    else:
        p, d, _ = devices[0]
        rule = "default rule: no GPU or CPU device, the first device in platform order"
    return DeviceChoice(p, d, listing[p][0], listing[p][1][d], rule)


def select_device(spec: str = "opencl") -> DeviceChoice:
    """Resolve ``"opencl"`` or ``"opencl:P:D"`` to a device.

    ``"opencl"`` picks the first GPU in platform order if any platform has one. Otherwise it
    picks the first CPU device of the PoCL platform with the highest PoCL version parsed from
    ``platform.version`` (a release beats its pre-releases: 3.1 > 3.0 > 3.0-rc2), ties going to
    the earlier platform; with no PoCL platform, the first CPU in platform order. So with both
    the pip PoCL and Debian's pocl-opencl-icd installed the choice is the same on every run.
    ``"opencl:P:D"`` takes device ``D`` of platform ``P``; out-of-range indices raise ValueError
    listing the available devices. No platform at all raises :class:`OpenCLUnavailableError`.
    """
    indices = _parse_spec(spec)
    listing = _enumerate()
    if indices is None:
        return _default_choice(listing)
    p, d = indices
    if p >= len(listing) or d >= len(listing[p][1]):
        raise ValueError(
            f"OpenCL device spec {spec!r} names no device; available:\n{_available(listing)}"
        )
    return DeviceChoice(p, d, listing[p][0], listing[p][1][d], f"explicit spec {spec!r}")


class Runtime:
    """One device's context, in-order ``queue``, ``program_cache`` and capability flags."""

    def __init__(self, choice: DeviceChoice) -> None:
        self.choice = choice
        self.device = choice.device
        self.context = cl.Context([self.device])
        self.queue = cl.CommandQueue(self.context, self.device)
        self.program_cache = ProgramCache(self.context)
        self.has_fp64 = "cl_khr_fp64" in self.device.extensions.split()
        self.supports_out_of_order = bool(
            self.device.queue_properties & cl.command_queue_properties.OUT_OF_ORDER_EXEC_MODE_ENABLE
        )
        self._queues = {(False, False): self.queue}

    def queue_for(self, profiling: bool = False, out_of_order: bool = False) -> cl.CommandQueue:
        """A cached queue with these properties, created on first request.

        ``out_of_order`` falls back to an in-order queue when ``supports_out_of_order`` is false,
        which runs event-ordered work correctly, only without overlap.
        """
        key = (profiling, out_of_order and self.supports_out_of_order)
        queue = self._queues.get(key)
        if queue is None:
            properties = 0
            if key[0]:
                properties |= cl.command_queue_properties.PROFILING_ENABLE
            if key[1]:
                properties |= cl.command_queue_properties.OUT_OF_ORDER_EXEC_MODE_ENABLE
            queue = cl.CommandQueue(self.context, self.device, properties=properties)
            self._queues[key] = queue
        return queue

    def require_fp64(self, what: str) -> None:
        """Raise TypeError naming ``what`` (an op or dtype) if the device has no float64."""
        if not self.has_fp64:
            raise TypeError(
                f"{what} needs float64, but OpenCL device {_oneline(self.device.name)!r} "
                f"({self.choice.spec}) lacks cl_khr_fp64. Use float32 "
                "(tinygraph.config.floatX = 'float32'), another device, or the NumPy backend "
                "(TINYGRAPH_DEVICE=numpy)."
            )

    def finish(self) -> None:
        """Wait for every queue of this runtime."""
        for queue in self._queues.values():
            queue.finish()

    def release(self) -> None:
        """Drop programs, then queues, then the context; the runtime is unusable afterwards."""
        self.program_cache.clear()
        self._queues.clear()
        self.queue = None
        self.context = None


_runtimes: dict[str, Runtime] = {}
_lock = threading.Lock()


def get_context(spec: str = "opencl") -> Runtime:
    """The process-wide :class:`Runtime` of the device ``spec`` resolves to (one per device)."""
    with _lock:
        runtime = _runtimes.get(spec)
        if runtime is None:
            choice = select_device(spec)
            same = [r for r in _runtimes.values() if r.device == choice.device]
            runtime = same[0] if same else Runtime(choice)
            _runtimes[spec] = runtime
        return runtime


def device_info(spec: str | None = None) -> str:
    """One paragraph on the device ``spec`` (default ``config.device``) selects, and why."""
    spec = config.device if spec is None else spec
    if spec == "numpy":
        try:
            opencl = f" With config.device = 'opencl' it would use: {device_info('opencl')}"
        except OpenCLUnavailableError as exc:
            opencl = f" OpenCL is unavailable: {exc}"
        return f"NumPy backend (config.device = 'numpy'), running on the host CPU.{opencl}"
    choice = select_device(spec)
    platform, device = choice.platform, choice.device
    fp64 = "supported" if "cl_khr_fp64" in device.extensions.split() else "not supported"
    return (
        f"OpenCL device {_oneline(device.name)!r} ({_type_name(device)}, {choice.spec}) on "
        f"platform {_oneline(platform.name)!r} ({_oneline(platform.version)}): "
        f"{device.max_compute_units} compute units, "
        f"{device.global_mem_size / _GIB:.1f} GiB global memory, "
        f"{device.max_mem_alloc_size / _GIB:.1f} GiB max allocation, float64 {fp64}. "
        f"Chosen by the {choice.rule}."
    )


@atexit.register
def _release_all() -> None:
    """Finish queues, free what an uncaught exception's traceback holds, then drop runtimes.

    Releasing OpenCL objects in this order before interpreter teardown avoids the occasional
    segfault at exit after an uncaught exception (see POCL.md).
    """
    runtimes = list({id(r): r for r in _runtimes.values()}.values())
    _runtimes.clear()
    for runtime in runtimes:
        try:
            runtime.finish()
        except cl.Error:  # a failed kernel must not stop the release of the rest
            pass
    for name in ("last_exc", "last_type", "last_value", "last_traceback"):
        if hasattr(sys, name):
            setattr(sys, name, None)
    gc.collect()
    for runtime in runtimes:
        runtime.release()
