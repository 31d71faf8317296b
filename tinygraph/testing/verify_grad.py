"""``verify_grad``: symbolic gradients against central finite differences in float64."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


class GradientError(AssertionError):
    """A symbolic gradient disagrees with finite differences."""


def verify_grad(fn: Callable, inputs: Sequence, n_tests: int = 2, rng=None,
                eps: float = 1e-6, abs_tol: float = 1e-5, rel_tol: float = 1e-4,
                rewrite: bool = True) -> None:
    """Check the gradient of ``fn`` (symbolic inputs -> one symbolic output) at the point
    ``inputs`` (arrays, used in float64).

    The output is projected on a random tensor to get a scalar cost; for each input and each
    of ``n_tests`` random directions, the symbolic directional derivative is compared with the
    central difference ``(f(x + eps d) - f(x - eps d)) / (2 eps)``. A mismatch larger than
    ``abs_tol + rel_tol * max(|symbolic|, |numeric|)`` raises :class:`GradientError` showing
    the worst case.
    """
    import tinygraph as tg

    rng = np.random.default_rng(rng)
    point = [np.array(value, dtype="float64") for value in inputs]
    variables = [tg.tensor("float64", broadcastable=tuple(s == 1 for s in p.shape),
                           name=f"input{i}") for i, p in enumerate(point)]
    output = tg.as_variable(fn(*variables))
    if not output.dtype.startswith("float"):
        raise TypeError(f"verify_grad: fn must return a float tensor, got {output.type}")
    output = tg.cast(output, "float64")
    evaluate = tg.function(variables, output, rewrite=rewrite, on_unused_input="ignore")
    out_shape = np.shape(evaluate(*point))
    projection = tg.constant(rng.uniform(0.5, 1.5, size=out_shape))
    cost = tg.sum(output * projection)
    grads = tg.grad(cost, variables, disconnected_inputs="ignore")
    cost_fn = tg.function(variables, cost, rewrite=rewrite, on_unused_input="ignore")
    grad_fn = tg.function(variables, grads, rewrite=rewrite, on_unused_input="ignore")
    analytic = grad_fn(*point)
    worst = None
    for _ in range(n_tests):
        for i, p in enumerate(point):
            direction = rng.normal(size=p.shape)
            plus = [q + eps * direction if j == i else q for j, q in enumerate(point)]
            minus = [q - eps * direction if j == i else q for j, q in enumerate(point)]
            numeric = (float(cost_fn(*plus)) - float(cost_fn(*minus))) / (2 * eps)
            symbolic = float(np.sum(analytic[i] * direction))
            error = abs(symbolic - numeric)
            allowed = abs_tol + rel_tol * max(abs(symbolic), abs(numeric))
            if not np.isfinite(symbolic) or error > allowed:
                excess = error / allowed if np.isfinite(error) else np.inf
                if worst is None or excess > worst[0]:
                    worst = (excess, i, symbolic, numeric, error, allowed)
    if worst is not None:
        _, i, symbolic, numeric, error, allowed = worst
        raise GradientError(
            f"verify_grad: gradient of input {i} (shape {point[i].shape}) is wrong: "
            f"directional derivative symbolic {symbolic:.10g} vs finite differences "
            f"{numeric:.10g}; |difference| {error:.3g} > allowed {allowed:.3g} "
            f"(abs_tol {abs_tol}, rel_tol {rel_tol}, eps {eps})"
        )
