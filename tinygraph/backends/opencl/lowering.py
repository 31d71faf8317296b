"""How each op runs on OpenCL: a dispatch table from op class to a lowering function that adds
launches (or views) to a plan. Ops without an entry run through the host fallback."""

from __future__ import annotations

import numpy as np

from ...graph import Apply, Constant, Variable
from ...ops import scalar as s
from ...ops.backprop_update import BackpropUpdate
from ...ops.blas import Dot, DotEpilogue, Gemm
from ...ops.elemwise import Elemwise
from ...ops.gemm_column_sums import GemmColumnSums
from ...ops.shape import Alloc, Concatenate, DimShuffle, Reshape, SpecifyBroadcastable
from ...ops.subtensor import SYMBOLIC, IncSubtensor, Subtensor, _decode
from .backprop_update import BackpropUpdatePlan
from .backprop_update import supports as backprop_update_supports
from .elemwise_codegen import elemwise_spec, epilogue_expression
from .kernel_spec import KernelSpec, Operand, c_type
from .launches import BackpropUpdateLaunch, GemmLaunch
from .row_gathers import RowsInPlace, is_transpose
from .storage import DeviceArray, contiguous_strides


def _aligned_strides(array: DeviceArray, out_shape) -> tuple[int, ...]:
    """Strides reading ``array`` broadcast (NumPy rules) to ``out_shape``."""
    extra = len(out_shape) - len(array.shape)
    shape = (1,) * extra + tuple(array.shape)
    strides = (0,) * extra + tuple(array.strides)
    return tuple(0 if size == 1 and out != 1 else stride
                 for size, out, stride in zip(shape, out_shape, strides))


def elementwise_into(builder, node, scalar_op, inputs, target: DeviceArray,
                     deferred: bool = False) -> None:
    """Launch ``scalar_op`` of ``inputs`` (variables, device arrays, or NumPy scalars passed
    by value) into ``target``; ``deferred``: after all other launches (in-place updates)."""
    dtypes, strides, by_value, operands = [], [], [], []
    for inp in inputs:
        if isinstance(inp, np.ndarray) or (not isinstance(inp, DeviceArray)
                                           and builder.is_host_scalar(inp)):
            dtypes.append(inp.dtype if isinstance(inp, Variable) else inp.dtype.name)
            strides.append(())
            by_value.append(True)
            operands.append(inp)
            continue
        array = inp if isinstance(inp, DeviceArray) else builder.array(inp)
        dtypes.append(array.dtype.name)
        strides.append(_aligned_strides(array, target.shape))
        by_value.append(False)
        operands.append(array)
    out_strides = None if target.is_contiguous() else target.strides
    spec = elemwise_spec(scalar_op, dtypes, strides, by_value, target.shape, target.dtype.name,
                         out_strides)
    builder.add_spec(spec, node, operands, [target], deferred)


def lower_elemwise(builder, node) -> None:
    """An elementwise kernel, written straight into the shared variable it updates when
    that is safe (``b - eta * gb``), else into a new array."""
    operands = [builder.array(v) for v in node.inputs if not builder.is_host_scalar(v)]
    target, in_place = builder.output_array(node, [], aligned=operands)
    elementwise_into(builder, node, node.op.scalar_op, node.inputs, target, deferred=in_place)


def copy_into(builder, node, source: DeviceArray, target: DeviceArray) -> None:
    elementwise_into(builder, node, s.identity, [source], target)


def contiguous(builder, node, array: DeviceArray) -> DeviceArray:
    """``array`` itself if contiguous, else a contiguous copy."""
    if array.is_contiguous():
        return array
    copy = builder.allocate(array.shape, array.dtype)
    copy_into(builder, node, array, copy)
    return copy


