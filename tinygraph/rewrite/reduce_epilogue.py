"""Reduction epilogues: an elementwise op consuming a reduction's result joins the reduction
as one ``ReduceEpilogue`` node (one kernel on OpenCL), e.g. SGD's ``b - eta * sum(delta, 0)``
or a running cost total ``total + cast(mean(costs))``.

The reduced value must reach the elementwise op directly or through a dimshuffle that only
adds or drops length-1 axes, be used nowhere else, and have the elementwise op's broadcast
pattern or be a single value; the other operands have that pattern too or a single element.
(A backend whose kernel cannot broadcast the reduced value at run time computes the two
steps separately.)
"""

from __future__ import annotations

from collections.abc import Sequence

from ..graph import Apply, Variable, client_counts
from ..ops.elemwise import Elemwise
from ..ops.reduce import Reduce
from ..ops.reduce_epilogue import ReduceEpilogue
from ..ops.shape import DimShuffle
from .engine import rebuild


def _reshapes_only(op: DimShuffle) -> bool:
    kept = [d for d in op.new_order if d != "x"]
    return kept == sorted(kept)


def _reduction_operand(node: Apply, clients) -> tuple[int, Apply, tuple | None] | None:
    """``(position, reduce node, dimshuffle order)`` of the operand of ``node`` to fuse."""
    out = node.outputs[0]
    for position, inp in enumerate(node.inputs):
        fits = inp.broadcastable == out.broadcastable or all(inp.broadcastable)
        if not fits or clients[inp.id] != 1 or inp.owner is None:
            continue
        order, source = None, inp
        if isinstance(inp.owner.op, DimShuffle) and _reshapes_only(inp.owner.op):
            order, source = inp.owner.op.new_order, inp.owner.inputs[0]
            if clients[source.id] != 1 or source.owner is None:
                continue
        if isinstance(source.owner.op, Reduce):
            return position, source.owner, order
    return None


def _other_operands_fit(node: Apply, position: int) -> bool:
    out = node.outputs[0]
    return all(all(v.broadcastable) or v.broadcastable == out.broadcastable
               for i, v in enumerate(node.inputs) if i != position)


def fuse_reduce_epilogues(outputs: Sequence[Variable]) -> list[Variable]:
    """The graph with reductions and their elementwise consumers fused."""
    clients = client_counts(list(outputs))

    def fuse(node: Apply, inputs: list[Variable], memo) -> Variable | None:
        found = _reduction_operand(node, clients) if isinstance(node.op, Elemwise) else None
        if found is None or not _other_operands_fit(node, found[0]):
            return None
        position, reduce_node, order = found
        x = memo.get(reduce_node.inputs[0].id, reduce_node.inputs[0])
        others = [v for i, v in enumerate(inputs) if i != position]
        return ReduceEpilogue(reduce_node.op, order, node.op.scalar_op, position)(x, *others)

    return rebuild(outputs, fuse)
