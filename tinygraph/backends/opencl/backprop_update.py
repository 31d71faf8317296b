"""A dense layer's backward step for a small batch in one pass over its weights, on OpenCL.

For a batch of B rows with inputs H (B x n_in), output gradients D (B x n_out) and weights W
(n_in x n_out), all row-major, one kernel computes

- P = epilogue(D @ W^T, E0, E1, ...): the gradient for the layer below (B x n_in), the
  epilogue reading ``extras`` more B x n_in operands at the same position;
- W_out = beta * W + alpha * H^T @ D: the weight update, W_out possibly W itself;
- V = column_epilogue(column sums of D, O0, O1, ...): the bias update (n_out elements).

It replaces two GemmPlan products (D @ W^T, then the update of W), which read W twice and
keep fewer multiply-adds in flight per load: with B = 10 and W 1000 x 1000 (float32) it takes
about 0.70 (AVX-512) and 0.75 (AVX2) of their time, running at ~90% of the FMA peak on
AVX-512; for an MLP's last layer (100 x 10) it saves a launch (about half the time). Tuned
for PoCL on x86 (see /work/shared/POCL.md) and written in the same plain C as gemm.py: loads
and stores through unaligned vector typedefs, ``a * b + c``, ``?:``.

A work-item owns chunks of VW consecutive rows of W (VW = 16 floats / 8 doubles on a device
running AVX-512, natively or by attribute as in gemm.py, 8 / 4 for AVX2) and walks blocks of R
rows (1, 2 or 4, as many as the vector registers hold) along j in vectors of VW: it loads the R
row pieces of W, then per batch row b one vector of D, which feeds R dot-product accumulators
(B x R in all) and the R updates (alpha * H[b, i] hoisted out of the loop, summed in two chains
to halve their latency), and stores the updates over the row pieces it has just read. The main
loop is generated twice, for beta = 1 (one multiplication fewer per vector) and any beta; the
last n_out % VW columns take narrower vectors and one scalar. A block leaves its B x R dot
products in a private array; when a chunk is done, the VW accumulators of each batch row are
reduced horizontally together by a shuffle-and-add tree into one vector of the chunk's VW sums,
so the epilogue runs on vectors and P is stored with vector stores. The work-item owning row 0
also computes the column sums. B is a compile-time constant (one program per batch size and
epilogues; shapes are kernel arguments), limited by the vector registers (``max_batch``).

Without the backward product (``backward=False``: a first layer, whose input needs no
gradient) the kernel computes only W_out and V, and is laid out the other way round: D, not
a row of W, stays in registers (see _update_kernel). It replaces the GemmPlan (trans_a, with
column sums) of such an update, float32 in place, 784 x 100 to 1000 x 1000: 0.65-0.85 of its
time for B = 10, 0.35-0.6 for B = 1 (streaming W), 0.75-0.97 at B = 64, the largest batch it
takes (on AVX-512 and AVX2 alike).
"""

from __future__ import annotations

import numpy as np
import pyopencl as cl

from .gemm import _TYPES, _build, check_buffer, checked_dtype
from .vector_target import (
    argument_names,
    body_header,
    epilogue_overloads,
    kernel_calling_body,
    needs_avx512_attribute,
    target_section,
    vector_bits,
)

_REGISTERS = {256: 16, 512: 32}  # vector registers by vector bits
_MAX_ROWS = 4  # rows of W per block at most (a power of two: blocks tile the chunks)
_CHAINS = 2  # the update of a row sums the batch in this many chains (latency)
_MIN_WORK = 1 << 15  # multiply-adds per work-item before chunks of rows are split across them
# Without the backward product (backward=False; vectors of 64 bytes, two 256-bit registers
# each, as Debian's PoCL also splits them for AVX-512): rows of W per block, and by vector
# bits the batch rows whose vectors of D stay in registers at once (a group), so that the
# group, the block's rows and a broadcast fit: AVX2 2 * (5 + 2) + 1 of 16 registers, AVX-512
# 2 * (12 + 2) + 1 of 32. Measured best of rows 1, 2, 4, 8 and groups 4..14 (B = 10 to 64).
_UPDATE_ROWS = 2
_UPDATE_GROUP = {256: 5, 512: 12}
_UPDATE_ITEM_ROWS = 32  # rows of W per work-item at most, a multiple of _UPDATE_ROWS
# (alpha * H^T for them is copied to private memory)
_UPDATE_MAX_BATCH = 64  # the GEMM is about as fast from there on (see max_batch)


