"""``GemmColumnSums``: a layer's weight and bias updates as one op.

SGD updates a dense layer's weights with ``W - eta * (h.T @ d)`` (a ``Gemm``) and its bias
with ``b - eta * sum(d, axis=0)`` (a ``ReduceEpilogue`` over the same ``d``). This op computes
both: output 0 is ``beta * C + alpha * (A @ B)``, output 1 the reduction epilogue
``column_update`` applied to ``B`` and its other operands. The OpenCL backend sums B's columns
in the product's kernel, so the bias update costs no launch of its own. Made by a rewrite after
differentiation.
"""

from __future__ import annotations

from ..graph import Apply, Op, as_variable
from .blas import Gemm
from .reduce_epilogue import ReduceEpilogue


class GemmColumnSums(Op):
    """``(beta * C + alpha * A @ B, column_update(B, *others))``; ``column_update`` is a
    ``ReduceEpilogue`` summing B over axis 0."""

    __props__ = ("column_update",)

    def __init__(self, column_update: ReduceEpilogue) -> None:
        reduction = column_update.reduction
        if reduction.kind != "sum" or reduction.axes != (0,):
            raise ValueError(f"GemmColumnSums: the column update must sum axis 0, got "
                             f"{column_update}")
        self.column_update = column_update

    def make_node(self, c, alpha, a, b, beta, *others) -> Apply:
        gemm = Gemm().make_node(c, alpha, a, b, beta)
        column = self.column_update.make_node(gemm.inputs[3], *others)
        others = [as_variable(v) for v in others]
        return Apply(self, gemm.inputs + others, [gemm.outputs[0].type, column.outputs[0].type])

    def _parts(self, node) -> tuple[Apply, Apply]:
        """The Gemm and the ReduceEpilogue this node stands for."""
        gemm = Gemm().make_node(*node.inputs[:5])
        return gemm, self.column_update.make_node(node.inputs[3], *node.inputs[5:])

    def perform(self, node, inputs):
        gemm, column = self._parts(node)
        return (gemm.op.perform(gemm, inputs[:5])
                + column.op.perform(column, [inputs[3], *inputs[5:]]))

    def infer_shape(self, node, input_shapes, input_values):
        gemm, column = self._parts(node)
        return (gemm.op.infer_shape(gemm, input_shapes[:5], None)
                + column.op.infer_shape(column, [input_shapes[3], *input_shapes[5:]], None))

    def grad(self, inputs, output_grads):
        raise NotImplementedError("GemmColumnSums is created by rewrites after differentiation")

    def __str__(self) -> str:
        return f"GemmColumnSums{{{self.column_update.scalar_op}}}"
