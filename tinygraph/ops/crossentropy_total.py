"""``CrossentropyGradTotal``: a minibatch's crossentropy gradient and its running cost total as
one op.

The SGD trainer adds each minibatch's mean cost to a total on the device
(``total + cast(mean(nll))``, a ``ReduceEpilogue``) while it needs the gradient of that cost
(``CrossentropySoftmaxWithGrad``). This op computes both from one pass over the logits:
output 0 is ``total_update(nll, *others)``, output 1 the gradient. The OpenCL backend runs it as
one kernel that sums the rows' costs in a work-group. Made by a rewrite after differentiation.

``DotCrossentropyGradTotal`` also computes the logits, a softmax output layer's product.
"""

from __future__ import annotations

from ..graph import Apply, Op, as_variable
from .blas import DotEpilogue
from .nnet import CrossentropySoftmaxWithGrad
from .reduce_epilogue import ReduceEpilogue


class CrossentropyGradTotal(Op):
    """``(total_update(nll, *others), dz)`` of ``CrossentropySoftmaxWithGrad(all_rows)(g, z,
    y)``; ``total_update`` sums or averages the vector ``nll``."""

    __props__ = ("all_rows", "total_update")

    def __init__(self, all_rows: bool, total_update: ReduceEpilogue) -> None:
        reduction = total_update.reduction
        if reduction.kind not in ("sum", "mean") or reduction.axes != (0,):
            raise ValueError(f"CrossentropyGradTotal: the total must sum or average the row "
                             f"costs, got {total_update}")
        self.all_rows, self.total_update = all_rows, total_update

    def _parts(self, g, z, y, others) -> tuple[Apply, Apply]:
        """The crossentropy node and the total's node this node stands for."""
        xent = CrossentropySoftmaxWithGrad(self.all_rows).make_node(g, z, y)
        return xent, self.total_update.make_node(xent.outputs[0], *others)

    def make_node(self, g, z, y, *others) -> Apply:
        xent, total = self._parts(g, z, y, others)
        return Apply(self, xent.inputs + total.inputs[1:],
                     [total.outputs[0].type, xent.outputs[1].type])

    def perform(self, node, inputs):
        xent, total = self._parts(*node.inputs[:3], node.inputs[3:])
        nll, dz = xent.op.perform(xent, inputs[:3])
        return total.op.perform(total, [nll, *inputs[3:]]) + [dz]

    def infer_shape(self, node, input_shapes, input_values):
        xent, total = self._parts(*node.inputs[:3], node.inputs[3:])
        nll, dz = xent.op.infer_shape(xent, input_shapes[:3], None)
        return total.op.infer_shape(total, [nll, *input_shapes[3:]], None) + [dz]

    def grad(self, inputs, output_grads):
        raise NotImplementedError(f"{self} is created by a rewrite after differentiation")

    def __str__(self) -> str:
        return f"CrossentropyGradTotal{{{self.total_update.reduction}}}"


class DotCrossentropyGradTotal(Op):
    """``CrossentropyGradTotal`` of the logits ``epilogue(h @ W + b)`` (``logits``, a
    ``DotEpilogue`` with a bias and no extra operands): inputs ``g, h, W, b, y, *others``,
    outputs those of ``loss``. A softmax output layer's forward product and its crossentropy
    gradient in one node, which the OpenCL backend runs as one kernel for small layers. Made
    by a rewrite after differentiation."""

    __props__ = ("logits", "loss")

    def __init__(self, logits: DotEpilogue, loss: CrossentropyGradTotal) -> None:
        if not logits.has_bias or logits.n_extra:
            raise ValueError(f"DotCrossentropyGradTotal: the logits {logits} must have a bias "
                             f"and no extra operands")
        self.logits, self.loss = logits, loss

    def parts(self, node: Apply) -> tuple[Apply, Apply]:
        """The DotEpilogue and the CrossentropyGradTotal ``node`` stands for, built anew from
        its inputs (the logits with their own output)."""
        g, h, w, b, y, *others = node.inputs
        logits = self.logits.make_node(h, w, b)
        return logits, self.loss.make_node(g, logits.outputs[0], y, *others)

    def make_node(self, g, h, w, b, y, *others) -> Apply:
        logits, loss = self.parts(Apply(self, [as_variable(v) for v in (g, h, w, b, y, *others)],
                                        []))
        return Apply(self, [loss.inputs[0], *logits.inputs, *loss.inputs[2:]],
                     [v.type for v in loss.outputs])

    def perform(self, node, inputs):
        g, h, w, b, y, *others = inputs
        logits, loss = self.parts(node)
        z = logits.op.perform(logits, [h, w, b])[0]
        return loss.op.perform(loss, [g, z, y, *others])

    def infer_shape(self, node, input_shapes, input_values):
        g, h, w, b, y, *others = input_shapes
        logits, loss = self.parts(node)
        z = logits.op.infer_shape(logits, [h, w, b], None)[0]
        return loss.op.infer_shape(loss, [g, z, y, *others], None)

    def grad(self, inputs, output_grads):
        raise NotImplementedError(f"{self} is created by a rewrite after differentiation")

    def __str__(self) -> str:
        return f"DotCrossentropyGradTotal{{{self.logits.epilogue.name}, " \
               f"{self.loss.total_update.reduction}}}"
