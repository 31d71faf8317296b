"""The crossentropy gradient, simplified after differentiation.

- ``CrossentropySoftmaxGrad(fill(x, g), z, y)`` -> ``CrossentropySoftmaxGrad(g, z, y)`` for a
  one-element ``g`` (a mean's gradient is the same for every row: no vector is filled);
- ``CrossentropySoftmax(z, y)`` and ``CrossentropySoftmaxGrad(g, z, y)`` -> one
  ``CrossentropySoftmaxWithGrad(g, z, y)`` when ``g`` does not depend on the costs (one pass
  over the logits instead of two).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..graph import Apply, Variable, ancestors, clone_replace, toposort
from ..ops.nnet import CrossentropySoftmax, CrossentropySoftmaxGrad, CrossentropySoftmaxWithGrad
from .canonicalize import _fill_parts


def crossentropy_grad_of_fill(node: Apply) -> list[Variable] | None:
    """Pass a filled gradient's single value instead of the filled vector."""
    if not isinstance(node.op, CrossentropySoftmaxGrad):
        return None
    g, z, y = node.inputs
    parts = _fill_parts(g)
    if parts is None or parts[1].broadcastable != (True,):
        return None
    return [node.op(parts[1], z, y)]


def fuse_crossentropy_with_grad(outputs: Sequence[Variable]) -> list[Variable]:
    """The graph with each crossentropy and its gradient computed by one node."""
    outputs = list(outputs)
    nodes = toposort(outputs)
    forward = {(node.inputs[0].id, node.inputs[1].id): node for node in nodes
               if isinstance(node.op, CrossentropySoftmax)}
    replace: dict[Variable, Variable] = {}
    for node in nodes:
        if not isinstance(node.op, CrossentropySoftmaxGrad):
            continue
        g, z, y = node.inputs
        costs = forward.pop((z.id, y.id), None)
        if costs is None or costs.outputs[0].id in ancestors([g]):
            continue
        nll, dz = CrossentropySoftmaxWithGrad(costs.op.all_rows)(g, z, y)
        replace[costs.outputs[0]] = nll
        replace[node.outputs[0]] = dz
    return clone_replace(outputs, replace) if replace else outputs

