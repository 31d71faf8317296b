"""Scalar operations: the per-element semantics that :class:`Elemwise` maps over tensors.

Each scalar op knows its NumPy implementation, how its output dtype follows from the input
dtypes, and its gradient written with tensor operations on the Elemwise node's inputs, output
and output gradient. Backends generate their own code from the op's name (the OpenCL C of each
op is in ``backends/opencl/elemwise_codegen.py``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..config import config
from ..types import is_float, is_integer, upcast


def _same(*dtypes: str) -> str:
    return upcast(*dtypes)


def _arith(*dtypes: str) -> str:
    out = upcast(*dtypes)
    return "int64" if out == "bool" else out


def _float(*dtypes: str) -> str:
    out = upcast(*dtypes)
    return out if is_float(out) else config.floatX


def _bool(*dtypes: str) -> str:
    return "bool"


class ScalarOp:
    """An elementwise function of ``nin`` operands."""

    def __init__(self, name: str, nin: int, impl: Callable,
                 out_dtype: Callable[..., str], grad: Callable | None = None,
                 accepts_bool: bool = True) -> None:
        self.name = name
        self.nin = nin
        self.impl = impl
        self.out_dtype = out_dtype
        self._grad = grad
        self.accepts_bool = accepts_bool

    def output_dtype(self, *dtypes: str) -> str:
        if not self.accepts_bool and "bool" in dtypes:
            raise TypeError(f"{self.name} is not defined for bool operands; cast them first")
        return self.out_dtype(*dtypes)

    def perform(self, *arrays: np.ndarray, out_dtype: str) -> np.ndarray:
        with np.errstate(all="ignore"):
            return self.compute(*arrays, out_dtype=out_dtype)

    def compute(self, *arrays: np.ndarray, out_dtype: str) -> np.ndarray:
        """``perform`` without its floating-point error state (the caller sets one)."""
        if self.out_dtype is _float:
            arrays = tuple(a if is_float(a.dtype.name) else a.astype(out_dtype) for a in arrays)
        elif self.out_dtype is _arith:
            # bools count as integers (True + True == 2); NumPy would compute logical or/and
            # and refuses to subtract them
            arrays = tuple(a.astype(out_dtype) if a.dtype == np.bool_ else a for a in arrays)
        return np.asarray(self.impl(*arrays)).astype(out_dtype, copy=False)

    def grad(self, inputs: list, output, gout) -> list:
        """Gradients for each input (None where there is no gradient)."""
        if self._grad is None:
            return [None] * self.nin
        return self._grad(*inputs, output, gout)

    def __eq__(self, other) -> bool:
        return isinstance(other, ScalarOp) and self.name == other.name

    def __hash__(self) -> int:
        return hash(self.name)

    def __str__(self) -> str:
        return self.name

    __repr__ = __str__


def _t():
    from .. import operations as tensor

    return tensor


def _zero_grad(*args):
    *inputs, _out, g = args
    return [_t().zeros_like(x) if is_float(x.dtype) else None for x in inputs]


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _softplus(x):
    return np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0)


def _int_div(x, y):
    if is_integer(np.result_type(x, y).name):
        return np.where(y == 0, 0, np.floor_divide(x, np.where(y == 0, 1, y)))
    return np.floor_divide(x, y)


def _mod(x, y):
    if is_integer(np.result_type(x, y).name):
        return np.where(y == 0, 0, np.mod(x, np.where(y == 0, 1, y)))
    return np.mod(x, y)


def _pow_grad(x, y, out, g):
    t = _t()
    gx = g * y * t.pow(x, y - 1)
    gy = g * out * t.log(t.switch(x > 0, x, 1)) if is_float(y.dtype) else None
    return [gx, gy]


def _max_grad(x, y, out, g):
    return [g * (x >= y), g * (x < y)]


def _min_grad(x, y, out, g):
    return [g * (x <= y), g * (x > y)]


def _switch_grad(c, a, b, out, g):
    t = _t()
    zero = t.zeros_like(g)
    return [None, t.switch(c, g, zero), t.switch(c, zero, g)]


def _clip_grad(x, lo, hi, out, g):
    return [g * ((x >= lo) & (x <= hi)), g * (x < lo), g * (x > hi)]


add = ScalarOp("add", 2, np.add, _arith, lambda x, y, o, g: [g, g])
sub = ScalarOp("sub", 2, np.subtract, _arith, lambda x, y, o, g: [g, -g])
mul = ScalarOp("mul", 2, np.multiply, _arith,
               lambda x, y, o, g: [g * y, g * x])
true_div = ScalarOp("true_div", 2, np.true_divide, _float,
                    lambda x, y, o, g: [g / y, -g * o / y])
floor_div = ScalarOp("floor_div", 2, _int_div, _arith, _zero_grad)
mod = ScalarOp("mod", 2, _mod, _arith,
               lambda x, y, o, g: [g, -g * _t().floor(x / y)])
pow = ScalarOp("pow", 2, np.power, _float, _pow_grad)
maximum = ScalarOp("maximum", 2, np.maximum, _same,
                   _max_grad)
minimum = ScalarOp("minimum", 2, np.minimum, _same,
                   _min_grad)
eq = ScalarOp("eq", 2, np.equal, _bool)
neq = ScalarOp("neq", 2, np.not_equal, _bool)
lt = ScalarOp("lt", 2, np.less, _bool)
le = ScalarOp("le", 2, np.less_equal, _bool)
gt = ScalarOp("gt", 2, np.greater, _bool)
ge = ScalarOp("ge", 2, np.greater_equal, _bool)
logical_and = ScalarOp("and", 2, np.logical_and, _bool)
logical_or = ScalarOp("or", 2, np.logical_or, _bool)
logical_xor = ScalarOp("xor", 2, np.logical_xor, _bool)
second = ScalarOp("second", 2, lambda x, y: np.broadcast_to(y, np.broadcast_shapes(
    x.shape, y.shape)), lambda x, y: y, lambda x, y, o, g: [None, g])

neg = ScalarOp("neg", 1, np.negative, _arith, lambda x, o, g: [-g],
               accepts_bool=False)
abs = ScalarOp("abs", 1, np.abs, _same, lambda x, o, g: [g * _t().sign(x)])
exp = ScalarOp("exp", 1, np.exp, _float, lambda x, o, g: [g * o])
log = ScalarOp("log", 1, np.log, _float, lambda x, o, g: [g / x])
log1p = ScalarOp("log1p", 1, np.log1p, _float, lambda x, o, g: [g / (x + 1.0)])
expm1 = ScalarOp("expm1", 1, np.expm1, _float, lambda x, o, g: [g * (o + 1.0)])
sqrt = ScalarOp("sqrt", 1, np.sqrt, _float, lambda x, o, g: [g * 0.5 / o])
square = ScalarOp("square", 1, np.square, _arith,
                  lambda x, o, g: [g * 2.0 * x], accepts_bool=False)
sin = ScalarOp("sin", 1, np.sin, _float, lambda x, o, g: [g * _t().cos(x)])
cos = ScalarOp("cos", 1, np.cos, _float, lambda x, o, g: [-g * _t().sin(x)])
tanh = ScalarOp("tanh", 1, np.tanh, _float, lambda x, o, g: [g * (1.0 - o * o)])
sigmoid = ScalarOp("sigmoid", 1, _sigmoid, _float,
                   lambda x, o, g: [g * o * (1.0 - o)])
softplus = ScalarOp("softplus", 1, _softplus, _float, lambda x, o, g: [g * _t().sigmoid(x)])
relu = ScalarOp("relu", 1, lambda x: np.maximum(x, 0), _same,
                lambda x, o, g: [g * (o > 0)], accepts_bool=False)
sign = ScalarOp("sign", 1, np.sign, _same, _zero_grad, accepts_bool=False)
floor = ScalarOp("floor", 1, np.floor, _same, _zero_grad)
ceil = ScalarOp("ceil", 1, np.ceil, _same, _zero_grad)
round_half_even = ScalarOp("round", 1, np.round, _same, _zero_grad)
logical_not = ScalarOp("not", 1, np.logical_not, _bool)
identity = ScalarOp("identity", 1, lambda x: x, _same, lambda x, o, g: [g])

switch = ScalarOp("switch", 3, np.where, lambda c, a, b: upcast(a, b), _switch_grad)
clip = ScalarOp("clip", 3, np.clip, _same, _clip_grad)


class Cast(ScalarOp):
    """Conversion to ``dtype``; differentiable only between float dtypes."""

    def __init__(self, dtype: str) -> None:
        self.dtype = dtype
        super().__init__(f"cast_{dtype}", 1, lambda x: x.astype(dtype), lambda _: dtype,
                         self._cast_grad)

    def _cast_grad(self, x, out, g):
        if is_float(x.dtype) and is_float(self.dtype):
            return [_t().cast(g, x.dtype)]
        return [None]