def max_batch(bits: int, dtype=np.float32, backward: bool = True) -> int:
    """The largest batch whose accumulators fit the vector registers (bits as vector_bits
    returns) with one row of W per block: B dot products, the row, 2 update chains and 1
    vector of D. 12 for AVX2, 28 for AVX-512, for float32 and float64 alike. The gain over
    two GEMMs shrinks as the batch grows (measured: 0.69 of their time at B = 16 on AVX-512,
    0.98 at B = 28, where every H[b, i] is loaded from memory).

    Without the backward product (backward=False) nothing accumulates over the batch in
    registers (D is taken in groups of batch rows): the limit, 64, is about where the kernel
    stops beating the GEMM it replaces (measured at B = 64: 0.75-0.95 of its time on AVX-512,
    0.9-1.0 on AVX2)."""
    del dtype  # doubles fill the same registers, half as many per vector
    if not backward:
        return _UPDATE_MAX_BATCH
    return _REGISTERS[bits] - 4


def supports(batch: int, device, dtype=np.float32, backward: bool = True) -> bool:
    """Whether a BackpropUpdatePlan can be made for this batch size on this device, with
    the backward product or (backward=False) without."""
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        return False
    if dtype not in _TYPES or dtype == np.float64 and "cl_khr_fp64" not in device.extensions:
        return False
    if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)):
        return False
    return 1 <= batch <= max_batch(vector_bits(device), dtype, backward)


def _rows_per_block(batch: int, bits: int, backward: bool = True) -> int:
    """Rows of W per block: the most (a power of two, at most _MAX_ROWS) whose registers fit,
    B dot products + the row + 2 update chains per row and 1 vector of D. Without the backward
    product: _UPDATE_ROWS."""
    if not backward:
        return _UPDATE_ROWS
    rows = _MAX_ROWS
    while rows > 1 and (batch + 3) * rows + 1 > _REGISTERS[bits]:
        rows //= 2
    return rows


def _lanes(width):
    """The swizzle naming the first ``width`` lanes of a vector: s0, s01, s0123, ..."""
    return "s" + "0123456789abcdef"[:width]


