"""Lowerings onto the generated kernels of ``kernels/``: reductions, argmax, softmax,
crossentropy, integer-array indexing (with several arrays' rows taken by one index), arange
and random draws."""

from __future__ import annotations

import math

import numpy as np

from ...graph import Apply, Constant
from ...ops import scalar as s
from ...ops.crossentropy_total import CrossentropyGradTotal, DotCrossentropyGradTotal
from ...ops.nnet import (
    CrossentropySoftmax,
    CrossentropySoftmaxGrad,
    CrossentropySoftmaxWithGrad,
    LogSoftmax,
    Softmax,
)
from ...ops.reduce import Argmax, Reduce
from ...ops.reduce_epilogue import ReduceEpilogue
from ...ops.shape import ARange
from ...ops.softmax_layer import SoftmaxLayerStep
from ...ops.subtensor import AdvancedIncSubtensor, AdvancedSubtensor
from ...ops.take_rows import TakeRows
from ...random.draw_map import RandomDrawMap
from ...random.op import RandomDraw
from ...types import is_float
from . import kernels as k
from . import row_gathers
from .elemwise_codegen import StoreEpilogue, epilogue_expression
from .lowering import (
    contiguous,
    copy_into,
    elementwise_into,
    lower_backprop_update,
    lower_dot_epilogue,
    lower_elemwise,
    rows_of_transpose,
)
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


def lower_reduce_epilogue(builder, node) -> None:
    """A reduction whose kernel applies the elementwise consumer as it stores each result;
    written straight into the shared variable it updates when that is safe."""
    x_var, *others = node.inputs
    op = node.op
    x = builder.array(x_var)
    reduced_shape = tuple(n for a, n in enumerate(x.shape) if a not in op.reduction.axes)
    if math.prod(reduced_shape) != math.prod(builder.shape(node.outputs[0])):
        _reduce_then_elementwise(builder, node, x, reduced_shape)
        return
    arrays = [None if builder.is_host_scalar(v) else builder.array(v) for v in others]
    target, in_place = builder.output_array(node, [x],
                                            aligned=[a for a in arrays if a is not None])
    operands, kinds = _store_operands(builder, node, others, arrays)
    operands.insert(0, x)
    reduced_dtype = op.reduction.make_node(x_var).outputs[0].dtype
    epilogue = StoreEpilogue(op.scalar_op, op.position, reduced_dtype,
                             [v.dtype for v in others], kinds, target.dtype.name)
    specs = k.reduce_specs(op.reduction.kind, x.dtype.name, reduced_dtype, x.shape, x.strides,
                           op.reduction.axes, epilogue=epilogue)
    builder.add_specs(specs, node, operands, [target], deferred=in_place)


def _store_operands(builder, node, others, arrays) -> tuple[list, list[str]]:
    """(operands, kinds) of a ``StoreEpilogue``'s other operands: host scalars by value
    (``arrays`` holds None for them), single elements, or contiguous arrays."""
    operands, kinds = [], []
    for var, array in zip(others, arrays):
        if array is None:
            operands.append(var)
            kinds.append("value")
        elif array.size == 1:
            operands.append(array)
            kinds.append("first")
        else:
            operands.append(contiguous(builder, node, array))
            kinds.append("element")
    return operands, kinds


def _reduce_then_elementwise(builder, node, x: DeviceArray, reduced_shape) -> None:
    """A reduction epilogue whose reduced value is broadcast over a larger output: the
    reduction and the elementwise op as two kernels."""
    op = node.op
    reduced_var = op.reduction.make_node(node.inputs[0]).outputs[0]
    reduced = builder.allocate(reduced_shape, reduced_var.dtype)
    builder.add_specs(k.reduce_specs(op.reduction.kind, x.dtype.name, reduced_var.dtype,
                                     x.shape, x.strides, op.reduction.axes), node, [x],
                      [reduced])
    value = _keepdims_view(reduced, op.reduction.infer_shape(None, [x.shape], [])[0])
    if op.order is not None:
        value = DeviceArray(value.buffer, value.offset,
                            tuple(1 if d == "x" else value.shape[d] for d in op.order),
                            tuple(0 if d == "x" else value.strides[d] for d in op.order),
                            value.dtype)
    operands = list(node.inputs[1:])
    operands.insert(op.position, value)
    elementwise_into(builder, node, op.scalar_op, operands, builder.new_array(node.outputs[0]))


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
    """The crossentropy gradient (``CrossentropySoftmaxGrad``), or the crossentropies and
    their gradient in one kernel (``CrossentropySoftmaxWithGrad``). A one-element host
    gradient is passed by value."""
    with_costs = len(node.outputs) == 2
    costs = [builder.new_array(node.outputs[0])] if with_costs else []
    g, rows, y, out_rows, g_strides = _gradient_operands(builder, node)
    specs = k.crossentropy_grad_specs(rows.dtype.name, g_strides, rows.shape, rows.strides,
                                      y.dtype.name, y.strides, with_costs)
    builder.add_specs(specs, node, [g, rows, y], costs + [out_rows])