def lower_dimshuffle(builder, node) -> None:
    rows = builder.in_place_rows(node.inputs[0])
    if rows is not None and is_transpose(node):
        builder.rows_in_place[node.outputs[0].id] = rows.transposed(node.inputs[0])
        return
    array = builder.array(node.inputs[0])
    shape, strides = [], []
    for d in node.op.new_order:
        shape.append(1 if d == "x" else array.shape[d])
        strides.append(0 if d == "x" else array.strides[d])
    builder.set_array(node.outputs[0], DeviceArray(array.buffer, array.offset, tuple(shape),
                                                   tuple(strides), array.dtype))


def lower_identity_view(builder, node) -> None:
    builder.set_array(node.outputs[0], builder.array(node.inputs[0]))


def lower_reshape(builder, node) -> None:
    array = contiguous(builder, node, builder.array(node.inputs[0]))
    shape = builder.shape(node.outputs[0])
    builder.set_array(node.outputs[0], DeviceArray(array.buffer, array.offset, shape,
                                                   contiguous_strides(shape), array.dtype))


def region_shape(node, x_shape, host_values) -> tuple[int, ...]:
    """Shape of ``x[index]`` for a Subtensor or IncSubtensor node, given the host values."""
    values = [host_values[v.id] for v in _index_vars(node)]
    return Subtensor(node.op.idx_list).infer_shape(None, [x_shape], [None, *values])[0]


def _index_vars(node):
    return node.inputs[2:] if isinstance(node.op, IncSubtensor) else node.inputs[1:]


def subtensor_view(builder, node, array: DeviceArray) -> DeviceArray | None:
    """The view ``array[index]`` (None if a slice step is symbolic); symbolic bounds make the
    offset a per-call function of the host values."""
    idx_list = node.op.idx_list
    if any(e[0] == "slice" and e[3] == SYMBOLIC for e in idx_list):
        return None
    index_vars = _index_vars(node)
    strides = [array.strides[a] * (e[3] or 1) for a, e in enumerate(idx_list)
               if e[0] == "slice"] + list(array.strides[len(idx_list):])
    base = array.offset

    def offset(host_values) -> int:
        index = _decode(idx_list, [host_values[v.id] for v in index_vars])
        result = base(host_values) if callable(base) else base
        for axis, item in enumerate(index):
            n = array.shape[axis]
            if isinstance(item, slice):
                first, stop, step = item.indices(n)
                if len(range(first, stop, step)):
                    result += first * array.strides[axis]
            else:
                result += (item % n) * array.strides[axis]
        return result

    static = not index_vars and not callable(base)
    shape = region_shape(node, array.shape, builder.host_values)
    return DeviceArray(array.buffer, offset(builder.host_values) if static else offset,
                       shape, tuple(strides), array.dtype)


def lower_subtensor(builder, node) -> None:
    view = subtensor_view(builder, node, builder.array(node.inputs[0]))
    if view is None:
        builder.host_fallback(node)
    else:
        builder.set_array(node.outputs[0], view)


def lower_inc_subtensor(builder, node) -> None:
    if any(e[0] == "slice" and e[3] == SYMBOLIC for e in node.op.idx_list):
        builder.host_fallback(node)
        return
    target = builder.new_array(node.outputs[0])
    copy_into(builder, node, builder.array(node.inputs[0]), target)
    region = subtensor_view(builder, node, target)
    if node.op.set:
        elementwise_into(builder, node, s.identity, [node.inputs[1]], region)
    else:
        elementwise_into(builder, node, s.add, [region, node.inputs[1]], region)


def lower_alloc(builder, node) -> None:
    target = builder.new_array(node.outputs[0])
    elementwise_into(builder, node, s.identity, [node.inputs[0]], target)


def lower_concatenate(builder, node) -> None:
    target = builder.new_array(node.outputs[0])
    axis = node.op.axis
    start = 0
    for inp in node.inputs:
        array = builder.array(inp)
        part = DeviceArray(target.buffer, target.offset + start * target.strides[axis],
                           array.shape, target.strides, target.dtype)
        copy_into(builder, node, array, part)
        start += array.shape[axis]


