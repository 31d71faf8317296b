"""A random draw and the elementwise op that reads its sample become one ``RandomDrawMap``
node: the OpenCL backend then draws a dropout mask and applies it in one kernel.

Runs after elementwise fusion (the consumer is then the whole chain, ``h * mask * 2``). The
consumer must read the sample once and nothing computed from it, with inputs of the sample's
rank; the sample keeps its other readers (the backward pass reads the mask).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..graph import Apply, Variable, ancestors, clone_replace, toposort
from ..ops.elemwise import Elemwise
from ..random.draw_map import RandomDrawMap
from ..random.op import RandomDraw


def _pair(nodes: list[Apply]) -> tuple[Apply, Apply, int, list[Variable]] | None:
    """The first (RandomDraw, Elemwise reading its sample, the sample's position there, the
    Elemwise's other inputs) to fuse, or None."""
    for node in nodes:
        if type(node.op) is not Elemwise:
            continue
        draws = [(j, v.owner) for j, v in enumerate(node.inputs)
                 if v.owner is not None and type(v.owner.op) is RandomDraw
                 and v is v.owner.outputs[1]]
        if len(draws) != 1 or any(v.ndim != node.outputs[0].ndim for v in node.inputs):
            continue
        position, draw = draws[0]
        others = node.inputs[:position] + node.inputs[position + 1:]
        if ancestors(others).isdisjoint(v.id for v in draw.outputs):
            return draw, node, position, others
    return None


def fuse_random_draw_maps(outputs: Sequence[Variable]) -> list[Variable]:
    """The graph with each random draw and one elementwise reader of its sample as one node."""
    outputs = list(outputs)
    while (pair := _pair(toposort(outputs))) is not None:
        draw, mapped, position, others = pair
        fused = RandomDrawMap(draw.op, mapped.op, position)(*draw.inputs, *others)
        outputs = clone_replace(outputs, {**dict(zip(draw.outputs, fused[:2])),
                                          mapped.outputs[0]: fused[2]})
    return outputs
