"""A dense layer's backward product joins its SGD update: ``DotEpilogue(d, W.T, E...)`` (the
gradient at the layer's input) and ``GemmColumnSums(W, alpha, h.T, d, beta, ...)`` (the weight
and bias updates) become one ``BackpropUpdate`` node, which the OpenCL backend computes in
one pass over W for small minibatches.

Runs after ``fuse_gemm_column_sums``, whose outputs are only the function's outputs, so
replacing them there replaces them everywhere. The backward product must have no bias and read
the transpose of the very W the update starts from, and the update's operands must not depend
on the backward product, nor its operands on the update (one node cannot compute both then).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..graph import Apply, Variable, ancestors, clone_replace, toposort
from ..ops.backprop_update import BackpropUpdate
from ..ops.blas import DotEpilogue
from ..ops.gemm_column_sums import GemmColumnSums
from ..ops.shape import DimShuffle


def transposed_source(var: Variable) -> Variable | None:
    """X when ``var`` is ``X.T`` of a matrix X, else None."""
    node = var.owner
    if node is not None and isinstance(node.op, DimShuffle) and \
            tuple(node.op.new_order) == (1, 0):
        return node.inputs[0]
    return None


def _pair(nodes: list[Apply]) -> tuple[Apply, Apply] | None:
    """The first (backward product, update) pair over one W and one d, or None."""
    updates = {}
    for node in nodes:
        if isinstance(node.op, GemmColumnSums) and transposed_source(node.inputs[2]) is not None:
            updates.setdefault((node.inputs[0].id, node.inputs[3].id), node)
    for node in nodes:
        if not isinstance(node.op, DotEpilogue) or node.op.has_bias:
            continue
        w = transposed_source(node.inputs[1])
        update = None if w is None else updates.get((w.id, node.inputs[0].id))
        if update is not None and node.outputs[0].id not in ancestors(update.inputs) and \
                ancestors(node.inputs).isdisjoint(v.id for v in update.outputs):
            return node, update
    return None


def fuse_backprop_updates(outputs: Sequence[Variable]) -> list[Variable]:
    """The graph with each dense layer's backward product and update as one BackpropUpdate,
    one layer at a time (a layer's update reads the gradient the layer above computes)."""
    outputs = list(outputs)
    while (pair := _pair(toposort(outputs))) is not None:
        backward, update = pair
        weights, bias, gradient = BackpropUpdate(backward.op, update.op)(
            *update.inputs, *backward.inputs[1:])
        outputs = clone_replace(outputs, {update.outputs[0]: weights, update.outputs[1]: bias,
                                          backward.outputs[0]: gradient})
    return outputs
