"""Matrix-product kernels: C = epilogue(alpha * op(A) @ op(B) + beta * C + bias) on OpenCL.

Tuned for PoCL on x86 CPUs (see /work/shared/POCL.md). The pip PoCL compiles for AVX2 by
default and calls rather than inlines builtins such as vload or fma, so the kernels use plain
C: loads through vector pointer casts, `a * b + c`, `?:`. A work-item computes MR x NR blocks
of C in registers from scalar broadcasts of A and vector loads of B, with no local memory and
no branch in the inner loop. NR is two vector registers and MR is chosen per device:
4..6 rows of 16 floats (8 doubles) for AVX2, 5, 6 or 8 rows of 32 floats (16 doubles) on a
device running AVX-512 (see vector_target: Debian's PoCL compiles for it; on the pip PoCL the
kernels' bodies are compiled for it by a target attribute).
B is read in place, or from NR-column panels packed by a small kernel when it is B^T,
narrower than a panel or 2 MiB or more; A^T is packed likewise from 4 MiB, 512 KiB on AVX2
(a launch costs more than packing saves below). The last column block is shifted left to
stay in bounds, so nothing is padded unless N < NR. NT products with few rows use a
dot-product kernel that packs nothing;
so does a product narrower than a panel with little work in all (an MLP's last layer), one
work-item computing whole rows of C.
Shapes are kernel arguments (compile-time constants measured no faster), so there is one
program per (dtype, transposes, bias, epilogue, vector width).
"""

from __future__ import annotations

import numpy as np
import pyopencl as cl

from .vector_target import (
    argument_names,
    body_header,
    epilogue_overloads,
    kernel_calling_body,
    needs_avx512_attribute,
    target_section,
    vector_bits,
)

_NV = 2  # vectors per row of a C block
# Rows per C block by vector register bits: AVX2 has 16 registers (6 x 2 accumulators + 3
# fill 15), AVX-512 has 32 (8 x 2 + 3 fill 19; 12 rows measured slower).
_MR_CHOICES = {256: (4, 5, 6), 512: (5, 6, 8)}
_UNROLL = 4  # k steps per inner-loop iteration
# C block of the dot-product kernel: rows by vector bits x 4 columns, 8 or 20 accumulators.
_DOT_ROWS, _DOT_COLS = {256: 2, 512: 5}, 4
_PACK_K = 64  # k rows packed per work-item
_PACK_BLOCKS = 16  # row blocks of A^T packed per work-item
_PACK_MIN_BLOCKS = 8  # pack an operand once this many row blocks share it
# and it holds this much (B, A^T): blocks walking a band of rows per panel read smaller ones in
# place as fast or faster than packing them costs (measured 256x784x200 to 1024^3, NN and TN;
# a 1024-column B in place is 1.6x slower on AVX2). A^T by vector register bits: read in place,
# its rows are a stride apart, which AVX2's 6-row blocks take worse (TN 784x256x200 10% faster
# packed on the pip PoCL, 200x256x60 5-40% slower; packed 13% slower on AVX-512)
_PACK_B_MIN_BYTES = 2 << 20
_PACK_A_MIN_BYTES = {256: 512 << 10, 512: 4 << 20}
_DOT_MAX_M = 32  # NT products with at most this many rows use the dot-product kernel
# multiply-adds up to which C narrower than a panel is computed by rows, B not packed: above
# it packing B and padding its panel is 1.5-3x faster (256x60x10, 10x1000x10, both PoCLs)
_NARROW_MAX_WORK = 1 << 14
_BAND_BYTES = 256 * 1024  # rows of A walked per B panel, kept in L2
_MIN_WORK = 1 << 15  # multiply-adds per work-item before blocks are split across work-items

_TYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}


def _transpose(vt, vw, rows):
    """Lines transposing the vw x vw matrix in registers rows[] into o0, o1, ...

    Every step is a two-source shuffle that AVX2 does in one instruction: interleave pairs
    within 128-bit lanes, then (for 8 lanes) pairs of pairs, then swap 128-bit halves.
    """
    half = vw // 2
    inner = [(0, 1, 4, 5), (2, 3, 6, 7)] if vw == 8 else [(0, 2), (1, 3)]
    out, t = [], []
    for p in range(half):
        x, y = rows[2 * p], rows[2 * p + 1]
        for idx in inner:
            t.append(f"t{len(t)}")
            lanes = ", ".join(f"{v}.s{i}" for i in idx for v in (x, y))
            out.append(f"const {vt} {t[-1]} = ({vt})({lanes});")
    u = t
    if vw == 8:
        u = []
        for a, b in ((0, 2), (1, 3), (4, 6), (5, 7)):
            for idx in ((0, 1, 4, 5), (2, 3, 6, 7)):
                u.append(f"u{len(u)}")
                lanes = [f"{v}.s{i}" for v in (t[a], t[b]) for i in idx[:2]]
                lanes += [f"{v}.s{i}" for v in (t[a], t[b]) for i in idx[2:]]
                out.append(f"const {vt} {u[-1]} = ({vt})({', '.join(lanes)});")
    for c in range(half):
        out.append(f"const {vt} o{c} = ({vt})({u[c]}.lo, {u[c + half]}.lo);")
        out.append(f"const {vt} o{c + half} = ({vt})({u[c]}.hi, {u[c + half]}.hi);")
    return out


def _extra_args(names, extras):
    """The epilogue's arguments after the result: ``names[j]`` for extra operand j."""
    return "".join(f", {names[j]}" for j in range(extras))


