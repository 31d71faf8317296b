"""The rewrite engine: a pass applies local rewrites node by node, bottom-up, until none fires.

A local rewrite is a function ``node -> list[Variable] | None`` returning replacements for the
node's outputs (of the same dtype and rank), or None when it does not apply. Fusion passes,
which replace a node together with some of its producers, walk the graph once with
:func:`rebuild`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..graph import Apply, Variable, toposort
from ..ops.shape import specify_broadcastable

LocalRewrite = Callable[[Apply], "list[Variable] | None"]

MAX_SWEEPS = 20


class RewritePass:
    """An ordered list of local rewrites applied to a graph until it stops changing."""

    def __init__(self, name: str, rewrites: Sequence[LocalRewrite]) -> None:
        self.name = name
        self.rewrites = list(rewrites)

    def __call__(self, outputs: Sequence[Variable]) -> list[Variable]:
        outputs = list(outputs)
        for _ in range(MAX_SWEEPS):
            outputs, changed = self._sweep(outputs)
            if not changed:
                return outputs
        return outputs

    def _sweep(self, outputs: list[Variable]) -> tuple[list[Variable], bool]:
        memo: dict[int, Variable] = {}
        changed = False
        for node in toposort(outputs):
            new_inputs = [memo.get(v.id, v) for v in node.inputs]
            current = node
            if any(a is not b for a, b in zip(new_inputs, node.inputs)):
                current = node.clone_with_new_inputs(new_inputs)
            replacements = self._rewrite(current)
            changed = changed or replacements is not None
            for old, new in zip(node.outputs, replacements or current.outputs):
                if new is not old:
                    memo[old.id] = _conform(new, old, self.name)
        return [memo.get(v.id, v) for v in outputs], changed

    def _rewrite(self, node: Apply) -> list[Variable] | None:
        for rewrite in self.rewrites:
            replacements = rewrite(node)
            if replacements is not None:
                return [_conform(new, old, rewrite)
                        for new, old in zip(replacements, node.outputs)]
        return None


def rebuild(outputs: Sequence[Variable],
            replace: Callable[[Apply, list[Variable], dict], Variable | None]) -> list[Variable]:
    """``outputs`` rebuilt bottom-up in one walk. ``replace(node, inputs, memo)`` gets each
    node with its inputs as rebuilt so far and ``memo`` (old variable id -> replacement), and
    returns the variable standing for the node's single output, or None to keep the node (on
    the rebuilt inputs)."""
    outputs = list(outputs)
    memo: dict[int, Variable] = {}
    for node in toposort(outputs):
        inputs = [memo.get(v.id, v) for v in node.inputs]
        new = replace(node, inputs, memo)
        if new is not None:
            memo[node.outputs[0].id] = new
        elif any(a is not b for a, b in zip(inputs, node.inputs)):
            clone = node.clone_with_new_inputs(inputs)
            memo.update({old.id: v for old, v in zip(node.outputs, clone.outputs)})
    return [memo.get(v.id, v) for v in outputs]


def _conform(new: Variable, old: Variable, source) -> Variable:
    """Check a replacement's type and restore broadcastable axes it lost."""
    if new.dtype != old.dtype or new.ndim != old.ndim:
        name = getattr(source, "__name__", source)
        raise TypeError(f"rewrite {name} replaced {old.type} by {new.type}")
    lost = [a for a in range(old.ndim) if old.broadcastable[a] and not new.broadcastable[a]]
    return specify_broadcastable(new, lost) if lost else new
