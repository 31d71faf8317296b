"""Reverse-mode automatic differentiation on the symbolic graph (the result is a graph too, so
gradients of gradients work)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

from .graph import Variable, ancestors, as_variable, toposort
from .ops.elemwise import cast, fill, zeros_like
from .ops.shape import specify_broadcastable
from .types import is_discrete, is_float

_MODES = ("raise", "warn", "ignore")


class DisconnectedInputError(ValueError):
    """The cost does not depend (differentiably) on a variable it was differentiated for."""


def grad(cost: Variable | None, wrt, known_grads: dict | None = None,
         disconnected_inputs: str = "raise"):
    """Gradient of the scalar ``cost`` with respect to ``wrt`` (a variable or a list).

    ``known_grads`` maps intermediate variables to gradients to start from (with or instead of
    a cost). Variables the cost does not depend on, or depends on only through integer or bool
    values (argmax, comparisons, casts to int), raise, warn or get zero gradients according to
    ``disconnected_inputs``. Before differentiating, numerically unstable patterns in the cost
    such as ``log(softmax(x))`` are rewritten to their stable forms, so the gradient is stable
    too.
    """
    if disconnected_inputs not in _MODES:
        raise ValueError(f"disconnected_inputs must be one of {_MODES}, got "
                         f"{disconnected_inputs!r}")
    single = isinstance(wrt, Variable)
    wrt_list = [wrt] if single else list(wrt)
    for w in wrt_list:
        if not isinstance(w, Variable):
            raise TypeError(f"grad: wrt must be symbolic variables, got {type(w).__name__}")
        if not is_float(w.dtype):
            raise TypeError(f"grad: cannot differentiate with respect to {w!r} of dtype "
                            f"{w.dtype}; gradients exist only for float variables")
    known = {}
    for var, g in (known_grads or {}).items():
        g = as_variable(g)
        if g.ndim != var.ndim:
            raise ValueError(f"grad: known gradient for {var!r} has {g.ndim} dims, the variable "
                             f"{var.ndim}")
        known[var] = cast(g, var.dtype)
    if cost is not None:
        cost = _check_cost(cost)
        if not known and all(w.owner is None for w in wrt_list):
            cost = _stabilized(cost)
        known.setdefault(cost, fill(cost, 1.0))
    elif not known:
        raise ValueError("grad: give a cost, known_grads, or both")
    grads = _backpropagate(known, wrt_list)
    roots = list(known)
    results = []
    for w in wrt_list:  # a loop, not a comprehension, so warnings point at grad's caller
        results.append(_result_for(w, grads, roots, disconnected_inputs))
    return results[0] if single else results


def _check_cost(cost) -> Variable:
    cost = as_variable(cost)
    if cost.ndim != 0:
        raise TypeError(f"grad: the cost must be a scalar, got {cost.type}; reduce it first, "
                        "e.g. tinygraph.mean(cost) or tinygraph.sum(cost)")
    if not is_float(cost.dtype):
        raise TypeError(f"grad: the cost must be a float scalar, got dtype {cost.dtype}")
    return cost


def _stabilized(cost: Variable) -> Variable:
    from .rewrite import stabilize

    return stabilize([cost])[0]


def _backpropagate(known: dict[Variable, Variable], wrt: Sequence[Variable]
                   ) -> dict[int, Variable]:
    wrt_ids = {w.id for w in wrt}
    nodes = toposort(list(known))
    depends = set(wrt_ids)
    for node in nodes:
        if any(i.id in depends for i in node.inputs):
            depends.update(o.id for o in node.outputs)
    grads: dict[int, Variable] = {}
    for var, g in known.items():
        _accumulate(grads, var, g)
    for node in reversed(nodes):
        out_grads = [grads.get(o.id) if not is_discrete(o.dtype) else None
                     for o in node.outputs]
        if all(g is None for g in out_grads):
            continue
        if not any(i.id in depends for i in node.inputs):
            continue
        try:
            in_grads = node.op.grad(list(node.inputs), out_grads)
        except NotImplementedError as exc:
            raise NotImplementedError(f"grad: {node.op} has no gradient ({exc})") from exc
        if len(in_grads) != len(node.inputs):
            raise RuntimeError(f"{node.op}.grad returned {len(in_grads)} gradients for "
                               f"{len(node.inputs)} inputs")
        for inp, g in zip(node.inputs, in_grads):
            if g is not None and inp.id in depends and is_float(inp.dtype):
                _accumulate(grads, inp, g)
    return grads


def _accumulate(grads: dict[int, Variable], var: Variable, g) -> None:
    g = as_variable(g)
    if g.ndim != var.ndim:
        raise RuntimeError(f"gradient for {var!r} has {g.ndim} dims, expected {var.ndim} "
                           f"(gradient type {g.type}, variable type {var.type})")
    g = cast(g, var.dtype)
    g = specify_broadcastable(g, [a for a, b in enumerate(var.broadcastable) if b])
    grads[var.id] = grads[var.id] + g if var.id in grads else g


def _result_for(w: Variable, grads, roots, mode: str) -> Variable:
    if w.id in grads:
        return grads[w.id]
    if w.id in ancestors(roots):
        reason = (f"the cost depends on {w!r} only through operations without a gradient "
                  "(integer or bool results such as argmax, comparisons or casts to int)")
    else:
        reason = f"the cost does not depend on {w!r}"
    if mode == "raise":
        raise DisconnectedInputError(
            f"grad: {reason}. Pass disconnected_inputs='ignore' (zero gradient) or 'warn' if "
            "this is expected")
    if mode == "warn":
        warnings.warn(f"grad: {reason}; its gradient is zero", stacklevel=3)
    return zeros_like(w)
