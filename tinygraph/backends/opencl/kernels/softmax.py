"""Softmax, log-softmax and the fused softmax crossentropy (forward and gradient) as OpenCL
kernels: one work-item per row of the last axis, the row max subtracted before ``exp``.

``exp`` and ``log`` are inlined plain C (the pip PoCL turns the builtins into calls, several
times slower): ``exp`` for x <= 0 by Cody-Waite reduction and a Taylor polynomial, ``log`` for
positive normal x as fdlibm/musl do, both within about 1 ulp. Label errors follow the
error-flag convention of :mod:`.indexing`.
"""

from __future__ import annotations

import math

import numpy as np

from ..kernel_spec import KernelSpec, Operand, c_literal, c_type, element_index, fp64_pragma
from .reduce import guard, launch_1d

_PRIVATE_ROW = 64  # rows up to this long keep their exps in private memory

_CONST = {
    "float": dict(
        suffix="f", log2e="0x1.715476p+0f", ln2_hi="0x1.63p-1f", ln2_lo="-0x1.bd0106p-13f",
        terms=7, clamp="-160.0f", underflow="-104.0f", min_exp=-125, bits="uint", shift=23,
        bias=127, rescale=64, log_ln2=("0x1.62e3p-1f", "0x1.2fefa2p-17f"),
        log_lg=("0x1.555554p-1f", "0x1.999c26p-2f", "0x1.23d3dcp-2f", "0x1.f13c4cp-3f"),
        log_bits=("0x3F800000u", "0x3F3504F3u", "0x7FFFFFu")),
    "double": dict(
        suffix="", log2e="0x1.71547652b82fep+0", ln2_hi="0x1.62e42feep-1",
        ln2_lo="0x1.a39ef35793c76p-33", terms=13, clamp="-1100.0", underflow="-746.0",
        min_exp=-1021, bits="ulong", shift=52, bias=1023, rescale=512,
        log_ln2=("0x1.62e42feep-1", "0x1.a39ef35793c76p-33"),
        log_lg=("0x1.5555555555593p-1", "0x1.999999997fa04p-2", "0x1.2492494229359p-2",
                "0x1.c71c51d8e78afp-3", "0x1.7466496cb03dep-3", "0x1.39a09d078c69fp-3",
                "0x1.2f112df3e5244p-3"),
        log_bits=("((ulong)0x3FF00000u << 32)", "((ulong)0x3FE6A09Eu << 32)",
                  "0xFFFFFFFFFFFFFul")),
}


def _horner(x, coeffs):
    out = coeffs[-1]
    for c in reversed(coeffs[:-1]):
        out = f"({c} + {x} * {out})"
    return out


def math_source(ctype: str) -> str:
    """C helpers ``tg_expn_<t>(x)`` (exp for x <= 0; NaN propagates) and ``tg_logp_<t>(x)``
    (log for positive normal x; NaN propagates), <t> = ``ctype``."""
    c = _CONST[ctype]
    dtype = np.float32 if ctype == "float" else np.float64
    taylor = [c_literal(1 / math.factorial(k), dtype) for k in range(c["terms"] + 1)]
    bits, one = c["bits"], f"1.0{c['suffix']}"
    one_bits, sqrt_half_bits, mantissa = c["log_bits"]
    lg = c["log_lg"]
    return f"""
static inline __attribute__((always_inline)) {ctype} tg_expn_{ctype}({ctype} x) {{
    {ctype} t = x * {c['log2e']};
    t = t > {c['clamp']} ? t : {c['clamp']};
    int n = (int)(t - 0.5{c['suffix']});
    {ctype} fn = ({ctype})n;
    {ctype} r = (x - fn * {c['ln2_hi']}) - fn * {c['ln2_lo']};
    {ctype} p = {_horner('r', taylor)};
    int k = n < {c['min_exp']} ? n + {c['rescale']} : n;
    {ctype} res = p * as_{ctype}(({bits})(k + {c['bias']}) << {c['shift']});
    res = n < {c['min_exp']} ? res * 0x1p-{c['rescale']}{c['suffix']} : res;
    res = x < {c['underflow']} ? 0 : res;
    return x != x ? x : res;
}}

static inline __attribute__((always_inline)) {ctype} tg_logp_{ctype}({ctype} x) {{
    {bits} ix = as_{bits}(x) + ({one_bits} - {sqrt_half_bits});
    {ctype} dk = ({ctype})((int)(ix >> {c['shift']}) - {c['bias']});
    {ctype} f = as_{ctype}((ix & {mantissa}) + {sqrt_half_bits}) - {one};
    {ctype} hfsq = 0.5{c['suffix']} * f * f;
    {ctype} s = f / (2.0{c['suffix']} + f);
    {ctype} z = s * s;
    {ctype} w = z * z;
    {ctype} r = z * {_horner('w', lg[0::2])} + w * {_horner('w', lg[1::2])};
    {ctype} res = s * (hfsq + r) + dk * {c['log_ln2'][1]} - hfsq + f + dk * {c['log_ln2'][0]};
    return x != x ? x : res;
}}
"""


