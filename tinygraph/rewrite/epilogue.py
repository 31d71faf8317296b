"""Fuse a matrix product with the elementwise op that consumes it: ``f(x @ W + b)`` becomes
``DotEpilogue(f, bias)(x, W, b)`` when the product has no other client and ``f`` only involves
the product, a row-vector bias added to it, constants, and other matrices of the product's type
read at the same positions (``(d @ W.T) * h * (1 - h)``, a sigmoid layer's backward pass). Runs
after elementwise fusion."""

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
#: comparisons it evaluates as 1 or 0, allowed where they only scale a float (``g * (h > 0)``)
COMPARISONS = ("gt", "ge", "lt", "le")


def _steps(scalar_op, nin: int) -> list:
    """The steps of ``scalar_op`` over ``nin`` inputs (one step for a plain scalar op)."""
    if isinstance(scalar_op, Composite):
        return list(scalar_op.steps)
    return [(scalar_op, tuple(range(nin)))]


def _bias_vector(var: Variable) -> Variable | None:
    """``b`` when ``var`` is the row ``b.dimshuffle('x', 0)`` of a vector."""
    if var.owner is not None and isinstance(var.owner.op, DimShuffle) and \
            var.owner.op.new_order == ("x", 0):
        return var.owner.inputs[0]
    return None


def epilogue_supported(scalar_op, input_dtypes, out_dtype: str) -> bool:
    """Whether a GEMM epilogue can evaluate ``scalar_op`` of operands of ``input_dtypes``:
    epilogue ops and constants of ``out_dtype`` only, comparisons only multiplying floats."""
    nin = len(input_dtypes)
    steps = _steps(scalar_op, nin)
    dtypes = list(input_dtypes) + list(
        scalar_op.step_dtypes if isinstance(scalar_op, Composite) else [out_dtype])
    for k, step in enumerate(steps):
        if step[0] == "const":
            if step[2] != out_dtype:
                return False
            continue
        if step[0].name in COMPARISONS:
            users = [u for u in steps if u[0] != "const" and nin + k in u[1]]
            if k == len(steps) - 1 or any(
                    u[0] != s.mul or any(dtypes[r] not in ("float32", "float64") for r in u[1]
                                         if r != nin + k) for u in users):
                return False
        elif step[0].name not in EPILOGUE_OPS:
            return False
    return True


def _epilogue(node: Apply, clients) -> tuple[Composite, Variable, Variable | None,
                                              list[Variable]] | None:
    """(epilogue, product, bias or None, extra matrices) when ``node`` can be fused."""
    out = node.outputs[0]
    if out.ndim != 2 or out.dtype not in ("float32", "float64"):
        return None
    dots = [i for i, v in enumerate(node.inputs)
            if v.owner is not None and isinstance(v.owner.op, Dot) and clients[v.id] == 1
            and v.type == out.type and all(x.ndim == 2 for x in v.owner.inputs)]
    if not dots:
        return None
    d = dots[0]
    nin = len(node.inputs)
    steps = _steps(node.op.scalar_op, nin)
    if not epilogue_supported(node.op.scalar_op, [v.dtype for v in node.inputs], out.dtype):
        return None
    bias, extras, add_index = None, [], None
    for b, var in enumerate(node.inputs):
        if b == d:
            continue
        vector = _bias_vector(var)
        users = [k for k, step in enumerate(steps) if step[0] != "const"
                 and (d in step[1] or b in step[1])]
        if vector is not None and bias is None and vector.dtype == out.dtype and \
                len(users) == 1 and steps[users[0]][0] == s.add and \
                sorted(steps[users[0]][1]) == sorted((d, b)):
            bias, add_index = vector, users[0]
        elif var.type == out.type:
            extras.append(b)
        else:
            return None
    composite = _rebase(steps, nin, d, add_index, extras, out.dtype)
    return composite, node.inputs[d], bias, [node.inputs[e] for e in extras]


def _rebase(steps, nin: int, d: int, add_index: int | None, extras: list[int],
            dtype: str) -> Composite:
    """The steps as a composite of ``v`` (the product ``d``, or the result of the add step
    ``add_index``, product plus bias, when given) and the ``extras`` inputs after it."""
    ref = {d: 0}
    ref.update({e: 1 + j for j, e in enumerate(extras)})
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
        ref[nin + k] = len(new_steps) + len(extras)
    return Composite(1 + len(extras), new_steps or [(s.identity, (0,))],
                     [dtype] * (1 + len(extras)))


def fuse_epilogues(outputs: Sequence[Variable]) -> list[Variable]:
    """The graph with products and their elementwise consumers fused."""
    clients = client_counts(list(outputs))

    def fuse(node: Apply, inputs: list[Variable], memo) -> Variable | None:
        fused = _epilogue(node, clients) if isinstance(node.op, Elemwise) else None
        if fused is None:
            return None
        composite, product, bias, extras = fused
        a, b = (memo.get(v.id, v) for v in product.owner.inputs)
        rest = ([bias] if bias is not None else []) + extras
        return DotEpilogue(composite, bias is not None)(a, b, *(memo.get(v.id, v) for v in rest))

    return rebuild(outputs, fuse)
