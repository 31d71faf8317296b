"""``Elemwise``: a scalar op mapped over tensors with NumPy broadcasting."""

from __future__ import annotations

import numpy as np

from ..config import config
from ..graph import Apply, Constant, Op, Variable, as_variable, constant
from ..types import TensorType, canonical_dtype, is_discrete, is_float, is_integer, upcast
from . import scalar as s


class Elemwise(Op):
    """Applies ``scalar_op`` elementwise. Inputs of lower rank get leading broadcastable axes;
    an axis may only be broadcast if its type says it has length 1 (as in Theano), which keeps
    gradients and generated kernels static."""

    __props__ = ("scalar_op",)

    def __init__(self, scalar_op: s.ScalarOp) -> None:
        self.scalar_op = scalar_op

    def make_node(self, *inputs) -> Apply:
        if len(inputs) != self.scalar_op.nin:
            raise TypeError(f"{self} takes {self.scalar_op.nin} inputs, got {len(inputs)}")
        inputs = [_as_input(x) for x in inputs]
        weak_float_meets_int = _weak_float_meets_int(inputs)
        inputs = _resolve_weak_constants(self.scalar_op, inputs)
        ndim = max(x.ndim for x in inputs)
        inputs = [_pad_dims(x, ndim) for x in inputs]
        out_dtype = self.scalar_op.output_dtype(*(x.dtype for x in inputs))
        if weak_float_meets_int and is_float(out_dtype) and out_dtype != config.floatX:
            # int_tensor * 0.5 is floatX, not NumPy's int32 + float32 -> float64: the integer
            # operands are cast explicitly so the node keeps its type when rebuilt by rewrites
            inputs = [cast(x, config.floatX) if is_integer(x.dtype) else x for x in inputs]
            out_dtype = self.scalar_op.output_dtype(*(x.dtype for x in inputs))
        broadcastable = tuple(all(x.broadcastable[a] for x in inputs) for a in range(ndim))
        return Apply(self, inputs, [TensorType(out_dtype, broadcastable)])

    def perform(self, node: Apply, inputs: list[np.ndarray]) -> list[np.ndarray]:
        shape = self._output_shape(node, [x.shape for x in inputs])
        out = self.scalar_op.perform(*inputs, out_dtype=node.outputs[0].dtype)
        if out.shape != shape:
            out = np.broadcast_to(out, shape)
        if not out.flags.writeable or any(np.may_share_memory(out, x) for x in inputs):
            out = out.copy()
        return [out]

    def infer_shape(self, node, input_shapes, input_values):
        return [self._output_shape(node, input_shapes)]

    def _output_shape(self, node: Apply, shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
        out = []
        for axis in range(node.outputs[0].ndim):
            sizes = {shp[axis] for shp, var in zip(shapes, node.inputs)
                     if not var.broadcastable[axis]}
            if len(sizes) > 1:
                raise ValueError(
                    f"{self}: shapes {', '.join(map(str, shapes))} do not match on axis {axis} "
                    "(an axis can only be broadcast when its type declares length 1; use "
                    "dimshuffle/reshape to add broadcastable axes)"
                )
            for shp, var in zip(shapes, node.inputs):
                if var.broadcastable[axis] and shp[axis] != 1:
                    raise ValueError(f"{self}: input of shape {shp} has a broadcastable axis "
                                     f"{axis} of length {shp[axis]}")
            out.append(sizes.pop() if sizes else 1)
        return tuple(out)

    def grad(self, inputs, output_grads):
        (gout,) = output_grads
        out = self(*inputs)
        grads = self.scalar_op.grad(list(inputs), out, gout)
        result = []
        for x, g in zip(inputs, grads):
            if g is None or is_discrete(x.dtype):
                result.append(None)
                continue
            g = as_variable(g)
            axes = tuple(a for a in range(x.ndim) if x.broadcastable[a] and not g.broadcastable[a])
            if axes:
                from .reduce import sum as reduce_sum

                g = reduce_sum(g, axes, keepdims=True)
            if g.dtype != x.dtype:
                g = cast(g, x.dtype)
            result.append(g)
        return result

    def __str__(self) -> str:
        return f"Elemwise{{{self.scalar_op}}}"

    __repr__ = __str__


def _as_input(x) -> Variable:
    return x if isinstance(x, Variable) else constant(x)


def _weak_float_meets_int(inputs: list[Variable]) -> bool:
    """True when a Python float is combined with tensors that are all integer or bool."""
    weak = [isinstance(x, Constant) and x.weak for x in inputs]
    strong = [x.dtype for x, w in zip(inputs, weak) if not w]
    return bool(strong) and not any(is_float(d) for d in strong) and \
        any(w and is_float(x.dtype) for x, w in zip(inputs, weak))


def _resolve_weak_constants(scalar_op: s.ScalarOp, inputs: list[Variable]) -> list[Variable]:
    """Give Python-scalar constants the dtype of the tensors they are combined with."""
    weak = [isinstance(x, Constant) and x.weak for x in inputs]
    if not any(weak):
        return inputs
    strong = [x.dtype for x, w in zip(inputs, weak) if not w]
    if not strong:
        return inputs
    target = upcast(*strong)
    if not is_float(target) and any(w and is_float(x.dtype) for x, w in zip(inputs, weak)):
        target = config.floatX
    elif target == "bool" and any(w and x.dtype != "bool" for x, w in zip(inputs, weak)):
        target = "int64"
    resolved = []
    for x, w in zip(inputs, weak):
        if w and x.dtype != target:
            x = constant(x.data.item(), dtype=target)
            x.weak = True
        resolved.append(x)
    return resolved


def _pad_dims(x: Variable, ndim: int) -> Variable:
    if x.ndim == ndim:
        return x
    from .shape import dimshuffle

    return dimshuffle(x, ("x",) * (ndim - x.ndim) + tuple(range(x.ndim)))


def _elemwise(scalar_op: s.ScalarOp, doc: str):
    op = Elemwise(scalar_op)

    def apply(*inputs):
        return op(*inputs)

    apply.__name__ = scalar_op.name
    apply.__doc__ = doc
    return apply


add = _elemwise(s.add, "x + y, elementwise with broadcasting.")
sub = _elemwise(s.sub, "x - y.")
mul = _elemwise(s.mul, "x * y.")
true_div = _elemwise(s.true_div, "x / y (integers give floatX).")
floor_div = _elemwise(s.floor_div, "x // y.")
mod = _elemwise(s.mod, "x % y (sign of y, as in NumPy).")
pow = _elemwise(s.pow, "x ** y.")
maximum = _elemwise(s.maximum, "Elementwise maximum.")
minimum = _elemwise(s.minimum, "Elementwise minimum.")
eq = _elemwise(s.eq, "x == y as a bool tensor.")
neq = _elemwise(s.neq, "x != y as a bool tensor.")
lt = _elemwise(s.lt, "x < y.")
le = _elemwise(s.le, "x <= y.")
gt = _elemwise(s.gt, "x > y.")
ge = _elemwise(s.ge, "x >= y.")
logical_and = _elemwise(s.logical_and, "Logical and.")
logical_or = _elemwise(s.logical_or, "Logical or.")
logical_xor = _elemwise(s.logical_xor, "Logical exclusive or.")
logical_not = _elemwise(s.logical_not, "Logical not.")
neg = _elemwise(s.neg, "-x.")
abs = _elemwise(s.abs, "|x|.")
exp = _elemwise(s.exp, "e ** x.")
log = _elemwise(s.log, "Natural logarithm.")
log1p = _elemwise(s.log1p, "log(1 + x), accurate for small x.")
expm1 = _elemwise(s.expm1, "exp(x) - 1, accurate for small x.")
sqrt = _elemwise(s.sqrt, "Square root.")
square = _elemwise(s.square, "x * x.")
sin = _elemwise(s.sin, "Sine.")
cos = _elemwise(s.cos, "Cosine.")
tanh = _elemwise(s.tanh, "Hyperbolic tangent.")
sigmoid = _elemwise(s.sigmoid, "1 / (1 + exp(-x)).")
softplus = _elemwise(s.softplus, "log(1 + exp(x)), computed stably.")
relu = _elemwise(s.relu, "max(x, 0).")
sign = _elemwise(s.sign, "-1, 0 or 1.")
floor = _elemwise(s.floor, "Round down.")
ceil = _elemwise(s.ceil, "Round up.")
round = _elemwise(s.round_half_even, "Round half to even, as NumPy.")
switch = _elemwise(s.switch, "Where ``cond`` pick ``a``, else ``b`` (Theano's switch).")
where = switch
clip = _elemwise(s.clip, "Limit x to [low, high].")


def cast(x, dtype: str) -> Variable:
    """``x`` converted to ``dtype`` (a no-op if it already has it)."""
    x = as_variable(x)
    dtype = canonical_dtype(dtype)
    if x.dtype == dtype:
        return x
    return Elemwise(s.Cast(dtype))(x)


def fill(x, value) -> Variable:
    """A tensor shaped like ``x`` filled with ``value`` (Theano's ``second``)."""
    return Elemwise(s.second)(x, value)


def zeros_like(x, dtype: str | None = None) -> Variable:
    x = as_variable(x)
    return fill(x, constant(0, dtype or x.dtype))


def ones_like(x, dtype: str | None = None) -> Variable:
    x = as_variable(x)
    return fill(x, constant(1, dtype or x.dtype))
