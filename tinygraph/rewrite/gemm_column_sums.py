"""A dense layer's bias update joins its weight update: ``Gemm(W, alpha, A, d, beta)`` and a
``ReduceEpilogue`` summing the same ``d`` over axis 0 into ``f(b, sum(d, 0))`` become one
``GemmColumnSums`` node (one kernel on OpenCL).

Both results must be used only as the function's outputs (SGD updates are), so replacing
them there replaces them everywhere; the column update must be a vector of the product's
dtype computed from vectors of that type with ops a GEMM epilogue can evaluate.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..graph import Apply, Variable, client_counts, toposort
from ..ops.blas import Gemm
from ..ops.gemm_column_sums import GemmColumnSums
from ..ops.reduce_epilogue import ReduceEpilogue
from .epilogue import epilogue_supported


def _column_update(node: Apply) -> bool:
    """Whether ``node`` is a vector update ``f(others, sum(x, axis=0))`` of a matrix x."""
    op, out = node.op, node.outputs[0]
    return (isinstance(op, ReduceEpilogue) and op.reduction.kind == "sum"
            and op.reduction.axes == (0,) and node.inputs[0].ndim == 2 and out.ndim == 1
            and out.dtype == node.inputs[0].dtype
            and all(v.type == out.type for v in node.inputs[1:])
            and epilogue_supported(op.scalar_op, [out.dtype] * len(node.inputs), out.dtype))


def fuse_gemm_column_sums(outputs: Sequence[Variable]) -> list[Variable]:
    """The outputs with each (Gemm, column update) pair over one B as a GemmColumnSums."""
    outputs = list(outputs)
    clients = client_counts(outputs)
    output_ids = {v.id for v in outputs}

    def only_an_output(var: Variable) -> bool:
        return var.id in output_ids and clients[var.id] == outputs.count(var)

    nodes = toposort(outputs)
    gemms: dict[int, list[Apply]] = {}
    for node in nodes:
        if isinstance(node.op, Gemm) and only_an_output(node.outputs[0]):
            gemms.setdefault(node.inputs[3].id, []).append(node)
    replace: dict[int, Variable] = {}
    for node in nodes:
        if not (_column_update(node) and only_an_output(node.outputs[0])):
            continue
        candidates = [g for g in gemms.get(node.inputs[0].id, [])
                      if g.outputs[0].dtype == node.outputs[0].dtype]
        if not candidates:
            continue
        gemm = candidates[0]
        gemms[node.inputs[0].id].remove(gemm)
        weights, column = GemmColumnSums(node.op)(*gemm.inputs, *node.inputs[1:])
        replace[gemm.outputs[0].id], replace[node.outputs[0].id] = weights, column
    return [replace.get(v.id, v) for v in outputs]