def _rows(shape, strides):
    """(rows, row length, C expression of the storage index of row ``row``'s first element)."""
    rows, k = math.prod(shape[:-1]), shape[-1]
    return rows, k, element_index("row", shape[:-1], strides[:-1], "x_off")


def _row_stats(ctype, k, stride, out_row=True):
    """(C lines computing the row max ``m`` and ``s`` = sum of exp(x - m) over the row at
    ``p``, the array then holding each exp). The exps go to a private array ``e`` for short
    rows (a store loop LLVM vectorizes, SLP), else to the output row ``q`` if ``out_row``."""
    x = f"p[j * {stride}L]"
    e = "e" if k <= _PRIVATE_ROW else "q" if out_row else None
    lines = (f"    {ctype} m = p[0];\n"
             f"    for (long j = 1; j < {k}L; j++) m = ({x} > m || {x} != {x}) ? {x} : m;\n"
             f"    {ctype} s = 0;\n")
    if e is None:
        return lines + f"    for (long j = 0; j < {k}L; j++) s += tg_expn_{ctype}({x} - m);\n", e
    if e == "e":
        lines += f"    {ctype} e[{k}];\n"
    return (lines + f"    for (long j = 0; j < {k}L; j++) {e}[j] = tg_expn_{ctype}({x} - m);\n"
            f"    for (long j = 0; j < {k}L; j++) s += {e}[j];\n"), e


def softmax_specs(dtype, shape, strides, log: bool) -> list[KernelSpec]:
    """Softmax (or log-softmax when ``log``) of input 0 along its last axis into output 0."""
    ctype = c_type(dtype)
    rows, k, row_index = _rows(shape, strides)
    if rows * k == 0:
        return []
    name = "tg_log_softmax" if log else "tg_softmax"
    gsize, lsize = launch_1d(rows)
    stride = strides[-1]
    stats, e = _row_stats(ctype, k, stride)
    if log:
        tail = (f"    s = tg_logp_{ctype}(s);\n"
                f"    for (long j = 0; j < {k}L; j++) q[j] = (p[j * {stride}L] - m) - s;\n")
    else:
        tail = (f"    {ctype} inv = 1 / s;\n"
                f"    for (long j = 0; j < {k}L; j++) q[j] = {e}[j] * inv;\n")
    src = (f"{fp64_pragma(dtype)}{math_source(ctype)}"
           f"__kernel void {name}(__global const {ctype} *x, long x_off, "
           f"__global {ctype} *y, long y_off) {{\n"
           f"    long row = get_global_id(0), gid = row;\n{guard(rows, gsize)}"
           f"    const __global {ctype} *p = x + {row_index};\n"
           f"    __global {ctype} *q = y + y_off + row * {k}L;\n"
           + stats + tail + "}\n")
    return [KernelSpec(src, name, gsize, lsize, [Operand("in", 0), Operand("out", 0)])]


def _label(y_stride, k):
    """C lines reading row ``row``'s label into ``label`` and flagging it when outside
    [0, k)."""
    return (f"    long label = (long)lab[lab_off + row * {y_stride}L];\n"
            f"    bool bad = label < 0 || label >= {k}L;\n"
            "    if (bad) err[err_off] = 1;\n")