def _store_rows(ctype, vt, vw, nv, bias, rows, extras, qs=None):
    """Epilogue of a gemm block (accumulators c<row>_<vector>) of columns [cs, cs + NR); the
    epilogue also reads the ``extras`` operands E0, E1, ... at the positions it stores.

    The block owns columns [lo, cs + NR). When N >= NR every block is full width and the last
    one is shifted left over its neighbour; with beta = 0 both write the same values there,
    else it stores only its own columns. When N < NR the one block is padded and stores its N
    columns one by one. ``qs``: only these vectors of the block were computed (a last panel
    whose own columns fit the last vector); N >= NR then.
    """
    nr = vw * nv
    full = qs is None
    qs = range(nv) if full else qs
    out = [f"    if (N >= {nr}) {{" if full else "    {"]
    if bias:
        out += [
            f"      const {vt} d{q} = *(const __global vtu *)(bias + cs + {q * vw});"
            for q in qs
        ]
    out.append("      const int skip = beta != 0 ? lo - cs : 0;")
    for r in range(rows):
        out += [
            f"      if (i0 + {r} < M) {{",
            f"        __global {ctype} *cp = C + (size_t)(i0 + {r}) * N + cs;",
        ]
        for q in qs:
            at = f"(size_t)(i0 + {r}) * N + cs + {q * vw}"
            loads = [f"*(const __global vtu *)(E{j} + {at})" for j in range(extras)]
            out += [
                f"        {vt} v{q} = alpha * c{r}_{q};",
                f"        if (beta != 0) v{q} = beta * *(__global vtu *)(cp + {q * vw}) + v{q};",
                f"        v{q} = epilogue({f'v{q} + d{q}' if bias else f'v{q}'}"
                f"{_extra_args(loads, extras)});",
            ]
        out.append("        if (skip == 0) {")
        out += [f"          *(__global vtu *)(cp + {q * vw}) = v{q};" for q in qs]
        out += [
            "        } else {",
            f"          union {{ {vt} v[{nv}]; {ctype} s[{nr}]; }} t;",
            *[f"          t.v[{q}] = v{q};" for q in qs],
            f"          for (int c = skip; c < {nr}; ++c) cp[c] = t.s[c];",
            "        }",
            "      }",
        ]
    if not full:
        return out + ["    }"]
    out += ["    } else {", f"      union {{ {vt} v[{nv}]; {ctype} s[{nr}]; }} t;"]
    out += [f"      union {{ {vt} v[{nv}]; {ctype} s[{nr}]; }} x{j};" for j in range(extras)]
    for r in range(rows):
        out += [
            f"      if (i0 + {r} < M) {{",
            f"        __global {ctype} *cp = C + (size_t)(i0 + {r}) * N;",
            *[f"        t.v[{q}] = alpha * c{r}_{q};" for q in range(nv)],
            "        for (int c = 0; c < N; ++c) {",
            "          if (beta != 0) t.s[c] += beta * cp[c];",
            *(["          t.s[c] += bias[c];"] if bias else []),
            *[f"          x{j}.s[c] = E{j}[(size_t)(i0 + {r}) * N + c];" for j in range(extras)],
            "        }",
            *[f"        t.v[{q}] = epilogue(t.v[{q}]"
              f"{_extra_args([f'x{j}.v[{q}]' for j in range(extras)], extras)});"
              for q in range(nv)],
            "        for (int c = 0; c < N; ++c) cp[c] = t.s[c];",
            "      }",
        ]
    out.append("    }")
    return out


def _gemm_name(mr, a_mode):
    """The name of the gemm kernel with MR-row blocks reading A in a_mode (see _gemm_kernel)."""
    return f"gemm_{mr}" if a_mode == "rows" else f"gemm_{mr}_{a_mode}"


