"""Constant folding: nodes whose inputs are all constants are computed at compile time."""

from __future__ import annotations

from ..graph import Apply, Constant, Variable
from ..types import TensorType

#: results larger than this many elements stay symbolic (folding would bloat the graph)
MAX_FOLDED_ELEMENTS = 1 << 16


def fold_constants(node: Apply) -> list[Variable] | None:
    if not node.inputs or not all(isinstance(v, Constant) for v in node.inputs):
        return None
    if getattr(node.op, "never_fold", False):
        return None
    values = node.op.perform(node, [v.data for v in node.inputs])
    if any(v.size > MAX_FOLDED_ELEMENTS for v in values):
        return None
    return [Constant(TensorType(out.dtype, out.broadcastable), value.astype(out.dtype))
            for out, value in zip(node.outputs, values)]
