"""Shape operations: dimshuffle/transpose, reshape/flatten, shape, concatenate/stack,
arange and alloc."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..config import config
from ..graph import Apply, Constant, Op, Variable, as_variable, constant
from ..types import TensorType, canonical_dtype, is_integer, upcast


class DimShuffle(Op):
    """Reorders axes; ``'x'`` inserts a broadcastable axis, omitted axes (which must be
    broadcastable) are dropped. ``(1, 0)`` is a transpose, ``('x', 0)`` turns a vector into a
    row."""

    __props__ = ("input_broadcastable", "new_order")

    def __init__(self, input_broadcastable: Sequence[bool], new_order: Sequence) -> None:
        self.input_broadcastable = tuple(input_broadcastable)
        self.new_order = tuple(new_order)
        ndim = len(self.input_broadcastable)
        kept = [d for d in self.new_order if d != "x"]
        if any(not isinstance(d, (int, np.integer)) or not 0 <= d < ndim for d in kept) or \
                len(set(kept)) != len(kept):
            raise ValueError(f"dimshuffle pattern {self.new_order} is invalid for {ndim} axes: "
                             "use each axis index at most once, or 'x' for a new axis")
        for axis in range(ndim):
            if axis not in kept and not self.input_broadcastable[axis]:
                raise ValueError(f"dimshuffle {self.new_order} drops axis {axis}, which is not "
                                 "broadcastable (only length-1 axes can be dropped)")
        self.dropped = tuple(a for a in range(ndim) if a not in kept)
        self.perm = tuple(kept) + self.dropped
        self.is_transpose = len(kept) == ndim and "x" not in self.new_order

    def make_node(self, x) -> Apply:
        x = as_variable(x)
        if x.broadcastable != self.input_broadcastable:
            if x.ndim != len(self.input_broadcastable):
                raise TypeError(f"{self}: expected a {len(self.input_broadcastable)}-d input, "
                                f"got {x.type}")
            return DimShuffle(x.broadcastable, self.new_order).make_node(x)
        bcast = tuple(True if d == "x" else x.broadcastable[d] for d in self.new_order)
        return Apply(self, [x], [TensorType(x.dtype, bcast)])

    def perform(self, node, inputs):
        (x,) = inputs
        return [np.transpose(x, self.perm).reshape(self.infer_shape(node, [x.shape], None)[0])]

    def infer_shape(self, node, input_shapes, input_values):
        (shape,) = input_shapes
        return [tuple(1 if d == "x" else shape[d] for d in self.new_order)]

    def grad(self, inputs, output_grads):
        (x,) = inputs
        (g,) = output_grads
        g = specify_broadcastable(g, [a for a, d in enumerate(self.new_order) if d == "x"])
        kept = [d for d in self.new_order if d != "x"]
        squeezed = dimshuffle(g, [a for a, d in enumerate(self.new_order) if d != "x"])
        order = [kept.index(a) if a in kept else "x" for a in range(x.ndim)]
        return [dimshuffle(squeezed, order)]

    def __str__(self) -> str:
        if self.is_transpose:
            return f"Transpose{{{','.join(map(str, self.new_order))}}}"
        return f"DimShuffle{{{','.join(map(str, self.new_order))}}}"


class SpecifyBroadcastable(Op):
    """Identity that asserts the given axes have length 1, making them broadcastable."""

    __props__ = ("axes",)

    def __init__(self, axes: Sequence[int]) -> None:
        self.axes = tuple(sorted(axes))

    def make_node(self, x) -> Apply:
        x = as_variable(x)
        bcast = tuple(b or a in self.axes for a, b in enumerate(x.broadcastable))
        return Apply(self, [x], [TensorType(x.dtype, bcast)])

    def perform(self, node, inputs):
        (x,) = inputs
        for a in self.axes:
            if x.shape[a] != 1:
                raise ValueError(f"{self}: axis {a} of an array of shape {x.shape} must have "
                                 "length 1")
        return [x.copy()]

    def infer_shape(self, node, input_shapes, input_values):
        return [input_shapes[0]]

    def grad(self, inputs, output_grads):
        return [output_grads[0]]


def specify_broadcastable(x, axes: Sequence[int]) -> Variable:
    """``x`` with ``axes`` declared length 1 (a no-op when they already are)."""
    x = as_variable(x)
    axes = [a for a in axes if not x.broadcastable[a]]
    return SpecifyBroadcastable(axes)(x) if axes else x


def dimshuffle(x, pattern: Sequence) -> Variable:
    """Theano's dimshuffle: reorder, drop length-1 axes or add broadcastable ones ('x')."""
    x = as_variable(x)
    pattern = tuple(pattern)
    if pattern == tuple(range(x.ndim)):
        return x
    return DimShuffle(x.broadcastable, pattern)(x)


