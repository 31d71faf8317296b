"""Reductions as OpenCL kernels: sum, prod, max, min and mean over any axes; argmax/argmin.

The kept and the reduced axes are each merged where their strides allow and size-1 axes
dropped; reduced axes are reordered so the smallest stride is innermost (argmax keeps C order:
it counts positions). No local memory or barriers (PoCL runs a work-group as a loop). Kernels:

- row: one work-item per output; a contiguous innermost reduced axis is read as W-wide vectors
  into W lane accumulators, combined pairwise at the end;
- col: when the innermost kept axis is contiguous, a work-item computes up to 4 vectors of W
  adjacent outputs from vector loads, independent chains that keep the adds busy (the last
  vectors of a row are shifted left to overlap, so there is no tail);
- scalar otherwise (and always for argmax).

Few outputs and a long reduction (under 128 work-items, at least 2 x 2048 elements each): a
partial pass splits the longest reduced axis into parts written to scratch as (parts, outputs),
then a final pass reduces the parts. Float sums are blocked (lanes, blocks of about sqrt(steps)
steps, parts), so rounding errors grow with about sqrt(n) terms, as NumPy's pairwise sum's do.

Work-groups: one per ``_GROUP_ELEMENTS`` elements read, at most ``_MAX_GROUPS`` (see
``launch_work``). ``launch_1d``, ``launch_work``, ``guard``, ``merge_dims``, ``vector_width``
and ``unaligned_vector`` are shared by the other kernel modules.
"""

from __future__ import annotations

import math

import numpy as np

from ..elemwise_codegen import HELPERS
from ..kernel_spec import KernelSpec, Operand, c_literal, c_type, element_index, fp64_pragma

_TARGET_ITEMS = 128
_MAX_LOCAL = 1024
_COL_VECTORS = 4
_GROUP_ELEMENTS = 1 << 14
_MAX_GROUPS = 8
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


