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

__all__ = [
    "config", "function", "Function", "grad", "DisconnectedInputError", "Apply", "Constant",
    "Op", "RandomStreams", "Variable", "as_variable", "constant", "debugprint",
    "SharedVariable", "shared", "TensorType", *_tensor_all,
]
