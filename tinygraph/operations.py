"""The user-facing tensor namespace (like ``theano.tensor``): constructors and operations."""

from __future__ import annotations

from .graph import Variable, as_variable, constant
from .ops.blas import dot, outer
from .ops.elemwise import (
    abs,
    add,
    cast,
    ceil,
    clip,
    cos,
    eq,
    exp,
    expm1,
    fill,
    floor,
    floor_div,
    ge,
    gt,
    le,
    log,
    log1p,
    logical_and,
    logical_not,
    logical_or,
    logical_xor,
    lt,
    maximum,
    minimum,
    mod,
    mul,
    neg,
    neq,
    ones_like,
    pow,
    relu,
    round,
    sigmoid,
    sign,
    sin,
    softplus,
    sqrt,
    square,
    sub,
    switch,
    tanh,
    true_div,
    where,
    zeros_like,
)
from .ops.nnet import (
    binary_crossentropy,
    categorical_crossentropy,
    log_softmax,
    nll_mean,
    one_hot,
    softmax,
)
from .ops.reduce import (
    argmax,
    argmin,
    logsumexp,
    max,
    mean,
    min,
    prod,
    std,
    sum,
    var,
)
from .ops.shape import (
    alloc,
    arange,
    concatenate,
    dimshuffle,
    expand_dims,
    flatten,
    ones,
    reshape,
    shape,
    specify_broadcastable,
    stack,
    transpose,
    zeros,
)
from .ops.subtensor import getitem, inc_subtensor, set_subtensor
from .types import TensorType, canonical_dtype


def tensor(dtype: str | None = None, ndim: int | None = None, name: str | None = None,
           broadcastable=None) -> Variable:
    """A symbolic input of the given dtype (default ``config.floatX``) and rank."""
    if broadcastable is None:
        if ndim is None:
            raise TypeError("tensor() needs ndim or broadcastable")
        broadcastable = (False,) * ndim
    return Variable(TensorType(canonical_dtype(dtype), tuple(broadcastable)), name=name)


def _constructor(ndim: int, dtype: str | None, what: str):
    def make(name: str | None = None, dtype: str | None = dtype) -> Variable:
        return tensor(dtype, ndim, name)

    make.__doc__ = f"A symbolic {what} ({dtype or 'config.floatX'} unless ``dtype`` is given)."
    return make


scalar = _constructor(0, None, "scalar")
iscalar = _constructor(0, "int32", "scalar")
lscalar = _constructor(0, "int64", "scalar")
fscalar = _constructor(0, "float32", "scalar")
dscalar = _constructor(0, "float64", "scalar")
bscalar = _constructor(0, "bool", "scalar")
vector = _constructor(1, None, "vector")
ivector = _constructor(1, "int32", "vector")
lvector = _constructor(1, "int64", "vector")
fvector = _constructor(1, "float32", "vector")
dvector = _constructor(1, "float64", "vector")
bvector = _constructor(1, "bool", "vector")
matrix = _constructor(2, None, "matrix")
imatrix = _constructor(2, "int32", "matrix")
lmatrix = _constructor(2, "int64", "matrix")
fmatrix = _constructor(2, "float32", "matrix")
dmatrix = _constructor(2, "float64", "matrix")
bmatrix = _constructor(2, "bool", "matrix")
tensor3 = _constructor(3, None, "tensor3")
itensor3 = _constructor(3, "int32", "tensor3")
ltensor3 = _constructor(3, "int64", "tensor3")
ftensor3 = _constructor(3, "float32", "tensor3")
dtensor3 = _constructor(3, "float64", "tensor3")
btensor3 = _constructor(3, "bool", "tensor3")
tensor4 = _constructor(4, None, "tensor4")
itensor4 = _constructor(4, "int32", "tensor4")
ltensor4 = _constructor(4, "int64", "tensor4")
ftensor4 = _constructor(4, "float32", "tensor4")
dtensor4 = _constructor(4, "float64", "tensor4")
btensor4 = _constructor(4, "bool", "tensor4")

__all__ = [
    "Variable", "as_variable", "constant", "tensor", "TensorType",
    "dot", "outer", "abs", "add", "cast", "ceil", "clip", "cos", "eq", "exp", "expm1", "fill",
    "floor", "floor_div", "ge", "gt", "le", "log", "log1p", "logical_and", "logical_not",
    "logical_or", "logical_xor", "lt", "maximum", "minimum", "mod", "mul", "neg", "neq",
    "ones_like", "pow", "relu", "round", "sigmoid", "sign", "sin", "softplus", "sqrt", "square",
    "sub", "switch", "tanh", "true_div", "where", "zeros_like", "binary_crossentropy",
    "categorical_crossentropy", "log_softmax", "nll_mean", "one_hot", "softmax", "argmax",
    "argmin", "logsumexp", "max", "mean", "min", "prod", "std", "sum", "var", "alloc", "arange",
    "concatenate", "dimshuffle", "expand_dims", "flatten", "ones", "reshape", "shape",
    "specify_broadcastable", "stack", "transpose", "zeros", "getitem", "inc_subtensor",
    "set_subtensor",
    "scalar", "iscalar", "lscalar", "fscalar", "dscalar", "bscalar", "vector", "ivector",
    "lvector", "fvector", "dvector", "bvector", "matrix", "imatrix", "lmatrix", "fmatrix",
    "dmatrix", "bmatrix", "tensor3", "itensor3", "ltensor3", "ftensor3", "dtensor3", "btensor3",
    "tensor4", "itensor4", "ltensor4", "ftensor4", "dtensor4", "btensor4",
]
