"""Numerical stabilisation: replace patterns that overflow or lose precision by stable ops.

- ``log(softmax(x))`` -> ``log_softmax(x)``, also through reshape, dimshuffle and indexing;
- ``exp(log_softmax(x))`` -> ``softmax(x)``;
- ``log_softmax(z)[arange(n), y]`` -> ``-CrossentropySoftmax(z, y)`` (network3's cost);
- ``log(sigmoid(x))`` -> ``-softplus(-x)``, ``log(1 - sigmoid(x))`` -> ``-softplus(x)``.
"""

from __future__ import annotations

from ..graph import Apply, Constant, Variable
from ..ops import scalar as s
from ..ops.elemwise import softplus
from ..ops.nnet import CrossentropySoftmax, LogSoftmax, Softmax, log_softmax, softmax
from ..ops.shape import ARange, DimShuffle, Reshape, Shape
from ..ops.subtensor import AdvancedSubtensor, Subtensor
from .canonicalize import _is_constant, _scalar_op

_TRANSPARENT = (Reshape, DimShuffle, Subtensor, AdvancedSubtensor)


def _owner_op(var: Variable, op_type):
    return var.owner is not None and isinstance(var.owner.op, op_type)


def log_of_softmax(node: Apply) -> list[Variable] | None:
    """log(softmax(x)) -> log_softmax(x), looking through shape and indexing ops."""
    if _scalar_op(node) != s.log:
        return None
    (x,) = node.inputs
    if _owner_op(x, Softmax):
        return [log_softmax(x.owner.inputs[0])]
    if _owner_op(x, _TRANSPARENT) and _owner_op(x.owner.inputs[0], Softmax):
        inner = x.owner.inputs[0].owner.inputs[0]
        return [x.owner.clone_with_new_inputs([log_softmax(inner), *x.owner.inputs[1:]]).out]
    return None


def exp_of_log_softmax(node: Apply) -> list[Variable] | None:
    """exp(log_softmax(x)) -> softmax(x)."""
    if _scalar_op(node) == s.exp and _owner_op(node.inputs[0], LogSoftmax):
        return [softmax(node.inputs[0].owner.inputs[0])]
    return None


def _is_shape_zero_of(var: Variable) -> Variable | None:
    """The tensor ``t`` when ``var`` is ``t.shape[0]``."""
    if not _owner_op(var, Subtensor) or var.owner.op.idx_list != (("int", 0),):
        return None
    shp = var.owner.inputs[0]
    return shp.owner.inputs[0] if _owner_op(shp, Shape) else None


def crossentropy_of_log_softmax(node: Apply) -> list[Variable] | None:
    """log_softmax(z)[arange(len(y)), y] -> -CrossentropySoftmax(z, y) (also with
    ``arange(z.shape[0])``, which needs one label per row)."""
    if not isinstance(node.op, AdvancedSubtensor) or len(node.inputs) != 3:
        return None
    logp, rows, labels = node.inputs
    if not _owner_op(logp, LogSoftmax) or logp.ndim != 2 or labels.ndim != 1:
        return None
    if not _owner_op(rows, ARange):
        return None
    start, stop, step = rows.owner.inputs
    if not (isinstance(start, Constant) and _is_constant(start, 0) and _is_constant(step, 1)):
        return None
    z = logp.owner.inputs[0]
    rows_of = _is_shape_zero_of(stop)
    if rows_of is labels:
        return [-CrossentropySoftmax()(z, labels)]
    if rows_of is z:
        return [-CrossentropySoftmax(all_rows=True)(z, labels)]
    return None


def _sigmoid_input(var: Variable) -> Variable | None:
    if var.owner is not None and _scalar_op(var.owner) == s.sigmoid:
        return var.owner.inputs[0]
    return None


def log_of_sigmoid(node: Apply) -> list[Variable] | None:
    """log(sigmoid(x)) -> -softplus(-x); log(1 - sigmoid(x)) -> -softplus(x)."""
    if _scalar_op(node) != s.log:
        return None
    (x,) = node.inputs
    inner = _sigmoid_input(x)
    if inner is not None:
        return [-softplus(-inner)]
    if x.owner is not None and _scalar_op(x.owner) == s.sub and _is_constant(x.owner.inputs[0],
                                                                              1):
        inner = _sigmoid_input(x.owner.inputs[1])
        if inner is not None:
            out = -softplus(inner)
            return [out] if out.type == node.outputs[0].type else None
    return None


STABILIZE = (log_of_softmax, exp_of_log_softmax, crossentropy_of_log_softmax, log_of_sigmoid)
