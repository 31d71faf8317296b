"""tinygraph: a Theano-style symbolic graph framework compiling to OpenCL.

Build graphs with the tensor functions below, differentiate them with :func:`grad`, and compile
them with :func:`function`.
"""

from .config import config
from .function import Function, function
from .grad import DisconnectedInputError, grad
from .graph import Apply, Constant, Op, Variable, as_variable, constant
from .operations import *  # noqa: F403 - the tensor namespace is the public API
from .operations import __all__ as _tensor_all
from .printing import debugprint
from .random import RandomStreams
from .shared import SharedVariable, shared
from .types import TensorType

__version__ = "0.1.0"


def device_info(device: str | None = None) -> str:
    """Which device ``device`` (default ``config.device``) runs on, and why it was chosen."""
    from .backends.opencl.device import device_info as describe

    return describe(device)


__all__ = [
    "config", "device_info", "function", "Function", "grad", "DisconnectedInputError", "Apply",
    "Constant", "Op", "RandomStreams", "Variable", "as_variable", "constant", "debugprint",
    "SharedVariable", "shared", "TensorType", *_tensor_all,
]