def _gemm_kernel(ctype, vw, a_mode, bias, mr, extras, columns, attribute, indexed=False,
                 copy=False):
    """Body of MR x NR blocks of C from broadcasts of A times vectors of B.

    a_mode "rows": A is m x k, one pointer per row, k unrolled (kernel gemm_<mr>).
    "panel": A^T packed by pack_at_<mr>, one pointer, k unrolled (gemm_<mr>_panel).
    "cols": A^T read in place, one pointer per row stepping by M; k is not unrolled, which
    would make LLVM keep a pointer per row and step and spill them (gemm_<mr>_cols).
    ``indexed`` (rows and cols): the rows of the stored A are read through the int index
    A_rows: "rows" looks up each block row's pointer once, "cols" one row of A^T per k step.
    ``copy`` (indexed rows): the blocks of the first panel also store the rows they read into
    A_copy (m x k), so that later kernels read them there.
    """
    vt, nv = f"{ctype}{vw}", _NV
    nr = vw * nv
    out = [
        body_header(_gemm_name(mr, a_mode), "GEMM_ARGS", attribute),
        "{",
        "  GEMM_OFFSETS",
        f"  const int nbi = (M + {mr - 1}) / {mr}, npan = (N + {nr - 1}) / {nr};",
        "  const int first = item * per_item;",
        "  const int last = first + per_item < nbi * npan ? first + per_item : nbi * npan;",
        # Blocks run down a band of row blocks for each panel in turn: the band of A and the
        # panel of B stay in cache.
        "  int b0 = first / (band * npan), rem = first - b0 * band * npan;",
        "  int rows = nbi - b0 * band < band ? nbi - b0 * band : band;",
        "  int j = rem / rows, i = b0 * band + rem - j * rows;",
        "  for (int blk = first; blk < last; ++blk) {",
        f"    const int i0 = i * {mr}, lo = j * {nr};",
        f"    const int cs = lo + {nr} <= N || N < {nr} ? lo : N - {nr};",
        f"    const __global {ctype} *bp = b_packed ? B + (size_t)j * K * {nr} : B + cs;",
        f"    const size_t bs = b_packed ? {nr} : N;",
    ]
    unroll = 1 if a_mode == "cols" else _UNROLL
    stride, step_a = ("1", "M") if a_mode == "cols" else ("K", 1)
    if a_mode == "panel":
        out.append(f"    const __global {ctype} *ap = A + (size_t)i0 * K;")
    elif indexed and a_mode == "cols":
        out += [f"    const int r{r} = i0 + {r} < M ? i0 + {r} : M - 1;" for r in range(mr)]
        out.append("    const __global int *ix = A_rows;")
    elif indexed:
        out += [
            f"    const __global {ctype} *a{r} = A + "
            f"(size_t)A_rows[i0 + {r} < M ? i0 + {r} : M - 1] * K;"
            for r in range(mr)
        ]
    else:
        out += [
            f"    const __global {ctype} *a{r} = A + "
            f"(size_t)(i0 + {r} < M ? i0 + {r} : M - 1) * {stride};"
            for r in range(mr)
        ]

    row_per_step = indexed and a_mode == "cols"

    def load(r, u):
        if row_per_step:
            return f"ak[r{r}]"
        return f"ap[{u * mr + r}]" if a_mode == "panel" else f"a{r}[{u} * {step_a}]"

    def advance(steps, copying):
        copied = [f"      w{r} += {steps};" for r in range(mr)] if copying else []
        if a_mode == "panel":
            return [f"      ap += {steps * mr};", *copied]
        if row_per_step:
            return [f"      ix += {steps};", *copied]
        return [f"      a{r} += {steps} * {step_a};" for r in range(mr)] + copied

    def step(u, qs, copying):
        body = [f"      const __global {ctype} *ak = A + (size_t)ix[{u}] * M;"] \
            if row_per_step else []
        body += [
            f"      const {vt} b{q} = *(const __global vtu *)(bp + {u} * bs + {q * vw});"
            for q in qs
        ]
        for r in range(mr):
            body.append(f"      const {ctype} x{r} = {load(r, u)};")
            body += [f"      w{r}[{u}] = x{r};"] if copying else []
            body += [f"      c{r}_{q} = x{r} * b{q} + c{r}_{q};" for q in qs]
        return ["     {", *body, "     }"]

    def block(qs, copying=False):
        """Accumulate the vectors qs of the block over k (``copying`` its rows of A), then
        store them."""
        lines = ["    " + " ".join(f"{vt} c{r}_{q} = 0;" for q in qs) for r in range(mr)]
        lines += [f"    __global {ctype} *w{r} = A_copy + "
                  f"(size_t)(i0 + {r} < M ? i0 + {r} : M - 1) * K;" for r in range(mr)
                  ] if copying else []
        lines.append("    int kk = 0;")
        if unroll > 1:
            lines.append(f"    for (; kk + {unroll} <= K; kk += {unroll}) {{")
            for u in range(unroll):
                lines += step(u, qs, copying)
            lines += [f"      bp += {unroll} * bs;", *advance(unroll, copying), "    }"]
        lines += ["    for (; kk < K; ++kk) {", *step(0, qs, copying), "      bp += bs;",
                  *advance(1, copying), "    }"]
        full = len(qs) == nv
        return lines + _store_rows(ctype, vt, vw, nv, bias, mr, extras, None if full else qs)

    # The last panel of a product whose width is not a multiple of NR only computes its
    # last vector when its own columns fit there (N = 100: 3 panels and 16 more columns, not
    # 4 panels).
    out.append(f"    if (N >= {nr} && N - lo <= {vw}) {{")
    out += ["  " + line for line in block(range(nv - 1, nv))]
    if copy:  # the first panel is never the narrow last one: N >= NR there
        out.append("    } else if (j == 0) {")
        out += ["  " + line for line in block(range(nv), copying=True)]
    out.append("    } else {")
    out += ["  " + line for line in block(range(nv))]
    out.append("    }")
    if columns is not None:
        out += _column_sums_of_block(ctype, vt, vw, nv, columns)
    out += [
        "    if (++i == b0 * band + rows) {",
        "      if (++j == npan) {",
        "        j = 0;",
        "        ++b0;",
        "        rows = nbi - b0 * band < band ? nbi - b0 * band : band;",
        "      }",
        "      i = b0 * band;",
        "    }",
        "  }",
        "}",
        "",
    ]
    return out


def _column_sums_of_block(ctype, vt, vw, nv, columns):
    """Lines run by the first row block of each panel: the sums over k of op(B)'s columns,
    passed with the ``columns`` vectors O0, O1, ... to column_epilogue and stored into V for
    the columns the block owns (the shifted last block skips its neighbour's)."""
    nr = vw * nv
    out = [
        "    if (i == 0) {",
        f"      const __global {ctype} *row = b_packed ? B + (size_t)j * K * {nr} : B + cs;",
        f"      const size_t row_step = b_packed ? {nr} : N;",
        f"      union {{ {vt} v[{nv}]; {ctype} s[{nr}]; }} t;",
        *[f"      t.v[{q}] = 0;" for q in range(nv)],
        "      for (int kk = 0; kk < K; ++kk, row += row_step) {",
        *[f"        t.v[{q}] += *(const __global vtu *)(row + {q * vw});" for q in range(nv)],
        "      }",
        f"      const int c0 = N >= {nr} ? lo - cs : 0, c1 = N >= {nr} ? {nr} : N;",
        "      for (int c = c0; c < c1; ++c)",
        "        V[cs + c] = column_epilogue(t.s[c]"
        + "".join(f", O{j}[cs + c]" for j in range(columns)) + ");",
        "    }",
    ]
    return out


