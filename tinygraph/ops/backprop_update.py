"""``BackpropUpdate``: a dense layer's backward product and its SGD updates as one op.

From the gradient ``d`` at a dense layer's output, backpropagation computes the gradient at its
input, ``epilogue(d @ W.T, E1, ...)`` (a ``DotEpilogue``), and SGD the weight and bias updates
``beta * W + alpha * h.T @ d`` and ``column_update(d, ...)`` (a ``GemmColumnSums``). Both read
W. This op stands for the two nodes: output 0 is the new W, output 1 the new bias, output 2
the input gradient, each computed from the old W. For small minibatches the OpenCL backend
computes all three in one pass over W, which then is read once per step instead of twice.
Made by a rewrite after differentiation.
"""

from __future__ import annotations

from ..graph import Apply, Op, as_variable
from .blas import DotEpilogue
from .gemm_column_sums import GemmColumnSums


class BackpropUpdate(Op):
    """``(W', b', g)`` from the operands ``W, alpha, h.T, d, beta, column operands...`` of
    ``update`` (a ``GemmColumnSums`` whose B is d) and the operands ``W.T, extras...`` of
    ``backward`` (a ``DotEpilogue`` without bias of d and W.T)."""

    __props__ = ("backward", "update")

    def __init__(self, backward: DotEpilogue, update: GemmColumnSums) -> None:
        if backward.has_bias:
            raise ValueError(f"BackpropUpdate: the backward product {backward} must have no bias")
        self.backward = backward
        self.update = update

    @property
    def n_column(self) -> int:
        """How many operands the bias update reads besides the column sums."""
        return len(self.update.column_update.scalar_op.input_dtypes) - 1

    def make_node(self, *inputs) -> Apply:
        update, backward = self.parts(Apply(self, [as_variable(v) for v in inputs], []))
        return Apply(self, update.inputs + backward.inputs[1:],
                     [update.outputs[0].type, update.outputs[1].type, backward.outputs[0].type])

    def parts(self, node: Apply) -> tuple[Apply, Apply]:
        """The GemmColumnSums and the DotEpilogue ``node`` stands for, built anew (with their
        own outputs) from its inputs."""
        split = 5 + self.n_column
        update = self.update.make_node(*node.inputs[:split])
        backward = self.backward.make_node(node.inputs[3], *node.inputs[split:])
        return update, backward

    def perform(self, node, inputs):
        split = 5 + self.n_column
        update, backward = self.parts(node)
        gradient = backward.op.perform(backward, [inputs[3], *inputs[split:]])
        return update.op.perform(update, inputs[:split]) + gradient

    def infer_shape(self, node, input_shapes, input_values):
        split = 5 + self.n_column
        update, backward = self.parts(node)
        w, w_t = input_shapes[0], input_shapes[split]
        if tuple(w_t) != tuple(reversed(w)):
            raise ValueError(f"{self}: W has shape {tuple(w)} but its transpose operand has "
                             f"shape {tuple(w_t)}")
        return (update.op.infer_shape(update, input_shapes[:split], None)
                + backward.op.infer_shape(backward, [input_shapes[3], *input_shapes[split:]],
                                          None))

    def grad(self, inputs, output_grads):
        raise NotImplementedError("BackpropUpdate is created by rewrites after differentiation")

    def __str__(self) -> str:
        return (f"BackpropUpdate{{{self.backward.epilogue.name}(dot), "
                f"{self.update.column_update.scalar_op}}}")
