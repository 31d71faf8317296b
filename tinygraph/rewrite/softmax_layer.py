"""A softmax output layer's step becomes one node: the ``DotCrossentropyGradTotal`` computing
its logits, their crossentropy gradient and the cost total, and the ``BackpropUpdate`` of that
gradient (the gradient at the layer's input, the weight and bias updates) become one
``SoftmaxLayerStep``, which the OpenCL backend computes in one kernel for small layers.

Runs after ``fuse_logits_into_crossentropy``. Both nodes must read the same W and h (the
update through h.T), the gradient must have no other reader, and the update's operands must
not depend on the crossentropy node (one node cannot compute both then).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..graph import Apply, Variable, ancestors, client_counts, clone_replace, toposort
from ..ops.backprop_update import BackpropUpdate
from ..ops.crossentropy_total import DotCrossentropyGradTotal
from ..ops.softmax_layer import SoftmaxLayerStep
from .backprop_update import transposed_source


def _pair(nodes: list[Apply], clients, outputs) -> tuple[Apply, Apply] | None:
    """The first (DotCrossentropyGradTotal, BackpropUpdate) pair of one layer, or None."""
    for node in nodes:
        if not isinstance(node.op, BackpropUpdate):
            continue
        gradient = node.inputs[3]
        loss = gradient.owner
        if loss is None or not isinstance(loss.op, DotCrossentropyGradTotal) or \
                gradient is not loss.outputs[1] or clients[gradient.id] != 1 or \
                any(v.id == gradient.id for v in outputs):
            continue
        kept = node.inputs[:3] + node.inputs[4:]
        if node.inputs[0].id == loss.inputs[2].id and \
                getattr(transposed_source(node.inputs[2]), "id", None) == loss.inputs[1].id and \
                ancestors(kept).isdisjoint(v.id for v in loss.outputs):
            return loss, node
    return None


def fuse_softmax_layer_steps(outputs: Sequence[Variable]) -> list[Variable]:
    """The graph with each softmax output layer's crossentropy and updates as one node."""
    outputs = list(outputs)
    while (pair := _pair(toposort(outputs), client_counts(outputs), outputs)) is not None:
        loss, backprop = pair
        kept = backprop.inputs[:3] + backprop.inputs[4:]
        fused = SoftmaxLayerStep(loss.op, backprop.op)(*loss.inputs, *kept)
        outputs = clone_replace(outputs, {loss.outputs[0]: fused[0],
                                          **dict(zip(backprop.outputs, fused[1:]))})
    return outputs