def _dot_kernel(ctype, vw, bias, rows, extras, attribute):
    """Body of gemm_dot for op(B) = B^T: C blocks from vector dot products along k, nothing
    packed."""
    vt, cols = f"{ctype}{vw}", _DOT_COLS
    cvt = f"{ctype}{cols}"
    out = [
        body_header("gemm_dot", "GEMM_ARGS", attribute),
        "{",
        "  GEMM_OFFSETS",
        f"  const int nbi = (M + {rows - 1}) / {rows}, nbj = (N + {cols - 1}) / {cols};",
        "  const int first = item * per_item;",
        "  const int last = first + per_item < nbi * nbj ? first + per_item : nbi * nbj;",
        "  for (int blk = first; blk < last; ++blk) {",
        f"    const int i0 = (blk % nbi) * {rows}, j0 = (blk / nbi) * {cols};",
    ]
    for r in range(rows):
        out.append(
            f"    const __global {ctype} *a{r} = A + (size_t)(i0 + {r} < M ? i0 + {r} : M - 1) * K;"
        )
    for c in range(cols):
        out.append(
            f"    const __global {ctype} *b{c} = B + (size_t)(j0 + {c} < N ? j0 + {c} : N - 1) * K;"
        )
    for r in range(rows):
        out.append("    " + " ".join(f"{vt} s{r}_{c} = 0;" for c in range(cols)))
    out += ["    int kk = 0;", f"    for (; kk + {vw} <= K; kk += {vw}) {{"]
    out += [f"      const {vt} x{r} = *(const __global vtu *)(a{r} + kk);" for r in range(rows)]
    for c in range(cols):
        out.append(f"      {{ const {vt} y = *(const __global vtu *)(b{c} + kk);")
        out += [f"        s{r}_{c} = x{r} * y + s{r}_{c};" for r in range(rows)]
        out.append("      }")
    out.append("    }")
    for r in range(rows):
        for c in range(cols):
            s, w = f"s{r}_{c}", vw // 2
            while w > 2:
                out.append(f"    const {ctype}{w} h{w}_{r}_{c} = {s}.lo + {s}.hi;")
                s, w = f"h{w}_{r}_{c}", w // 2
            out.append(f"    {ctype} t{r}_{c} = ({s}.lo + {s}.hi).x + ({s}.lo + {s}.hi).y;")
    out.append("    for (; kk < K; ++kk) {")
    for r in range(rows):
        out += [f"      t{r}_{c} = a{r}[kk] * b{c}[kk] + t{r}_{c};" for c in range(cols)]
    out += ["    }", f"    const int ncol = N - j0 < {cols} ? N - j0 : {cols};"]
    for r in range(rows):
        value = f"({cvt})({', '.join(f't{r}_{c}' for c in range(cols))})"
        out += [
            f"    if (i0 + {r} < M) {{",
            *_store_columns(ctype, cols, bias, f"(size_t)(i0 + {r}) * N + j0", value, "      ",
                            extras),
            "    }",
        ]
    out += ["  }", "}", ""]
    return out


def _store_columns(ctype, cols, bias, first, value, indent, extras):
    """C lines storing ``value`` (a ``cols``-wide vector of products) into the ``ncol`` row
    elements of C from index ``first``: alpha, beta * C, bias (from column ``j0``), epilogue
    (reading the extra operands E0, E1, ... at the same elements)."""
    return [indent + line for line in (
        f"__global {ctype} *cp = C + {first};",
        f"union {{ {ctype}{cols} v; {ctype} s[{cols}]; }} u;",
        *[f"union {{ {ctype}{cols} v; {ctype} s[{cols}]; }} x{j};" for j in range(extras)],
        f"u.v = alpha * {value};",
        "for (int c = 0; c < ncol; ++c) {",
        "  if (beta != 0) u.s[c] += beta * cp[c];",
        *(["  u.s[c] += bias[j0 + c];"] if bias else []),
        *[f"  x{j}.s[c] = E{j}[{first} + c];" for j in range(extras)],
        "}",
        f"u.v = epilogue(u.v{_extra_args([f'x{j}.v' for j in range(extras)], extras)});",
        "for (int c = 0; c < ncol; ++c) cp[c] = u.s[c];",
    )]


def _narrow_kernel(ctype, trans_a, trans_b, bias, extras, columns, attribute):
    """Body of gemm_narrow: C narrower than a panel and little work in all (an MLP's last
    layer): each work-item computes whole rows of C, 4 columns at a time, from A and B in
    place."""
    cvt, cols = f"{ctype}4", 4
    a_at = "A[(size_t)p * M + i]" if trans_a else "A[(size_t)i * K + p]"

    def b_at(j):
        return f"B[(size_t){j} * K + p]" if trans_b else f"B[(size_t)p * N + {j}]"

    return [
        body_header("gemm_narrow", "GEMM_ARGS", attribute),
        "{",
        "  GEMM_OFFSETS",
        "  const int first = item * per_item;",
        "  const int last = first + per_item < M ? first + per_item : M;",
        "  for (int i = first; i < last; ++i) {",
        f"    for (int j0 = 0; j0 < N; j0 += {cols}) {{",
        *[f"      const int j{c} = j0 + {c} < N ? j0 + {c} : N - 1;" for c in range(1, cols)],
        f"      {cvt} acc = 0;",
        "      for (int p = 0; p < K; ++p)",
        f"        acc = {a_at} * ({cvt})({b_at('j0')}, {b_at('j1')}, {b_at('j2')}, "
        f"{b_at('j3')}) + acc;",
        f"      const int ncol = N - j0 < {cols} ? N - j0 : {cols};",
        *_store_columns(ctype, cols, bias, "(size_t)i * N + j0", "acc", "      ", extras),
        "    }",
        *([] if columns is None else [
            "    if (i == 0) {",
            "      for (int j = 0; j < N; ++j) {",
            f"        {ctype} t = 0;",
            f"        for (int p = 0; p < K; ++p) t += {b_at('j')};",
            "        V[j] = column_epilogue(t" + "".join(f", O{o}[j]" for o in range(columns))
            + ");",
            "      }",
            "    }",
        ]),
        "  }",
        "}",
        "",
    ]


def _pack_b_kernel(ctype, vw):
    """pack_b: B (K x N) into k-major K x NR panels of the gemm blocks' columns (see cs)."""
    vt, nr = f"{ctype}{vw}", vw * _NV
    copy = [
        f"        *(__global {vt} *)(dst + (size_t)kk * {nr} + {q * vw})"
        f" = *(const __global vtu *)(src + (size_t)kk * N + {q * vw});"
        for q in range(_NV)
    ]
    return [
        f"__kernel void pack_b(__global const {ctype} *B, const int b_off, "
        f"__global {ctype} *P, const int K, const int N)",
        "{",
        "  B += b_off;",
        f"  const int k0 = get_global_id(0) * {_PACK_K};",
        f"  const int k1 = k0 + {_PACK_K} < K ? k0 + {_PACK_K} : K;",
        f"  const int lo = get_global_id(1) * {nr};",
        f"  const int cs = lo + {nr} <= N || N < {nr} ? lo : N - {nr};",
        f"  __global {ctype} *dst = P + (size_t)lo * K;",
        f"  const __global {ctype} *src = B + cs;",
        f"  if (N >= {nr}) {{",
        "    for (int kk = k0; kk < k1; ++kk) {",
        *copy,
        "    }",
        "  } else {",
        "    for (int kk = k0; kk < k1; ++kk)",
        f"      for (int c = 0; c < {nr}; ++c)",
        f"        dst[(size_t)kk * {nr} + c] = c < N ? src[(size_t)kk * N + c] : 0;",
        "  }",
        "}",
        "",
    ]