def _tree(vt, vw, lane_block):
    """Lines summing each of vw vectors x0 .. x<vw-1> horizontally into one vector ``s``
    (lane q: the sum of the vector read from slot q), and for every slot the input it reads.

    Each step adds two shuffles of a pair of vectors holding g lanes of every sum into one
    holding g / 2: first whole 128-bit blocks are moved (while g exceeds a block), then lanes
    inside blocks, taking half from each vector as x86's shuffles of two sources do.
    """
    hexd = "0123456789abcdef"
    vectors = [(f"x{k}", [k] * vw) for k in range(vw)]
    lines, g, level = [], vw, 0
    while g > 1:
        if g > lane_block:
            firsts = [k * g + i for k in range(vw // g) for i in range(g // 2)]
            picks = [[("x", i) for i in firsts] + [("y", i) for i in firsts]]
            picks.append([(v, i + g // 2) for v, i in picks[0]])
        else:
            picks = [[], []]
            for base in range(0, vw, lane_block):
                for h, pick in enumerate(picks):
                    lanes = [base + k * g + h * (g // 2) + i
                             for k in range(lane_block // g) for i in range(g // 2)]
                    pick += [("x", i) for i in lanes] + [("y", i) for i in lanes]
        pairs, vectors = vectors, []
        for m in range(0, len(pairs), 2):
            (xn, xl), (yn, yl) = pairs[m], pairs[m + 1]
            src = {"x": (xn, xl), "y": (yn, yl)}
            labels = [src[v][1][lane] for v, lane in picks[0]]
            assert labels == [src[v][1][lane] for v, lane in picks[1]]
            name = f"r{level}_{m // 2}"
            terms = [f"({vt})(" + ", ".join(f"{src[v][0]}.s{hexd[lane]}" for v, lane in pick)
                     + ")" for pick in picks]
            lines.append(f"const {vt} {name} = {terms[0]} + {terms[1]};")
            vectors.append((name, labels))
        g, level = g // 2, level + 1
    (name, labels), = vectors
    lines.append(f"const {vt} s = {name};")
    slot_of = {slot: lane for lane, slot in enumerate(labels)}
    return lines, [slot_of[k] for k in range(vw)]


def _row_block(ctype, vw, batch, rows):
    """Lines computing a block of ``rows`` rows of W from row i0 (all in bounds): the
    weight update, and the dot products left in acc[b][i0 - c0 + r]."""
    vt = f"{ctype}{vw}"
    out = []
    for r in range(rows):
        out += [
            f"const __global {ctype} *w{r} = W + (size_t)(i0 + {r}) * n_out;",
            f"__global {ctype} *x{r} = W_out + (size_t)(i0 + {r}) * n_out;",
        ]
    for b in range(batch):
        out.append(" ".join(f"const {ctype} h{b}_{r} = alpha * H[{b} * n_in + i0 + {r}];"
                            for r in range(rows)))
    for b in range(batch):
        out.append(" ".join(f"{vt} a{b}_{r} = 0;" for r in range(rows)))

    def step(width, at, unit_beta=False):
        """One step of ``width`` columns from column ``at``: loads, products, stores. The
        update sums in two chains (even and odd b), halving their latency."""
        t = ctype if width == 1 else f"{ctype}{width}"
        ptr = ctype if width == 1 else f"v{width}u"
        lanes = "" if width == vw else "." + _lanes(width)
        chains = min(_CHAINS, batch)
        body = [f"const {t} y{r} = *(const __global {ptr} *)(w{r} + {at});" for r in range(rows)]
        first = "" if unit_beta else "beta * "
        body += [f"{t} u{r}_0 = {first}y{r};" for r in range(rows)]
        if chains > 1:
            body += [f"{t} " + ", ".join(f"u{r}_{c}" for c in range(1, chains)) + ";"
                     for r in range(rows)]
        for b in range(batch):
            c = b % chains
            body.append(f"{{ const {t} d = *(const __global {ptr} *)(D + {b} * n_out + {at});")
            body += [f"  a{b}_{r}{lanes} = d * y{r} + a{b}_{r}{lanes};" for r in range(rows)]
            add = f" + u{{r}}_{c}" if c == 0 or b >= chains else ""
            body += [f"  u{r}_{c} = h{b}_{r} * d{add.format(r=r)};" for r in range(rows)]
            body.append("}")
        body += [f"*(__global {ptr} *)(x{r} + {at}) = "
                 + " + ".join(f"u{r}_{c}" for c in range(chains)) + ";" for r in range(rows)]
        return body

    # The main loop twice: beta = 1 (plain SGD) saves a multiplication per vector of W.
    loop = f"  for (; j + {vw} <= n_out; j += {vw}) {{"
    out += ["int j = 0;", "if (beta == 1) {", loop,
            *["    " + line for line in step(vw, "j", unit_beta=True)],
            "  }", "} else {", loop, *["    " + line for line in step(vw, "j")], "  }", "}"]
    width = vw // 2
    while width >= 1:
        cond = f"j + {width} <= n_out" if width > 1 else "j < n_out"
        out += [f"if ({cond}) {{", *["  " + line for line in step(width, "j")]]
        out += [f"  j += {width};", "}"] if width > 1 else ["}"]
        width //= 2
    for b in range(batch):
        out += [f"acc[{b}][i0 - c0 + {r}] = a{b}_{r};" for r in range(rows)]
    return out


def _chunk_epilogue(ctype, size, vw, batch, extras):
    """Lines storing P for the rows [c0, c1) of a chunk from the dot products in acc: per
    batch row, the chunk's vw sums reduced into one vector, then the epilogue on vectors."""
    vt = f"{ctype}{vw}"
    tree, slots = _tree(vt, vw, 16 // size)
    args = "".join(f", *(const __global vtu *)(E{k} + at)" for k in range(extras))
    scalar_args = "".join(f", E{k}[at + c]" for k in range(extras))
    return [
        f"if (c1 - c0 < {vw})",
        f"  for (int b = 0; b < {batch}; ++b)",
        f"    for (int c = c1 - c0; c < {vw}; ++c) acc[b][c] = 0;",
        f"for (int b = 0; b < {batch}; ++b) {{",
        "  const size_t at = (size_t)b * n_in + c0;",
        *[f"  const {vt} x{k} = acc[b][{slots[k]}];" for k in range(vw)],
        *["  " + line for line in tree],
        f"  if (c1 - c0 == {vw}) {{",
        f"    *(__global vtu *)(P + at) = epilogue(s{args});",
        "  } else {",
        f"    union {{ {vt} v; {ctype} s[{vw}]; }} t;",
        "    t.v = s;",
        f"    for (int c = 0; c < c1 - c0; ++c) P[at + c] = epilogue(t.s[c]{scalar_args});",
        "  }",
        "}",
    ]


def _column_sums(ctype, vw, batch, columns):
    """Lines storing V = column_epilogue(sums over the batch of D, O0, ...)."""
    vt = f"{ctype}{vw}"
    args = "".join(f", O{k}[j + c]" for k in range(columns))
    return [
        "int j = 0;",
        f"for (; j + {vw} <= n_out; j += {vw}) {{",
        f"  union {{ {vt} v; {ctype} s[{vw}]; }} t;",
        "  t.v = *(const __global vtu *)(D + j);",
        *[f"  t.v += *(const __global vtu *)(D + {b} * n_out + j);" for b in range(1, batch)],
        f"  for (int c = 0; c < {vw}; ++c) V[j + c] = column_epilogue(t.s[c]{args});",
        "}",
        "for (; j < n_out; ++j) {",
        f"  const {ctype} s = " + " + ".join(f"D[{b} * n_out + j]" for b in range(batch)) + ";",
        "  V[j] = column_epilogue(s" + "".join(f", O{k}[j]" for k in range(columns)) + ");",
        "}",
    ]


def _update_kernel(ctype, vw, batch, columns, rows, group, attribute, indexed=False):
    """Parameters and lines of the body of the kernel computing only the updates (no backward
    product).

    A work-item owns per_item rows of W (at most _UPDATE_ITEM_ROWS) and first copies alpha *
    H^T for them into private memory (row-major, B values per row). Then it walks strips of vw
    columns (64 bytes; narrower vectors for the last n_out % vw): per strip and group of
    ``group`` batch rows it holds the group's vectors of D in registers and runs down its
    rows, ``rows`` at a time (then rows / 2, ..., 1 for the rest): each row's vector of W,
    times beta for the first group, plus one broadcast of alpha * H[b, i] times D's vector per
    batch row, is stored over itself; later groups add to what the first stored (W_out). Per
    multiply-add that is half a load (a broadcast serves two 256-bit halves) and little else.
    Measured against the GEMM at B = 10: the backward kernel's row-wise layout without the
    dot products took 0.75-0.95 of its time (more than it from B = 20: every alpha * H[b, i]
    spilled), strips of one AVX2 register (8 floats) 0.75-0.8 (about the GEMM's at B = 20-32),
    64-byte strips 0.65-0.85 (0.75-0.97 at B = 64); 128-byte strips on AVX-512 gained nothing.

    ``indexed``: batch row b of H is row H_rows[b] of the stored H (a minibatch read straight
    from the dataset).
    """
    params = (
        f"__global const {ctype} *H, const int h_off, "
        + ("__global const int *H_rows, const int h_rows_off, " if indexed else "")
        +
        f"__global const {ctype} *D, const int d_off, __global const {ctype} *W, const int w_off, "
        f"__global {ctype} *W_out, const int w_out_off, __global {ctype} *V, const int v_off, "
        + "".join(f"__global const {ctype} *O{k}, const int o{k}_off, " for k in range(columns))
        + f"const int n_in, const int n_out, const int per_item, const {ctype} alpha, "
        f"const {ctype} beta"
    )
    lines = [
        body_header("backprop_update", params, attribute),
        "{",
        "  H += h_off; D += d_off; W += w_off; W_out += w_out_off; V += v_off;"
        + (" H_rows += h_rows_off;" if indexed else "")
        + "".join(f" O{k} += o{k}_off;" for k in range(columns)),
        "  if (item == 0) {",
        *["    " + line for line in _column_sums(ctype, vw, batch, columns)],
        "  }",
        "  const int row0 = item * per_item;",
        "  const int row1 = row0 + per_item < n_in ? row0 + per_item : n_in;",
        f"  {ctype} ht[{_UPDATE_ITEM_ROWS * batch}];",
        "  for (int i = row0; i < row1; ++i) {",
        *[f"    ht[(i - row0) * {batch} + {b}] = alpha * "
          + (f"H[(size_t)H_rows[{b}] * n_in + i];" if indexed else f"H[{b} * n_in + i];")
          for b in range(batch)],
        "  }",
        "  const size_t stride = n_out;",
        "  int j = 0;",
    ]

    def block(t, ptr, bs, r, unit_beta):
        """r rows from w, x and hp (all in bounds), the batch rows bs."""
        out = [f"{t} u{k} = {'' if unit_beta else 'beta * '}"
               f"*(const __global {ptr} *)(w + {k} * stride);" for k in range(r)]
        for b in bs:
            out += [f"u{k} = hp[{k * batch + b}] * d{b} + u{k};" for k in range(r)]
        out += [f"*(__global {ptr} *)(x + {k} * stride) = u{k};" for k in range(r)]
        return out + [f"w += {r} * stride; x += {r} * stride; hp += {r * batch};"]

    def walk(t, ptr, bs, src, unit_beta):
        """The work-item's rows for one strip and group of batch rows, reading src."""
        out = [f"const __global {ctype} *w = {src} + row0 * stride + j;",
               f"__global {ctype} *x = W_out + row0 * stride + j;",
               f"const {ctype} *hp = ht;",
               "int i = row0;",
               f"for (; i + {rows} <= row1; i += {rows}) {{",
               *["  " + line for line in block(t, ptr, bs, rows, unit_beta)], "}"]
        r = rows // 2
        while r >= 1:
            out += [f"if (i + {r} <= row1) {{",
                    *["  " + line for line in block(t, ptr, bs, r, unit_beta)]]
            out += [f"  i += {r};", "}"] if r > 1 else ["}"]
            r //= 2
        return out

    def strip(width):
        """A strip of width columns from column j: every group of batch rows in turn."""
        t = ctype if width == 1 else f"{ctype}{width}"
        ptr = ctype if width == 1 else f"v{width}u"
        out = []
        for b0 in range(0, batch, group):
            bs = range(b0, min(batch, b0 + group))
            out += ["{", *[f"  const {t} d{b} = *(const __global {ptr} *)(D + {b} * stride + j);"
                           for b in bs]]
            if b0 == 0:  # beta = 1 (plain SGD) saves a multiplication per vector of W
                out += ["  if (beta == 1) {",
                        *["    " + line for line in walk(t, ptr, bs, "W", True)],
                        "  } else {",
                        *["    " + line for line in walk(t, ptr, bs, "W", False)], "  }"]
            else:
                out += ["  " + line for line in walk(t, ptr, bs, "W_out", True)]
            out.append("}")
        return out

    lines += [f"  for (; j + {vw} <= n_out; j += {vw}) {{",
              *["    " + line for line in strip(vw)], "  }"]
    width = vw // 2
    while width >= 1:
        lines += [f"  if (j + {width} <= n_out) {{", *["    " + line for line in strip(width)]]
        lines += [f"    j += {width};", "  }"] if width > 1 else ["  }"]
        width //= 2
    return params, lines + ["}"]


def program_source(dtype, batch: int, epilogue: str | None, extras: int, column_epilogue: str,
                   columns: int, bits: int = 256, backward: bool = True,
                   attribute: bool = False, indexed: bool = False) -> str:
    """OpenCL source of the kernel ``backprop_update`` for this batch size and epilogues.

    bits is the vector register width (see vector_bits); with ``attribute`` the kernel's body
    is compiled for AVX-512 by a target attribute (see vector_target). The epilogue is defined
    for scalars and the vectors in use (see epilogue_overloads), the column epilogue for
    scalars. Without backward the kernel computes only the updates: no epilogue, extras or P
    (see _update_kernel), and with ``indexed`` reads H's rows through the index H_rows.
    """
    ctype = _TYPES[np.dtype(dtype)]
    # the update alone walks strips of 64 bytes, two AVX2 registers (see _update_kernel)
    vw = (bits if backward else 512) // (8 * np.dtype(dtype).itemsize)
    rows = _rows_per_block(batch, bits, backward)
    widths = [w for w in (16, 8, 4, 2) if w <= vw]
    lines = ["#pragma OPENCL EXTENSION cl_khr_fp64 : enable"] if ctype == "double" else []
    lines += [
        *[f"typedef {ctype}{w} __attribute__((aligned(sizeof({ctype})))) v{w}u;" for w in widths],
        f"typedef v{vw}u vtu;",
    ]
    functions = [
        f"inline {ctype} column_epilogue({ctype} s"
        + "".join(f", {ctype} o{k}" for k in range(columns))
        + f") {{ return {column_epilogue}; }}",
    ]
    if backward:
        functions += epilogue_overloads(
            ctype, {1, vw}, lambda t: "".join(f", {t} e{k}" for k in range(extras)),
            epilogue or "v")
        params, body = _backward_kernel(ctype, dtype, vw, batch, extras, columns, rows,
                                        attribute)
    else:
        params, body = _update_kernel(ctype, vw, batch, columns, rows,
                                      min(batch, _UPDATE_GROUP[bits]), attribute, indexed)
    lines += target_section(functions + body, attribute)
    lines += kernel_calling_body("backprop_update", params, argument_names(params))
    return "\n".join(lines + [""])


def _backward_kernel(ctype, dtype, vw, batch, extras, columns, rows, attribute):
    """Parameters and lines of the body of the kernel with the backward product (see
    BackpropUpdatePlan)."""
    params = (
        f"__global const {ctype} *H, const int h_off, "
        f"__global const {ctype} *D, const int d_off, __global const {ctype} *W, const int w_off, "
        f"__global {ctype} *W_out, const int w_out_off, __global {ctype} *P, const int p_off, "
        + "".join(f"__global const {ctype} *E{k}, const int e{k}_off, " for k in range(extras))
        + f"__global {ctype} *V, const int v_off, "
        + "".join(f"__global const {ctype} *O{k}, const int o{k}_off, " for k in range(columns))
        + f"const int n_in, const int n_out, const int per_item, const {ctype} alpha, "
        f"const {ctype} beta"
    )
    lines = [
        body_header("backprop_update", params, attribute),
        "{",
        "  H += h_off; D += d_off; W += w_off; W_out += w_out_off; P += p_off; V += v_off;"
        + "".join(f" E{k} += e{k}_off;" for k in range(extras))
        + "".join(f" O{k} += o{k}_off;" for k in range(columns)),
        "  if (item == 0) {",
        *["    " + line for line in _column_sums(ctype, vw, batch, columns)],
        "  }",
        "  const int row0 = item * per_item;",
        "  const int row1 = row0 + per_item < n_in ? row0 + per_item : n_in;",
        f"  {ctype}{vw} acc[{batch}][{vw}];",
        f"  for (int c0 = row0; c0 < row1; c0 += {vw}) {{",
        f"    const int c1 = c0 + {vw} < row1 ? c0 + {vw} : row1;",
        f"    for (int i0 = c0; i0 < c1; i0 += {rows}) {{",
    ]
    for r in range(rows, 0, -1):
        cond = f"i0 + {rows} <= c1" if r == rows else f"c1 - i0 == {r}"
        lines.append(f"      {'if' if r == rows else '} else if'} ({cond}) {{")
        lines += ["        " + line for line in _row_block(ctype, vw, batch, r)]
    lines += ["      }", "    }"]
    lines += ["    " + line for line in _chunk_epilogue(ctype, np.dtype(dtype).itemsize, vw,
                                                             batch, extras)]
    return params, lines + ["  }", "}"]


def _as_int(name, value, where):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"BackpropUpdatePlan: {name} must be a positive int ({where})")
    return int(value)


class BackpropUpdatePlan:
    """One planned backward step of a dense layer, shapes fixed: P = epilogue(D @ W^T, E0, ...),
    W_out = beta * W + alpha * H^T @ D and V = column_epilogue(column sums of D, O0, ...), in
    one kernel reading W once.

    Storage is row-major: H and P are batch x n_in, D is batch x n_out, W and W_out are
    n_in x n_out, the ``extras`` operands E0, ... batch x n_in, V and the ``columns`` operands
    O0, ... have n_out elements. ``epilogue`` is an OpenCL C expression in v, e0, e1, ...
    valid for scalars and 4- and 8-wide vectors of the dtype, as GemmPlan's (None: v), e.g.
    ``v * e0 * (1 - e0)``; ``column_epilogue`` a scalar expression in s, o0, o1, ..., e.g.
    ``o0 - 0.1f * s``. W_out may be W (the same buffer and offset: P uses the old W), V one of
    the O and P one of the E; no other output may overlap any operand. W is read whatever
    beta is. batch is at most ``max_batch`` (12 for AVX2, 28 for AVX-512; see ``supports``).
    enqueue and bind set only the arguments that changed since the previous call.

    With ``backward=False`` the plan computes only W_out and V (a first layer's update, for
    batches up to ``max_batch(bits, dtype, backward=False)``, 64):
    epilogue must be None and extras 0, and enqueue and bind take p=None (p_offset is
    ignored). Such a plan may read H through an index, as GemmPlan reads A: with ``h_rows``
    = R the stored H has R rows and batch row b is its row index[b], for the int32 vector
    ``h_index`` given to bind (batch entries, kept in [0, R) by the caller).
    """

    max_batch = staticmethod(max_batch)

    def __init__(
        self,
        context: cl.Context,
        batch: int,
        n_in: int,
        n_out: int,
        *,
        dtype=np.float32,
        epilogue: str | None = None,
        extras: int = 0,
        column_epilogue: str,
        columns: int,
        backward: bool = True,
        h_rows: int | None = None,
        program_cache=None,
    ):
        shapes = f"batch={batch}, n_in={n_in}, n_out={n_out}"
        batch = _as_int("batch", batch, shapes)
        n_in = _as_int("n_in", n_in, shapes)
        n_out = _as_int("n_out", n_out, shapes)
        h_rows = None if h_rows is None else _as_int("h_rows", h_rows, shapes)
        for name, v in (("extras", extras), ("columns", columns)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
                raise ValueError(f"BackpropUpdatePlan: {name} must be an int >= 0, not {v!r}")
        dtype = checked_dtype(dtype, context, "BackpropUpdatePlan", shapes)
        backward = bool(backward)
        if backward and h_rows is not None:
            raise ValueError("BackpropUpdatePlan: h_rows (H read through an index) needs "
                             f"backward=False ({shapes})")
        if not backward and (epilogue is not None or extras != 0):
            raise ValueError("BackpropUpdatePlan: without the backward product (backward=False) "
                             f"there is no epilogue: it must be None and extras 0, not "
                             f"{epilogue!r} and {extras!r}")
        if epilogue is not None and not isinstance(epilogue, str):
            raise ValueError("BackpropUpdatePlan: epilogue must be an OpenCL C expression in v, "
                             f"e0, ... or None, not {epilogue!r}")
        if not isinstance(column_epilogue, str):
            raise ValueError("BackpropUpdatePlan: column_epilogue must be an OpenCL C expression "
                             f"in s, o0, ..., not {column_epilogue!r}")
        device = context.devices[0]
        bits = vector_bits(device)
        top = max_batch(bits, dtype, backward)
        if batch > top and backward:
            raise ValueError(
                f"BackpropUpdatePlan: batch {batch} needs more vector registers than a "
                f"{bits}-bit device has; at most {top} ({shapes})")
        if batch > top:
            raise ValueError(
                f"BackpropUpdatePlan: batch {batch} is too large for the update without the "
                f"backward product on a {bits}-bit device (a GEMM is faster); at most {top} "
                f"({shapes})")
        if max(batch * n_in, batch * n_out, n_in * n_out, (h_rows or 0) * n_in) >= 2**31:
            raise ValueError(f"BackpropUpdatePlan: operands of 2**31 elements or more ({shapes})")
        self.batch, self.n_in, self.n_out, self.dtype = batch, n_in, n_out, dtype
        self.epilogue, self.extras = epilogue, int(extras)
        self.column_epilogue, self.columns = column_epilogue, int(columns)
        self.backward, self.h_rows = backward, h_rows
        self.rows = _rows_per_block(batch, bits, backward)
        self._source = program_source(dtype, batch, epilogue, self.extras, column_epilogue,
                                      self.columns, bits, backward,
                                      needs_avx512_attribute(device, bits), h_rows is not None)
        program = _build(context, self._source, program_cache)
        self._kernel = cl.Kernel(program, "backprop_update")
        vw = bits // (8 * dtype.itemsize)
        units = context.devices[0].max_compute_units
        self._key = self._scalars = None
        if not backward:
            self._kernel.set_scalar_arg_dtypes(
                [None, np.int32] * (5 + (h_rows is not None) + self.columns)
                + [np.int32] * 3 + [dtype.type] * 2)
            # rows per work-item: a multiple of the block's, at least 4 work-items per unit
            rows = min(_UPDATE_ITEM_ROWS, -(-n_in // (4 * units)))
            per_item = -(-rows // self.rows) * self.rows
            self._shape_args = (n_in, n_out, per_item)
            self._grid = (-(-n_in // per_item),)
            return
        self._kernel.set_scalar_arg_dtypes(
            [None, np.int32] * (6 + self.extras + self.columns)
            + [np.int32] * 3 + [dtype.type] * 2)
        chunks = -(-n_in // vw)  # chunks of vw rows, reduced together
        chunk_work = 2 * vw * batch * n_out
        per_item = max(1, min(-(-_MIN_WORK // chunk_work), chunks // (4 * units)))
        self._shape_args = (n_in, n_out, per_item * vw)
        self._grid = (-(-chunks // per_item),)

    def source(self) -> str:
        """The OpenCL source of this plan's kernel."""
        return self._source

    def _check(self, name, buf, offset, count):
        """Raise ValueError unless buf holds count elements from offset (an int)."""
        if isinstance(buf, cl.Buffer) and (
                isinstance(offset, bool) or not isinstance(offset, (int, np.integer))):
            raise ValueError(f"BackpropUpdatePlan: the offset of {name} must be an int")
        check_buffer("BackpropUpdatePlan", name, buf, offset, count, self.dtype.itemsize,
                     f"batch={self.batch}, n_in={self.n_in}, n_out={self.n_out}")

    def enqueue(self, queue: cl.CommandQueue, h, d, w, w_out, p, *, h_offset=0, d_offset=0,
                w_offset=0, w_out_offset=0, p_offset=0, extras=(), column_sums=(), h_index=None,
                alpha=1.0, beta=1.0, wait_for=None) -> cl.Event:
        """Enqueue the step (the arguments as for bind); returns the event of the kernel."""
        event = None
        launches = self.bind(h, d, w, w_out, p, h_offset=h_offset, d_offset=d_offset,
                             w_offset=w_offset, w_out_offset=w_out_offset, p_offset=p_offset,
                             extras=extras, column_sums=column_sums, h_index=h_index,
                             alpha=alpha, beta=beta)
        for kernel, grid, local in launches:
            event = cl.enqueue_nd_range_kernel(queue, kernel, grid, local, wait_for=wait_for)
            wait_for = [event]
        return event

    def bind(self, h, d, w, w_out, p, *, h_offset=0, d_offset=0, w_offset=0, w_out_offset=0,
             p_offset=0, extras=(), column_sums=(), h_index=None, alpha=1.0,
             beta=1.0) -> list[tuple]:
        """Set the kernel arguments for these operands and return the launches, (kernel,
        global size, local size), to enqueue in order. Offsets count elements; ``extras`` are
        the (buffer, offset) pairs of E0, E1, ..., ``column_sums`` those of V, O0, O1, ....
        The same buffers and offsets as the previous call are not checked or set again, and
        alpha and beta only when they change. p is None for a plan without the backward
        product; ``h_index`` the (buffer, offset) of the row index of a plan with h_rows."""
        extras, column_sums = tuple(extras), tuple(column_sums)
        if not self.backward:
            p_offset = 0  # ignored
        key = (id(h), id(d), id(w), id(w_out), id(p), h_offset, d_offset, w_offset,
               w_out_offset, p_offset,
               tuple((id(buf), offset) for buf, offset in extras + column_sums),
               h_index and (id(h_index[0]), h_index[1]))
        if key != self._key:
            self._key = None
            self._bind(h, d, w, w_out, p, h_offset, d_offset, w_offset, w_out_offset, p_offset,
                       extras, column_sums, h_index)
            self._key = key
            self._bound = (h, d, w, w_out, p, extras, column_sums, h_index)  # ids in use
            self._scalars = None
        if (alpha, beta) != self._scalars:
            self._args[-2:] = alpha, beta
            self._kernel.set_args(*self._args)
            self._scalars = alpha, beta
        return self._launches

    def _bind(self, h, d, w, w_out, p, h_offset, d_offset, w_offset, w_out_offset, p_offset,
              extras, column_sums, h_index):
        """Check the operands and set every kernel argument but alpha and beta."""
        b, n_in, n_out = self.batch, self.n_in, self.n_out
        if (h_index is None) != (self.h_rows is None):
            raise ValueError(
                f"BackpropUpdatePlan: the plan was built with h_rows={self.h_rows}; pass "
                f"h_index=(buffer, offset) exactly when h_rows is set")
        index_args = ()
        if h_index is not None:
            check_buffer("BackpropUpdatePlan", "h_index", *h_index, b, 4,
                         f"batch={b}, n_in={n_in}, n_out={n_out}")
            index_args = tuple(h_index)
        if len(extras) != self.extras or len(column_sums) != 1 + self.columns:
            raise ValueError(
                f"BackpropUpdatePlan: the plan was built for {self.extras} extra epilogue "
                f"operands and {1 + self.columns} column-sum operands (V, O0, ...); got "
                f"{len(extras)} and {len(column_sums)}")
        # (name in messages, kind, buffer, offset, elements)
        inputs = [("h", "h", h, h_offset, (self.h_rows or b) * n_in),
                  ("d", "d", d, d_offset, b * n_out),
                  ("w", "w", w, w_offset, n_in * n_out)]
        inputs += [(f"extras[{k}]", "e", buf, off, b * n_in)
                   for k, (buf, off) in enumerate(extras)]
        inputs += [(f"column_sums[{k + 1}] (O{k})", "o", buf, off, n_out)
                   for k, (buf, off) in enumerate(column_sums[1:])]
        outputs = [("w_out", "w_out", w_out, w_out_offset, n_in * n_out),
                   ("p", "p", p, p_offset, b * n_in),
                   ("column_sums[0] (V)", "v", *column_sums[0], n_out)]
        if not self.backward:
            if p is not None:
                raise ValueError("BackpropUpdatePlan: the plan computes no backward product "
                                 "(backward=False): pass p=None")
            del outputs[1]
        for name, _, buf, offset, count in inputs + outputs:
            self._check(name, buf, offset, count)
        # An output may be exactly the operand it replaces element by element (each element
        # is read and then written by one work-item), else it must not overlap any operand.
        replaces = {("w_out", "w"), ("p", "e"), ("v", "o")}
        for i, (name, kind, buf, off, count) in enumerate(outputs):
            for other, other_kind, obuf, ooff, ocount in inputs + outputs[:i]:
                if buf.int_ptr != obuf.int_ptr or off >= ooff + ocount or ooff >= off + count:
                    continue
                if off == ooff and (kind, other_kind) in replaces:
                    continue
                raise ValueError(
                    f"BackpropUpdatePlan: {name} overlaps {other}; an output may only be "
                    f"exactly the operand it replaces (w_out: w, p: an extra, V: an O)")
        args = [h, h_offset, *index_args, d, d_offset, w, w_offset, w_out, w_out_offset]
        if self.backward:
            args += [p, p_offset]
        for buf, off in extras + column_sums:
            args += [buf, off]
        self._args = [*args, *self._shape_args, 0, 0]
        self._launches = [(self._kernel, self._grid, (1,))]
