"""Integer-array indexing as OpenCL kernels: gather (``AdvancedSubtensor``), the rows of several
arrays gathered by one index (``TakeRows``), and deterministic scatter-add / scatter-set
(``AdvancedIncSubtensor``) over the leading axes.

Index arrays broadcast together (NumPy rules) and negative indices wrap once, as in NumPy.

Error-flag convention (every kernel that checks indices or labels, here and in
:mod:`.softmax`): the spec's last argument is ``Operand("scratch", 0)``, one int32 element
that the linker zero-fills before the launch and checks after the node's outputs are read.
A kernel meeting an index outside its axis writes 1 there and skips that element (a gather
writes 0 in its place, a scatter leaves the output alone); nonzero means the call must raise
``IndexError``.
"""

from __future__ import annotations

import math

import numpy as np

from ..kernel_spec import KernelSpec, Operand, c_type, element_index, fp64_pragma
from .reduce import guard, launch_1d, launch_work, merge_dims, unaligned_vector, vector_width

_COPY_ITEMS = 16  # work-items a gather of few long rows is split into ...
_MIN_CHUNK = 1 << 14  # ... each copying at least this many elements


def _broadcast_strides(shape, strides, target):
    """Element strides of an array of ``shape`` broadcast (right-aligned) to ``target``."""
    lead = len(target) - len(shape)
    return tuple(0 if a < lead or shape[a - lead] == 1 else strides[a - lead]
                 for a in range(len(target)))


def _index_lines(index_dtypes, index_shapes, index_strides, axis_sizes, axis_strides, bshape):
    """(kernel parameters, C lines adding the indexed offset to ``pos`` and setting ``bad``
    for broadcast position ``b``)."""
    params, lines = [], ["bool bad = false;"]
    for j, (dtype, shape, strides) in enumerate(zip(index_dtypes, index_shapes,
                                                    index_strides)):
        params.append(f"__global const {c_type(dtype)} *i{j}, long i{j}_off")
        where = element_index("b", bshape, _broadcast_strides(shape, strides, bshape),
                              f"i{j}_off")
        size = axis_sizes[j]
        lines += [f"long k{j} = (long)i{j}[{where}];",
                  f"k{j} += k{j} < 0 ? {size}L : 0;",
                  f"bad = bad || (ulong)k{j} >= {size}ul;",
                  f"pos += k{j} * {axis_strides[j]}L;"]
    return params, lines


