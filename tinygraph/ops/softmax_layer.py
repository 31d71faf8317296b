"""``SoftmaxLayerStep``: a softmax output layer's whole SGD step as one op.

The output layer's logits, their crossentropy gradient and the running cost total (a
``DotCrossentropyGradTotal``) feed the layer's backward product and weight and bias updates (a
``BackpropUpdate`` of that gradient). For a small layer the OpenCL backend computes all of it
in one kernel. Made by a rewrite after differentiation.
"""

from __future__ import annotations

from ..graph import Apply, Op, as_variable
from .backprop_update import BackpropUpdate
from .crossentropy_total import DotCrossentropyGradTotal


class SoftmaxLayerStep(Op):
    """``(total', W', b', g)``: output 0 of ``loss`` and the outputs of ``backprop`` applied to
    the gradient ``loss`` computes. Inputs: those of ``loss`` (``g, h, W, b, y, *others``),
    then those of ``backprop`` but its gradient (``W, alpha, h.T, beta, *column operands,
    W.T, *extras``)."""

    __props__ = ("loss", "backprop")

    def __init__(self, loss: DotCrossentropyGradTotal, backprop: BackpropUpdate) -> None:
        self.loss, self.backprop = loss, backprop

    @property
    def n_loss(self) -> int:
        """How many inputs ``loss`` reads (its total's operands after g, h, W, b, y)."""
        return 4 + self.loss.loss.total_update.scalar_op.nin

    def parts(self, node: Apply) -> tuple[Apply, Apply]:
        """The DotCrossentropyGradTotal and the BackpropUpdate ``node`` stands for, built anew
        from its inputs (the gradient between them with its own variable)."""
        split = self.n_loss
        loss = self.loss.make_node(*node.inputs[:split])
        rest = node.inputs[split:]
        return loss, self.backprop.make_node(*rest[:3], loss.outputs[1], *rest[3:])

    def make_node(self, *inputs) -> Apply:
        inputs = [as_variable(v) for v in inputs]
        loss, backprop = self.parts(Apply(self, inputs, []))
        kept = backprop.inputs[:3] + backprop.inputs[4:]
        return Apply(self, loss.inputs + kept,
                     [loss.outputs[0].type, *(v.type for v in backprop.outputs)])

    def perform(self, node, inputs):
        split = self.n_loss
        loss, backprop = self.parts(node)
        total, gradient = loss.op.perform(loss, inputs[:split])
        rest = inputs[split:]
        return [total, *backprop.op.perform(backprop, [*rest[:3], gradient, *rest[3:]])]

    def infer_shape(self, node, input_shapes, input_values):
        split = self.n_loss
        loss, backprop = self.parts(node)
        total, gradient = loss.op.infer_shape(loss, input_shapes[:split], None)
        rest = input_shapes[split:]
        return [total, *backprop.op.infer_shape(backprop, [*rest[:3], gradient, *rest[3:]],
                                                None)]

    def grad(self, inputs, output_grads):
        raise NotImplementedError(f"{self} is created by a rewrite after differentiation")

    def __str__(self) -> str:
        return f"SoftmaxLayerStep{{{self.loss}, {self.backprop}}}"
