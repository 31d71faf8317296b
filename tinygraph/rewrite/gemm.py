"""Turn linear combinations ``beta * C + alpha * (A @ B)`` of one matrix product and one other
matrix into a ``Gemm`` node (Theano's gemm rewrite). SGD updates such as
``W - eta * (X.T @ G + lmbda * W)`` become ``Gemm(W, -eta, X.T, G, 1 - eta * lmbda)``."""

from __future__ import annotations

from collections.abc import Sequence

from ..graph import Variable, client_counts
from ..ops import scalar as s
from ..ops.blas import Dot, gemm
from ..ops.elemwise import Elemwise
from ..ops.shape import dimshuffle


def _as_scalar(var: Variable) -> Variable | None:
    """``var`` as a 0-d variable if it is a scalar or an all-broadcastable tensor."""
    if var.ndim == 0:
        return var
    if all(var.broadcastable):
        return dimshuffle(var, ())
    return None


def _linear_terms(var: Variable, clients, root: bool) -> dict[int, tuple[Variable, Variable]]:
    """``{id: (term, coefficient)}`` with ``var == sum(coefficient * term)``, looking through
    add, sub, neg and multiplication or division by scalars of single-client nodes."""
    node = var.owner
    op = node.op.scalar_op if node is not None and isinstance(node.op, Elemwise) else None
    if op is None or (not root and clients[var.id] > 1) or var.ndim != 2:
        return {var.id: (var, None)}
    if op in (s.add, s.sub) and all(i.type == var.type for i in node.inputs):
        left = _linear_terms(node.inputs[0], clients, False)
        right = _linear_terms(node.inputs[1], clients, False)
        return _combine(left, _scale(right, -1.0) if op == s.sub else right)
    if op == s.neg:
        return _scale(_linear_terms(node.inputs[0], clients, False), -1.0)
    if op in (s.mul, s.true_div):
        x, y = node.inputs
        for matrix, factor in ((x, y), (y, x)) if op == s.mul else ((x, y),):
            scalar = _as_scalar(factor)
            if scalar is not None and matrix.type == var.type:
                scalar = 1.0 / scalar if op == s.true_div else scalar
                return _scale(_linear_terms(matrix, clients, False), scalar)
    return {var.id: (var, None)}


def _coef(value) -> Variable | float:
    return 1.0 if value is None else value


def _scale(terms, factor):
    return {k: (term, _coef(c) * factor) for k, (term, c) in terms.items()}


def _combine(left, right):
    merged = dict(left)
    for k, (term, c) in right.items():
        if k in merged:
            merged[k] = (term, _coef(merged[k][1]) + _coef(c))
        else:
            merged[k] = (term, c)
    return merged


def _is_matrix_product(var: Variable, clients) -> bool:
    return (var.owner is not None and isinstance(var.owner.op, Dot) and clients[var.id] == 1
            and all(i.ndim == 2 for i in var.owner.inputs))


def _as_gemm(var: Variable, clients) -> Variable | None:
    terms = list(_linear_terms(var, clients, True).values())
    products = [(t, c) for t, c in terms if _is_matrix_product(t, clients)]
    others = [(t, c) for t, c in terms if not _is_matrix_product(t, clients)]
    if len(terms) != 2 or len(products) != 1 or len(others) != 1:
        return None
    (product, alpha), (c_term, beta) = products[0], others[0]
    if c_term.type != var.type or product.type.dtype != var.dtype:
        return None
    a, b = product.owner.inputs
    return gemm(c_term, _coef(alpha), a, b, _coef(beta))


def rewrite_gemm(outputs: Sequence[Variable]) -> list[Variable]:
    """Replace each output (typically an update value) that is a linear combination of one
    matrix product and one matrix by a Gemm node."""
    outputs = list(outputs)
    clients = client_counts(outputs)
    result = []
    for out in outputs:
        replacement = None
        if out.owner is not None and isinstance(out.owner.op, Elemwise) and out.ndim == 2 \
                and out.dtype in ("float32", "float64"):
            replacement = _as_gemm(out, clients)
        result.append(replacement if replacement is not None else out)
    return result
