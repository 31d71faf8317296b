"""``RandomDrawMap``: a random draw and the elementwise op that reads its sample, as one op.

``RandomDrawMap(draw, elemwise, position)(state, shape, a, b, *others)`` gives
``(state', sample, elemwise(*others with sample inserted at position))``: a ``RandomDraw`` and
an ``Elemwise`` consumer of its sample, such as a dropout mask and the masked activations
``h * mask * 2``. The sample stays an output (the backward pass reads the mask). The OpenCL
backend draws the sample and computes the elementwise op in one kernel when the other
operands have the sample's shape. Made by a rewrite after differentiation
(:mod:`tinygraph.rewrite.random_draw`).

A subclass of ``RandomDraw``: the backends advance its stream exactly as the draw's.
"""

from __future__ import annotations

from ..graph import Apply, as_variable
from ..ops.elemwise import Elemwise
from .op import RandomDraw


class RandomDrawMap(RandomDraw):
    """The draw ``RandomDraw(distribution, dtype, n)`` with ``elemwise`` applied to its sample
    (input ``position`` of ``elemwise``) and to the inputs after the draw's four."""

    __props__ = ("distribution", "dtype", "n", "elemwise", "position")

    def __init__(self, draw: RandomDraw, elemwise: Elemwise, position: int) -> None:
        super().__init__(draw.distribution, draw.dtype, draw.n)
        if not 0 <= position < elemwise.scalar_op.nin:
            raise ValueError(f"RandomDrawMap: position {position} is not an input of "
                             f"{elemwise}")
        self.elemwise, self.position = elemwise, position

    @property
    def draw(self) -> RandomDraw:
        return RandomDraw(self.distribution, self.dtype, self.n)

    def elemwise_inputs(self, sample, others) -> list:
        """``others`` with ``sample`` inserted where ``elemwise`` reads it."""
        return [*others[:self.position], sample, *others[self.position:]]

    def parts(self, node: Apply) -> tuple[Apply, Apply]:
        """The RandomDraw and the Elemwise ``node`` stands for, built anew from its inputs."""
        draw = self.draw.make_node(*node.inputs[:4])
        mapped = self.elemwise.make_node(*self.elemwise_inputs(draw.outputs[1],
                                                                node.inputs[4:]))
        return draw, mapped

    def make_node(self, state, shape_vector, a, b, *others) -> Apply:
        others = [as_variable(v) for v in others]
        if len(others) != self.elemwise.scalar_op.nin - 1:
            raise TypeError(f"{self}: {self.elemwise} takes the sample and "
                            f"{self.elemwise.scalar_op.nin - 1} other inputs, got {len(others)}")
        draw, mapped = self.parts(Apply(self, [state, shape_vector, a, b, *others], []))
        if [v.id for v in mapped.inputs] != [v.id for v in self.elemwise_inputs(
                draw.outputs[1], others)]:
            raise TypeError(f"{self}: the other inputs of {self.elemwise} must have the "
                            f"sample's {draw.outputs[1].ndim} axes and need no cast (got "
                            f"{', '.join(str(v.type) for v in others)})")
        return Apply(self, draw.inputs + others,
                     [*(v.type for v in draw.outputs), mapped.outputs[0].type])

    def perform(self, node, inputs):
        draw, mapped = self.parts(node)
        state, sample = draw.op.perform(draw, inputs[:4])
        (result,) = mapped.op.perform(mapped, self.elemwise_inputs(sample, inputs[4:]))
        return [state, sample, result]

    def infer_shape(self, node, input_shapes, input_values):
        draw, mapped = self.parts(node)
        state, sample = draw.op.infer_shape(draw, input_shapes[:4], input_values[:4])
        (result,) = mapped.op.infer_shape(
            mapped, self.elemwise_inputs(sample, input_shapes[4:]),
            self.elemwise_inputs(None, input_values[4:]))
        return [state, sample, result]

    def grad(self, inputs, output_grads):
        raise NotImplementedError(f"{self} is created by a rewrite after differentiation; "
                                  "differentiate the RandomDraw and Elemwise it replaces")

    def __str__(self) -> str:
        return f"RandomDrawMap{{{self.distribution}, {self.dtype}, {self.elemwise}}}"
