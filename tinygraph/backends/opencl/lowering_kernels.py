"""Lowerings onto the generated kernels of ``kernels/``: reductions, argmax, softmax,
crossentropy, integer-array indexing, arange and random draws."""

from __future__ import annotations

import numpy as np

from ...graph import Constant
from ...ops import scalar as s
from ...ops.nnet import CrossentropySoftmax, CrossentropySoftmaxGrad, LogSoftmax, Softmax
from ...ops.reduce import Argmax, Reduce
from ...ops.shape import ARange
from ...ops.subtensor import AdvancedIncSubtensor, AdvancedSubtensor
from ...random.op import RandomDraw
from . import kernels as k
from .lowering import copy_into, elementwise_into
from .storage import DeviceArray, contiguous_strides


def _keepdims_view(array: DeviceArray, shape) -> DeviceArray:
    """The contiguous result of a reduction seen with the output's (keepdims) shape."""
    return DeviceArray(array.buffer, array.offset, tuple(shape), contiguous_strides(shape),
                       array.dtype)


def lower_reduce(builder, node) -> None:
    x = builder.array(node.inputs[0])
    out = node.outputs[0]
    op = node.op
    reduced_shape = tuple(n for a, n in enumerate(x.shape) if a not in op.axes)
    result = builder.allocate(reduced_shape, out.dtype)
    specs = k.reduce_specs(op.kind, x.dtype.name, out.dtype, x.shape, x.strides, op.axes)
    builder.add_specs(specs, node, [x], [result])
    builder.set_array(out, _keepdims_view(result, builder.shape(out)))


def lower_argmax(builder, node) -> None:
    x = builder.array(node.inputs[0])
    out = node.outputs[0]
    axis = node.op.axis
    shape = () if axis is None else tuple(n for a, n in enumerate(x.shape) if a != axis)
    result = builder.allocate(shape, "int64")
    specs = k.argmax_specs(node.op.kind, x.dtype.name, x.shape, x.strides, axis)
    builder.add_specs(specs, node, [x], [result])
    builder.set_array(out, _keepdims_view(result, builder.shape(out)))


def lower_softmax(builder, node) -> None:
    x = builder.array(node.inputs[0])
    target = builder.new_array(node.outputs[0])
    specs = k.softmax_specs(x.dtype.name, x.shape, x.strides, isinstance(node.op, LogSoftmax))
    builder.add_specs(specs, node, [x], [target])


def _first_rows(array: DeviceArray, n: int) -> DeviceArray:
    return DeviceArray(array.buffer, array.offset, (n,) + tuple(array.shape[1:]),
                       array.strides, array.dtype)


def lower_crossentropy(builder, node) -> None:
    z, y = (builder.array(v) for v in node.inputs)
    n = y.shape[0]
    target = builder.new_array(node.outputs[0])
    rows = _first_rows(z, n)
    specs = k.crossentropy_specs(z.dtype.name, rows.shape, rows.strides, y.dtype.name,
                                 y.strides)
    builder.add_specs(specs, node, [rows, y], [target])


def lower_crossentropy_grad(builder, node) -> None:
    g, z, y = (builder.array(v) for v in node.inputs)
    n = y.shape[0]
    target = builder.new_array(node.outputs[0])
    if n < z.shape[0]:
        elementwise_into(builder, node, s.identity, [np.zeros((), target.dtype)], target)
    rows, out_rows = _first_rows(z, n), _first_rows(target, n)
    specs = k.crossentropy_grad_specs(z.dtype.name, g.strides, rows.shape, rows.strides,
                                      y.dtype.name, y.strides)
    builder.add_specs(specs, node, [g, rows, y], [out_rows])


def lower_gather(builder, node) -> None:
    x, *indices = (builder.array(v) for v in node.inputs)
    target = builder.new_array(node.outputs[0])
    specs = k.gather_specs(x.dtype.name, x.shape, x.strides, [i.dtype.name for i in indices],
                           [i.shape for i in indices], [i.strides for i in indices])
    builder.add_specs(specs, node, [x, *indices], [target])


def lower_scatter(builder, node) -> None:
    x, y, *indices = (builder.array(v) for v in node.inputs)
    target = builder.new_array(node.outputs[0])
    copy_into(builder, node, x, target)
    specs = k.scatter_specs(x.dtype.name, x.shape, [i.dtype.name for i in indices],
                            [i.shape for i in indices], [i.strides for i in indices],
                            y.shape, y.strides, node.op.set)
    builder.add_specs(specs, node, [x, y, *indices], [target])


def lower_arange(builder, node) -> None:
    start, _, step = node.inputs
    if not (isinstance(start, Constant) and isinstance(step, Constant)):
        builder.host_fallback(node)
        return
    target = builder.new_array(node.outputs[0])
    specs = k.arange_specs(target.dtype.name, start.data.item(), step.data.item(),
                           target.shape[0])
    builder.add_specs(specs, node, [], [target])


def lower_random(builder, node) -> None:
    state, _, low, high = node.inputs
    sample = builder.new_array(node.outputs[1])
    op = node.op
    specs = k.random_specs(op.distribution, op.dtype, op.n, sample.shape)
    operands = [None, None, builder.array(low), builder.array(high)]
    builder.add_specs(specs, node, operands, [None, sample], random_state=state)


KERNEL_LOWERINGS = {
    Reduce: lower_reduce,
    Argmax: lower_argmax,
    Softmax: lower_softmax,
    LogSoftmax: lower_softmax,
    CrossentropySoftmax: lower_crossentropy,
    CrossentropySoftmaxGrad: lower_crossentropy_grad,
    AdvancedSubtensor: lower_gather,
    AdvancedIncSubtensor: lower_scatter,
    ARange: lower_arange,
    RandomDraw: lower_random,
}
