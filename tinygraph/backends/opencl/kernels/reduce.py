"""Reductions as OpenCL kernels: sum, prod, max, min and mean over any axes; argmax/argmin.

The kept and the reduced axes are each merged where their strides allow and size-1 axes
dropped; reduced axes are reordered so the smallest stride is innermost (argmax keeps C order:
it counts positions). No local memory or barriers (PoCL runs a work-group as a loop). Kernels:

- row: one work-item per output; a contiguous innermost reduced axis is read as W-wide vectors
  into W lane accumulators, combined pairwise at the end;
- col: when the innermost kept axis is contiguous, a work-item computes W adjacent outputs from
  vector loads (the last group of a row is shifted left to overlap, so there is no tail);
- scalar otherwise (and always for argmax).

Few outputs and a long reduction (under 128 work-items, at least 2 x 2048 elements each): a
partial pass splits the longest reduced axis into parts written to scratch as (parts, outputs),
then a final pass reduces the parts. Float sums are blocked (lanes, blocks of about sqrt(steps)
steps, parts), so rounding errors grow with about sqrt(n) terms, as NumPy's pairwise sum's do.

``launch_1d`` and ``guard`` are shared by the other kernel modules.
"""

from __future__ import annotations

import math

import numpy as np

from ..kernel_spec import KernelSpec, Operand, c_literal, c_type, element_index, fp64_pragma

_TARGET_ITEMS = 128
_MIN_PART = 2048
_INT_LIMITS = {"int": ("INT_MIN", "INT_MAX"), "long": ("LONG_MIN", "LONG_MAX"),
               "uchar": ("0", "UCHAR_MAX")}