def transpose(x, axes: Sequence[int] | None = None) -> Variable:
    """Reverse the axes, or permute them by ``axes``."""
    x = as_variable(x)
    if axes is None:
        axes = tuple(reversed(range(x.ndim)))
    elif isinstance(axes, (int, np.integer)):  # x.transpose(0) of a vector, as in NumPy
        axes = (axes,)
    axes = tuple(a % x.ndim for a in axes)
    if sorted(axes) != list(range(x.ndim)):
        raise ValueError(f"transpose: axes {axes} are not a permutation of {x.ndim} axes")
    return dimshuffle(x, axes)


def expand_dims(x, axis: int) -> Variable:
    x = as_variable(x)
    axis = axis % (x.ndim + 1)
    order: list = list(range(x.ndim))
    order.insert(axis, "x")
    return dimshuffle(x, order)


class Shape(Op):
    """The shape of a tensor as an int64 vector."""

    def make_node(self, x) -> Apply:
        x = as_variable(x)
        return Apply(self, [x], [TensorType("int64", (x.ndim == 1,))])

    def perform(self, node, inputs):
        return [np.array(inputs[0].shape, dtype="int64")]

    def infer_shape(self, node, input_shapes, input_values):
        return [(node.inputs[0].ndim,)]

    def grad(self, inputs, output_grads):
        return [None]


def shape(x) -> Variable:
    return Shape()(as_variable(x))


def as_shape_vector(shape_spec) -> Variable:
    """An int64 vector from a shape given as ints, scalar variables or a vector variable."""
    if isinstance(shape_spec, Variable):
        if shape_spec.ndim == 0:
            shape_spec = [shape_spec]
        else:
            if shape_spec.ndim != 1 or not is_integer(shape_spec.dtype):
                raise TypeError(f"a shape must be an integer vector, got {shape_spec.type}")
            return shape_spec if shape_spec.dtype == "int64" else _cast(shape_spec, "int64")
    if isinstance(shape_spec, (int, np.integer)):
        shape_spec = [shape_spec]
    items = list(shape_spec)
    if all(isinstance(i, (int, np.integer)) for i in items):
        return constant(np.array(items, dtype="int64"))
    parts = []
    for item in items:
        item = as_variable(item)
        if item.ndim != 0 or not is_integer(item.dtype):
            raise TypeError(f"shape entries must be integer scalars, got {item.type}")
        parts.append(_cast(item, "int64"))
    return stack(parts)


def _cast(x, dtype):
    from .elemwise import cast

    return cast(x, dtype)


def _static_length(vector: Variable) -> int:
    if vector.owner is not None and isinstance(vector.owner.op, Shape):
        return vector.owner.inputs[0].ndim
    if isinstance(vector, Constant):
        return vector.data.shape[0]
    if vector.owner is not None and isinstance(vector.owner.op, Concatenate):
        return sum(_static_length(v) for v in vector.owner.inputs)
    if vector.owner is not None and isinstance(vector.owner.op, DimShuffle) and \
            vector.owner.op.new_order == ("x",):
        return 1
    raise ValueError("the length of this shape vector is not known statically; pass ndim=")