def _gradient_operands(builder, node):
    """(g, logits rows, labels, gradient rows, g strides or None) of a crossentropy gradient
    kernel: inputs 0-2 of ``node`` and its last output, whose rows past the labelled ones are
    zeroed; a one-element host gradient is passed by value (strides None)."""
    g_var, z_var, y_var = node.inputs[:3]
    g = g_var if builder.is_host_scalar(g_var) else builder.array(g_var)
    z, y = builder.array(z_var), builder.array(y_var)
    n = y.shape[0]
    target = builder.new_array(node.outputs[-1])
    if n < z.shape[0]:
        elementwise_into(builder, node, s.identity, [np.zeros((), target.dtype)], target)
    g_strides = None if g is g_var else (0,) if g_var.broadcastable[0] else g.strides
    return g, _first_rows(z, n), y, _first_rows(target, n), g_strides


def lower_crossentropy_total(builder, node) -> None:
    """The crossentropy gradient and the total of the row costs (``CrossentropyGradTotal``)
    as one single-work-group kernel, the total stored in place when safe without deferring
    the kernel (later kernels need the gradient)."""
    g_var, z_var, y_var, *others = node.inputs
    op = node.op
    xent, total_node = op._parts(g_var, z_var, y_var, others)
    if math.prod(builder.shape(node.outputs[0])) != 1:
        nll_shape, dz_shape = xent.op.infer_shape(xent, [builder.shape(v) for v in xent.inputs],
                                                  None)
        builder.shapes.update({xent.outputs[0].id: nll_shape, xent.outputs[1].id: dz_shape,
                               total_node.outputs[0].id: builder.shape(node.outputs[0])})
        lower_crossentropy_grad(builder, xent)
        lower_reduce_epilogue(builder, total_node)
        builder.set_array(node.outputs[0], builder.array(total_node.outputs[0]))
        builder.set_array(node.outputs[1], builder.array(xent.outputs[1]))
        return
    arrays = [None if builder.is_host_scalar(v) else builder.array(v) for v in others]
    read = [builder.array(v) for v in (g_var, z_var, y_var) if not builder.is_host_scalar(v)]
    total, _ = builder.output_array(node, read, aligned=[a for a in arrays if a is not None],
                                   deferred=False)
    operands, kinds = _store_operands(builder, node, others, arrays)
    reduced_dtype = op.total_update.reduction.make_node(xent.outputs[0]).outputs[0].dtype
    epilogue = StoreEpilogue(op.total_update.scalar_op, op.total_update.position, reduced_dtype,
                             [v.dtype for v in others], kinds, total.dtype.name, first_input=3)
    g, rows, y, out_rows, g_strides = _gradient_operands(builder, node)
    specs = k.crossentropy_total_specs(rows.dtype.name, g_strides, rows.shape, rows.strides,
                                       y.dtype.name, y.strides, epilogue,
                                       op.total_update.reduction.kind == "mean")
    builder.add_specs(specs, node, [g, rows, y, *operands], [total, out_rows])


#: the classes and the multiply-adds (rows x hidden units x classes) up to which one work-group
#: computes a softmax layer's logits with its crossentropy; larger ones use the product kernels,
#: which use both cores (measured on whole training steps run back to back: the benchmarks'
#: W1, 10 x 100 x 10, 11% faster fused on PoCL 3.1 and 5% on the pip PoCL; W3, 10 x 1000 x 10,
#: within noise; W2, 256 x 60 x 10, 1% slower)
_DOT_XENT_MAX_CLASSES = 32
_DOT_XENT_MAX_WORK = 1 << 17


