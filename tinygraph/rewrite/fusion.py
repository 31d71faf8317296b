"""Elementwise fusion: chains of ``Elemwise`` nodes become one ``Elemwise(Composite)`` node.

A producer is inlined into its consumer when the consumer is its only client and both have the
same broadcastable pattern (so nothing is recomputed per broadcast element), or when it is a
scalar-like value seen through a dimshuffle (a few scalar operations per element). Scalar
constants are folded into the composite as literals.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..graph import Apply, Constant, Variable, client_counts
from ..ops.composite import Composite
from ..ops.elemwise import Elemwise
from ..ops.shape import DimShuffle, dimshuffle
from .engine import rebuild


class _Builder:
    """Accumulates the steps and leaf inputs of one composite."""

    def __init__(self) -> None:
        self.leaves: list[Variable] = []
        self.steps: list[tuple] = []
        self._leaf_index: dict[int, int] = {}

    def leaf(self, var: Variable) -> tuple:
        if isinstance(var, Constant) and var.data.size == 1:
            self.steps.append(("const", var.data.item(), var.dtype))
            return ("step", len(self.steps) - 1)
        if var.id not in self._leaf_index:
            self._leaf_index[var.id] = len(self.leaves)
            self.leaves.append(var)
        return ("leaf", self._leaf_index[var.id])

    def add(self, scalar_op, args: list[tuple]) -> tuple:
        self.steps.append((scalar_op, tuple(args)))
        return ("step", len(self.steps) - 1)

    def inline(self, scalar_op, arg_refs: list[tuple]) -> tuple:
        """Add ``scalar_op`` (possibly a composite) applied to already-built refs."""
        if not isinstance(scalar_op, Composite):
            return self.add(scalar_op, arg_refs)
        local: list[tuple] = list(arg_refs)
        for step in scalar_op.steps:
            if step[0] == "const":
                self.steps.append(step)
                local.append(("step", len(self.steps) - 1))
            else:
                op, refs = step
                local.append(self.add(op, [local[r] for r in refs]))
        return local[-1]

    def build(self, root_type) -> tuple[Composite, list[Variable]]:
        nin = len(self.leaves)

        def resolve(ref):
            kind, index = ref
            return index if kind == "leaf" else nin + index

        steps = [step if step[0] == "const" else (step[0], tuple(resolve(r) for r in step[1]))
                 for step in self.steps]
        return Composite(nin, steps, [v.dtype for v in self.leaves]), self.leaves


def fuse_elemwise(outputs: Sequence[Variable]) -> list[Variable]:
    """The graph with fusable elementwise chains merged into composites."""
    clients = client_counts(list(outputs))

    def fuse(node: Apply, inputs: list[Variable], memo) -> Variable | None:
        return _fuse_node(node, inputs, clients) if isinstance(node.op, Elemwise) else None

    return rebuild(outputs, fuse)


def _producer(original: Variable, current: Variable, consumer: Apply, clients) -> Apply | None:
    """The elementwise node computing ``current`` that can be inlined into ``consumer``: its
    only client, with the same broadcast pattern; or a scalar-like one (only length-1 axes,
    e.g. a cost) seen through a dimshuffle, whose operands are scalar-like too (computing it
    per element of the consumer costs a few scalar operations)."""
    if clients[original.id] != 1 or current.owner is None:
        return None
    if isinstance(current.owner.op, Elemwise):
        same = current.broadcastable == consumer.outputs[0].broadcastable
        return current.owner if same else None
    if not isinstance(current.owner.op, DimShuffle) or original.owner is None:
        return None
    inner, inner_original = current.owner.inputs[0], original.owner.inputs[0]
    if inner.owner is None or not isinstance(inner.owner.op, Elemwise) or \
            clients[inner_original.id] != 1 or not all(inner.broadcastable):
        return None
    ndim = consumer.outputs[0].ndim
    if all(all(v.broadcastable) and v.ndim <= ndim for v in inner.owner.inputs):
        return inner.owner
    return None


def _fuse_node(node: Apply, inputs: list[Variable], clients) -> Variable:
    producers = [_producer(o, c, node, clients) for o, c in zip(node.inputs, inputs)]
    if not any(producers):
        if all(a is b for a, b in zip(inputs, node.inputs)):
            return node.outputs[0]
        return node.clone_with_new_inputs(inputs).outputs[0]
    builder = _Builder()
    refs = []
    for current, producer in zip(inputs, producers):
        if producer is not None:
            inner = [builder.leaf(_pad(v, node.outputs[0].ndim)) for v in producer.inputs]
            refs.append(builder.inline(producer.op.scalar_op, inner))
        else:
            refs.append(builder.leaf(current))
    builder.inline(node.op.scalar_op, refs)
    composite, leaves = builder.build(node.outputs[0].type)
    out = Elemwise(composite)(*leaves)
    return out


def _pad(var: Variable, ndim: int) -> Variable:
    """``var`` with leading length-1 axes up to ``ndim`` (operands of a scalar-like producer
    inlined through a dimshuffle)."""
    if var.ndim == ndim or isinstance(var, Constant):
        return var
    return dimshuffle(var, ["x"] * (ndim - var.ndim) + list(range(var.ndim)))
