"""The crossentropy gradient, simplified after differentiation.

- ``CrossentropySoftmaxGrad(fill(x, g), z, y)`` -> ``CrossentropySoftmaxGrad(g, z, y)`` for a
  one-element ``g`` (a mean's gradient is the same for every row: no vector is filled);
- ``CrossentropySoftmax(z, y)`` and ``CrossentropySoftmaxGrad(g, z, y)`` -> one
  ``CrossentropySoftmaxWithGrad(g, z, y)`` when ``g`` does not depend on the costs (one pass
  over the logits instead of two);
- that node and a total of its costs (``total + cast(mean(nll))``, a ``ReduceEpilogue``, the
  trainer's running cost) -> one ``CrossentropyGradTotal`` (OpenCL pipeline, after the
  reduction epilogues are fused);
- that node and the product computing its logits (a ``DotEpilogue`` with a bias, read by
  nothing else) -> one ``DotCrossentropyGradTotal`` (OpenCL pipeline): a softmax output
  layer's forward pass and gradient.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..graph import Apply, Variable, ancestors, client_counts, clone_replace, toposort
from ..ops.blas import DotEpilogue
from ..ops.crossentropy_total import CrossentropyGradTotal, DotCrossentropyGradTotal
from ..ops.nnet import CrossentropySoftmax, CrossentropySoftmaxGrad, CrossentropySoftmaxWithGrad
from ..ops.reduce_epilogue import ReduceEpilogue
from .canonicalize import _fill_parts
from .engine import rebuild


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



def _cost_totals(nodes: list[Apply], clients) -> dict[int, Apply]:
    """The ReduceEpilogue summing or averaging each CrossentropySoftmaxWithGrad's costs, by
    the id of that node, where the costs have no other use and the total's other operands are
    graph inputs."""
    totals = {}
    for node in nodes:
        if not isinstance(node.op, ReduceEpilogue):
            continue
        nll = node.inputs[0]
        source = nll.owner
        if source is None or not isinstance(source.op, CrossentropySoftmaxWithGrad) or \
                nll is not source.outputs[0] or clients[nll.id] != 1 or \
                node.op.reduction.kind not in ("sum", "mean") or \
                node.op.reduction.axes != (0,) or \
                any(v.owner is not None for v in node.inputs[1:]):
            continue
        totals[id(source)] = node
    return totals


def fuse_crossentropy_total(outputs: Sequence[Variable]) -> list[Variable]:
    """The graph with each crossentropy-and-gradient node and the total of its costs fused."""
    outputs = list(outputs)
    totals = _cost_totals(toposort(outputs), client_counts(outputs))
    if not totals:
        return outputs

    fused: dict[int, Variable] = {}

    def fuse(node: Apply, inputs: list[Variable], memo) -> Variable | None:
        total = totals.get(id(node))
        if total is None:
            return fused.get(id(node))
        new_total, dz = CrossentropyGradTotal(node.op.all_rows, total.op)(*inputs,
                                                                          *total.inputs[1:])
        memo[node.outputs[1].id] = dz
        fused[id(total)] = new_total
        return new_total  # stands for the costs too, whose only use was the total

    return rebuild(outputs, fuse)


def _logits_product(node: Apply, clients, outputs) -> Apply | None:
    """The DotEpilogue computing the logits of a CrossentropyGradTotal node when it has a
    bias, no extra operands and no reader but ``node``, else None."""
    z = node.inputs[1]
    product = z.owner
    if product is None or not isinstance(product.op, DotEpilogue) or \
            not product.op.has_bias or product.op.n_extra or clients[z.id] != 1 or \
            any(v.id == z.id for v in outputs):
        return None
    return product


def fuse_logits_into_crossentropy(outputs: Sequence[Variable]) -> list[Variable]:
    """The graph with each crossentropy total's logits product computed by its node."""
    outputs = list(outputs)
    clients = client_counts(outputs)
    replace: dict[Variable, Variable] = {}
    for node in toposort(outputs):
        if not isinstance(node.op, CrossentropyGradTotal):
            continue
        product = _logits_product(node, clients, outputs)
        if product is None:
            continue
        g, _, y, *others = node.inputs
        fused = DotCrossentropyGradTotal(product.op, node.op)(g, *product.inputs, y, *others)
        replace.update(zip(node.outputs, fused))
    return clone_replace(outputs, replace) if replace else outputs