def _row_chunks(n_rows: int, row: int, width: int) -> tuple[int, int]:
    """(chunk, chunks): the elements each work-item copies of an output row, a multiple of
    ``width``, and the chunks a row splits into; long rows split so there are about
    ``_COPY_ITEMS`` work-items, each copying at least ``_MIN_CHUNK`` elements."""
    chunks = max(1, min(-(-_COPY_ITEMS // n_rows), row // _MIN_CHUNK))
    chunk = -(-row // chunks)
    chunk = -(-chunk // width) * width
    return chunk, -(-row // chunk)


def _copy_lines(ctype, tail, width, strided):
    """C lines copying elements [lo, hi) of an output row from the input at ``pos``: a
    scalar loop over the ``tail`` dims when ``strided``, else ``width``-wide vectors with
    the last one shifted left to end at ``hi`` (scalars when ``width`` is 1)."""
    if strided:
        where = element_index("t", [s for s, _ in tail], [t for _, t in tail], "pos")
        return [f"for (long t = lo; t < hi; t++) dst[t] = x[{where}];"]
    lines = [f"const __global {ctype} *src = x + pos;"]
    if width == 1:
        return lines + ["for (long t = lo; t < hi; t++) dst[t] = src[t];"]
    _, vec = unaligned_vector(ctype, width)
    lines += [f"for (long t = lo; t < hi; t += {width}) {{",
              f"    long s = t < hi - {width} ? t : hi - {width};",
              f"    *(__global {vec} *)(dst + s) = *(const __global {vec} *)(src + s);", "}"]
    return lines


def gather_specs(dtype, x_shape, x_strides, index_dtypes, index_shapes,
                 index_strides) -> list[KernelSpec]:
    """Output 0 = input 0 indexed by the integer arrays inputs 1..k on its leading k axes:
    shape broadcast(index shapes) + x_shape[k:]. A work-item decodes the indices of one
    output row (the trailing x_shape[k:] block) and copies a chunk of it: with vector loads
    and stores when the block is contiguous in ``x``, element by element otherwise."""
    k = len(index_shapes)
    bshape = tuple(np.broadcast_shapes(*index_shapes))
    n_rows, row = math.prod(bshape), math.prod(x_shape[k:])
    if n_rows * row == 0:
        return []
    ctype = c_type(dtype)
    tail = merge_dims([d for d in zip(x_shape[k:], x_strides[k:]) if d[0] != 1])
    strided = tail not in ([], [(row, 1)])
    width = vector_width(ctype)
    width = 1 if strided or row < width else width
    chunk, chunks = _row_chunks(n_rows, row, width)
    params, lines = _index_lines(index_dtypes, index_shapes, index_strides, x_shape,
                                 x_strides, bshape)
    n_items = n_rows * chunks
    gsize, lsize = launch_work(n_items, n_rows * row)
    if chunks == 1:
        locate = [f"long b = gid, lo = 0, hi = {row}L;"]
    else:
        locate = [f"long b = gid / {chunks}L, lo = gid % {chunks}L * {chunk}L;",
                  f"long hi = lo + {chunk}L < {row}L ? lo + {chunk}L : {row}L;"]
    body = (locate + ["long pos = x_off;", *lines,
                      f"__global {ctype} *dst = y + y_off + b * {row}L;",
                      "if (bad) {", "    err[err_off] = 1;",
                      "    for (long t = lo; t < hi; t++) dst[t] = 0;", "    return;", "}"]
            + _copy_lines(ctype, tail, width, strided))
    typedef = "" if width == 1 else unaligned_vector(ctype, width)[0]
    src = (f"{fp64_pragma(dtype)}{typedef}"
           f"__kernel void tg_gather(__global const {ctype} *x, long x_off, "
           f"{', '.join(params)}, __global {ctype} *y, long y_off, "
           "__global int *err, long err_off) {\n"
           f"    long gid = get_global_id(0);\n{guard(n_items, gsize)}"
           + "".join(f"    {line}\n" for line in body) + "}\n")
    args = [Operand("in", j) for j in range(k + 1)] + [Operand("out", 0), Operand("scratch", 0)]
    return [KernelSpec(src, "tg_gather", gsize, lsize, args, (1,), ("int32",))]


def _row_source(index_dtypes, index_shapes, index_strides) -> tuple[list[str], list[str]]:
    """(kernel parameters, C lines setting ``k``, the raw index of output row ``b``, and
    ``bad``). One index input is the index vector; two are a table and a selector, the index
    being ``table[selector]`` flattened (a bad selector entry sets ``bad``)."""
    ctypes = [c_type(d) for d in index_dtypes]
    if len(index_shapes) == 1:
        return ([f"__global const {ctypes[0]} *index, long index_off"],
                ["bool bad = false;",
                 f"long k = (long)index[index_off + b * {index_strides[0][0]}L];"])
    (n_table, row), (sel_stride,) = index_shapes[0], index_strides[1]
    table_row, table_col = index_strides[0]
    return ([f"__global const {ctypes[0]} *table, long table_off",
             f"__global const {ctypes[1]} *selector, long selector_off"],
            [f"long r = (long)selector[selector_off + b / {row}L * {sel_stride}L];",
             f"r += r < 0 ? {n_table}L : 0;",
             f"bool bad = (ulong)r >= {n_table}ul;",
             f"long k = bad ? 0 : (long)table[table_off + r * {table_row}L "
             f"+ b % {row}L * {table_col}L];"])


def _row_layout(dtype, shape, strides) -> tuple[int, list, bool, int]:
    """(row length, merged trailing dims, whether they are strided, vector width) of the
    rows of an array gathered along axis 0."""
    row = math.prod(shape[1:])
    tail = merge_dims([d for d in zip(shape[1:], strides[1:]) if d[0] != 1])
    strided = tail not in ([], [(row, 1)])
    width = vector_width(c_type(dtype))
    return row, tail, strided, 1 if strided or row < width else width


def _take_block(j, dtype, shape, strides, chunks) -> tuple[str, list[str]]:
    """(vector typedef or "", C lines) writing chunk ``c`` of row ``b`` of output ``j``:
    zeros when ``bad``, else the row ``k{j}`` of array ``j``."""
    row, tail, strided, width = _row_layout(dtype, shape, strides)
    if row == 0:
        return "", []
    ctype = c_type(dtype)
    if chunks == 1:
        bounds = f"long lo = 0, hi = {row}L;"
    else:
        chunk = -(-row // chunks)
        chunk = -(-chunk // width) * width
        bounds = (f"long lo = c * {chunk}L, "
                  f"hi = lo + {chunk}L < {row}L ? lo + {chunk}L : {row}L;")
    lines = ["{", f"    __global {ctype} *dst = y{j} + y{j}_off + b * {row}L;", f"    {bounds}",
             "    if (bad) {", "        for (long t = lo; t < hi; t++) dst[t] = 0;",
             "    } else {", f"        const __global {ctype} *x = a{j};",
             f"        long pos = a{j}_off + k{j} * {strides[0]}L;"]
    lines += [f"        {line}" for line in _copy_lines(ctype, tail, width, strided)]
    typedef = "" if width == 1 else unaligned_vector(ctype, width)[0]
    return typedef, lines + ["    }", "}"]


def _take_rows_layouts(n_rows, dtypes, shapes, strides, in_place):
    """(row layouts, chunks per row, work-items, global size, local size) of the TakeRows
    kernel."""
    layouts = [(0, [], False, 1) if j in in_place else _row_layout(d, sh, st)
               for j, (d, sh, st) in enumerate(zip(dtypes, shapes, strides))]
    row, _, _, width = max(layouts, key=lambda layout: layout[0])
    chunks = _row_chunks(n_rows, row, width)[1] if row else 1
    n_items = n_rows * chunks
    gsize, lsize = launch_work(n_items, n_rows * sum(layout[0] for layout in layouts))
    return layouts, chunks, n_items, gsize, lsize


def take_rows_one_group(n_rows, dtypes, shapes, strides, in_place, n_selector: int,
                        max_group: int) -> bool:
    """Whether the TakeRows kernel of these outputs, advancing a selector of ``n_selector``
    entries, can run as one work-group of at most ``max_group`` work-items, as it would for
    its rows anyway (its work-items can then wait for each other: see take_rows_specs'
    ``advance``)."""
    _, _, n_items, gsize, lsize = _take_rows_layouts(n_rows, dtypes, shapes, strides, in_place)
    return gsize == lsize and max(n_items, n_selector) <= max_group


def take_rows_specs(n_rows, index_dtypes, index_shapes, index_strides, dtypes, shapes,
                    strides, in_place=(), advance=None) -> list[KernelSpec]:
    """Output j = the rows of array j (input ``len(index_shapes) + j``) picked by one index
    of ``n_rows`` entries, all in one launch: the index is input 0 (a vector), or, with two
    index inputs, ``table[selector]`` flattened (a table row chosen by a step counter).
    For j in ``in_place`` output j is instead the int32 vector of the rows of array j to read
    (negatives wrapped, 0 for a bad entry): its consumers read them in place (row_gathers.py).
    With ``advance`` = (k, over the selector) (table form, rows and selector not empty) one
    more output is ``selector + k``; when it overwrites the selector itself, the kernel runs as one
    work-group (``take_rows_one_group`` must hold) whose work-items write it after a barrier,
    once all of them have read the selector.

    A work-item reads the index of one output row, checks it against every array (wrapping
    negatives once) and copies one chunk of that row of every output; rows split into chunks
    as a gather of the widest output's rows would (see ``_row_chunks``)."""
    if n_rows == 0:
        return []
    layouts, chunks, n_items, gsize, lsize = _take_rows_layouts(n_rows, dtypes, shapes,
                                                                strides, in_place)
    params, body = _row_source(index_dtypes, index_shapes, index_strides)
    locate = "long b = gid;" if chunks == 1 else f"long b = gid / {chunks}L, c = gid % {chunks}L;"
    typedefs = {}
    for j, (dtype, shape) in enumerate(zip(dtypes, shapes)):
        ctype, n = c_type(dtype), shape[0]
        params.append(f"__global const {ctype} *a{j}, long a{j}_off")
        body += [f"long k{j} = k + (k < 0 ? {n}L : 0);", f"bad = bad || (ulong)k{j} >= {n}ul;"]
    body.append("if (bad) err[err_off] = 1;")
    for j, (dtype, shape, stride) in enumerate(zip(dtypes, shapes, strides)):
        if j in in_place:
            store = f"y{j}[y{j}_off + b] = bad ? 0 : (int)k{j};"
            body.append(store if chunks == 1 else f"if (c == 0) {store}")
            continue
        typedef, lines = _take_block(j, dtype, shape, stride, chunks)
        typedefs[typedef] = None
        body += lines
    outs = [f"__global {'int' if j in in_place else c_type(d)} *y{j}, long y{j}_off"
            for j, d in enumerate(dtypes)]
    rows = "".join(f"    {line}\n" for line in body)
    if advance is None:
        code = f"{guard(n_items, gsize)}    {locate}\n{rows}"
    else:
        k, over_selector = advance
        n_sel, (sel_stride,) = index_shapes[1][0], index_strides[1]
        sel_type = c_type(index_dtypes[1])
        outs.append(f"__global {sel_type} *y{len(dtypes)}, long y{len(dtypes)}_off")
        if over_selector:
            gsize = lsize = (max(n_items, n_sel),)
        elif n_sel > gsize[0]:
            gsize = (-(-n_sel // lsize[0]) * lsize[0],)
        code = (f"    if (gid < {n_items}L) {{\n    {locate}\n{rows}    }}\n"
                + ("    barrier(CLK_GLOBAL_MEM_FENCE);\n" if over_selector else "")
                + f"    if (gid < {n_sel}L) y{len(dtypes)}[y{len(dtypes)}_off + gid] = "
                f"({sel_type})(selector[selector_off + gid * {sel_stride}L] + {k}L);\n")
    src = (f"{fp64_pragma(*dtypes)}{''.join(typedefs)}"
           f"__kernel void tg_take_rows({', '.join(params)}, {', '.join(outs)}, "
           "__global int *err, long err_off) {\n"
           f"    long gid = get_global_id(0);\n{code}}}\n")
    n_inputs = len(index_shapes) + len(dtypes)
    args = ([Operand("in", i) for i in range(n_inputs)]
            + [Operand("out", j) for j in range(len(outs))] + [Operand("scratch", 0)])
    return [KernelSpec(src, "tg_take_rows", gsize, lsize, args, (1,), ("int32",))]


def scatter_specs(dtype, x_shape, index_dtypes, index_shapes, index_strides, y_shape,
                  y_strides, set: bool) -> list[KernelSpec]:
    """Scatter input 1 (``y``, broadcast to the indexed shape) into output 0, which already
    holds a copy of ``x``, at the positions given by the index arrays inputs 2..k+1: added
    (repeats accumulate, as ``numpy.add.at``) or, when ``set``, written (the last repeat
    wins). Each work-item owns one trailing position and walks the index tuples in order, so
    results are deterministic."""
    k = len(index_shapes)
    bshape = tuple(np.broadcast_shapes(*index_shapes))
    tshape = tuple(x_shape[k:])
    n_b, n_t = math.prod(bshape), math.prod(tshape)
    if n_b * n_t == 0:
        return []
    ctype = c_type(dtype)
    out_strides = [math.prod(x_shape[a + 1:]) for a in range(len(x_shape))]
    params, lines = _index_lines(index_dtypes, index_shapes, index_strides, x_shape,
                                 out_strides, bshape)
    ystrides = _broadcast_strides(y_shape, y_strides, bshape + tshape)
    y_b = element_index("b", bshape, ystrides[:len(bshape)], "yt")
    if set:
        update = "v"
    else:
        update = "out[pos] | v" if np.dtype(dtype) == np.bool_ else "out[pos] + v"
    gsize, lsize = launch_1d(n_t)
    src = (f"{fp64_pragma(dtype)}__kernel void tg_scatter(__global const {ctype} *yv, "
           f"long yv_off, {', '.join(params)}, __global {ctype} *out, long out_off, "
           "__global int *err, long err_off) {\n"
           f"    long t = get_global_id(0), gid = t;\n{guard(n_t, gsize)}"
           f"    long yt = {element_index('t', tshape, ystrides[len(bshape):], 'yv_off')};\n"
           f"    for (long b = 0; b < {n_b}L; b++) {{\n"
           "        long pos = out_off + t;\n"
           + "".join(f"        {line}\n" for line in lines)
           + "        if (bad) { err[err_off] = 1; continue; }\n"
           f"        {ctype} v = yv[{y_b}];\n"
           f"        out[pos] = {update};\n    }}\n}}\n")
    args = ([Operand("in", 1)] + [Operand("in", 2 + j) for j in range(k)]
            + [Operand("out", 0), Operand("scratch", 0)])
    return [KernelSpec(src, "tg_scatter", gsize, lsize, args, (1,), ("int32",))]
