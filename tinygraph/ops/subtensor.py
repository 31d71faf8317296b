"""Indexing: basic slicing with symbolic bounds (``X[i*n:(i+1)*n]``), integer-array indexing
(``logp[arange(n), y]``) and the increment/set ops that are their gradients."""

from __future__ import annotations

import numpy as np

from ..graph import Apply, Op, Variable, as_variable, constant
from ..types import TensorType, is_integer
from . import elemwise as ew

SYMBOLIC = "?"


def _encode(entry, scalars: list[Variable]):
    """A hashable description of one index entry; symbolic parts are appended to scalars."""
    def part(value):
        if value is None:
            return None
        if isinstance(value, (int, np.integer)):
            return int(value)
        value = as_variable(value)
        if value.ndim != 0 or not is_integer(value.dtype):
            raise TypeError(f"slice bounds and indices must be integer scalars, got {value.type}")
        scalars.append(ew.cast(value, "int64"))
        return SYMBOLIC

    if isinstance(entry, slice):
        return ("slice", part(entry.start), part(entry.stop), part(entry.step))
    return ("int", part(entry))


def _decode(idx_list, scalars) -> tuple:
    it = iter(scalars)

    def value(p):
        return int(next(it)) if p == SYMBOLIC else p

    index = []
    for entry in idx_list:
        if entry[0] == "slice":
            index.append(slice(value(entry[1]), value(entry[2]), value(entry[3])))
        else:
            index.append(value(entry[1]))
    return tuple(index)


def _format(idx_list) -> str:
    def fmt(p):
        return "" if p is None else str(p)

    parts = []
    for entry in idx_list:
        if entry[0] == "slice":
            text = f"{fmt(entry[1])}:{fmt(entry[2])}"
            parts.append(text + (f":{fmt(entry[3])}" if entry[3] is not None else ""))
        else:
            parts.append(fmt(entry[1]))
    return ", ".join(parts)


def _check_bounds(op, x_shape, index):
    for axis, (i, n) in enumerate(zip(index, x_shape)):
        if isinstance(i, int) and not -n <= i < n:
            raise IndexError(f"{op}: index {i} is out of bounds for axis {axis} with size {n} "
                             f"(input shape {x_shape})")
        if isinstance(i, slice) and i.step == 0:
            raise ValueError(f"{op}: slice step cannot be zero")


class Subtensor(Op):
    """Basic indexing of the leading axes by ints and slices (bounds may be symbolic)."""

    __props__ = ("idx_list",)

    def __init__(self, idx_list) -> None:
        self.idx_list = tuple(idx_list)
        n_scalars = sum(p == SYMBOLIC for e in self.idx_list for p in e[1:])
        self.shape_value_inputs = tuple(range(1, 1 + n_scalars))

    def make_node(self, x, *scalars) -> Apply:
        x = as_variable(x)
        if len(self.idx_list) > x.ndim:
            raise IndexError(f"{self}: too many indices for a {x.ndim}-d tensor")
        bcast = []
        for axis, entry in enumerate(self.idx_list):
            if entry[0] == "slice":
                full = entry[1:] == (None, None, None)
                bcast.append(x.broadcastable[axis] and full)
        bcast.extend(x.broadcastable[len(self.idx_list):])
        return Apply(self, [x, *scalars], [TensorType(x.dtype, tuple(bcast))])

    def perform(self, node, inputs):
        x, *scalars = inputs
        index = _decode(self.idx_list, scalars)
        _check_bounds(self, x.shape, index)
        return [np.array(x[index])]

    def infer_shape(self, node, input_shapes, input_values):
        index = _decode(self.idx_list, input_values[1:])
        shp = input_shapes[0]
        _check_bounds(self, shp, index)
        out = [len(range(*i.indices(n))) for i, n in zip(index, shp) if isinstance(i, slice)]
        return [tuple(out) + tuple(shp[len(index):])]

    def grad(self, inputs, output_grads):
        x, *scalars = inputs
        zero = ew.zeros_like(x)
        return [IncSubtensor(self.idx_list, False)(zero, output_grads[0], *scalars)] + \
            [None] * len(scalars)

    def __str__(self) -> str:
        return f"Subtensor{{{_format(self.idx_list)}}}"