def launch_work(n: int, elements: int) -> tuple[tuple[int], tuple[int]]:
    """(global, local) sizes for ``n`` work-items touching ``elements`` in all: one
    work-group per ``_GROUP_ELEMENTS`` elements, 1 to ``_MAX_GROUPS`` (PoCL runs a work-group
    as a loop in one thread, and each costs a dispatch) of at most ``_MAX_LOCAL``
    work-items, the global size rounded up as in ``launch_1d``."""
    groups = max(1, min(_MAX_GROUPS, n, elements // _GROUP_ELEMENTS))
    local = max(1, min(_MAX_LOCAL, -(-n // groups)))
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


def merge_dims(dims):
    """Merge adjacent (size, stride) dims that step through memory as one."""
    out = []
    for size, stride in dims:
        if out and out[-1][1] == stride * size:
            out[-1] = (out[-1][0] * size, stride)
        else:
            out.append((size, stride))
    return out


def vector_width(*ctypes) -> int:
    """Lanes of the vectors used for these element types: 8 when any is 64-bit, else 16."""
    return 8 if any(t in ("long", "double") for t in ctypes) else 16


def unaligned_vector(ctype: str, width: int) -> tuple[str, str]:
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
    """(mode, vector width, vectors per work-item, work-items) of a reduction pass (see the
    module docstring)."""
    n_out = math.prod(s for s, _ in kept)
    width = vector_width(in_t, acc_t)
    if red[-1][1] == 1 and red[-1][0] >= width:
        return "row", width, 1, n_out
    if kept and kept[-1][1] == 1 and kept[-1][0] >= width:
        slots = -(-kept[-1][0] // width)
        vecs = min(_COL_VECTORS, slots)
        return "col", width, vecs, n_out // kept[-1][0] * -(-slots // vecs)
    return "scalar", 1, 1, n_out


def _pass(name, kind, in_t, acc_t, kept, red, *, allow_split, count=None, out_t=None,
          epilogue=None):
    """(source lines, typedefs, global size, local size, (chunk, parts) or None) of one pass
    reducing ``x`` (kept x red dims) into ``y`` laid out (parts, outputs): ``acc_t`` partial
    results when split, else ``out_t`` results (by default ``acc_t``), divided by ``count``
    (mean), stored through ``epilogue`` (a ``StoreEpilogue``) when given."""
    n_out = math.prod(s for s, _ in kept)
    n_red = math.prod(s for s, _ in red)
    red = red or [(1, 1)]
    mode, width, vecs, n_items = _mode(in_t, acc_t, kept, red)
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
    if split:
        epilogue = None
    extra = "".join(f", {p}" for p in epilogue.params()) if epilogue else ""
    y_t = c_type(epilogue.out_dtype) if epilogue else store_t
    n_threads = n_items * parts
    global_size, local_size = launch_work(n_threads, n_out * n_red)
    typedefs = set()
    lines = [f"__kernel void {name}(__global const {in_t} *x, long x_off, "
             f"__global {y_t} *y, long y_off{extra}) {{",
             "    long gid = get_global_id(0);", guard(n_threads, global_size).rstrip("\n")]
    item = "gid"
    if split:
        chunk, size = split[0], red[d][0]
        lines += [f"    long item = gid % {n_items}L, part = gid / {n_items}L;",
                  f"    long lo = part * {chunk}L;",
                  f"    long hi = lo + {chunk}L < {size}L ? lo + {chunk}L : {size}L;"]
        item = "item"
    accs = ["acc"]
    if mode == "col":
        k_last, outer = kept[-1][0], kept[:-1]
        groups = -(-k_last // (width * vecs))
        base = element_index("row", [s for s, _ in outer], [t for _, t in outer], "x_off")
        lines += [f"    long row = {item} / {groups}L, j = {item} % {groups}L * {width * vecs}L;",
                  f"    long o = row * {k_last}L;", f"    long base = {base};"]
        # each vector's columns; the last ones shift left to end at the row's end
        lines += [f"    long j{v} = j + {v * width}L < {k_last - width}L ? j + {v * width}L "
                  f": {k_last - width}L;" for v in range(vecs)]
        accs = [f"acc{v}" for v in range(vecs)]
    else:
        base = element_index(item, [s for s, _ in kept], [t for _, t in kept], "x_off")
        lines += [f"    long o = {item};", f"    long base = {base};"]
    lines += [f"    {vacc} {a} = ({vacc})({_identity(kind, acc_t)});" for a in accs]

    def blk(acc):
        """The block sum feeding accumulator (or lane) ``acc``."""
        return acc.replace("acc", "blk")

    if blocked:
        lines += [f"    {vacc} {blk(a)} = {a};" for a in accs] + ["    int cnt = 0;"]

    def step(updates):
        """Lines combining each (accumulator, value) pair of ``updates``."""
        if not blocked:
            return [f"    {target} = OP({target}, {value});" for target, value in updates]
        flush = " ".join(f"{a} = {a} + {blk(a)}; {blk(a)} = 0;" for a in accs)
        return ([f"    {blk(t)} = {blk(t)} + {value};" for t, value in updates]
                + [f"    if (++cnt == {block}) {{ {flush} cnt = 0; }}"])

    if width > 1:
        typedef, in_vec = unaligned_vector(in_t, width)
        typedefs.add(typedef)

    def load_vec(ptr):
        load = f"*(const __global {in_vec} *)({ptr})"
        return load if in_t == acc_t else f"__builtin_convertvector({load}, {vacc})"

    def body(row, lo, hi):
        stride = red[-1][1]
        if mode == "col":
            return [f"for (long i = {lo}; i < {hi}; i++) {{",
                    f"    const __global {in_t} *p = x + {row} + i * {stride}L;",
                    *step([(a, load_vec(f"p + j{v}")) for v, a in enumerate(accs)]), "}"]
        lines = [f"const __global {in_t} *p = x + {row};"]
        if mode == "row":
            lines += [f"long i = {lo};",
                      f"for (; i + {width} <= {hi}; i += {width}) {{",
                      f"    {vacc} v = {load_vec('p + i')};", *step([("acc", "v")]), "}",
                      f"for (; i < {hi}; i++) {{", *step([("acc.s0", f"({acc_t})p[i]")]), "}"]
        else:
            lines += [f"for (long i = {lo}; i < {hi}; i++) {{",
                      *step([("acc", f"({acc_t})p[i * {stride}L]")]), "}"]
        return lines

    lines += _loops(red, d if split else None, body)
    if blocked:
        lines += [f"    {a} = {a} + {blk(a)};" for a in accs]
    results = accs
    if mode == "row":
        result, w = "acc", width
        while w > 1:
            w //= 2
            halves = (f"{result}.lo", f"{result}.hi") if w > 1 else (f"{result}.s0",
                                                                    f"{result}.s1")
            lines.append(f"    {acc_t}{w if w > 1 else ''} r{w} = OP({halves[0]}, {halves[1]});")
            result = f"r{w}"
        results = [result]
    if count is not None and not split:
        lines += [f"    {r} = {r} / ({acc_t}){count};" for r in results]
    dest = f"y_off + part * {n_out}L + o" if split else "y_off + o"
    if epilogue is not None and mode == "col":
        # a vector shifted left to end at the row's end repeats columns stored before: the
        # epilogue may update in place, so each column is stored exactly once
        for v, r in enumerate(results):
            for lane in range(width):
                value = f"{r}.s{lane:x}" if width > 1 else r
                lines.append(f"    if (j{v} + {lane}L >= j + {v * width}L)")
                lines += epilogue.store(value, f"o + j{v} + {lane}L", f"{v}_{lane}")
    elif epilogue is not None:
        lines += epilogue.store(results[0], "o", "0")
    elif mode == "col":
        typedef, out_vec = unaligned_vector(store_t, width)
        typedefs.add(typedef)
        for v, r in enumerate(results):
            if store_t != acc_t:
                r = f"__builtin_convertvector({r}, {store_t}{width})"
            lines.append(f"    *(__global {out_vec} *)(y + {dest} + j{v}) = {r};")
    else:
        lines.append(f"    y[{dest}] = ({store_t}){results[0]};")
    lines.append("}")
    return [ln for ln in lines if ln], typedefs, global_size, local_size, split


def _fill_spec(name, ctype, value, n, pragma, epilogue=None):
    """Every output the reduction over nothing: ``value`` (through ``epilogue``)."""
    global_size, local_size = launch_1d(n)
    if epilogue is None:
        params, store, args = "", f"    y[y_off + gid] = {value};\n", []
    else:
        params = "".join(f", {p}" for p in epilogue.params())
        store, args = "\n".join(epilogue.store(value, "gid", "0")) + "\n", epilogue.args()
        ctype = c_type(epilogue.out_dtype)
    src = (f"{pragma}__kernel void {name}(__global {ctype} *y, long y_off{params}) {{\n"
           f"    long gid = get_global_id(0);\n{guard(n, global_size)}{store}}}\n")
    return KernelSpec(src, name, global_size, local_size, [Operand("out", 0), *args])


def _axis_dims(shape, strides, axes):
    """(n_out, n_red, kept dims, reduced dims) with size-1 axes dropped."""
    dims = list(zip(shape, strides))
    n_out = math.prod(s for a, (s, _) in enumerate(dims) if a not in axes)
    n_red = math.prod(s for a, (s, _) in enumerate(dims) if a in axes)
    kept = merge_dims([d for a, d in enumerate(dims) if a not in axes and d[0] != 1])
    red = [d for a, d in enumerate(dims) if a in axes and d[0] != 1]
    return n_out, n_red, kept, red


def reduce_specs(kind: str, in_dtype, out_dtype, shape, strides, axes,
                 epilogue=None) -> list[KernelSpec]:
    """Kernels computing ``kind`` (sum, prod, max, min, mean) of input 0 over the sorted
    ``axes`` into the contiguous output 0 (reduced axes removed); accumulates in
    ``out_dtype`` (int32 max/min in int64). A split reduction writes its partial results to
    scratch 0, never int32 (the error-flag dtype). ``epilogue`` (a ``StoreEpilogue`` of
    elemwise_codegen, its operands inputs 1..) is applied to each result as it is stored."""
    in_t, out_t = c_type(in_dtype), c_type(out_dtype)
    acc_t = "long" if out_t == "int" else out_t
    dtypes = [in_dtype, out_dtype] + ([epilogue.out_dtype, *epilogue.operand_dtypes]
                                      if epilogue else [])
    pragma = fp64_pragma(*dtypes) + (HELPERS if epilogue else "")
    extra_args = epilogue.args() if epilogue else []
    n_out, n_red, kept, red = _axis_dims(shape, strides, axes)
    if n_out == 0:
        return []
    if n_red == 0:
        if kind in ("max", "min"):
            raise ValueError(f"reduce_specs: {kind} over an empty axis of shape {shape}")
        value = {"sum": "0", "prod": "1", "mean": "NAN"}[kind]
        return [_fill_spec(f"tg_{kind}_empty", out_t, value, n_out, pragma, epilogue)]
    red = merge_dims(sorted(red, key=lambda d: -abs(d[1])))
    count = c_literal(n_red, out_dtype) if kind == "mean" else None
    name = f"tg_{kind}"
    lines, typedefs, gsize, lsize, split = _pass(name, kind, in_t, acc_t, kept, red,
                                                 allow_split=True, count=count, out_t=out_t,
                                                 epilogue=epilogue)
    if not split:
        src = pragma + _op_macro(kind, acc_t) + "".join(sorted(typedefs)) + "\n".join(lines)
        return [KernelSpec(src + "\n", name, gsize, lsize,
                           [Operand("in", 0), Operand("out", 0), *extra_args])]
    parts = split[1]
    final = _pass(f"{name}_final", kind, acc_t, acc_t, [(n_out, 1)] if n_out > 1 else [],
                  [(parts, n_out)], allow_split=False, count=count, out_t=out_t,
                  epilogue=epilogue)
    src = (pragma + _op_macro(kind, acc_t) + "".join(sorted(typedefs | final[1]))
           + "\n".join(lines + final[0]) + "\n")
    scratch = {"scratch_sizes": (parts * n_out,),
               "scratch_dtypes": ("int64" if acc_t == "long" else np.dtype(out_dtype).name,)}
    return [KernelSpec(src, name, gsize, lsize, [Operand("in", 0), Operand("scratch", 0)],
                       **scratch),
            KernelSpec(src, f"{name}_final", final[2], final[3],
                       [Operand("scratch", 0), Operand("out", 0), *extra_args], **scratch)]


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
    red = merge_dims(red) or [(1, 1)]
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