#: the multiply-adds (rows x hidden units x classes) up to which one work-group also computes
#: the layer's backward product and updates (each as much work again, in scalar loops)
_SOFTMAX_STEP_MAX_WORK = 1 << 15


def _one_group_logits(builder, node, max_work: int = _DOT_XENT_MAX_WORK) -> bool:
    """Whether the logits of a DotCrossentropyGradTotal node (or of the loss part of a
    SoftmaxLayerStep node, the same first inputs and output) fit its crossentropy kernel."""
    g_var, h_var, w_var, b_var, y_var = node.inputs[:5]
    (batch, hidden), classes = builder.shape(h_var), builder.shape(w_var)[1]
    dtype = node.outputs[-1].dtype
    return (math.prod(builder.shape(node.outputs[0])) == 1 and batch > 0 and hidden > 0
            and builder.shape(y_var)[0] == batch and 0 < classes <= _DOT_XENT_MAX_CLASSES
            and batch * hidden * classes <= max_work
            and all(v.dtype == dtype for v in (h_var, w_var, b_var)))


def _loss_operands(builder, node, loss_op, others, read_more=(), aligned_more=()):
    """(g, h, W, b, labels, total array, total operands, StoreEpilogue, g strides) of a
    crossentropy kernel computing its logits, the total in place when safe (graph order)."""
    g_var, h_var, w_var, b_var, y_var = node.inputs[:5]
    g = g_var if builder.is_host_scalar(g_var) else builder.array(g_var)
    h, w, b = (contiguous(builder, node, builder.array(v)) for v in (h_var, w_var, b_var))
    y = builder.array(y_var)
    arrays = [None if builder.is_host_scalar(v) else builder.array(v) for v in others]
    read = [a for a in (g, h, y, *read_more) if isinstance(a, DeviceArray)]
    total, _ = builder.output_array(node, read, aligned=[a for a in arrays if a is not None]
                                    + [w, b, *aligned_more], deferred=False)
    operands, kinds = _store_operands(builder, node, others, arrays)
    update = loss_op.loss.total_update
    # the row costs' dtype is the logits' (checked equal to the last output's by the caller)
    xent, _ = loss_op.loss._parts(g_var, node.outputs[-1], y_var, others)
    reduced_dtype = update.reduction.make_node(xent.outputs[0]).outputs[0].dtype
    epilogue = StoreEpilogue(update.scalar_op, update.position, reduced_dtype,
                             [v.dtype for v in others], kinds, total.dtype.name, first_input=5)
    g_strides = None if g is g_var else (0,) if g_var.broadcastable[0] else g.strides
    return g, h, w, b, y, total, operands, epilogue, g_strides


def lower_dot_crossentropy_total(builder, node) -> None:
    """A softmax output layer's logits product and crossentropy gradient and total
    (``DotCrossentropyGradTotal``): one single-work-group kernel computing each row's logits
    where its gradient goes when the layer is small, else the product and the crossentropy
    kernels."""
    g_var, h_var, w_var, b_var, y_var, *others = node.inputs
    op = node.op
    if not _one_group_logits(builder, node):
        logits = op.logits.make_node(h_var, w_var, b_var)
        builder.shapes[logits.outputs[0].id] = (builder.shape(h_var)[0],
                                                builder.shape(w_var)[1])
        lower_dot_epilogue(builder, logits)
        lower_crossentropy_total(builder, Apply.part(
            op.loss, [g_var, logits.outputs[0], y_var, *others], node.outputs))
        return
    dtype = node.outputs[1].dtype
    if dtype == "float64":
        builder.runtime.require_fp64(str(op))
    (batch, hidden), classes = builder.shape(h_var), builder.shape(w_var)[1]
    g, h, w, b, y, total, operands, epilogue, g_strides = _loss_operands(builder, node, op,
                                                                         others)
    gradient = builder.new_array(node.outputs[1])
    specs = k.dot_crossentropy_total_specs(
        dtype, g_strides, batch, hidden, classes, epilogue_expression(op.logits.epilogue, dtype),
        y.dtype.name, y.strides, epilogue, op.loss.total_update.reduction.kind == "mean")
    builder.add_specs(specs, node, [g, h, w, b, y, *operands], [total, gradient])