class Reshape(Op):
    """Reshape ``x`` to the shape given by an int64 vector (one entry may be -1)."""

    __props__ = ("ndim",)
    shape_value_inputs = (1,)

    def __init__(self, ndim: int) -> None:
        self.ndim = ndim

    def make_node(self, x, shape_vector) -> Apply:
        x = as_variable(x)
        bcast = [False] * self.ndim
        if isinstance(shape_vector, Constant):
            if shape_vector.data.shape != (self.ndim,):
                raise ValueError(f"{self}: shape {shape_vector.data} has the wrong length")
            bcast = [int(s) == 1 for s in shape_vector.data]
            known = [int(s) for s in shape_vector.data if s != -1]
            if list(shape_vector.data).count(-1) > 1:
                raise ValueError(f"reshape: at most one -1 allowed, got {shape_vector.data}")
            if any(s < -1 for s in known):
                raise ValueError(f"reshape: negative size in {shape_vector.data}")
        return Apply(self, [x, shape_vector], [TensorType(x.dtype, tuple(bcast))])

    def perform(self, node, inputs):
        x, shp = inputs
        return [x.reshape(self._target(x.shape, shp)).copy()]

    def _target(self, in_shape, shp) -> tuple[int, ...]:
        target = [int(s) for s in shp]
        size = int(np.prod(in_shape))
        if -1 in target:
            rest = int(np.prod([s for s in target if s != -1]))
            if rest == 0 or size % rest:
                raise ValueError(f"reshape: cannot reshape an array of shape {in_shape} "
                                 f"to {tuple(target)}")
            target[target.index(-1)] = size // rest
        if int(np.prod(target)) != size:
            raise ValueError(f"reshape: cannot reshape an array of shape {in_shape} "
                             f"({size} elements) to {tuple(target)}")
        return tuple(target)

    def infer_shape(self, node, input_shapes, input_values):
        return [self._target(input_shapes[0], input_values[1])]

    def grad(self, inputs, output_grads):
        x, _ = inputs
        return [reshape(output_grads[0], shape(x), ndim=x.ndim), None]


def reshape(x, new_shape, ndim: int | None = None) -> Variable:
    """``x`` reshaped; ``new_shape`` may mix ints and symbolic scalars, one entry may be -1."""
    x = as_variable(x)
    vector = as_shape_vector(new_shape)
    if ndim is None:
        ndim = _static_length(vector)
    return Reshape(ndim)(x, vector)


def flatten(x, ndim: int = 1) -> Variable:
    """Keep the first ``ndim - 1`` axes and flatten the rest into the last one."""
    x = as_variable(x)
    if not 1 <= ndim <= max(x.ndim, 1):
        raise ValueError(f"flatten: ndim must be between 1 and {x.ndim}, got {ndim}")
    shp = shape(x)
    return reshape(x, [shp[i] for i in range(ndim - 1)] + [-1], ndim=ndim)


class Concatenate(Op):
    """Joins tensors along an existing axis."""

    __props__ = ("axis",)

    def __init__(self, axis: int) -> None:
        self.axis = axis

    def make_node(self, *tensors) -> Apply:
        tensors = [as_variable(t) for t in tensors]
        if not tensors:
            raise ValueError("concatenate needs at least one tensor")
        ndim = tensors[0].ndim
        if any(t.ndim != ndim for t in tensors) or not 0 <= self.axis < ndim:
            raise TypeError(f"{self}: tensors must have equal ndim > axis, got "
                            f"{[str(t.type) for t in tensors]}")
        dtype = upcast(*(t.dtype for t in tensors))
        tensors = [_cast(t, dtype) for t in tensors]
        bcast = tuple(
            (len(tensors) == 1 and tensors[0].broadcastable[a]) if a == self.axis
            else all(t.broadcastable[a] for t in tensors) for a in range(ndim))
        return Apply(self, tensors, [TensorType(dtype, bcast)])

    def perform(self, node, inputs):
        self.infer_shape(node, [x.shape for x in inputs], None)
        return [np.concatenate(inputs, axis=self.axis)]

    def infer_shape(self, node, input_shapes, input_values):
        first = input_shapes[0]
        for shp in input_shapes[1:]:
            if len(shp) != len(first) or any(a != b for i, (a, b) in enumerate(zip(shp, first))
                                            if i != self.axis):
                raise ValueError(f"{self}: shapes {input_shapes} differ outside axis "
                                 f"{self.axis}")
        out = list(first)
        out[self.axis] = sum(s[self.axis] for s in input_shapes)
        return [tuple(out)]

    def grad(self, inputs, output_grads):
        from .subtensor import getitem

        (g,) = output_grads
        grads, start = [], constant(0, "int64")
        for x in inputs:
            stop = start + shape(x)[self.axis]
            index = (slice(None),) * self.axis + (slice(start, stop),)
            grads.append(specify_broadcastable(
                getitem(g, index), [a for a, b in enumerate(x.broadcastable) if b]))
            start = stop
        return grads