def crossentropy_specs(dtype, z_shape, z_strides, y_dtype, y_strides) -> list[KernelSpec]:
    """Per-row ``logsumexp(z[i]) - z[i, y[i]]`` of logits input 0 (n, k) and integer labels
    input 1 (n,) into output 0 (n,); a label outside [0, k) sets the error flag (scratch 0)
    and gives NaN."""
    ctype, ytype = c_type(dtype), c_type(y_dtype)
    n, k = z_shape
    if n == 0:
        return []
    gsize, lsize = launch_1d(n)
    zs = z_strides[1]
    src = (f"{fp64_pragma(dtype)}{math_source(ctype)}"
           f"__kernel void tg_crossentropy(__global const {ctype} *x, long x_off, "
           f"__global const {ytype} *lab, long lab_off, __global {ctype} *y, long y_off, "
           "__global int *err, long err_off) {\n"
           f"    long row = get_global_id(0), gid = row;\n{guard(n, gsize)}"
           + _label(y_strides[0], k)
           + "    if (bad) { y[y_off + row] = NAN; return; }\n"
           f"    const __global {ctype} *p = x + x_off + row * {z_strides[0]}L;\n"
           + _row_stats(ctype, k, zs, out_row=False)[0]
           + f"    y[y_off + row] = tg_logp_{ctype}(s) - (p[label * {zs}L] - m);\n}}\n")
    return [KernelSpec(src, "tg_crossentropy", gsize, lsize,
                       [Operand("in", 0), Operand("in", 1), Operand("out", 0),
                        Operand("scratch", 0)], (1,), ("int32",))]


def _gradient_operand(ctype, g_strides) -> tuple[str, str, Operand]:
    """(kernel parameter, C value for row ``row``, argument) of the output gradient ``g``,
    input 0: by value when ``g_strides`` is None, else an array."""
    if g_strides is None:
        return f"{ctype} g", "g", Operand("value", 0)
    return (f"__global const {ctype} *g, long g_off", f"g[g_off + row * {g_strides[0]}L]",
            Operand("in", 0))


def _gradient_row(ctype, k, z_strides, y_strides, g_value, on_bad, leave, cost,
                  logits=None) -> str:
    """C lines for row ``row`` of a crossentropy gradient into the row ``q``: read and check
    the label (``on_bad`` then NaNs and ``leave`` for a bad one), the row's softmax, ``cost``
    (a format string given the row's crossentropy, or "") and the gradient. ``logits``: C
    lines computing the row's logits into ``q`` (read there, z_strides then (k, 1)), else
    they are read from ``x``."""
    zs = z_strides[1]
    stats, e = _row_stats(ctype, k, zs)
    cost_line = "    " + cost.format(f"tg_logp_{ctype}(s) - (p[label * {zs}L] - m)") + "\n" \
        if cost else ""
    row = (f"{logits}    const __global {ctype} *p = q;\n" if logits else
           f"    const __global {ctype} *p = x + x_off + row * {z_strides[0]}L;\n")
    return (_label(y_strides[0], k)
            + f"    if (bad) {{ {on_bad}for (long j = 0; j < {k}L; j++) q[j] = NAN; {leave}; }}\n"
            + row + stats + cost_line
            + f"    {ctype} gi = {g_value}, inv = 1 / s;\n"
            f"    for (long j = 0; j < {k}L; j++) q[j] = ({e}[j] * inv - (j == label)) * gi;\n")


def crossentropy_grad_specs(dtype, g_strides, z_shape, z_strides, y_dtype, y_strides,
                            with_costs: bool = False) -> list[KernelSpec]:
    """``(softmax(z[i]) - onehot(y[i])) * g[i]`` of output gradient input 0 (n,), logits
    input 1 (n, k) and labels input 2 (n,) into the last output (n, k); ``g_strides`` None
    passes ``g`` by value (one gradient for all rows). ``with_costs``: output 0 also gets
    the crossentropies, from the same pass over the logits. A label outside [0, k) sets the
    error flag (scratch 0) and gives NaNs."""
    ctype, ytype = c_type(dtype), c_type(y_dtype)
    n, k = z_shape
    if n == 0:
        return []
    gsize, lsize = launch_1d(n)
    g_param, g_value, g_arg = _gradient_operand(ctype, g_strides)
    costs_param = f"__global {ctype} *c, long c_off, " if with_costs else ""
    src = (f"{fp64_pragma(dtype)}{math_source(ctype)}"
           f"__kernel void tg_crossentropy_grad({g_param}, "
           f"__global const {ctype} *x, long x_off, __global const {ytype} *lab, long lab_off, "
           f"{costs_param}__global {ctype} *y, long y_off, __global int *err, long err_off) {{\n"
           f"    long row = get_global_id(0), gid = row;\n{guard(n, gsize)}"
           f"    __global {ctype} *q = y + y_off + row * {k}L;\n"
           + _gradient_row(ctype, k, z_strides, y_strides, g_value,
                           "c[c_off + row] = NAN; " if with_costs else "", "return",
                           "c[c_off + row] = {};" if with_costs else "")
           + "}\n")
    outputs = [Operand("out", 0), Operand("out", 1)] if with_costs else [Operand("out", 0)]
    return [KernelSpec(src, "tg_crossentropy_grad", gsize, lsize,
                       [g_arg, Operand("in", 1), Operand("in", 2), *outputs,
                        Operand("scratch", 0)], (1,), ("int32",))]


