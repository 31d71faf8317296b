"""``Composite``: a small DAG of scalar ops evaluated as one scalar op, so a fused elementwise
subgraph becomes a single ``Elemwise`` node (one kernel on OpenCL)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .scalar import ScalarOp

#: a step is (scalar_op, argument refs) or ("const", value, dtype); ref i < nin is input i,
#: otherwise step i - nin
Step = tuple


class Composite(ScalarOp):
    """``steps`` over ``nin`` inputs; the last step is the output."""

    def __init__(self, nin: int, steps: Sequence[Step], input_dtypes: Sequence[str]) -> None:
        self.steps = tuple(steps)
        self.input_dtypes = tuple(input_dtypes)
        self.step_dtypes = self._infer_dtypes()
        super().__init__(self._describe(nin), nin, self._evaluate,
                         lambda *dtypes: self.step_dtypes[-1], None)

    def _infer_dtypes(self) -> tuple[str, ...]:
        dtypes: list[str] = list(self.input_dtypes)
        for step in self.steps:
            if step[0] == "const":
                dtypes.append(step[2])
            else:
                op, refs = step
                dtypes.append(op.output_dtype(*(dtypes[r] for r in refs)))
        return tuple(dtypes[len(self.input_dtypes):])

    def _describe(self, nin: int) -> str:
        names = [f"i{k}" for k in range(nin)]
        for step in self.steps:
            if step[0] == "const":
                names.append(repr(step[1]))
            else:
                op, refs = step
                names.append(f"{op.name}({', '.join(names[r] for r in refs)})")
        return f"Composite{{{names[-1]}}}"

    def _evaluate(self, *arrays: np.ndarray) -> np.ndarray:
        values = list(arrays)
        for step, dtype in zip(self.steps, self.step_dtypes):
            if step[0] == "const":
                values.append(np.asarray(step[1], dtype=dtype))
            else:
                op, refs = step
                values.append(op.compute(*(values[r] for r in refs), out_dtype=dtype))
        return values[-1]

    def compute(self, *arrays: np.ndarray, out_dtype: str) -> np.ndarray:
        return np.asarray(self._evaluate(*arrays)).astype(out_dtype, copy=False)

    def output_dtype(self, *dtypes: str) -> str:
        if tuple(dtypes) != self.input_dtypes:
            raise TypeError(f"{self.name} was built for inputs {self.input_dtypes}, got {dtypes}")
        return self.step_dtypes[-1]

    def grad(self, inputs, output, gout):
        raise NotImplementedError("Composite ops are created after differentiation")

    def __eq__(self, other) -> bool:
        return isinstance(other, Composite) and (self.steps, self.input_dtypes) == (
            other.steps, other.input_dtypes)

    def __hash__(self) -> int:
        return hash((self.steps, self.input_dtypes))
