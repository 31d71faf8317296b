"""Matrix products: ``dot`` for vector and matrix operands, and ``outer``."""

from __future__ import annotations

import numpy as np

from ..graph import Apply, Op, as_variable
from ..types import TensorType, upcast
from . import elemwise as ew
from .shape import dimshuffle


class Dot(Op):
    """``x @ y`` for 1-d and 2-d operands (no batching)."""

    def make_node(self, x, y) -> Apply:
        x, y = as_variable(x), as_variable(y)
        if x.ndim not in (1, 2) or y.ndim not in (1, 2):
            raise TypeError(f"dot: operands must be vectors or matrices, got {x.type} and "
                            f"{y.type}")
        if x.dtype == "bool" or y.dtype == "bool":
            raise TypeError("dot: bool operands are not supported; cast them first")
        dtype = upcast(x.dtype, y.dtype)
        x, y = ew.cast(x, dtype), ew.cast(y, dtype)
        bcast = x.broadcastable[:-1] + y.broadcastable[1:]
        return Apply(self, [x, y], [TensorType(dtype, bcast)])

    def perform(self, node, inputs):
        x, y = inputs
        self.infer_shape(node, [x.shape, y.shape], None)
        return [np.asarray(np.dot(x, y))]

    def infer_shape(self, node, input_shapes, input_values):
        xs, ys = input_shapes
        inner_x = xs[-1]
        inner_y = ys[0]
        if inner_x != inner_y:
            raise ValueError(f"dot: shapes {xs} and {ys} are not aligned ({inner_x} != "
                             f"{inner_y})")
        return [tuple(xs[:-1]) + tuple(ys[1:])]

    def grad(self, inputs, output_grads):
        x, y = inputs
        (g,) = output_grads
        if x.ndim == 2 and y.ndim == 2:
            return [dot(g, y.T), dot(x.T, g)]
        if x.ndim == 2:
            return [outer(g, y), dot(x.T, g)]
        if y.ndim == 2:
            return [dot(y, g), outer(x, g)]
        return [g * y, g * x]


def dot(x, y):
    """Matrix/vector product (``x @ y``)."""
    return Dot()(x, y)


def outer(x, y):
    """Outer product of two vectors."""
    x, y = as_variable(x), as_variable(y)
    if x.ndim != 1 or y.ndim != 1:
        raise TypeError(f"outer: operands must be vectors, got {x.type} and {y.type}")
    return dimshuffle(x, (0, "x")) * dimshuffle(y, ("x", 0))


class Gemm(Op):
    """``beta * C + alpha * (A @ B)`` for matrices, with scalar ``alpha`` and ``beta``: what
    SGD updates such as ``W - eta * (X.T @ G) - c * W`` are rewritten to, so the OpenCL
    backend can run them as one product written in place into ``W``."""

    def make_node(self, c, alpha, a, b, beta) -> Apply:
        c, alpha, a, b, beta = (as_variable(v) for v in (c, alpha, a, b, beta))
        if c.ndim != 2 or a.ndim != 2 or b.ndim != 2 or alpha.ndim or beta.ndim:
            raise TypeError(f"gemm: expected matrices C, A, B and scalars alpha, beta, got "
                            f"{c.type}, {alpha.type}, {a.type}, {b.type}, {beta.type}")
        if not (c.dtype == a.dtype == b.dtype) or c.dtype not in ("float32", "float64"):
            raise TypeError(f"gemm: C, A and B must share a float dtype, got {c.dtype}, "
                            f"{a.dtype}, {b.dtype}")
        alpha, beta = ew.cast(alpha, c.dtype), ew.cast(beta, c.dtype)
        return Apply(self, [c, alpha, a, b, beta], [c.type])

    def perform(self, node, inputs):
        c, alpha, a, b, beta = inputs
        self.infer_shape(node, [c.shape, (), a.shape, b.shape, ()], None)
        return [np.asarray(beta * c + alpha * np.dot(a, b), dtype=c.dtype)]

    def infer_shape(self, node, input_shapes, input_values):
        c, _, a, b, _ = input_shapes
        if a[1] != b[0] or (a[0], b[1]) != tuple(c):
            raise ValueError(f"gemm: shapes C {c}, A {a}, B {b} do not match")
        return [tuple(c)]

    def grad(self, inputs, output_grads):
        raise NotImplementedError("Gemm is created by rewrites after differentiation")


def gemm(c, alpha, a, b, beta):
    """``beta * c + alpha * (a @ b)``."""
    return Gemm()(c, alpha, a, b, beta)


class DotEpilogue(Op):
    """``epilogue(A @ B + bias, E1, ...)``: a matrix product with a row-vector bias and an
    elementwise function (a ``Composite`` scalar op) applied to every result, which may also
    read matrices ``E1, ...`` of the result's shape at the same position; what
    ``sigmoid(x @ W + b)`` or a backward ``(d @ W.T) * h * (1 - h)`` is rewritten to so the
    OpenCL backend runs it as one kernel."""

    __props__ = ("epilogue", "has_bias")

    def __init__(self, epilogue, has_bias: bool) -> None:
        self.epilogue = epilogue
        self.has_bias = has_bias

    @property
    def n_extra(self) -> int:
        """How many result-shaped operands the epilogue reads besides the result."""
        return len(self.epilogue.input_dtypes) - 1

    def make_node(self, a, b, *rest) -> Apply:
        a, b = as_variable(a), as_variable(b)
        rest = [as_variable(v) for v in rest]
        bias, extras = rest[:int(self.has_bias)], rest[int(self.has_bias):]
        if a.ndim != 2 or b.ndim != 2 or len(extras) != self.n_extra or any(
                v.ndim != 1 for v in bias) or any(v.ndim != 2 for v in extras):
            raise TypeError(f"{self}: expected two matrices, {int(self.has_bias)} bias "
                            f"vector(s) and {self.n_extra} extra matrices, got "
                            f"{[str(v.type) for v in (a, b, *rest)]}")
        dtype = self.epilogue.output_dtype(a.dtype, *(v.dtype for v in extras))
        bcast = (a.broadcastable[0], b.broadcastable[1])
        return Apply(self, [a, b, *rest], [TensorType(dtype, bcast)])

    def perform(self, node, inputs):
        a, b, *rest = inputs
        self.infer_shape(node, [v.shape for v in inputs], None)
        bias, extras = rest[:int(self.has_bias)], rest[int(self.has_bias):]
        v = np.dot(a, b) + (bias[0] if bias else 0)
        return [self.epilogue.perform(v.astype(a.dtype), *extras,
                                      out_dtype=node.outputs[0].dtype)]

    def infer_shape(self, node, input_shapes, input_values):
        a, b, *rest = input_shapes
        bias, extras = rest[:int(self.has_bias)], rest[int(self.has_bias):]
        if a[1] != b[0] or (bias and bias[0] != (b[1],)):
            raise ValueError(f"{self}: shapes A {a}, B {b}"
                             + (f", bias {bias[0]}" if bias else "") + " do not match")
        product = (a[0], b[1])
        for j, e in enumerate(extras):
            if tuple(e) != product:
                raise ValueError(f"{self}: the product A {a} @ B {b} has shape {product}, but "
                                 f"the epilogue's operand E{j + 1} has shape {tuple(e)}")
        return [product]

    def grad(self, inputs, output_grads):
        raise NotImplementedError("DotEpilogue is created by rewrites after differentiation")

    def __str__(self) -> str:
        bias = " + bias" if self.has_bias else ""
        return f"DotEpilogue{{{self.epilogue.name}(dot{bias})}}"
