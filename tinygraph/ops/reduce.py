"""Reductions over any set of axes: sum, prod, max, min, mean, argmax/argmin, and the
compositions var, std and logsumexp."""

from __future__ import annotations

import builtins
from collections.abc import Sequence

import numpy as np

from ..config import config
from ..graph import Apply, Op, Variable, as_variable, constant
from ..types import TensorType, is_float
from . import elemwise as ew
from .shape import dimshuffle, shape


def normalize_axes(axis, ndim: int, what: str) -> tuple[int, ...]:
    """Axes as a sorted tuple of non-negative ints; ``None`` means all axes."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out = []
    for a in axes:
        if not -ndim <= a < builtins.max(ndim, 1) or (ndim == 0 and a not in (0, -1)):
            raise ValueError(f"{what}: axis {a} is out of range for a {ndim}-d tensor")
        out.append(int(a) % builtins.max(ndim, 1))
    if len(set(out)) != len(out):
        raise ValueError(f"{what}: repeated axis in {axes}")
    return tuple(sorted(a for a in out if a < ndim))


_NUMPY = {"sum": np.sum, "prod": np.prod, "max": np.max, "min": np.min, "mean": np.mean}


class Reduce(Op):
    """``kind`` (sum, prod, max, min, mean) over ``axes``."""

    __props__ = ("kind", "axes", "keepdims")

    def __init__(self, kind: str, axes: Sequence[int], keepdims: bool = False) -> None:
        if kind not in _NUMPY:
            raise ValueError(f"unknown reduction {kind!r}")
        self.kind = kind
        self.axes = tuple(axes)
        self.keepdims = bool(keepdims)

    def make_node(self, x) -> Apply:
        x = as_variable(x)
        if any(a >= x.ndim for a in self.axes):
            raise ValueError(f"{self}: axes out of range for {x.type}")
        dtype = x.dtype
        if self.kind in ("sum", "prod") and not is_float(dtype):
            dtype = "int64"
        elif self.kind == "mean" and not is_float(dtype):
            dtype = config.floatX
        return Apply(self, [x], [TensorType(dtype, self._out_broadcastable(x.broadcastable))])

    def _out_broadcastable(self, bcast: tuple[bool, ...]) -> tuple[bool, ...]:
        if self.keepdims:
            return tuple(b or a in self.axes for a, b in enumerate(bcast))
        return tuple(b for a, b in enumerate(bcast) if a not in self.axes)

    def perform(self, node, inputs):
        (x,) = inputs
        if x.size == 0 and self.kind in ("max", "min") and \
                any(x.shape[a] == 0 for a in self.axes):
            raise ValueError(f"{self}: cannot take the {self.kind} over an empty axis "
                             f"(input shape {x.shape})")
        kwargs = {} if self.kind in ("max", "min") else {"dtype": node.outputs[0].dtype}
        out = _NUMPY[self.kind](x, axis=self.axes, keepdims=self.keepdims, **kwargs)
        return [np.asarray(out, dtype=node.outputs[0].dtype)]

    def infer_shape(self, node, input_shapes, input_values):
        (shp,) = input_shapes
        if self.keepdims:
            return [tuple(1 if a in self.axes else s for a, s in enumerate(shp))]
        return [tuple(s for a, s in enumerate(shp) if a not in self.axes)]

    def grad(self, inputs, output_grads):
        (x,) = inputs
        (g,) = output_grads
        if not is_float(x.dtype):
            return [None]
        out = self(x)
        g_b, out_b = self._expand(g, x.ndim), self._expand(out, x.ndim)
        if self.kind == "sum":
            gx = ew.fill(x, g_b)
        elif self.kind == "mean":
            gx = ew.fill(x, g_b / ew.cast(self._count(x), g.dtype))
        elif self.kind in ("max", "min"):
            gx = g_b * ew.eq(x, out_b)
        else:
            gx = _prod_grad(x, g_b, out_b, self.axes)
        return [ew.cast(gx, x.dtype)]

    def _expand(self, v: Variable, ndim: int) -> Variable:
        if self.keepdims:
            return v
        order, it = [], iter(range(v.ndim))
        for a in range(ndim):
            order.append("x" if a in self.axes else next(it))
        return dimshuffle(v, order)

    def _count(self, x: Variable) -> Variable:
        n = constant(1, "int64")
        shp = shape(x)
        for a in self.axes:
            n = n * shp[a]
        return n

    def __str__(self) -> str:
        keep = ", keepdims" if self.keepdims else ""
        return f"{self.kind.capitalize()}{{axes={self.axes}{keep}}}"


def _prod_grad(x, g_b, out_b, axes) -> Variable:
    """Product of the other elements, correct when some elements are zero."""
    is_zero = ew.eq(x, 0)
    zeros = Reduce("sum", axes, keepdims=True)(ew.cast(is_zero, "int64"))
    prod_nonzero = Reduce("prod", axes, keepdims=True)(ew.switch(is_zero, 1, x))
    no_zero = g_b * out_b / ew.switch(is_zero, 1, x)
    one_zero = ew.switch(is_zero, g_b * prod_nonzero, 0)
    return ew.switch(ew.eq(zeros, 0), no_zero, ew.switch(ew.eq(zeros, 1), one_zero, 0))


class Argmax(Op):
    """Index of the maximum (``kind='max'``) or minimum along one axis, or over all axes of
    the flattened tensor (``axis=None``), as int64."""

    __props__ = ("kind", "axis", "keepdims")

    def __init__(self, kind: str, axis: int | None, keepdims: bool = False) -> None:
        self.kind = kind
        self.axis = axis
        self.keepdims = bool(keepdims)

    def make_node(self, x) -> Apply:
        x = as_variable(x)
        if self.axis is None:
            bcast = (True,) * x.ndim if self.keepdims else ()
        elif self.keepdims:
            bcast = tuple(b or a == self.axis for a, b in enumerate(x.broadcastable))
        else:
            bcast = tuple(b for a, b in enumerate(x.broadcastable) if a != self.axis)
        return Apply(self, [x], [TensorType("int64", bcast)])

    def perform(self, node, inputs):
        (x,) = inputs
        if x.size == 0:
            raise ValueError(f"{self}: attempt to get arg{self.kind} of an empty array")
        fn = np.argmax if self.kind == "max" else np.argmin
        return [np.asarray(fn(x, axis=self.axis, keepdims=self.keepdims), dtype="int64")]

    def infer_shape(self, node, input_shapes, input_values):
        (shp,) = input_shapes
        if self.axis is None:
            return [(1,) * len(shp) if self.keepdims else ()]
        if self.keepdims:
            return [tuple(1 if a == self.axis else s for a, s in enumerate(shp))]
        return [tuple(s for a, s in enumerate(shp) if a != self.axis)]

    def grad(self, inputs, output_grads):
        return [None]

    def __str__(self) -> str:
        return f"Arg{self.kind}{{axis={self.axis}}}"


def _reduce(kind: str, x, axis, keepdims: bool) -> Variable:
    x = as_variable(x)
    axes = normalize_axes(axis, x.ndim, kind)
    if not axes and kind != "mean":
        return x if kind in ("max", "min") or is_float(x.dtype) else ew.cast(x, "int64")
    return Reduce(kind, axes, keepdims)(x)


def sum(x, axis=None, keepdims: bool = False) -> Variable:
    """Sum over ``axis`` (an int, a tuple, or None for all)."""
    return _reduce("sum", x, axis, keepdims)


def prod(x, axis=None, keepdims: bool = False) -> Variable:
    return _reduce("prod", x, axis, keepdims)


def max(x, axis=None, keepdims: bool = False) -> Variable:
    return _reduce("max", x, axis, keepdims)


def min(x, axis=None, keepdims: bool = False) -> Variable:
    return _reduce("min", x, axis, keepdims)


def mean(x, axis=None, keepdims: bool = False) -> Variable:
    return _reduce("mean", x, axis, keepdims)


def var(x, axis=None, keepdims: bool = False) -> Variable:
    """Population variance (NumPy's default ``ddof=0``)."""
    x = as_variable(x)
    centred = x - mean(x, axis, keepdims=True)
    return mean(ew.square(centred), axis, keepdims=keepdims)


def std(x, axis=None, keepdims: bool = False) -> Variable:
    return ew.sqrt(var(x, axis, keepdims=keepdims))


def logsumexp(x, axis=None, keepdims: bool = False) -> Variable:
    """log(sum(exp(x))) computed stably (shifted by the maximum)."""
    x = as_variable(x)
    m = max(x, axis, keepdims=True)
    out = m + ew.log(sum(ew.exp(x - m), axis, keepdims=True))
    if keepdims:
        return out
    axes = normalize_axes(axis, x.ndim, "logsumexp")
    return dimshuffle(out, [a for a in range(x.ndim) if a not in axes])


def _arg(kind: str, x, axis, keepdims: bool) -> Variable:
    x = as_variable(x)
    if axis is not None:
        (axis,) = normalize_axes(axis, x.ndim, f"arg{kind}")
    return Argmax(kind, axis, keepdims)(x)


def argmax(x, axis=None, keepdims: bool = False) -> Variable:
    """Index of the maximum along ``axis`` (of the flattened tensor when None)."""
    return _arg("max", x, axis, keepdims)


def argmin(x, axis=None, keepdims: bool = False) -> Variable:
    return _arg("min", x, axis, keepdims)
