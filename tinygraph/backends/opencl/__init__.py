"""OpenCL backend: device selection, per-device runtime (context, queues) and program cache."""

from .device import (
    DeviceChoice,
    OpenCLUnavailableError,
    Runtime,
    device_info,
    get_context,
    select_device,
)
from .program_cache import KernelBuildError, ProgramCache

__all__ = [
    "DeviceChoice",
    "KernelBuildError",
    "OpenCLUnavailableError",
    "ProgramCache",
    "Runtime",
    "device_info",
    "get_context",
    "select_device",
]