_TOTAL_GROUP = 256  # work-items of the one work-group summing a crossentropy total


def total_group(rows: int) -> int:
    """Work-items of the one work-group summing the crossentropy total of ``rows`` rows."""
    return min(_TOTAL_GROUP, 1 << max(rows - 1, 0).bit_length())


def crossentropy_total_specs(dtype, g_strides, z_shape, z_strides, y_dtype, y_strides,
                             total, mean: bool) -> list[KernelSpec]:
    """The crossentropy gradient of :func:`crossentropy_grad_specs` into output 1, and the
    row crossentropies summed (averaged when ``mean``) and stored through ``total`` (a
    ``StoreEpilogue`` whose operands follow the three inputs) into output 0: one work-group
    strides over the rows, then adds its work-items' sums in local memory."""
    ctype = c_type(dtype)
    return one_group_total_specs("tg_crossentropy_total", dtype, g_strides, z_shape, z_strides,
                                 y_dtype, y_strides, total, mean,
                                 f"__global const {ctype} *x, long x_off", "", [Operand("in", 1)])


def one_group_total_specs(name, dtype, g_strides, z_shape, z_strides, y_dtype, y_strides,
                          total, mean: bool, z_params: str, prologue: str, z_args: list,
                          logits=None, typedefs="", more_params="", more_args=(), tail="",
                          dz_arg=None) -> list[KernelSpec]:
    """The one-work-group crossentropy total kernel ``name`` reading the logits through
    ``z_params`` (arguments ``z_args``) or computing them by the lines ``logits``. Kernels
    doing more take ``more_params`` (arguments ``more_args``, before the total's output) and
    run ``tail`` after the total is summed, all work-items, the gradient (``dz_arg``, by
    default output 1) then complete."""
    ctype, ytype = c_type(dtype), c_type(y_dtype)
    n, k = z_shape
    group = total_group(n)
    g_param, g_value, g_arg = _gradient_operand(ctype, g_strides)
    value = f"part[0] / {n}" if mean else "part[0]"
    dtypes = [dtype, total.out_dtype, *total.operand_dtypes]
    src = (f"{fp64_pragma(*dtypes)}{typedefs}{math_source(ctype)}"
           f"__kernel void {name}({g_param}, {z_params}, "
           f"__global const {ytype} *lab, long lab_off, "
           f"{''.join(p + ', ' for p in total.params())}{more_params}"
           f"__global {c_type(total.out_dtype)} *y, long y_off, "
           f"__global {ctype} *dz, long dz_off, __global int *err, long err_off) {{\n"
           f"{prologue}"
           f"    __local {ctype} part[{group}];\n"
           "    const long lid = get_local_id(0);\n"
           f"    {ctype} acc = 0;\n"
           f"    for (long row = lid; row < {n}L; row += {group}L) {{\n"
           f"    __global {ctype} *q = dz + dz_off + row * {k}L;\n"
           + _gradient_row(ctype, k, z_strides, y_strides, g_value, "acc += NAN; ", "continue",
                           "acc += {};", logits)
           + "    }\n"
           "    part[lid] = acc;\n"
           "    barrier(CLK_LOCAL_MEM_FENCE);\n"
           f"    for (long w = {group // 2}L; w > 0; w >>= 1) {{\n"
           "        if (lid < w) part[lid] += part[lid + w];\n"
           "        barrier(CLK_LOCAL_MEM_FENCE);\n"
           "    }\n"
           f"{tail}"
           "    if (lid != 0) return;\n"
           + "\n".join(total.store(value, "0", "total")) + "\n}\n")
    label = Operand("in", 1 + len(z_args))
    return [KernelSpec(src, name, (group,), (group,),
                       [g_arg, *z_args, label, *total.args(), *more_args,
                        Operand("out", 0), dz_arg or Operand("out", 1), Operand("scratch", 0)],
                       (1,), ("int32",))]
