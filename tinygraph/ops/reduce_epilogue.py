"""``ReduceEpilogue``: a reduction and the elementwise op consuming its result, as one op.

``scalar_op(..., dimshuffle(reduction(x), order), ...)`` with the reduced value at
``position`` among the elementwise operands. The OpenCL backend runs it as one reduction
kernel that applies the op before storing (a bias gradient subtracted from the bias, a
minibatch cost added to a running total), saving a launch and a round trip through memory.
Made by a rewrite after differentiation; ``order`` only adds or drops length-1 axes.
"""

from __future__ import annotations

from ..graph import Apply, Op, Variable
from .elemwise import Elemwise
from .reduce import Reduce
from .shape import dimshuffle


class ReduceEpilogue(Op):
    __props__ = ("reduction", "order", "scalar_op", "position")

    def __init__(self, reduction: Reduce, order: tuple | None, scalar_op, position: int) -> None:
        self.reduction = reduction
        self.order = None if order is None else tuple(order)
        self.scalar_op = scalar_op
        self.position = position

    def inner_graph(self, x: Variable, others) -> Variable:
        """The unfused graph this op stands for, built on ``x`` and ``others``."""
        reduced = self.reduction(x)
        if self.order is not None:
            reduced = dimshuffle(reduced, self.order)
        operands = list(others)
        operands.insert(self.position, reduced)
        return Elemwise(self.scalar_op)(*operands)

    def make_node(self, x, *others) -> Apply:
        out = self.inner_graph(x, others)
        return Apply(self, [x, *others], [out.type])

    def _evaluate(self, node, known: dict, constant, step):
        """Walk the inner graph: ``known`` maps the node's inputs to values (or shapes),
        ``constant(c)`` gives a constant's, ``step(inner, args)`` an inner node's outputs."""
        out = self.inner_graph(node.inputs[0], node.inputs[1:])
        for inner in _nodes_between(known, out):
            args = [known[v.id] if v.id in known else constant(v) for v in inner.inputs]
            for var, result in zip(inner.outputs, step(inner, args)):
                known[var.id] = result
        return known[out.id]

    def perform(self, node, inputs):
        known = {v.id: value for v, value in zip(node.inputs, inputs)}
        return [self._evaluate(node, known, lambda c: c.data,
                               lambda inner, args: inner.op.perform(inner, args))]

    def infer_shape(self, node, input_shapes, input_values):
        known = {v.id: tuple(shape) for v, shape in zip(node.inputs, input_shapes)}
        return [self._evaluate(
            node, known, lambda c: c.data.shape,
            lambda inner, args: inner.op.infer_shape(inner, args, [None] * len(args)))]

    def grad(self, inputs, output_grads):
        raise NotImplementedError(f"{self} is created after differentiation")

    def __str__(self) -> str:
        return f"ReduceEpilogue{{{self.reduction}, {self.scalar_op}}}"


def _nodes_between(known: dict, out: Variable) -> list[Apply]:
    """The nodes computing ``out`` from the variables in ``known``, in dependency order."""
    order: list[Apply] = []
    seen: set[int] = set()

    def visit(var: Variable) -> None:
        node = var.owner
        if var.id in known or node is None or id(node) in seen:
            return
        seen.add(id(node))
        for inp in node.inputs:
            visit(inp)
        order.append(node)

    visit(out)
    return order
