"""Algebraic canonicalisation: identities that make graphs smaller and easier to match."""

from __future__ import annotations

import numpy as np

from ..graph import Apply, Constant, Variable
from ..ops import scalar as s
from ..ops.elemwise import Elemwise, fill, neg, sqrt, square
from ..ops.nnet import CrossentropySoftmax
from ..ops.reduce import Reduce
from ..ops.shape import DimShuffle, Shape, dimshuffle, shape
from ..types import is_float


def _scalar_op(node: Apply):
    return node.op.scalar_op if isinstance(node.op, Elemwise) else None


def _constant_data(var: Variable) -> np.ndarray | None:
    """The value of a constant, also seen through dimshuffles (Elemwise pads constants of
    lower rank with a DimShuffle, which only constant folding removes)."""
    while var.owner is not None and isinstance(var.owner.op, DimShuffle):
        var = var.owner.inputs[0]
    return var.data if isinstance(var, Constant) else None


def _is_constant(var: Variable, value: float) -> bool:
    data = _constant_data(var)
    return data is not None and data.size > 0 and bool(np.all(data == value))


def _same_type(new: Variable, old: Variable) -> bool:
    return new.type == old.type


def remove_neutral_elements(node: Apply) -> list[Variable] | None:
    """x + 0, 0 + x, x - 0, x * 1, 1 * x, x / 1, x ** 1 -> x (when the type is unchanged)."""
    op = _scalar_op(node)
    if op is None or op.nin != 2:
        return None
    x, y = node.inputs
    out = node.outputs[0]
    candidates = []
    if op in (s.add, s.sub) and _is_constant(y, 0):
        candidates.append(x)
    if op == s.add and _is_constant(x, 0):
        candidates.append(y)
    if op in (s.mul, s.true_div, s.pow) and _is_constant(y, 1):
        candidates.append(x)
    if op == s.mul and _is_constant(x, 1):
        candidates.append(y)
    for candidate in candidates:
        if _same_type(candidate, out):
            return [candidate]
    return None


def simplify_powers(node: Apply) -> list[Variable] | None:
    """x ** 2 -> square(x), x ** 0.5 -> sqrt(x)."""
    if _scalar_op(node) != s.pow:
        return None
    x, y = node.inputs
    out = node.outputs[0]
    for value, fn in ((2, square), (0.5, sqrt)):
        if _is_constant(y, value) and _constant_data(y).size == 1:
            candidate = fn(x)
            if _same_type(candidate, out):
                return [candidate]
    return None


def remove_double_negation(node: Apply) -> list[Variable] | None:
    """-(-x) -> x."""
    if _scalar_op(node) != s.neg:
        return None
    (x,) = node.inputs
    if x.owner is not None and _scalar_op(x.owner) == s.neg:
        return [x.owner.inputs[0]]
    return None


def merge_dimshuffles(node: Apply) -> list[Variable] | None:
    """dimshuffle(dimshuffle(x)) -> one dimshuffle; identity dimshuffles disappear."""
    if not isinstance(node.op, DimShuffle):
        return None
    (x,) = node.inputs
    order = node.op.new_order
    if order == tuple(range(x.ndim)):
        return [x]
    if x.owner is None or not isinstance(x.owner.op, DimShuffle):
        return None
    inner = x.owner.op.new_order
    composed = tuple("x" if d == "x" else inner[d] for d in order)
    return [dimshuffle(x.owner.inputs[0], composed)]


def _fill_parts(var: Variable):
    """``(x, v)`` when ``var`` is ``fill(x, v)`` (Theano's ``second``)."""
    if var.owner is not None and _scalar_op(var.owner) == s.second:
        return var.owner.inputs
    return None


def remove_useless_fills(node: Apply) -> list[Variable] | None:
    """fill(x, v) -> v when ``x`` has only length-1 axes (a scalar's gradient ``fill(cost,
    1)``): the fill would only tie ``v`` to the value of ``x``."""
    if _scalar_op(node) != s.second:
        return None
    x, v = node.inputs
    return [v] if all(x.broadcastable) and v.type == node.outputs[0].type else None


def sink_fills(node: Apply) -> list[Variable] | None:
    """Move fills out of elementwise ops so gradients of sums and means simplify:
    ``f(fill(x, v), y)`` -> ``f(v, y)`` when that keeps the output type (``y`` fixes the
    shape), else ``fill(x, f(v, scalars))`` when the other operands are scalars."""
    op = _scalar_op(node)
    if op is None or op == s.second:
        return None
    out = node.outputs[0]
    for i, inp in enumerate(node.inputs):
        parts = _fill_parts(inp)
        if parts is None:
            continue
        x, v = parts
        inputs = list(node.inputs)
        inputs[i] = v
        replaced = node.op(*inputs)
        if replaced.type == out.type:
            return [replaced]
        others = [a for j, a in enumerate(node.inputs) if j != i]
        if all(all(a.broadcastable) for a in others + [v]):
            sunk = fill(x, replaced)
            if sunk.type == out.type:
                return [sunk]
    return None


def lift_shapes(node: Apply) -> list[Variable] | None:
    """shape(f(x, ...)) -> shape(x) for an elementwise ``f`` and an operand of the same
    broadcast pattern; shape(CrossentropySoftmax(z, y)) -> shape(y). A shape then no longer
    depends on the value it measures (a mean's gradient needs only the count)."""
    if not isinstance(node.op, Shape):
        return None
    owner = node.inputs[0].owner
    if owner is None:
        return None
    if isinstance(owner.op, CrossentropySoftmax):
        return [shape(owner.inputs[1])]
    if isinstance(owner.op, Elemwise):
        for inp in owner.inputs:
            if inp.broadcastable == node.inputs[0].broadcastable:
                return [shape(inp)]
    return None


def negation_out_of_reductions(node: Apply) -> list[Variable] | None:
    """sum(-x) -> -sum(x), mean(-x) -> -mean(x) for floats: the negation moves to the
    (smaller) result, where it meets and cancels the cost's own sign."""
    if not isinstance(node.op, Reduce) or node.op.kind not in ("sum", "mean"):
        return None
    (x,) = node.inputs
    if x.owner is None or _scalar_op(x.owner) != s.neg or not is_float(x.dtype) or \
            node.outputs[0].dtype != x.dtype:
        return None
    return [neg(node.op(x.owner.inputs[0]))]


CANONICALIZE = (remove_neutral_elements, simplify_powers, remove_double_negation,
                merge_dimshuffles, remove_useless_fills, sink_fills, lift_shapes,
                negation_out_of_reductions)