def _pack_bt_kernel(ctype, vw):
    """pack_bt: B^T stored N x K into the panels of pack_b, by tw x tw register transposes."""
    nr, tw = vw * _NV, min(vw, 8)
    vt = f"{ctype}{tw}"
    out = [
        f"__kernel void pack_bt(__global const {ctype} *B, const int b_off, "
        f"__global {ctype} *P, const int K, const int N)",
        "{",
        "  B += b_off;",
        f"  const int k0 = get_global_id(0) * {_PACK_K};",
        f"  const int k1 = k0 + {_PACK_K} < K ? k0 + {_PACK_K} : K;",
        f"  const int lo = get_global_id(1) * {nr};",
        f"  const int cs = lo + {nr} <= N || N < {nr} ? lo : N - {nr};",
        f"  __global {ctype} *dst = P + (size_t)lo * K;",
        f"  const __global {ctype} *src = B + (size_t)cs * K;",
        "  int kk = k0;",
        f"  if (N >= {nr}) {{",
        f"    for (; kk + {tw} <= k1; kk += {tw}) {{",
    ]
    for h in range(nr // tw):
        rows = [f"v{c}" for c in range(tw)]
        out.append("      {")
        for c in range(tw):
            out.append(
                f"      const {vt} v{c} = "
                f"*(const __global v{tw}u *)(src + (size_t){h * tw + c} * K + kk);"
            )
        out += ["      " + line for line in _transpose(vt, tw, rows)]
        out += [
            f"      *(__global {vt} *)(dst + (size_t)(kk + {t}) * {nr} + {h * tw}) = o{t};"
            for t in range(tw)
        ]
        out.append("      }")
    out += [
        "    }",
        "  }",
        "  for (; kk < k1; ++kk)",
        f"    for (int c = 0; c < {nr}; ++c)",
        f"      dst[(size_t)kk * {nr} + c] = c < N ? src[(size_t)c * K + kk] : 0;",
        "}",
        "",
    ]
    return out


def _pack_at_kernel(ctype, mr):
    """pack_at_<mr>: A^T stored K x M into k-major MR-row panels, last rows repeated."""
    copy, off = [], 0
    for width in (4, 2, 1):
        while mr - off >= width:
            t = f"v{width}u" if width > 1 else ctype
            copy.append(
                f"        *(__global {t} *)(dst + {off}) = "
                f"*(const __global {t} *)(src + b * {mr} + {off});"
            )
            off += width
    return [
        f"__kernel void pack_at_{mr}(__global const {ctype} *A, const int a_off, "
        f"__global {ctype} *P, const int K, const int M)",
        "{",
        "  A += a_off;",
        f"  const int k0 = get_global_id(0) * {_PACK_K};",
        f"  const int k1 = k0 + {_PACK_K} < K ? k0 + {_PACK_K} : K;",
        f"  const int nbi = (M + {mr - 1}) / {mr}, full = M / {mr};",
        f"  const int b0 = get_global_id(1) * {_PACK_BLOCKS};",
        f"  const int b1 = b0 + {_PACK_BLOCKS} < nbi ? b0 + {_PACK_BLOCKS} : nbi;",
        "  for (int b = b0; b < b1; ++b) {",
        "    for (int kk = k0; kk < k1; ++kk) {",
        f"      const __global {ctype} *src = A + (size_t)kk * M;",
        f"      __global {ctype} *dst = P + ((size_t)b * K + kk) * {mr};",
        "      if (b < full) {",
        *copy,
        "      } else {",
        f"        for (int r = 0; r < {mr}; ++r)",
        f"          dst[r] = src[b * {mr} + r < M ? b * {mr} + r : M - 1];",
        "      }",
        "    }",
        "  }",
        "}",
        "",
    ]


def program_source(
    dtype, trans_a: bool, trans_b: bool, bias: bool, epilogue: str | None, bits: int = 256,
    extras: int = 0,
    column_epilogue: str | None = None,
    columns: int = 0,
    attribute: bool = False,
    indexed: bool = False,
    copy: bool = False,
):
    """OpenCL source of every kernel a product of this kind may use (one program per kind).

    bits is the vector register width (see vector_bits); with ``attribute`` the kernels' bodies
    are compiled for AVX-512 by a target attribute (see vector_target). The epilogue is defined
    for the vector widths in use (see epilogue_overloads). Its arguments are the result v and
    the elements e0, e1, ... of the ``extras`` operands at the same position. With a
    ``column_epilogue`` (an expression in s, o0, o1, ...) the kernels also store V[j] =
    column_epilogue(sum over k of op(B)[k, j], O0[j], ...) for ``columns`` vector operands O
    (no gemm_dot kernel then). ``indexed``: A's rows are read through the int index A_rows
    (see GemmPlan's a_rows); only the gemm_<mr> (or gemm_<mr>_cols) kernels and B's packing.
    ``copy`` (indexed, not trans_a): the kernels also store those rows into A_copy.
    """
    ctype = _TYPES[np.dtype(dtype)]
    vw = bits // (8 * np.dtype(dtype).itemsize)
    widths = sorted({vw, 8, 4, 2})
    columns = columns if column_epilogue else None
    params = (
        f"__global const {ctype} *A, const int a_off, "
        + ("__global const int *A_rows, const int a_rows_off, " if indexed else "")
        + (f"__global {ctype} *A_copy, const int a_copy_off, " if copy else "")
        + f"__global const {ctype} *B, const int b_off, __global {ctype} *C, const int c_off, "
        + (f"__global const {ctype} *bias, const int bias_off, " if bias else "")
        + "".join(f"__global const {ctype} *E{j}, const int e{j}_off, " for j in range(extras))
        + (f"__global {ctype} *V, const int v_off, " if columns is not None else "")
        + "".join(f"__global const {ctype} *O{j}, const int o{j}_off, "
                  for j in range(columns or 0))
        + "const int M, const int N, const int K, const int b_packed, const int band, "
        f"const int per_item, const {ctype} alpha, const {ctype} beta"
    )
    lines = ["#pragma OPENCL EXTENSION cl_khr_fp64 : enable"] if ctype == "double" else []
    lines += [
        *[f"typedef {ctype}{w} __attribute__((aligned(sizeof({ctype})))) v{w}u;" for w in widths],
        f"typedef v{vw}u vtu;",
        f"#define GEMM_ARGS {params}",
        "#define GEMM_OFFSETS A += a_off; B += b_off; C += c_off;"
        + (" A_rows += a_rows_off;" if indexed else "")
        + (" A_copy += a_copy_off;" if copy else "")
        + (" bias += bias_off;" if bias else "")
        + "".join(f" E{j} += e{j}_off;" for j in range(extras))
        + (" V += v_off;" if columns is not None else "")
        + "".join(f" O{j} += o{j}_off;" for j in range(columns or 0)),
        "",
    ]
    functions = epilogue_overloads(
        ctype, {vw, _DOT_COLS},
        lambda t: _extra_args([f"{t} e{j}" for j in range(extras)], extras), epilogue or "v")
    if columns is not None:
        functions += [
            f"inline {ctype} column_epilogue({ctype} s"
            + "".join(f", {ctype} o{j}" for j in range(columns))
            + f") {{ return {column_epilogue}; }}",
        ]
    bodies, packs = {}, []
    a_modes = ("cols",) if trans_a and indexed else ("panel", "cols") if trans_a else ("rows",)
    for mr in _MR_CHOICES[bits]:
        for a_mode in a_modes:
            bodies[_gemm_name(mr, a_mode)] = _gemm_kernel(ctype, vw, a_mode, bias, mr, extras,
                                                          columns, attribute, indexed, copy)
        if "panel" in a_modes:
            packs += _pack_at_kernel(ctype, mr)
    packs += _pack_bt_kernel(ctype, vw) if trans_b else _pack_b_kernel(ctype, vw)
    if trans_b and not trans_a and columns is None and not indexed:
        bodies["gemm_dot"] = _dot_kernel(ctype, vw, bias, _DOT_ROWS[bits], extras, attribute)
    if not indexed:
        bodies["gemm_narrow"] = _narrow_kernel(ctype, trans_a, trans_b, bias, extras, columns,
                                               attribute)
    lines += target_section(functions + [line for body in bodies.values() for line in body],
                            attribute)
    args = argument_names(params)
    for name in bodies:
        lines += kernel_calling_body(name, "GEMM_ARGS", args)
    return "\n".join(lines + [""] + packs)


def checked_dtype(dtype, context, owner: str, shapes: str) -> np.dtype:
    """``dtype`` as a NumPy dtype a plan of ``owner`` can compute in on ``context``, else a
    ValueError naming the plan and its ``shapes``."""
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        dtype = None
    if dtype not in _TYPES:
        raise ValueError(f"{owner}: dtype must be float32 or float64, not {dtype} ({shapes})")
    if dtype == np.float64 and any("cl_khr_fp64" not in d.extensions for d in context.devices):
        raise ValueError(f"{owner}: float64 needs a device with cl_khr_fp64; use float32")
    return dtype


def check_buffer(owner: str, name: str, buf, offset, count: int, itemsize: int,
                 shapes: str) -> None:
    """Raise ValueError unless ``buf`` is a Buffer holding ``count`` elements from ``offset``."""
    if not isinstance(buf, cl.Buffer):
        raise ValueError(f"{owner}: {name} must be a pyopencl Buffer, not {type(buf)}")
    if offset < 0 or (offset + count) * itemsize > buf.size:
        raise ValueError(
            f"{owner}: {name} needs {count} elements from offset {offset} but its buffer "
            f"holds {buf.size // itemsize} ({shapes})")


def _pick_mr(m, bits):
    """Rows per C block: the least padded work, counting each block's B loads as 2 rows."""
    return min(_MR_CHOICES[bits], key=lambda mr: (-(-m // mr) * (mr + 2), -mr))


def _build(context, source, program_cache):
    """The built program: from program_cache.build when given, else built directly."""
    if program_cache is None:
        return cl.Program(context, source).build()
    return program_cache.build(context, source)


class GemmPlan:
    """One planned product C = epilogue(alpha * op(A) @ op(B) + beta * C + bias, E0, ...), shapes
    fixed.

    Storage is row-major: A is m x k (k x m if trans_a), B is k x n (n x k if trans_b; both
    transposes together work too), C is m x n, bias has n elements. `epilogue` is an OpenCL C
    expression in `v` valid for scalars and vectors of the dtype, e.g. "(v > 0 ? v : 0)" or
    "1 / (1 + exp(-v))"; the kernels apply it to 4- and 8-wide vectors. With ``extras`` = k it
    also reads e0 .. e(k-1), the elements of k more m x n row-major operands at the same
    position (``v * e0 * (1 - e0)``: a sigmoid's gradient). With a ``column_epilogue``, an
    expression in s and o0 .. o(k-1) for ``columns`` = k, the product also stores the n-vector
    V = column_epilogue(column sums of op(B), O0, ...) (``o0 - 0.1f * s``: the bias update
    beside its layer's weight update). With ``a_rows`` = R the stored A has R rows (of k
    elements, m if trans_a) and op(A)'s row i (column i if trans_a) is its row index[i], for an
    int32 vector ``a_index`` given to enqueue (m entries, k if trans_a) whose entries the
    caller keeps in [0, R): a minibatch's rows read straight from the dataset (nothing checks
    the entries on the device). With ``a_copy`` too (not trans_a) the product also stores
    op(A), the rows it read, into the m x k buffer ``a_copy`` given to enqueue, for kernels
    that read them later: the copy costs almost nothing where a gather kernel costs a pass.
    The program, kernels and packing scratch are made here; enqueue enqueues one to three
    kernels, setting only the arguments that changed since the previous call. The scratch is
    reused, so enqueue a plan in order (in-order queue or wait_for).
    """

    def __init__(
        self,
        context: cl.Context,
        m: int,
        n: int,
        k: int,
        *,
        trans_a: bool = False,
        trans_b: bool = False,
        dtype=np.float32,
        bias: bool = False,
        epilogue: str | None = None,
        extras: int = 0,
        column_epilogue: str | None = None,
        columns: int = 0,
        a_rows: int | None = None,
        a_copy: bool = False,
        program_cache=None,
    ):
        shapes = f"m={m}, n={n}, k={k}"
        checked = (("m", m), ("n", n), ("k", k)) + ((("a_rows", a_rows),) if a_rows is not None
                                                    else ())
        for name, v in checked:
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"GemmPlan: {name} must be a positive int ({shapes})")
        dtype = checked_dtype(dtype, context, "GemmPlan", shapes)
        if epilogue is not None and not isinstance(epilogue, str):
            raise ValueError(
                f"GemmPlan: epilogue must be an OpenCL C expression in v or None, not {epilogue!r}"
            )
        m, n, k = int(m), int(n), int(k)
        stored_a = (a_rows or 0) * (m if trans_a else k)
        if max(m * k, k * n, m * n, stored_a) >= 2**31:
            raise ValueError(f"GemmPlan: operands of 2**31 elements or more ({shapes})")
        self.m, self.n, self.k, self.dtype = m, n, k, dtype
        self.trans_a, self.trans_b = bool(trans_a), bool(trans_b)
        self.bias, self.epilogue, self.extras = bool(bias), epilogue, int(extras)
        self.column_epilogue = column_epilogue
        self.columns = int(columns) if column_epilogue else 0
        self.a_rows = None if a_rows is None else int(a_rows)
        indexed = self.a_rows is not None
        self.a_copy = bool(a_copy)
        if self.a_copy and (not indexed or self.trans_a):
            raise ValueError(f"GemmPlan: a_copy needs a_rows and trans_a=False ({shapes})")
        device = context.devices[0]
        bits = vector_bits(device)
        self._source = program_source(
            dtype, self.trans_a, self.trans_b, self.bias, epilogue, bits, self.extras,
            column_epilogue, self.columns, needs_avx512_attribute(device, bits), indexed,
            self.a_copy,
        )
        program = _build(context, self._source, program_cache)

        size = dtype.itemsize
        nr = bits // (8 * size) * _NV
        self._pack_a = self._pack_b = None
        if self.trans_b and not self.trans_a and m <= _DOT_MAX_M and not column_epilogue \
                and not indexed:
            name, mr = "gemm_dot", _DOT_ROWS[bits]
            blocks, block_work = -(-m // mr) * -(-n // _DOT_COLS), mr * _DOT_COLS * k
            b_packed = False
        elif n < nr and m * n * k <= _NARROW_MAX_WORK and not indexed:
            name, mr = "gemm_narrow", 1
            blocks, block_work, b_packed = m, n * k, False
        else:
            mr = _pick_mr(m, bits)
            nbi, npan = -(-m // mr), -(-n // nr)
            blocks, block_work = nbi * npan, mr * nr * (k + 8)
            reused = nbi >= _PACK_MIN_BLOCKS
            b_packed = self.trans_b or n < nr or reused and k * n * size >= _PACK_B_MIN_BYTES
            a_packed = self.trans_a and reused and npan > 1 and not indexed and \
                m * k * size >= _PACK_A_MIN_BYTES[bits]
            name = f"gemm_{mr}" + ("_panel" if a_packed else "_cols" if self.trans_a else "")
            grid = -(-k // _PACK_K)
            if a_packed:
                self._pack_a = self._packer(
                    program,
                    f"pack_at_{mr}",
                    nbi * mr * k,
                    m,
                    context,
                    (grid, -(-nbi // _PACK_BLOCKS)),
                )
            if b_packed:
                self._pack_b = self._packer(
                    program,
                    "pack_bt" if self.trans_b else "pack_b",
                    npan * nr * k,
                    n,
                    context,
                    (grid, npan),
                )
        band = max(1, _BAND_BYTES // (mr * k * size))
        units = context.devices[0].max_compute_units
        per_item = max(1, min(-(-_MIN_WORK // block_work), blocks // (4 * units)))
        self._shape_args = (m, n, k, int(b_packed), band, per_item)
        self._grid = (-(-blocks // per_item),)
        self._gemm = cl.Kernel(program, name)
        self._key = self._scalars = None
        self._gemm.set_scalar_arg_dtypes(
            [None, np.int32] * (3 + indexed + self.a_copy + self.bias + self.extras
                                + bool(column_epilogue) + self.columns)
            + [np.int32] * 6
            + [dtype.type] * 2
        )

    def _packer(self, program, name, count, cols, context, grid):
        """A packing kernel with its scratch buffer: (kernel, grid, buffer, trailing args)."""
        kernel = cl.Kernel(program, name)
        kernel.set_scalar_arg_dtypes([None, np.int32, None, np.int32, np.int32])
        scratch = cl.Buffer(context, cl.mem_flags.READ_WRITE, count * self.dtype.itemsize)
        return kernel, grid, scratch, (self.k, cols)

    def source(self) -> str:
        """All OpenCL source this plan uses."""
        return self._source

    def _check(self, name, buf, offset, count):
        """Raise ValueError unless buf holds count elements from offset."""
        check_buffer("GemmPlan", name, buf, offset, count, self.dtype.itemsize,
                     f"m={self.m}, n={self.n}, k={self.k}")

    def enqueue(
        self,
        queue: cl.CommandQueue,
        a: cl.Buffer,
        b: cl.Buffer,
        c: cl.Buffer,
        *,
        a_offset: int = 0,
        b_offset: int = 0,
        c_offset: int = 0,
        bias: cl.Buffer | None = None,
        bias_offset: int = 0,
        extras=(),
        column_sums=None,
        a_index: tuple | None = None,
        a_copy: tuple | None = None,
        alpha: float = 1.0,
        beta: float = 0.0,
        wait_for=None,
    ) -> cl.Event:
        """Enqueue the product; offsets count elements. Returns the event of the last kernel.

        The same buffers and offsets as the previous call are not checked or set again, and
        alpha and beta only when they change: repeated calls cost about one kernel launch each.
        """
        launches = self.bind(a, b, c, a_offset=a_offset, b_offset=b_offset, c_offset=c_offset,
                             bias=bias, bias_offset=bias_offset, extras=extras,
                             column_sums=column_sums, a_index=a_index, a_copy=a_copy,
                             alpha=alpha, beta=beta)
        event = None
        for kernel, grid, local in launches:
            event = cl.enqueue_nd_range_kernel(queue, kernel, grid, local, wait_for=wait_for)
            wait_for = [event]
        return event

    def bind(self, a, b, c, *, a_offset=0, b_offset=0, c_offset=0, bias=None, bias_offset=0,
             extras=(), column_sums=None, a_index=None, a_copy=None, alpha=1.0,
             beta=0.0) -> list[tuple]:
        """Set the kernel arguments for these operands and return the launches, (kernel,
        global size, local size) in order, that compute the product when enqueued. ``extras``
        are (buffer, offset) pairs of the epilogue's extra operands; ``column_sums`` the pairs
        of V and O0, O1, ... of a plan with a column epilogue; ``a_index`` the (buffer,
        offset) of the row index of a plan with ``a_rows``, ``a_copy`` that of the copy."""
        extras, column_sums = tuple(extras), tuple(column_sums or ())
        key = (id(a), id(b), id(c), a_offset, b_offset, c_offset, id(bias), bias_offset,
               tuple((id(buf), offset) for buf, offset in extras + column_sums),
               a_index and (id(a_index[0]), a_index[1]), a_copy and (id(a_copy[0]), a_copy[1]))
        if key != self._key:
            self._key = None
            self._bind(a, b, c, a_offset, b_offset, c_offset, bias, bias_offset,
                       extras + column_sums, a_index, a_copy)
            self._key = key
            self._bound = (a, b, c, bias, extras, column_sums, a_index, a_copy)  # ids in use
            self._scalars = None
        if (alpha, beta) != self._scalars:
            self._gemm_args[-2:] = alpha, beta
            self._gemm.set_args(*self._gemm_args)
            self._scalars = alpha, beta
        return self._launches

    def _bind(self, a, b, c, a_offset, b_offset, c_offset, bias, bias_offset, extras, a_index,
              a_copy):
        """Check the operands and set every kernel argument but alpha and beta; ``extras``
        holds the epilogue's extra operands, then V and O0, ... of the column sums."""
        m, n, k = self.m, self.n, self.k
        if (a_index is None) != (self.a_rows is None):
            raise ValueError(
                f"GemmPlan: the plan was built with a_rows={self.a_rows}; pass a_index= "
                f"(buffer, offset) exactly when a_rows is set")
        row_args = ()  # the index and the copy of A's rows, when the plan has them
        if a_index is None:
            self._check("a", a, a_offset, m * k)
        else:
            self._check("a", a, a_offset, self.a_rows * (m if self.trans_a else k))
            check_buffer("GemmPlan", "a_index", *a_index, k if self.trans_a else m, 4,
                         f"m={m}, n={n}, k={k}")
            row_args = tuple(a_index)
        if (a_copy is None) == self.a_copy:
            raise ValueError(
                f"GemmPlan: the plan was built with a_copy={self.a_copy}; pass a_copy= "
                f"(buffer, offset) exactly when it is True")
        if a_copy is not None:
            self._check("a_copy", *a_copy, m * k)
            row_args += tuple(a_copy)
        self._check("b", b, b_offset, k * n)
        self._check("c", c, c_offset, m * n)
        if self.bias != (bias is not None):
            raise ValueError(
                f"GemmPlan: the plan was built with bias={self.bias}; pass bias= "
                f"exactly when it is True"
            )
        bias_args = ()
        if self.bias:
            self._check("bias", bias, bias_offset, n)
            bias_args = (bias, bias_offset)
        columns = (1 + self.columns) if self.column_epilogue else 0
        if len(extras) != self.extras + columns:
            raise ValueError(
                f"GemmPlan: the plan was built for {self.extras} extra epilogue operands and "
                f"{columns} column-sum operands; got {len(extras)} in all"
            )
        for j, (buf, offset) in enumerate(extras):
            name = f"extras[{j}]" if j < self.extras else f"column_sums[{j - self.extras}]"
            self._check(name, buf, offset, m * n if j < self.extras else n)
            bias_args += (buf, offset)
        operands = [(a, a_offset), (b, b_offset)]
        self._packs = []
        for i, packer in enumerate((self._pack_a, self._pack_b)):
            if packer is not None:
                kernel, grid, scratch, sizes = packer
                kernel.set_args(*operands[i], scratch, *sizes)
                self._packs.append((kernel, grid))
                operands[i] = (scratch, 0)
        shape_args = self._shape_args
        self._gemm_args = [*operands[0], *row_args, *operands[1], c, c_offset, *bias_args,
                           *shape_args, 0, 0]
        self._launches = [(kernel, grid, (1, 1)) for kernel, grid in self._packs]
        self._launches.append((self._gemm, self._grid, (1,)))