class IncSubtensor(Op):
    """``x`` with ``y`` added to (or written into, ``set=True``) ``x[index]``."""

    __props__ = ("idx_list", "set")

    def __init__(self, idx_list, set: bool) -> None:
        self.idx_list = tuple(idx_list)
        self.set = set

    def make_node(self, x, y, *scalars) -> Apply:
        x, y = as_variable(x), as_variable(y)
        if y.dtype != x.dtype:
            y = ew.cast(y, x.dtype)
        return Apply(self, [x, y, *scalars], [x.type])

    def perform(self, node, inputs):
        x, y, *scalars = inputs
        index = _decode(self.idx_list, scalars)
        _check_bounds(self, x.shape, index)
        _check_value_shape(self, node.inputs[1], y.shape, x[index].shape, x.shape)
        out = x.copy()
        if self.set:
            out[index] = y
        else:
            out[index] += y
        return [out]

    def infer_shape(self, node, input_shapes, input_values):
        x_shape, y_shape = input_shapes[:2]
        region = Subtensor(self.idx_list).infer_shape(None, [x_shape], [None, *input_values[2:]])
        _check_value_shape(self, node.inputs[1], y_shape, region[0], x_shape)
        return [x_shape]

    def grad(self, inputs, output_grads):
        x, y, *scalars = inputs
        (g,) = output_grads
        gx = IncSubtensor(self.idx_list, True)(g, ew.zeros_like(y), *scalars) if self.set else g
        gy = _sum_to(Subtensor(self.idx_list)(g, *scalars), y)
        return [gx, gy] + [None] * len(scalars)

    def __str__(self) -> str:
        return f"{'Set' if self.set else 'Inc'}Subtensor{{{_format(self.idx_list)}}}"


def _check_value_shape(op, y_var: Variable, y_shape, indexed_shape, x_shape) -> None:
    """``y`` must match the indexed region, except on axes its type declares broadcastable
    (as in Elemwise); otherwise the gradient of ``y`` would get the region's shape."""
    extra = len(indexed_shape) - len(y_shape)
    fits = extra >= 0 and all(
        size == indexed_shape[extra + a] or (bcast and size == 1)
        for a, (size, bcast) in enumerate(zip(y_shape, y_var.broadcastable)))
    if not fits:
        raise ValueError(f"{op}: cannot write a value of shape {tuple(y_shape)} ({y_var.type}) "
                         f"into the indexed region of shape {tuple(indexed_shape)} (x has shape "
                         f"{tuple(x_shape)}); only axes of length 1 declared broadcastable can "
                         "be broadcast")


def _sum_to(g: Variable, y: Variable) -> Variable:
    """Sum ``g`` over the axes that were broadcast when ``y`` was combined into it."""
    from .reduce import sum as reduce_sum
    from .shape import specify_broadcastable

    extra = g.ndim - y.ndim
    if extra > 0:
        g = reduce_sum(g, tuple(range(extra)))
    axes = tuple(a for a in range(y.ndim) if y.broadcastable[a] and not g.broadcastable[a])
    if axes:
        g = reduce_sum(g, axes, keepdims=True)
    return specify_broadcastable(g, [a for a, b in enumerate(y.broadcastable) if b])