def _as_matrix(array: DeviceArray, role: str) -> DeviceArray:
    if len(array.shape) == 2:
        return array
    if role == "a":
        return DeviceArray(array.buffer, array.offset, (1, array.shape[0]),
                           (0, array.strides[0]), array.dtype)
    return DeviceArray(array.buffer, array.offset, (array.shape[0], 1),
                       (array.strides[0], 0), array.dtype)


def rows_of_transpose(array: DeviceArray) -> DeviceArray | None:
    """The contiguous matrix X (row-major) of which ``array`` is the transposed view X.T,
    or None when ``array`` is not laid out that way."""
    rows, cols = array.shape
    if (rows == 1 or array.strides[0] == 1) and (cols == 1 or array.strides[1] == rows):
        return DeviceArray(array.buffer, array.offset, (cols, rows), (rows, 1), array.dtype)
    return None


def _gemm_operand(builder, node, array: DeviceArray) -> tuple[DeviceArray, bool]:
    """``(array, transposed)`` usable by the GEMM kernels, copying only if necessary."""
    rows, cols = array.shape
    if (cols == 1 or array.strides[1] == 1) and (rows == 1 or array.strides[0] == cols):
        return array, False
    if rows_of_transpose(array) is not None:
        return array, True
    return contiguous(builder, node, array), False


def _product_a(builder, node, var) -> tuple[DeviceArray, bool, RowsInPlace | None]:
    """``(A, transposed, rows)``: A of a product as the GEMM kernels read it. For rows left
    in place (``rows``) A is their source, read through their index, with op(A)'s shape
    ``product_a_shape`` gives; else as _gemm_operand gives it."""
    rows = builder.in_place_rows(var)
    if rows is not None:
        return rows.source, rows.transpose_of is not None, rows
    a, transposed = _gemm_operand(builder, node, _as_matrix(builder.array(var), "a"))
    return a, transposed, None


def product_a_shape(a: DeviceArray, rows: RowsInPlace | None) -> tuple[int, int]:
    """op(A)'s shape (m, k) for ``_product_a``'s A and rows."""
    if rows is None:
        return a.shape
    n, width = rows.index.shape[0], a.shape[1]
    return (width, n) if rows.transpose_of is not None else (n, width)


def _index_options(builder, var, rows: RowsInPlace | None, copies: bool = False
                   ) -> tuple[dict, dict]:
    """(GemmPlan options, GemmLaunch options) reading A's rows through ``rows``' index; a
    product that ``copies`` (the first to read rows to be copied by it) stores them as
    ``var``'s array."""
    if rows is None:
        return {}, {}
    if not (copies and rows.copied_by_first_reader and rows.transpose_of is None):
        return {"a_rows": rows.rows}, {"a_index": rows.index}
    copy = builder.new_array(var)
    return {"a_rows": rows.rows, "a_copy": True}, {"a_index": rows.index, "a_copy": copy}


