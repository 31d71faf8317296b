"""Fuse a matrix product with the elementwise op that consumes it: ``f(x @ W + b)`` becomes
``DotEpilogue(f, bias)(x, W, b)`` when the product has no other client and ``f`` only involves
the product, a row-vector bias added to it, and constants (run after elementwise fusion)."""

from __future__ import annotations

from collections.abc import Sequence

from ..graph import Apply, Variable, client_counts
from ..ops import scalar as s
from ..ops.blas import Dot, DotEpilogue
from ..ops.composite import Composite
from ..ops.elemwise import Elemwise
from ..ops.shape import DimShuffle
from .engine import rebuild

#: scalar ops the OpenCL GEMM epilogue can evaluate on vectors
EPILOGUE_OPS = ("add", "sub", "mul", "true_div", "neg", "exp", "log", "tanh", "sigmoid",
                "relu", "maximum", "minimum", "square", "sqrt", "identity")



def _steps_of(node: Apply):
    op = node.op.scalar_op
    if isinstance(op, Composite):
        return list(op.steps), len(node.inputs)
    return [(op, tuple(range(len(node.inputs))))], len(node.inputs)


def _bias_vector(var: Variable) -> Variable | None:
    """``b`` when ``var`` is the row ``b.dimshuffle('x', 0)`` of a vector."""
    if var.owner is not None and isinstance(var.owner.op, DimShuffle) and \
            var.owner.op.new_order == ("x", 0):
        return var.owner.inputs[0]
    return None


def _epilogue(node: Apply, clients) -> tuple[Composite, Variable, Variable | None] | None:
    out = node.outputs[0]
    if out.ndim != 2 or out.dtype not in ("float32", "float64"):
        return None
    dots = [i for i, v in enumerate(node.inputs)
            if v.owner is not None and isinstance(v.owner.op, Dot) and clients[v.id] == 1
            and v.type == out.type and all(x.ndim == 2 for x in v.owner.inputs)]
    if len(dots) != 1 or len(node.inputs) > 2:
        return None
    d = dots[0]
    steps, nin = _steps_of(node)
    if any(step[0] != "const" and step[0].name not in EPILOGUE_OPS for step in steps) or any(
            step[0] == "const" and step[2] != out.dtype for step in steps):
        return None
    bias = None
    if len(node.inputs) == 2:
        b = 1 - d
        bias = _bias_vector(node.inputs[b])
        users = [k for k, step in enumerate(steps) if step[0] != "const"
                 and (d in step[1] or b in step[1])]
        if bias is None or bias.dtype != out.dtype or len(users) != 1:
            return None
        add_step = steps[users[0]]
        if add_step[0] != s.add or sorted(add_step[1]) != sorted((d, b)):
            return None
        return _rebase(steps, nin, d, users[0], out.dtype), node.inputs[d], bias
    return _rebase(steps, nin, d, None, out.dtype), node.inputs[d], None


def _rebase(steps, nin: int, d: int, add_index: int | None, dtype: str) -> Composite:
    """The steps as a one-input composite of ``v``: the product ``d``, or the result of the
    add step ``add_index`` (product plus bias) when given."""
    ref = {d: 0}
    if add_index is not None:
        ref[nin + add_index] = 0
    new_steps = []
    for k, step in enumerate(steps):
        if k == add_index:
            continue
        if step[0] == "const":
            new_steps.append(step)
        else:
            op, refs = step
            new_steps.append((op, tuple(ref[r] for r in refs)))
        ref[nin + k] = len(new_steps)
    return Composite(1, new_steps or [(s.identity, (0,))], [dtype])


def fuse_epilogues(outputs: Sequence[Variable]) -> list[Variable]:
    """The graph with products and their elementwise consumers fused."""
    clients = client_counts(list(outputs))

    def fuse(node: Apply, inputs: list[Variable], memo) -> Variable | None:
        fused = _epilogue(node, clients) if isinstance(node.op, Elemwise) else None
        if fused is None:
            return None
        composite, product, bias = fused
        a, b = (memo.get(v.id, v) for v in product.owner.inputs)
        extra = [memo.get(bias.id, bias)] if bias is not None else []
        return DotEpilogue(composite, bias is not None)(a, b, *extra)

    return rebuild(outputs, fuse)