def lower_softmax_layer_step(builder, node) -> None:
    """A softmax output layer's whole step (``SoftmaxLayerStep``): for a small layer one
    single-work-group kernel computes the logits and the crossentropy, then the layer's
    backward product and its weight and bias updates, W and b in place when no later kernel
    reads them; else the crossentropy kernel and the BackpropUpdate kernels."""
    op, split = node.op, node.op.n_loss
    loss_inputs, rest = node.inputs[:split], node.inputs[split:]
    others = loss_inputs[5:]
    w_var, alpha, h_t_var, beta = rest[:4]
    n_column = op.backprop.n_column
    columns_vars, extras_vars = rest[4:4 + n_column], rest[5 + n_column:]
    dtype = node.outputs[1].dtype
    h_t = builder.array(h_t_var)
    if not _one_group_logits(builder, node, _SOFTMAX_STEP_MAX_WORK) or \
            rows_of_transpose(h_t) is None or \
            any(v.dtype != dtype for v in (*columns_vars, *extras_vars)):
        loss, backprop = op.parts(node)
        builder.shapes[loss.outputs[1].id] = builder.shape(loss_inputs[1])[:1] + \
            builder.shape(loss_inputs[2])[1:]
        lower_dot_crossentropy_total(builder, Apply.part(
            op.loss, loss_inputs, [node.outputs[0], loss.outputs[1]]))
        lower_backprop_update(builder, Apply.part(op.backprop, backprop.inputs,
                                                  node.outputs[1:]))
        return
    if dtype == "float64":
        builder.runtime.require_fp64(str(op))
    h_var = loss_inputs[1]
    (batch, hidden), classes = builder.shape(h_var), builder.shape(w_var)[1]
    columns = [contiguous(builder, node, builder.array(v)) for v in columns_vars]
    extras = [contiguous(builder, node, builder.array(v)) for v in extras_vars]
    # The kernel reads all of W and b (the logits) before a barrier, then writes them.
    g, h, w, b, y, total, operands, epilogue, g_strides = _loss_operands(
        builder, node, op.loss, others, read_more=extras, aligned_more=columns)
    read = [a for a in (g, h, y, *extras) if isinstance(a, DeviceArray)]
    w_out = builder.output_array(node, read, aligned=[w, b, *columns], output=1,
                                 deferred=False)[0]
    v_out = builder.output_array(node, read, aligned=[w, b, *columns], output=2,
                                 deferred=False)[0]
    gradient_in = builder.new_array(node.outputs[3])
    gradient = builder.allocate((batch, classes), dtype)
    names = k.column_operands(len(columns))
    names.insert(op.backprop.update.column_update.position, "s")
    specs = k.softmax_layer_step_specs(
        dtype, g_strides, batch, hidden, classes,
        epilogue_expression(op.loss.logits.epilogue, dtype), y.dtype.name, y.strides, epilogue,
        op.loss.loss.total_update.reduction.kind == "mean",
        epilogue_expression(op.backprop.backward.epilogue, dtype,
                            k.backward_operands(len(extras), hidden)),
        len(extras),
        epilogue_expression(op.backprop.update.column_update.scalar_op, dtype, names),
        len(columns))
    builder.add_specs(specs, node, [g, h, w, b, y, *operands, alpha, beta, *columns, *extras],
                      [total, w_out, v_out, gradient_in, gradient],
                      label=str(op) + (" in place" if w_out is w else ""))


def lower_gather(builder, node) -> None:
    x, *indices = (builder.array(v) for v in node.inputs)
    target = builder.new_array(node.outputs[0])
    specs = k.gather_specs(x.dtype.name, x.shape, x.strides, [i.dtype.name for i in indices],
                           [i.shape for i in indices], [i.strides for i in indices])
    builder.add_specs(specs, node, [x, *indices], [target])