def matmul_spec(dtype: str, a: DeviceArray, b: DeviceArray) -> KernelSpec:
    """A plain product kernel (one work-item per result, strided operands) for the integer
    dtypes the GEMM kernels do not cover."""
    (m, k), n = a.shape, b.shape[1]
    ct = c_type(dtype)
    source = (
        f"__kernel void matmul(__global const {ct}* a, const long a_off, "
        f"__global const {ct}* b, const long b_off, __global {ct}* c, const long c_off) {{\n"
        "    const long gid = get_global_id(0);\n"
        f"    if (gid >= {m * n}L) return;\n"
        f"    const long i = gid / {n}L, j = gid % {n}L;\n"
        f"    {ct} acc = 0;\n"
        f"    for (long p = 0; p < {k}L; ++p)\n"
        f"        acc += a[a_off + i * {a.strides[0]}L + p * {a.strides[1]}L]"
        f" * b[b_off + p * {b.strides[0]}L + j * {b.strides[1]}L];\n"
        "    c[c_off + gid] = acc;\n}\n")
    local = 64
    return KernelSpec(source, "matmul", (-(-max(m * n, 1) // local) * local,), (local,),
                      [Operand("in", 0), Operand("in", 1), Operand("out", 0)])


def lower_dot(builder, node) -> None:
    x, y = node.inputs
    out = node.outputs[0]
    if out.dtype not in ("float32", "float64"):
        a = _as_matrix(builder.array(x), "a")
        b = _as_matrix(builder.array(y), "b")
        target = builder.new_array(out)
        c = DeviceArray(target.buffer, target.offset, (a.shape[0], b.shape[1]),
                        contiguous_strides((a.shape[0], b.shape[1])), target.dtype)
        builder.add_spec(matmul_spec(out.dtype, a, b), node, [a, b], [c])
        return
    a, trans_a, rows = _product_a(builder, node, x)
    b, trans_b = _gemm_operand(builder, node, _as_matrix(builder.array(y), "b"))
    m, k = product_a_shape(a, rows)
    n = b.shape[1]
    target = builder.new_array(out)
    if 0 in (m, n, k):
        elementwise_into(builder, node, s.identity, [np.zeros((), out.dtype)], target)
        return
    if out.dtype == "float64":
        builder.runtime.require_fp64(str(node.op))
    plan_options, launch_options = _index_options(builder, x, rows, copies=True)
    plan = builder.gemm_plan(m, n, k, trans_a, trans_b, out.dtype, **plan_options)
    c = DeviceArray(target.buffer, target.offset, (m, n), contiguous_strides((m, n)),
                    target.dtype)
    builder.add_launch(GemmLaunch(plan, a, b, c, label=str(node.op), **launch_options))


def _scalar(builder, var):
    """A host scalar as a float, fixed for constants, else a per-call getter."""
    if isinstance(var, Constant):
        return float(var.data)
    return lambda host_values: float(host_values[var.id])


def lower_gemm(builder, node) -> None:
    """``beta * C + alpha * A @ B`` as one product: written straight into ``C`` when ``C`` is
    a shared variable this function updates with the result (SGD's gemm-inplace), else into a
    copy of ``C``."""
    _lower_gemm_update(builder, node)


def lower_gemm_column_sums(builder, node) -> None:
    """A weight update and its bias update (``GemmColumnSums``) as one product whose first
    row block of each column panel also sums B's columns and stores the column update, each
    result in place into its shared variable when that is safe."""
    a_var, b_var, others = node.inputs[2], node.inputs[3], node.inputs[5:]
    if 0 in builder.shape(a_var) + builder.shape(b_var):
        builder.host_fallback(node)
        return
    arrays = [contiguous(builder, node, builder.array(v)) for v in others]
    b = builder.array(b_var)
    out = node.outputs[1]
    column, deferred = builder.output_array(node, [b], aligned=arrays, output=1)
    op = node.op.column_update
    names = [f"o{j}" for j in range(len(others))]
    names.insert(op.position, "s")
    expression = epilogue_expression(op.scalar_op, out.dtype, names)
    rows = builder.in_place_rows(a_var)
    if rows is not None and rows.transpose_of is None:
        rows = None
    if backprop_update_supports(builder.shape(b_var)[0], builder.runtime.device, out.dtype,
                                backward=False):
        h = rows.source if rows is not None else rows_of_transpose(builder.array(a_var))
        if h is not None:
            _lower_row_update(builder, node, h, deferred, expression, [column, *arrays], rows)
            return
    _lower_gemm_update(builder, node, column_deferred=deferred, column_epilogue=expression,
                       column_sums=[column, *arrays])


def _lower_row_update(builder, node, h: DeviceArray, column_deferred: bool,
                      column_epilogue: str, column_sums: list[DeviceArray],
                      rows: RowsInPlace | None) -> None:
    """The products of a GemmColumnSums node whose A is the transpose of ``h``, a matrix of
    few rows (a minibatch's activations, or with ``rows`` their source read through the
    index), by the update kernel of backprop_update.py: each work-item streams its rows of W
    once, nothing packed."""
    c_var, alpha, _, b_var, beta = node.inputs[:5]
    d = contiguous(builder, node, builder.array(b_var))
    w = contiguous(builder, node, builder.array(c_var))
    target, deferred = builder.output_array(node, [h, d], aligned=[w])
    (batch, n_out), n_in = d.shape, w.shape[0]
    dtype = node.outputs[0].dtype
    if dtype == "float64":
        builder.runtime.require_fp64(str(node.op))
    plan = BackpropUpdatePlan(builder.runtime.context, batch, n_in, n_out, dtype=dtype,
                              column_epilogue=column_epilogue, columns=len(column_sums) - 1,
                              backward=False, h_rows=rows and rows.rows,
                              program_cache=builder.runtime.program_cache)
    in_place = deferred or column_deferred
    builder.add_launch(BackpropUpdateLaunch(
        plan, {"h": h, "d": d, "w": w, "w_out": target},
        label=str(node.op) + (" in place" if in_place else ""), alpha=_scalar(builder, alpha),
        beta=_scalar(builder, beta), extras=[], column_sums=column_sums,
        h_index=rows and rows.index), deferred=in_place)


def _lower_gemm_update(builder, node, column_deferred: bool = False,
                       column_epilogue: str | None = None, column_sums=()) -> None:
    """The product of a Gemm node, or of a GemmColumnSums node with its column update (whose
    operands are never empty)."""
    c_var, alpha, a_var, b_var, beta = node.inputs[:5]
    a, trans_a, rows = _product_a(builder, node, a_var)
    b, trans_b = _gemm_operand(builder, node, builder.array(b_var))
    m, k = product_a_shape(a, rows)
    n = b.shape[1]
    if node.outputs[0].dtype == "float64":
        builder.runtime.require_fp64(str(node.op))
    target = None if 0 in (m, n, k) else builder.inplace_target(node, [a, b])
    deferred = target is not None
    if target is None:
        target = builder.new_array(node.outputs[0])
        copy_into(builder, node, builder.array(c_var), target)
    else:
        builder.set_array(node.outputs[0], target)
    if 0 in (m, n, k):
        elementwise_into(builder, node, s.mul, [target, beta], target)
        return
    options, launch_options = _index_options(builder, a_var, rows)
    if column_epilogue is not None:
        options |= {"column_epilogue": column_epilogue, "columns": len(column_sums) - 1}
    plan = builder.gemm_plan(m, n, k, trans_a, trans_b, target.dtype.name, **options)
    in_place = deferred or column_deferred
    launch = GemmLaunch(plan, a, b, target, label=str(node.op) + (" in place" if in_place
                                                                   else ""),
                        alpha=_scalar(builder, alpha), beta=_scalar(builder, beta),
                        column_sums=column_sums, **launch_options)
    builder.add_launch(launch, deferred=in_place)


def lower_dot_epilogue(builder, node) -> None:
    """``epilogue(A @ B + bias, E1, ...)`` as one GEMM whose kernels add the bias and apply the
    epilogue, reading the extra matrices alongside, to each block of results before storing
    it."""
    a_var, b_var, *rest = node.inputs
    a, trans_a, rows = _product_a(builder, node, a_var)
    b, trans_b = _gemm_operand(builder, node, builder.array(b_var))
    operands = [contiguous(builder, node, builder.array(v)) for v in rest]
    bias = operands[0] if node.op.has_bias else None
    extras = operands[int(node.op.has_bias):]
    m, k = product_a_shape(a, rows)
    n = b.shape[1]
    target = builder.new_array(node.outputs[0])
    if 0 in (m, n, k):
        builder.host_fallback(node)
        return
    if target.dtype == np.float64:
        builder.runtime.require_fp64(str(node.op))
    epilogue = epilogue_expression(node.op.epilogue, target.dtype.name)
    plan_options, launch_options = _index_options(builder, a_var, rows, copies=True)
    plan = builder.gemm_plan(m, n, k, trans_a, trans_b, target.dtype.name,
                             bias=bias is not None, epilogue=epilogue, extras=len(extras),
                             **plan_options)
    builder.add_launch(GemmLaunch(plan, a, b, target, label=str(node.op), bias=bias,
                                  extras=extras, **launch_options))


def lower_backprop_update(builder, node) -> None:
    """A dense layer's backward product and its weight and bias updates (``BackpropUpdate``)
    in one pass over W when the minibatch is small enough for that kernel, writing W and the
    bias in place when no later kernel reads them; else the two products (the update in place
    after all other launches)."""
    op, split = node.op, 5 + node.op.n_column
    w_var, alpha, h_t_var, d_var, beta = node.inputs[:5]
    batch, n_out = builder.shape(d_var)
    n_in = builder.shape(w_var)[0]
    dtype = node.outputs[0].dtype
    h = rows_of_transpose(builder.array(h_t_var))
    if h is None or 0 in (batch, n_in, n_out) or node.outputs[2].dtype != dtype or \
            not backprop_update_supports(batch, builder.runtime.device, dtype):
        lower_dot_epilogue(builder, Apply.part(op.backward, [d_var, *node.inputs[split:]],
                                               node.outputs[2:]))
        lower_gemm_column_sums(builder, Apply.part(op.update, node.inputs[:split],
                                                   node.outputs[:2]))
        return
    if dtype == "float64":
        builder.runtime.require_fp64(str(op))
    d = contiguous(builder, node, builder.array(d_var))
    w = contiguous(builder, node, builder.array(w_var))
    columns = [contiguous(builder, node, builder.array(v)) for v in node.inputs[5:split]]
    extras = [contiguous(builder, node, builder.array(v)) for v in node.inputs[split + 1:]]
    read = [h, d, *extras]
    targets = [builder.output_array(node, read, aligned=aligned, output=output,
                                    deferred=False)[0]
               for output, aligned in ((0, [w]), (1, columns))]
    gradient = builder.new_array(node.outputs[2])
    names = [f"o{j}" for j in range(len(columns))]
    names.insert(op.update.column_update.position, "s")
    plan = BackpropUpdatePlan(
        builder.runtime.context, batch, n_in, n_out, dtype=dtype,
        epilogue=epilogue_expression(op.backward.epilogue, dtype), extras=len(extras),
        column_epilogue=epilogue_expression(op.update.column_update.scalar_op, dtype, names),
        columns=len(columns), program_cache=builder.runtime.program_cache)
    builder.add_launch(BackpropUpdateLaunch(
        plan, {"h": h, "d": d, "w": w, "w_out": targets[0], "p": gradient},
        label=str(op) + (" in place" if targets[0] is w else ""),
        alpha=_scalar(builder, alpha), beta=_scalar(builder, beta), extras=extras,
        column_sums=[targets[1], *columns]))


LOWERINGS = {
    Elemwise: lower_elemwise,
    DimShuffle: lower_dimshuffle,
    SpecifyBroadcastable: lower_identity_view,
    Reshape: lower_reshape,
    Subtensor: lower_subtensor,
    IncSubtensor: lower_inc_subtensor,
    Alloc: lower_alloc,
    Concatenate: lower_concatenate,
    Dot: lower_dot,
    Gemm: lower_gemm,
    DotEpilogue: lower_dot_epilogue,
    GemmColumnSums: lower_gemm_column_sums,
    BackpropUpdate: lower_backprop_update,
}