def launch_1d(n: int) -> tuple[tuple[int], tuple[int]]:
    """(global, local) sizes for ``n`` work-items: one work-group up to 64, else groups of a
    power of two in 8..64 (at least ~16 groups for load balance), the global size rounded up
    to a multiple (kernels skip the extra ids, see ``guard``)."""
    if n <= 64:
        return (max(n, 1),), (max(n, 1),)
    local = min(64, max(8, 1 << (n // 16).bit_length() - 1))
    return (-(-n // local) * local,), (local,)


def guard(n: int, global_size: tuple[int]) -> str:
    """The statement skipping work-items past ``n`` when the grid was rounded up."""
    return f"    if (gid >= {n}L) return;\n" if global_size[0] != n else ""


def _identity(kind: str, ctype: str) -> str:
    if kind in ("sum", "mean"):
        return "0"
    if kind == "prod":
        return "1"
    if ctype in ("float", "double"):
        return "(-INFINITY)" if kind == "max" else "INFINITY"
    return _INT_LIMITS[ctype][0 if kind == "max" else 1]


def _op_macro(kind: str, ctype: str) -> str:
    """``OP(a, b)``: a combined with b, for scalars and vectors (max/min propagate NaN)."""
    if kind in ("sum", "mean"):
        body = "((a) + (b))"
    elif kind == "prod":
        body = "((a) * (b))"
    else:
        cmp = ">" if kind == "max" else "<"
        nan = " || (b) != (b)" if ctype in ("float", "double") else ""
        body = f"(((b) {cmp} (a){nan}) ? (b) : (a))"
    return f"#define OP(a, b) {body}\n"


def _merge(dims):
    """Merge adjacent (size, stride) dims that step through memory as one."""
    out = []
    for size, stride in dims:
        if out and out[-1][1] == stride * size:
            out[-1] = (out[-1][0] * size, stride)
        else:
            out.append((size, stride))
    return out


def _vector_width(*ctypes) -> int:
    return 8 if any(t in ("long", "double") for t in ctypes) else 16


def _unaligned(ctype: str, width: int) -> tuple[str, str]:
    """(typedef line, name) of a ``ctype`` vector type with element alignment."""
    name = f"tg_{ctype}{width}_u"
    return (f"typedef {ctype}{width} __attribute__((aligned(sizeof({ctype})))) {name};\n",
            name)


def _split(n_items, red, d, n_red, round_to=1):
    """(chunk, parts) splitting reduced dim ``d`` so ``n_items`` work-items become about
    ``_TARGET_ITEMS``, or None when the reduction is too short to be worth it."""
    if n_items >= _TARGET_ITEMS:
        return None
    size = red[d][0]
    unit = n_red // size
    max_parts = size // -(-_MIN_PART // unit)
    parts = min(-(-_TARGET_ITEMS // n_items), max_parts)
    if parts < 2:
        return None
    chunk = -(-size // parts)
    chunk = -(-chunk // round_to) * round_to
    return chunk, -(-size // chunk)


def _loops(red, split_dim, body_lines, indent="    "):
    """Nested C loops over the reduced dims (the split one over [lo, hi)), innermost
    ``body_lines`` given the index expression of its row start (a function of that string)."""
    lines = []
    for k, (size, _) in enumerate(red[:-1]):
        lo, hi = ("lo", "hi") if k == split_dim else ("0", f"{size}L")
        lines.append(f"{indent}{'    ' * k}for (long i{k} = {lo}; i{k} < {hi}; i{k}++) {{")
    depth = len(red) - 1
    row = "".join(f" + i{k} * {stride}L" for k, (_, stride) in enumerate(red[:-1]))
    lo, hi = ("lo", "hi") if split_dim == depth else ("0", f"{red[-1][0]}L")
    for line in body_lines(f"base{row}", lo, hi):
        lines.append(f"{indent}{'    ' * depth}{line}")
    for k in reversed(range(depth)):
        lines.append(f"{indent}{'    ' * k}}}")
    return lines


def _mode(in_t, acc_t, kept, red):
    """(mode, vector width, work-items) of a reduction pass (see the module docstring)."""
    n_out = math.prod(s for s, _ in kept)
    width = _vector_width(in_t, acc_t)
    if red[-1][1] == 1 and red[-1][0] >= width:
        return "row", width, n_out
    if kept and kept[-1][1] == 1 and kept[-1][0] >= width:
        return "col", width, n_out // kept[-1][0] * -(-kept[-1][0] // width)
    return "scalar", 1, n_out


def _pass(name, kind, in_t, acc_t, kept, red, *, allow_split, count=None, out_t=None):
    """(source lines, typedefs, global size, local size, (chunk, parts) or None) of one pass
    reducing ``x`` (kept x red dims) into ``y`` laid out (parts, outputs): ``acc_t`` partial
    results when split, else ``out_t`` results (by default ``acc_t``), divided by ``count``
    (mean)."""
    n_out = math.prod(s for s, _ in kept)
    n_red = math.prod(s for s, _ in red)
    red = red or [(1, 1)]
    mode, width, n_items = _mode(in_t, acc_t, kept, red)
    d = max(range(len(red)), key=lambda k: (red[k][0], -k))
    split = None
    if allow_split:
        split = _split(n_items, red, d, n_red,
                       width if mode == "row" and d == len(red) - 1 else 1)
    parts = split[1] if split else 1
    steps = n_red // parts // (width if mode == "row" else 1)
    blocked = kind in ("sum", "mean") and acc_t in ("float", "double") and steps > 64
    block = math.isqrt(steps) + 1
    vacc = f"{acc_t}{width}" if width > 1 else acc_t
    store_t = acc_t if split or out_t is None else out_t
    n_threads = n_items * parts
    global_size, local_size = launch_1d(n_threads)
    typedefs = set()
    lines = [f"__kernel void {name}(__global const {in_t} *x, long x_off, "
             f"__global {store_t} *y, long y_off) {{",
             "    long gid = get_global_id(0);", guard(n_threads, global_size).rstrip("\n")]
    item = "gid"
    if split:
        chunk, size = split[0], red[d][0]
        lines += [f"    long item = gid % {n_items}L, part = gid / {n_items}L;",
                  f"    long lo = part * {chunk}L;",
                  f"    long hi = lo + {chunk}L < {size}L ? lo + {chunk}L : {size}L;"]
        item = "item"
    if mode == "col":
        k_last, outer = kept[-1][0], kept[:-1]
        groups = -(-k_last // width)
        base = element_index("row", [s for s, _ in outer], [t for _, t in outer], "x_off")
        lines += [f"    long row = {item} / {groups}L, j = {item} % {groups}L * {width}L;",
                  f"    j = j < {k_last - width}L ? j : {k_last - width}L;",
                  f"    long o = row * {k_last}L + j;",
                  f"    long base = {base} + j;"]
    else:
        base = element_index(item, [s for s, _ in kept], [t for _, t in kept], "x_off")
        lines += [f"    long o = {item};", f"    long base = {base};"]
    lines.append(f"    {vacc} acc = ({vacc})({_identity(kind, acc_t)});")
    if blocked:
        lines += [f"    {vacc} blk = acc;", "    int cnt = 0;"]

    def step(target, value):
        if blocked:
            blk = target.replace("acc", "blk")
            return [f"    {blk} = {blk} + {value};",
                    f"    if (++cnt == {block}) {{ acc = acc + blk; blk = 0; cnt = 0; }}"]
        return [f"    {target} = OP({target}, {value});"]

    if width > 1:
        typedef, in_vec = _unaligned(in_t, width)
        typedefs.add(typedef)

    def load_vec(ptr):
        load = f"*(const __global {in_vec} *)({ptr})"
        return load if in_t == acc_t else f"__builtin_convertvector({load}, {vacc})"

    def body(row, lo, hi):
        stride = red[-1][1]
        if mode == "col":
            return [f"for (long i = {lo}; i < {hi}; i++) {{",
                    f"    {vacc} v = {load_vec(f'x + {row} + i * {stride}L')};",
                    *step("acc", "v"), "}"]
        lines = [f"const __global {in_t} *p = x + {row};"]
        if mode == "row":
            lines += [f"long i = {lo};",
                      f"for (; i + {width} <= {hi}; i += {width}) {{",
                      f"    {vacc} v = {load_vec('p + i')};", *step("acc", "v"), "}",
                      f"for (; i < {hi}; i++) {{", *step("acc.s0", f"({acc_t})p[i]"), "}"]
        else:
            lines += [f"for (long i = {lo}; i < {hi}; i++) {{",
                      *step("acc", f"({acc_t})p[i * {stride}L]"), "}"]
        return lines

    lines += _loops(red, d if split else None, body)
    if blocked:
        lines.append("    acc = acc + blk;")
    result = "acc"
    if mode == "row":
        w = width
        while w > 1:
            w //= 2
            halves = (f"{result}.lo", f"{result}.hi") if w > 1 else (f"{result}.s0",
                                                                    f"{result}.s1")
            lines.append(f"    {acc_t}{w if w > 1 else ''} r{w} = OP({halves[0]}, {halves[1]});")
            result = f"r{w}"
    if count is not None and not split:
        lines.append(f"    {result} = {result} / ({acc_t}){count};")
    dest = f"y_off + part * {n_out}L + o" if split else "y_off + o"
    if mode == "col":
        typedef, out_vec = _unaligned(store_t, width)
        typedefs.add(typedef)
        if store_t != acc_t:
            result = f"__builtin_convertvector({result}, {store_t}{width})"
        lines.append(f"    *(__global {out_vec} *)(y + {dest}) = {result};")
    else:
        lines.append(f"    y[{dest}] = ({store_t}){result};")
    lines.append("}")
    return [ln for ln in lines if ln], typedefs, global_size, local_size, split


def _fill_spec(name, ctype, value, n, pragma):
    global_size, local_size = launch_1d(n)
    src = (f"{pragma}__kernel void {name}(__global {ctype} *y, long y_off) {{\n"
           f"    long gid = get_global_id(0);\n{guard(n, global_size)}"
           f"    y[y_off + gid] = {value};\n}}\n")
    return KernelSpec(src, name, global_size, local_size, [Operand("out", 0)])


def _axis_dims(shape, strides, axes):
    """(n_out, n_red, kept dims, reduced dims) with size-1 axes dropped."""
    dims = list(zip(shape, strides))
    n_out = math.prod(s for a, (s, _) in enumerate(dims) if a not in axes)
    n_red = math.prod(s for a, (s, _) in enumerate(dims) if a in axes)
    kept = _merge([d for a, d in enumerate(dims) if a not in axes and d[0] != 1])
    red = [d for a, d in enumerate(dims) if a in axes and d[0] != 1]
    return n_out, n_red, kept, red


def reduce_specs(kind: str, in_dtype, out_dtype, shape, strides, axes) -> list[KernelSpec]:
    """Kernels computing ``kind`` (sum, prod, max, min, mean) of input 0 over the sorted
    ``axes`` into the contiguous output 0 (reduced axes removed); accumulates in
    ``out_dtype`` (int32 max/min in int64). A split reduction writes its partial results to
    scratch 0, never int32 (the error-flag dtype)."""
    in_t, out_t = c_type(in_dtype), c_type(out_dtype)
    acc_t = "long" if out_t == "int" else out_t
    pragma = fp64_pragma(in_dtype, out_dtype)
    n_out, n_red, kept, red = _axis_dims(shape, strides, axes)
    if n_out == 0:
        return []
    if n_red == 0:
        if kind in ("max", "min"):
            raise ValueError(f"reduce_specs: {kind} over an empty axis of shape {shape}")
        value = {"sum": "0", "prod": "1", "mean": "NAN"}[kind]
        return [_fill_spec(f"tg_{kind}_empty", out_t, value, n_out, pragma)]
    red = _merge(sorted(red, key=lambda d: -abs(d[1])))
    count = c_literal(n_red, out_dtype) if kind == "mean" else None
    name = f"tg_{kind}"
    lines, typedefs, gsize, lsize, split = _pass(name, kind, in_t, acc_t, kept, red,
                                                 allow_split=True, count=count, out_t=out_t)
    if not split:
        src = pragma + _op_macro(kind, acc_t) + "".join(sorted(typedefs)) + "\n".join(lines)
        return [KernelSpec(src + "\n", name, gsize, lsize, [Operand("in", 0), Operand("out", 0)])]
    parts = split[1]
    final = _pass(f"{name}_final", kind, acc_t, acc_t, [(n_out, 1)] if n_out > 1 else [],
                  [(parts, n_out)], allow_split=False, count=count, out_t=out_t)
    src = (pragma + _op_macro(kind, acc_t) + "".join(sorted(typedefs | final[1]))
           + "\n".join(lines + final[0]) + "\n")
    scratch = {"scratch_sizes": (parts * n_out,),
               "scratch_dtypes": ("int64" if acc_t == "long" else np.dtype(out_dtype).name,)}
    return [KernelSpec(src, name, gsize, lsize, [Operand("in", 0), Operand("scratch", 0)],
                       **scratch),
            KernelSpec(src, f"{name}_final", final[2], final[3],
                       [Operand("scratch", 0), Operand("out", 0)], **scratch)]


def _better(kind: str, ctype: str) -> str:
    """C condition: v beats best (strictly, so the first occurrence wins; NaN beats numbers)."""
    cmp = ">" if kind == "max" else "<"
    nan = " || (v != v && best == best)" if ctype in ("float", "double") else ""
    return f"v {cmp} best{nan}"


def argmax_specs(kind: str, dtype, shape, strides, axis) -> list[KernelSpec]:
    """Kernels writing the int64 index of the first maximum (``kind='max'``) or minimum of
    input 0 along ``axis`` (or of the flattened input when None) to output 0. Like NumPy, the
    first NaN wins. A split search uses scratch 0 (values, int64 for int32) and 1 (int64
    indices)."""
    ctype = c_type(dtype)
    sv_t = "long" if ctype == "int" else ctype  # int32 scratch is the error-flag dtype
    pragma = fp64_pragma(dtype)
    axes = tuple(range(len(shape))) if axis is None else (axis,)
    n_out, n_red, kept, red = _axis_dims(shape, strides, axes)
    if n_out == 0:
        return []
    if n_red == 0:
        raise ValueError(f"argmax_specs: arg{kind} of an empty array of shape {shape}")
    red = _merge(red) or [(1, 1)]
    split = _split(n_out, red, 0, n_red)
    n_threads = n_out * (split[1] if split else 1)
    gsize, lsize = launch_1d(n_threads)
    better = _better(kind, ctype)
    inner = n_red // red[0][0]
    params = f"__global const {ctype} *x, long x_off, "
    if split:
        params += f"__global {sv_t} *sv, long sv_off, __global long *si, long si_off"
    else:
        params += "__global long *y, long y_off"
    lines = [f"__kernel void tg_arg{kind}({params}) {{", "    long gid = get_global_id(0);",
             guard(n_threads, gsize).rstrip("\n")]
    if split:
        chunk, size = split[0], red[0][0]
        lines += [f"    long o = gid % {n_out}L, part = gid / {n_out}L;",
                  f"    long lo = part * {chunk}L;",
                  f"    long hi = lo + {chunk}L < {size}L ? lo + {chunk}L : {size}L;",
                  f"    long r = lo * {inner}L;"]
        first = f"base + lo * {red[0][1]}L"
    else:
        lines += ["    long o = gid;", "    long r = 0;"]
        first = "base"
    base = element_index("o", [s for s, _ in kept], [t for _, t in kept], "x_off")
    lines += [f"    long base = {base};", f"    {ctype} best = x[{first}];", "    long idx = r;"]

    def body(row, lo, hi):
        return [f"const __global {ctype} *p = x + {row};",
                f"for (long i = {lo}; i < {hi}; i++, r++) {{",
                f"    {ctype} v = p[i * {red[-1][1]}L];",
                f"    bool take = {better};",
                "    best = take ? v : best;",
                "    idx = take ? r : idx;", "}"]

    lines += _loops(red, 0 if split else None, body)
    if not split:
        lines += ["    y[y_off + o] = idx;", "}"]
        src = pragma + "\n".join(ln for ln in lines if ln) + "\n"
        return [KernelSpec(src, f"tg_arg{kind}", gsize, lsize,
                           [Operand("in", 0), Operand("out", 0)])]
    parts = split[1]
    fsize, flsize = launch_1d(n_out)
    lines += [f"    sv[sv_off + part * {n_out}L + o] = best;",
              f"    si[si_off + part * {n_out}L + o] = idx;", "}",
              f"__kernel void tg_arg{kind}_final(__global const {sv_t} *sv, long sv_off, "
              "__global const long *si, long si_off, __global long *y, long y_off) {",
              "    long gid = get_global_id(0);", guard(n_out, fsize).rstrip("\n"),
              f"    {sv_t} best = sv[sv_off + gid];",
              "    long idx = si[si_off + gid];",
              f"    for (long p = 1; p < {parts}L; p++) {{",
              f"        {sv_t} v = sv[sv_off + p * {n_out}L + gid];",
              f"        bool take = {better};",
              "        best = take ? v : best;",
              f"        idx = take ? si[si_off + p * {n_out}L + gid] : idx;",
              "    }", "    y[y_off + gid] = idx;", "}"]
    src = pragma + "\n".join(ln for ln in lines if ln) + "\n"
    scratch = {"scratch_sizes": (parts * n_out, parts * n_out),
               "scratch_dtypes": ("int64" if sv_t == "long" else np.dtype(dtype).name, "int64")}
    return [KernelSpec(src, f"tg_arg{kind}", gsize, lsize,
                       [Operand("in", 0), Operand("scratch", 0), Operand("scratch", 1)],
                       **scratch),
            KernelSpec(src, f"tg_arg{kind}_final", fsize, flsize,
                       [Operand("scratch", 0), Operand("scratch", 1), Operand("out", 0)],
                       **scratch)]
