"""The NumPy reference backend: runs each node's ``perform`` in topological order."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from ..graph import Constant, Variable, graph_inputs, toposort
from ..shared import SharedVariable
from .errors import reraise_with_node


class NumpyProgram:
    """A linked graph: ``run(inputs)`` computes the outputs, then applies the updates."""

    def __init__(self, inputs: Sequence[Variable], outputs: Sequence[Variable],
                 updates: Sequence[tuple[SharedVariable, Variable]],
                 name: str | None = None, profile=None) -> None:
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        self.updates = list(updates)
        self.name = name
        self.profile = profile
        targets = self.outputs + [value for _, value in self.updates]
        self.nodes = toposort(targets)
        self._targets = targets
        self._constants = {}
        self._shared: dict[int, SharedVariable] = {}
        for var in graph_inputs(targets):
            if isinstance(var, Constant):
                self._constants[var.id] = var.data
            elif isinstance(var, SharedVariable):
                self._shared[var.id] = var
        self._steps = [(node, [v.id for v in node.inputs], [v.id for v in node.outputs])
                       for node in self.nodes]

    def run(self, values: Sequence[np.ndarray]) -> list[np.ndarray]:
        storage = dict(self._constants)
        for var_id, var in self._shared.items():
            storage[var_id] = var.get_value(borrow=True)
        for var, value in zip(self.inputs, values):
            storage[var.id] = value
        for node, in_ids, out_ids in self._steps:
            args = [storage[i] for i in in_ids]
            start = time.perf_counter()
            try:
                results = node.op.perform(node, args)
            except Exception as exc:  # noqa: BLE001 - re-raised with the node described
                reraise_with_node(exc, node, args, self.name)
            if self.profile is not None:
                self.profile.record(str(node.op), time.perf_counter() - start)
            for out_id, result, var in zip(out_ids, results, node.outputs):
                storage[out_id] = _checked(result, var, node)
        if self.profile is not None:
            self.profile.calls += 1
        outputs = [storage[v.id] for v in self._targets]
        n = len(self.outputs)
        for (shared_var, _), value in zip(self.updates, outputs[n:]):
            shared_var.set_value(value)
        return [np.array(v, copy=True) for v in outputs[:n]]


def _checked(result, var: Variable, node) -> np.ndarray:
    result = np.asarray(result)
    if result.dtype.name != var.dtype or result.ndim != var.ndim:
        raise TypeError(f"{node.op}.perform returned {result.dtype}{result.shape}, expected "
                        f"{var.type} (a bug in the op)")
    return result
