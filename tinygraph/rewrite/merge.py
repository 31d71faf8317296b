"""Merge (common-subexpression elimination): equal constants and equal applications of equal
ops to the same inputs become one node."""

from __future__ import annotations

from collections.abc import Sequence

from ..graph import Constant, Variable, toposort


def merge(outputs: Sequence[Variable]) -> list[Variable]:
    """The graph of ``outputs`` with duplicate constants and computations shared."""
    outputs = list(outputs)
    memo: dict[int, Variable] = {}
    constants: dict[tuple, Constant] = {}
    applies: dict[tuple, list[Variable]] = {}

    def canonical(var: Variable) -> Variable:
        if var.id in memo:
            return memo[var.id]
        if isinstance(var, Constant):
            memo[var.id] = constants.setdefault(var.signature(), var)
            return memo[var.id]
        return var

    for node in toposort(outputs):
        inputs = [canonical(v) for v in node.inputs]
        key = (node.op, tuple(v.id for v in inputs))
        if key in applies:
            for old, new in zip(node.outputs, applies[key]):
                memo[old.id] = new
            continue
        if any(a is not b for a, b in zip(inputs, node.inputs)):
            new_outputs = node.clone_with_new_inputs(inputs).outputs
            for old, new in zip(node.outputs, new_outputs):
                memo[old.id] = new
        else:
            new_outputs = node.outputs
        applies[key] = new_outputs
    return [canonical(v) for v in outputs]