def lower_take_rows(builder, node) -> None:
    """The rows of every array of a ``TakeRows`` node, gathered by one kernel that reads the
    index (or the table and selector it comes from) itself. Rows that only products read stay
    in place: the kernel writes their checked index instead (see row_gathers.py). An advanced
    selector (``advance``) is written over the selector when it is that shared variable's
    update and the kernel runs as one work-group, else into its own array."""
    op = node.op
    inputs = [builder.array(v) for v in node.inputs]
    index, arrays = inputs[:op.n_index_inputs], inputs[op.n_index_inputs:]
    n_rows = builder.shape(node.outputs[0])[0]
    if op.advance is not None and (n_rows == 0 or index[1].shape[0] == 0):
        builder.host_fallback(node)
        return
    decisions = [row_gathers.in_place(builder, node, j, array) for j, array in enumerate(arrays)]
    in_place = {j for j, (kept, _) in enumerate(decisions) if kept}
    targets = []
    for j, out in enumerate(node.outputs[:len(arrays)]):
        if j in in_place:
            rows = builder.allocate((n_rows,), np.int32)
            builder.rows_in_place[out.id] = row_gathers.RowsInPlace(
                arrays[j], rows, node, copied_by_first_reader=decisions[j][1])
            targets.append(rows)
        else:
            targets.append(builder.new_array(out))
    layout = (n_rows, [a.dtype.name for a in arrays], [a.shape for a in arrays],
              [a.strides for a in arrays])
    advance = None
    if op.advance is not None:
        over_selector = False
        if k.take_rows_one_group(*layout, in_place, index[1].shape[0],
                                 builder.runtime.device.max_work_group_size):
            target, over_selector = builder.output_array(node, [index[0], *arrays],
                                                         aligned=[index[1]], output=len(arrays),
                                                         deferred=False)
        else:
            target = builder.new_array(node.outputs[-1])
        targets.append(target)
        advance = (op.advance, over_selector)
    specs = k.take_rows_specs(n_rows, [i.dtype.name for i in index],
                              [i.shape for i in index], [i.strides for i in index],
                              *layout[1:], in_place, advance)
    builder.add_specs(specs, node, inputs, targets)


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


def _map_expression(op: RandomDrawMap, dtype: str) -> str | None:
    """The C expression of a RandomDrawMap's elementwise op in the draw ``m`` and its other
    operands ``e0 ..``, or None when the vector kernels cannot compute it."""
    names = [f"e{j}" for j in range(op.elemwise.scalar_op.nin - 1)]
    names.insert(op.position, "m")
    try:
        return epilogue_expression(op.elemwise.scalar_op, dtype, names)
    except NotImplementedError:
        return None


def lower_random_map(builder, node) -> None:
    """A draw and the elementwise op reading its sample (``RandomDrawMap``): one kernel when
    the vector kernels draw the sample and the other operands are arrays of its shape and
    dtype, else the draw's kernel and the elementwise kernel."""
    op = node.op
    state, _, low, high, *others = node.inputs
    sample_var, mapped_var = node.outputs[1:]
    shape, dtype = builder.shape(sample_var), sample_var.dtype
    expression = _map_expression(op, dtype) if is_float(dtype) else None
    if expression is None or not k.maps_in_lanes(op.distribution, op.n) or \
            mapped_var.dtype != dtype or any(
                builder.is_host_scalar(v) or v.dtype != dtype or builder.shape(v) != shape
                for v in others):
        lower_random(builder, Apply.part(op.draw, node.inputs[:4], node.outputs[:2]))
        lower_elemwise(builder, Apply.part(op.elemwise, op.elemwise_inputs(sample_var, others),
                                           [mapped_var]))
        return
    sample, mapped = builder.new_array(sample_var), builder.new_array(mapped_var)
    operands = [None, None, builder.array(low), builder.array(high),
                *(contiguous(builder, node, builder.array(v)) for v in others)]
    specs = k.random_specs(op.distribution, op.dtype, op.n, sample.shape, expression,
                           len(others))
    builder.add_specs(specs, node, operands, [None, sample, mapped], random_state=state)


KERNEL_LOWERINGS = {
    Reduce: lower_reduce,
    ReduceEpilogue: lower_reduce_epilogue,
    Argmax: lower_argmax,
    Softmax: lower_softmax,
    LogSoftmax: lower_softmax,
    CrossentropySoftmax: lower_crossentropy,
    CrossentropySoftmaxGrad: lower_crossentropy_grad,
    CrossentropySoftmaxWithGrad: lower_crossentropy_grad,
    CrossentropyGradTotal: lower_crossentropy_total,
    DotCrossentropyGradTotal: lower_dot_crossentropy_total,
    SoftmaxLayerStep: lower_softmax_layer_step,
    AdvancedSubtensor: lower_gather,
    TakeRows: lower_take_rows,
    AdvancedIncSubtensor: lower_scatter,
    ARange: lower_arange,
    RandomDraw: lower_random,
    RandomDrawMap: lower_random_map,
}
