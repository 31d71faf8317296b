"""Global settings: ``config.floatX`` and ``config.device``, read from the environment at import.

``TINYGRAPH_FLOATX`` (``float32`` or ``float64``) and ``TINYGRAPH_DEVICE`` (``opencl``, the
default, ``opencl:P:D`` or ``numpy``) set the defaults; both can be changed in code afterwards.
"""

from __future__ import annotations

import os

_FLOAT_TYPES = ("float32", "float64")


class Config:
    """Process-wide settings with validated assignment."""

    def __init__(self) -> None:
        self._floatX = "float32"
        self._device = "opencl"
        self.floatX = os.environ.get("TINYGRAPH_FLOATX", "float32")
        self.device = os.environ.get("TINYGRAPH_DEVICE", "opencl")
        #: Cast float64 inputs to float32 inputs even when the cast loses precision.
        self.allow_downcast = False
        #: Record per-kernel times in every compiled function (``fn.profile``).
        self.profile = os.environ.get("TINYGRAPH_PROFILE", "") not in ("", "0")

    @property
    def floatX(self) -> str:  # noqa: N802 - Theano's name, kept for porting
        return self._floatX

    @floatX.setter
    def floatX(self, value: str) -> None:  # noqa: N802
        if value not in _FLOAT_TYPES:
            raise ValueError(f"config.floatX must be one of {_FLOAT_TYPES}, got {value!r}")
        self._floatX = value

    @property
    def device(self) -> str:
        return self._device

    @device.setter
    def device(self, value: str) -> None:
        if not isinstance(value, str) or not (
            value == "numpy" or value == "opencl" or value.startswith("opencl:")
        ):
            raise ValueError(
                f"config.device must be 'numpy', 'opencl' or 'opencl:P:D', got {value!r}"
            )
        self._device = value


config = Config()
