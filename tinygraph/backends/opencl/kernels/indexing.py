"""Integer-array indexing as OpenCL kernels: gather (``AdvancedSubtensor``) and deterministic
scatter-add / scatter-set (``AdvancedIncSubtensor``) over the leading axes.

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
from .reduce import guard, launch_1d


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


def gather_specs(dtype, x_shape, x_strides, index_dtypes, index_shapes,
                 index_strides) -> list[KernelSpec]:
    """Output 0 = input 0 indexed by the integer arrays inputs 1..k on its leading k axes:
    shape broadcast(index shapes) + x_shape[k:]."""
    k = len(index_shapes)
    bshape = tuple(np.broadcast_shapes(*index_shapes))
    tshape, tstrides = x_shape[k:], x_strides[k:]
    n_t = math.prod(tshape)
    n = math.prod(bshape) * n_t
    if n == 0:
        return []
    ctype = c_type(dtype)
    params, lines = _index_lines(index_dtypes, index_shapes, index_strides, x_shape,
                                 x_strides, bshape)
    gsize, lsize = launch_1d(n)
    src = (f"{fp64_pragma(dtype)}__kernel void tg_gather(__global const {ctype} *x, long x_off, "
           f"{', '.join(params)}, __global {ctype} *y, long y_off, "
           "__global int *err, long err_off) {\n"
           f"    long gid = get_global_id(0);\n{guard(n, gsize)}"
           f"    long b = gid / {n_t}L, t = gid % {n_t}L;\n"
           f"    long pos = {element_index('t', tshape, tstrides, 'x_off')};\n"
           + "".join(f"    {line}\n" for line in lines)
           + "    if (bad) { err[err_off] = 1; y[y_off + gid] = 0; return; }\n"
           "    y[y_off + gid] = x[pos];\n}\n")
    args = [Operand("in", j) for j in range(k + 1)] + [Operand("out", 0), Operand("scratch", 0)]
    return [KernelSpec(src, "tg_gather", gsize, lsize, args, (1,), ("int32",))]


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
