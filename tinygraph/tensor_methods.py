"""Operators and methods of symbolic variables (``x + y``, ``x.T``, ``x.sum(axis=1)``, ...).

``==`` keeps Python's identity semantics so variables can be dict keys; use ``tinygraph.eq``.
"""

from __future__ import annotations


def _t():
    from . import operations as tensor

    return tensor


class TensorMethods:
    """Mixin giving :class:`~tinygraph.graph.Variable` the NumPy-like tensor API."""

    __array_priority__ = 1000  # make ``ndarray + variable`` call our reflected operators
    __hash__ = object.__hash__

    def __eq__(self, other):
        return self is other

    def __add__(self, other):
        return _t().add(self, other)

    def __radd__(self, other):
        return _t().add(other, self)

    def __sub__(self, other):
        return _t().sub(self, other)

    def __rsub__(self, other):
        return _t().sub(other, self)

    def __mul__(self, other):
        return _t().mul(self, other)

    def __rmul__(self, other):
        return _t().mul(other, self)

    def __truediv__(self, other):
        return _t().true_div(self, other)

    def __rtruediv__(self, other):
        return _t().true_div(other, self)

    def __floordiv__(self, other):
        return _t().floor_div(self, other)

    def __rfloordiv__(self, other):
        return _t().floor_div(other, self)

    def __mod__(self, other):
        return _t().mod(self, other)

    def __rmod__(self, other):
        return _t().mod(other, self)

    def __pow__(self, other):
        return _t().pow(self, other)

    def __rpow__(self, other):
        return _t().pow(other, self)

    def __neg__(self):
        return _t().neg(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return _t().abs(self)

    def __lt__(self, other):
        return _t().lt(self, other)

    def __le__(self, other):
        return _t().le(self, other)

    def __gt__(self, other):
        return _t().gt(self, other)

    def __ge__(self, other):
        return _t().ge(self, other)

    def __and__(self, other):
        return _t().logical_and(self, other)

    def __rand__(self, other):
        return _t().logical_and(other, self)

    def __or__(self, other):
        return _t().logical_or(self, other)

    def __ror__(self, other):
        return _t().logical_or(other, self)

    def __invert__(self):
        return _t().logical_not(self)

    def __matmul__(self, other):
        return _t().dot(self, other)

    def __rmatmul__(self, other):
        return _t().dot(other, self)

    def __getitem__(self, index):
        return _t().getitem(self, index)

    @property
    def T(self):  # noqa: N802 - NumPy's name
        return _t().transpose(self)

    @property
    def shape(self):
        return _t().shape(self)

    def transpose(self, *axes):
        return _t().transpose(self, axes[0] if len(axes) == 1 else (axes or None))

    def dimshuffle(self, *pattern):
        if len(pattern) == 1 and isinstance(pattern[0], (list, tuple)):
            pattern = tuple(pattern[0])
        return _t().dimshuffle(self, pattern)

    def reshape(self, *shape, ndim=None):
        if len(shape) == 1 and not isinstance(shape[0], int):
            shape = shape[0]
        return _t().reshape(self, shape, ndim=ndim)

    def flatten(self, ndim=1):
        return _t().flatten(self, ndim)

    def astype(self, dtype):
        return _t().cast(self, dtype)

    def sum(self, axis=None, keepdims=False):
        return _t().sum(self, axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims=False):
        return _t().mean(self, axis, keepdims=keepdims)

    def prod(self, axis=None, keepdims=False):
        return _t().prod(self, axis, keepdims=keepdims)

    def max(self, axis=None, keepdims=False):
        return _t().max(self, axis, keepdims=keepdims)

    def min(self, axis=None, keepdims=False):
        return _t().min(self, axis, keepdims=keepdims)

    def var(self, axis=None, keepdims=False):
        return _t().var(self, axis, keepdims=keepdims)

    def std(self, axis=None, keepdims=False):
        return _t().std(self, axis, keepdims=keepdims)

    def argmax(self, axis=None, keepdims=False):
        return _t().argmax(self, axis, keepdims=keepdims)

    def argmin(self, axis=None, keepdims=False):
        return _t().argmin(self, axis, keepdims=keepdims)

    def dot(self, other):
        return _t().dot(self, other)

    def clip(self, low, high):
        return _t().clip(self, low, high)