def concatenate(tensors: Sequence, axis: int = 0) -> Variable:
    tensors = [as_variable(t) for t in tensors]
    if len(tensors) == 1:
        return tensors[0]
    return Concatenate(axis % max(tensors[0].ndim, 1))(*tensors)


def stack(tensors: Sequence, axis: int = 0) -> Variable:
    """Joins tensors of equal shape along a new axis."""
    tensors = [as_variable(t) for t in tensors]
    if not tensors:
        raise ValueError("stack needs at least one tensor")
    expanded = [expand_dims(t, axis) for t in tensors]
    if len(expanded) == 1:
        return expanded[0]
    return Concatenate(axis % expanded[0].ndim)(*expanded)


class ARange(Op):
    """``arange(start, stop, step)`` as a vector."""

    __props__ = ("dtype",)
    shape_value_inputs = (0, 1, 2)

    def __init__(self, dtype: str) -> None:
        self.dtype = dtype

    def make_node(self, start, stop, step) -> Apply:
        inputs = [as_variable(v) for v in (start, stop, step)]
        for v in inputs:
            if v.ndim != 0:
                raise TypeError(f"arange: start, stop and step must be scalars, got {v.type}")
        return Apply(self, inputs, [TensorType(self.dtype, (False,))])

    def perform(self, node, inputs):
        start, stop, step = (v.item() for v in inputs)
        if step == 0:
            raise ValueError("arange: step must not be zero")
        return [np.arange(start, stop, step, dtype=self.dtype)]

    def infer_shape(self, node, input_shapes, input_values):
        return [self.perform(node, input_values)[0].shape]

    def grad(self, inputs, output_grads):
        return [None, None, None]


def arange(start, stop=None, step=1, dtype: str | None = None) -> Variable:
    """Like ``numpy.arange``; integer arguments give int64 by default."""
    if stop is None:
        start, stop = 0, start
    values = [as_variable(v) for v in (start, stop, step)]
    if dtype is None:
        dtype = upcast(*(v.dtype for v in values))
        if dtype == "float64" and all(isinstance(v, Constant) and v.weak for v in values):
            dtype = config.floatX
    dtype = canonical_dtype(dtype)
    return ARange(dtype)(*(_cast(v, dtype) if not isinstance(v, Constant)
                           else constant(v.data.item(), dtype) for v in values))


class Alloc(Op):
    """A tensor of the given shape filled with a scalar value."""

    shape_value_inputs = (1,)

    def make_node(self, value, shape_vector) -> Apply:
        value = as_variable(value)
        if value.ndim != 0:
            raise TypeError(f"alloc: the fill value must be a scalar, got {value.type}")
        ndim = _static_length(shape_vector)
        bcast = tuple(int(s) == 1 for s in shape_vector.data) if isinstance(
            shape_vector, Constant) else (False,) * ndim
        return Apply(self, [value, shape_vector], [TensorType(value.dtype, bcast)])

    def perform(self, node, inputs):
        value, shp = inputs
        if any(s < 0 for s in shp):
            raise ValueError(f"alloc: negative dimension in shape {tuple(shp)}")
        return [np.full(tuple(int(s) for s in shp), value, dtype=value.dtype)]

    def infer_shape(self, node, input_shapes, input_values):
        return [tuple(int(s) for s in input_values[1])]

    def grad(self, inputs, output_grads):
        from .reduce import sum as reduce_sum

        return [reduce_sum(output_grads[0]), None]


def alloc(value, shape_spec, dtype: str | None = None) -> Variable:
    value = as_variable(value, dtype)
    return Alloc()(value, as_shape_vector(shape_spec))


def zeros(shape_spec, dtype: str | None = None) -> Variable:
    return alloc(constant(0, canonical_dtype(dtype)), shape_spec)


def ones(shape_spec, dtype: str | None = None) -> Variable:
    return alloc(constant(1, canonical_dtype(dtype)), shape_spec)