class AdvancedSubtensor(Op):
    """Integer-array indexing of the leading axes: ``x[i0, i1, ...]`` with the index arrays
    broadcast together (NumPy semantics); remaining axes are taken whole."""

    def make_node(self, x, *indices) -> Apply:
        x = as_variable(x)
        indices = [as_variable(i) for i in indices]
        _check_indices(self, x, indices)
        bcast = _broadcast_patterns([i.broadcastable for i in indices])
        return Apply(self, [x, *indices],
                     [TensorType(x.dtype, bcast + x.broadcastable[len(indices):])])

    def perform(self, node, inputs):
        x, *indices = inputs
        _check_index_values(self, x.shape, indices)
        return [np.array(x[tuple(indices)])]

    def infer_shape(self, node, input_shapes, input_values):
        x_shape, *index_shapes = input_shapes
        return [_indexed_shape(self, x_shape, index_shapes)]

    def grad(self, inputs, output_grads):
        x, *indices = inputs
        gx = AdvancedIncSubtensor(False)(ew.zeros_like(x), output_grads[0], *indices)
        return [gx] + [None] * len(indices)


class AdvancedIncSubtensor(Op):
    """``x`` with ``y`` scatter-added into (or written into) ``x[i0, i1, ...]``; repeated
    indices accumulate when adding (``numpy.add.at``)."""

    __props__ = ("set",)

    def __init__(self, set: bool) -> None:
        self.set = set

    def make_node(self, x, y, *indices) -> Apply:
        x, y = as_variable(x), as_variable(y)
        indices = [as_variable(i) for i in indices]
        _check_indices(self, x, indices)
        if y.dtype != x.dtype:
            y = ew.cast(y, x.dtype)
        return Apply(self, [x, y, *indices], [x.type])

    def perform(self, node, inputs):
        x, y, *indices = inputs
        _check_index_values(self, x.shape, indices)
        indexed = np.broadcast_shapes(*(i.shape for i in indices)) + x.shape[len(indices):]
        _check_value_shape(self, node.inputs[1], y.shape, indexed, x.shape)
        out = x.copy()
        if self.set:
            out[tuple(indices)] = y
        else:
            np.add.at(out, tuple(indices), y)
        return [out]

    def infer_shape(self, node, input_shapes, input_values):
        x_shape, y_shape, *index_shapes = input_shapes
        _check_value_shape(self, node.inputs[1], y_shape,
                           _indexed_shape(self, x_shape, index_shapes), x_shape)
        return [x_shape]

    def grad(self, inputs, output_grads):
        x, y, *indices = inputs
        (g,) = output_grads
        gx = AdvancedIncSubtensor(True)(g, ew.zeros_like(y), *indices) if self.set else g
        gy = _sum_to(AdvancedSubtensor()(g, *indices), y)
        return [gx, gy] + [None] * len(indices)

    def __str__(self) -> str:
        return f"Advanced{'Set' if self.set else 'Inc'}Subtensor"


def _check_indices(op, x: Variable, indices: list[Variable]) -> None:
    if not indices or len(indices) > x.ndim:
        raise IndexError(f"{op}: {len(indices)} index arrays for a {x.ndim}-d tensor")
    for i in indices:
        if not is_integer(i.dtype):
            raise TypeError(f"{op}: index arrays must be integers, got {i.type} "
                            "(boolean masks are not supported; use switch/where)")


def _check_index_values(op, shape, indices) -> None:
    for axis, idx in enumerate(indices):
        n = shape[axis]
        if idx.size and (idx.min() < -n or idx.max() >= n):
            bad = idx[(idx < -n) | (idx >= n)].flat[0]
            raise IndexError(f"{op}: index {bad} is out of bounds for axis {axis} with size {n} "
                             f"(input shape {shape})")
    try:
        np.broadcast_shapes(*(i.shape for i in indices))
    except ValueError as exc:
        raise IndexError(f"{op}: index arrays of shapes {[i.shape for i in indices]} "
                         "cannot be broadcast together") from exc


def _indexed_shape(op, x_shape, index_shapes) -> tuple[int, ...]:
    """Shape of ``x[i0, i1, ...]`` from the shapes alone (index values are checked when the op
    runs)."""
    try:
        broadcast = np.broadcast_shapes(*index_shapes)
    except ValueError as exc:
        raise IndexError(f"{op}: index arrays of shapes {list(index_shapes)} "
                         "cannot be broadcast together") from exc
    return tuple(broadcast) + tuple(x_shape[len(index_shapes):])


def _broadcast_patterns(patterns) -> tuple[bool, ...]:
    ndim = max(len(p) for p in patterns)
    padded = [(True,) * (ndim - len(p)) + tuple(p) for p in patterns]
    return tuple(all(p[a] for p in padded) for a in range(ndim))


def _is_array_index(entry) -> bool:
    if isinstance(entry, Variable):
        return entry.ndim > 0
    return isinstance(entry, (list, np.ndarray)) and np.ndim(entry) > 0


def _expand_ellipsis(index: tuple, ndim: int) -> tuple:
    if sum(e is Ellipsis for e in index) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    if Ellipsis not in [e for e in index if not isinstance(e, Variable)]:
        return index
    pos = next(i for i, e in enumerate(index) if e is Ellipsis)
    used = sum(1 for e in index if e is not None and e is not Ellipsis)
    return index[:pos] + (slice(None),) * (ndim - used) + index[pos + 1:]


def getitem(x, index) -> Variable:
    """``x[index]``: ints, slices with symbolic bounds, ``None``, ``...`` and integer arrays."""
    x = as_variable(x)
    if not isinstance(index, tuple):
        index = (index,)
    index = _expand_ellipsis(index, x.ndim)
    if any(_is_array_index(e) for e in index):
        return _advanced_getitem(x, index)
    entries = [e for e in index if e is not None]
    new_axes, out_axis = [], 0
    for e in index:
        if e is None:
            new_axes.append(out_axis)
            out_axis += 1
        elif isinstance(e, slice):
            out_axis += 1
    out_axis += x.ndim - len(entries)
    while entries and entries[-1] == slice(None):
        entries.pop()
    scalars: list[Variable] = []
    idx_list = [_encode(e, scalars) for e in entries]
    out = Subtensor(idx_list)(x, *scalars) if idx_list else x
    if new_axes:
        from .shape import dimshuffle

        order: list = list(range(out.ndim))
        for pos in new_axes:
            order.insert(pos, "x")
        out = dimshuffle(out, order)
    return out


def _advanced_getitem(x: Variable, index: tuple) -> Variable:
    arrays = list(index)
    while arrays and isinstance(arrays[-1], slice) and arrays[-1] == slice(None):
        arrays.pop()
    if any(not (_is_array_index(e) or isinstance(e, (int, np.integer, Variable)))
           for e in arrays):
        raise IndexError(
            "integer-array indexing is supported on the leading axes only (e.g. x[idx] or "
            "x[rows, cols]); combine it with slices by indexing twice"
        )
    return AdvancedSubtensor()(x, *(_as_index(e) for e in arrays))


def _as_index(entry) -> Variable:
    if isinstance(entry, Variable):
        return entry
    return constant(np.asarray(entry, dtype="int64"))


def _split_target(target: Variable):
    if target.owner is None or not isinstance(target.owner.op, (Subtensor, AdvancedSubtensor)):
        raise TypeError("inc_subtensor/set_subtensor need an indexed variable as target, "
                        "e.g. set_subtensor(x[2:5], y)")
    return target.owner


def inc_subtensor(target, value) -> Variable:
    """The tensor that ``target = x[index]`` was taken from, with ``value`` added there."""
    node = _split_target(target)
    x, *rest = node.inputs
    if isinstance(node.op, Subtensor):
        return IncSubtensor(node.op.idx_list, False)(x, value, *rest)
    return AdvancedIncSubtensor(False)(x, value, *rest)


def set_subtensor(target, value) -> Variable:
    """The tensor that ``target = x[index]`` was taken from, with ``value`` written there."""
    node = _split_target(target)
    x, *rest = node.inputs
    if isinstance(node.op, Subtensor):
        return IncSubtensor(node.op.idx_list, True)(x, value, *rest)
    return AdvancedIncSubtensor(True)(x, value, *rest)
