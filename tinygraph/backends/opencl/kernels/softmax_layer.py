"""A softmax output layer in one work-group: its logits with their crossentropy gradient and
cost total (``DotCrossentropyGradTotal``), and the same with the layer's backward product and
weight and bias updates (``SoftmaxLayerStep``). The crossentropy part is softmax.py's
one-group total kernel; the logits go to each row's gradient row before its softmax.
"""

from __future__ import annotations

from ..kernel_spec import KernelSpec, Operand, c_type
from .reduce import unaligned_vector
from .softmax import one_group_total_specs, total_group

_LOGITS_UNROLL = 4  # k steps of a logits row accumulated into separate sums


def _class_chunks(k: int) -> list[tuple[int, int]]:
    """(first class, vector width) of the vectors covering ``k`` classes, widest first."""
    chunks, start = [], 0
    for width in (16, 8, 4, 2, 1):
        while k - start >= width:
            chunks.append((start, width))
            start += width
    return chunks


def _chunk_types(ctype, chunks) -> tuple[dict, dict, dict]:
    """(type, load prefix, store prefix) by width of the class chunks' vectors (scalars for
    width 1), loaded and stored through element-aligned pointers."""
    widths = {w for _, w in chunks}
    vec = {w: f"{ctype}{w}" if w > 1 else ctype for w in widths}
    load = {w: f"*(const __global {unaligned_vector(ctype, w)[1]} *)" if w > 1 else "*"
            for w in widths}
    store = {w: f"*(__global {unaligned_vector(ctype, w)[1]} *)" if w > 1 else "*"
             for w in widths}
    return vec, load, store


def _logits_lines(ctype, hidden, k, epilogue) -> tuple[str, str]:
    """(typedefs, C lines) computing row ``row``'s logits ``epilogue(h[row] @ W + b)`` into
    ``q``: vectors over the classes, ``_LOGITS_UNROLL`` partial sums over the hidden units."""
    chunks = _class_chunks(k)
    vec, load, store = _chunk_types(ctype, chunks)
    typedefs = "".join(unaligned_vector(ctype, w)[0] for w in sorted({w for _, w in chunks})
                       if w > 1)
    u_max = _LOGITS_UNROLL

    def step(u: int) -> list[str]:
        lines = [f"        {{ const {ctype} a = hr[t + {u}]; "
                 f"const __global {ctype} *wr = wm + (t + {u}) * {k}L;"]
        lines += [f"          s{u}_{c} += a * {load[w]}(wr + {c});" for c, w in chunks]
        return lines + ["        }"]

    lines = [f"    const __global {ctype} *hr = h + h_off + row * {hidden}L;"]
    lines += [f"    {vec[w]} s{u}_{c} = 0;" for u in range(u_max) for c, w in chunks]
    lines += ["    long t = 0;", f"    for (; t + {u_max} <= {hidden}L; t += {u_max}) {{"]
    for u in range(u_max):
        lines += step(u)
    lines += ["    }", f"    for (; t < {hidden}L; t++) {{", *step(0), "    }"]
    for c, w in chunks:
        total = " + ".join(f"s{u}_{c}" for u in range(u_max))
        lines.append(f"    {store[w]}(q + {c}) = ({total}) + {load[w]}(bias + {c});")
    if epilogue != "v":
        lines.append(f"    for (long j = 0; j < {k}L; j++) {{ {ctype} v = q[j]; "
                     f"q[j] = {epilogue}; }}")
    return typedefs, "".join(line + "\n" for line in lines)


def dot_crossentropy_total_specs(dtype, g_strides, batch, hidden, k, epilogue, y_dtype,
                                 y_strides, total, mean: bool) -> list[KernelSpec]:
    """:func:`crossentropy_total_specs` of the logits ``epilogue(h @ W + b)`` (``epilogue`` a
    C expression in ``v``) of inputs 1-3, contiguous: h (batch, hidden), W (hidden, k) and b
    (k,); the labels are input 4 and the total's operands follow. Each row's logits go to its
    gradient row first, so they are never stored elsewhere."""
    ctype = c_type(dtype)
    typedefs, logits = _logits_lines(ctype, hidden, k, epilogue)
    params = (f"__global const {ctype} *h, long h_off, __global const {ctype} *wm, long wm_off, "
              f"__global const {ctype} *bias, long bias_off")
    prologue = "    wm += wm_off; bias += bias_off;\n"
    return one_group_total_specs("tg_dot_crossentropy_total", dtype, g_strides, (batch, k),
                                 (k, 1), y_dtype, y_strides, total, mean, params, prologue,
                                 [Operand("in", 1), Operand("in", 2), Operand("in", 3)],
                                 logits=logits, typedefs=typedefs)


def backward_operands(extras: int, hidden: int) -> list[str]:
    """The names a ``SoftmaxLayerStep`` kernel's backward epilogue reads: the product ``v``
    and the elements of its ``extras`` matrices at row ``r``, column ``kk``."""
    return ["v", *(f"A{j}[a{j}_off + r * {hidden}L + kk]" for j in range(extras))]


def column_operands(columns: int) -> list[str]:
    """The names of the ``columns`` vectors' elements a column epilogue reads at class j."""
    return [f"O{j}[o{j}_off + j]" for j in range(columns)]


def softmax_layer_step_specs(dtype, g_strides, batch, hidden, k, epilogue, y_dtype, y_strides,
                             total, mean: bool, backward: str, extras: int, column_epilogue: str,
                             columns: int) -> list[KernelSpec]:
    """:func:`dot_crossentropy_total_specs`, then, once the gradient d (output 4) is complete,
    the layer's updates and backward product as ``BackpropUpdate`` defines them, all from
    the old W and b: output 1 W' = beta * W + alpha * h.T @ d (alpha and beta by value, the
    inputs after the total's operands), output 2 V = column_epilogue(column sums of d, O0,
    ...) for the ``columns`` vectors after beta, output 3 backward(d @ W.T, A0, ...) for the
    ``extras`` (batch, hidden) matrices after those. ``backward`` and ``column_epilogue``
    are C expressions in :func:`backward_operands` and in ``s`` and :func:`column_operands`.
    Work-items take W's rows in turn; the first also stores V. W' and V may be W and b."""
    ctype = c_type(dtype)
    typedefs, logits = _logits_lines(ctype, hidden, k, epilogue)
    first = 5 + len(total.operand_dtypes)
    more_params = (f"const {ctype} alpha, const {ctype} beta, "
                   + "".join(f"__global const {ctype} *O{j}, long o{j}_off, "
                             for j in range(columns))
                   + "".join(f"__global const {ctype} *A{j}, long a{j}_off, "
                             for j in range(extras))
                   + f"__global {ctype} *wout, long wout_off, __global {ctype} *vout, "
                   f"long vout_off, __global {ctype} *gin, long gin_off, ")
    more_args = [Operand("value", first), Operand("value", first + 1),
                 *(Operand("in", first + 2 + j) for j in range(columns + extras)),
                 Operand("out", 1), Operand("out", 2), Operand("out", 3)]
    typedefs += _hsum_functions(ctype, k)
    tail = _updates_lines(ctype, batch, hidden, k, backward, column_epilogue)
    params = (f"__global const {ctype} *h, long h_off, __global const {ctype} *wm, long wm_off, "
              f"__global const {ctype} *bias, long bias_off")
    return one_group_total_specs("tg_softmax_layer_step", dtype, g_strides, (batch, k), (k, 1),
                                 y_dtype, y_strides, total, mean, params,
                                 "    wm += wm_off; bias += bias_off;\n",
                                 [Operand("in", 1), Operand("in", 2), Operand("in", 3)],
                                 logits=logits, typedefs=typedefs, more_params=more_params,
                                 more_args=more_args, tail=tail, dz_arg=Operand("out", 4))


def _hsum_functions(ctype, k) -> str:
    """``tg_hsum<w>``: the sum of a vector's lanes, for the class chunks' widths."""
    lines = []
    for w in sorted({w for _, w in _class_chunks(k) if w > 1}):
        body, value, width = [], "v", w
        while width > 2:
            width //= 2
            body.append(f"{ctype}{width} h{width} = {value}.lo + {value}.hi;")
            value = f"h{width}"
        lines.append(f"inline {ctype} tg_hsum{w}({ctype}{w} v) {{ {' '.join(body)} "
                     f"return {value}.x + {value}.y; }}\n")
    return "".join(lines)


def _updates_lines(ctype, batch, hidden, k, backward, column_epilogue) -> str:
    """C lines run once the gradient d is complete: each work-item takes W's rows kk in
    turn, keeps the old row in vectors over the classes, and for every minibatch row r adds
    h[r, kk] d[r] to the row's update and stores backward(d[r] . W[kk]) at (r, kk); the
    first work-item then stores the bias update."""
    chunks = _class_chunks(k)
    vec, load, store = _chunk_types(ctype, chunks)
    hsum = {w: (f"tg_hsum{w}" if w > 1 else "") for _, w in chunks}
    at = f"r * {hidden}L + kk"
    lines = ["    barrier(CLK_GLOBAL_MEM_FENCE);",
             f"    const __global {ctype} *d = dz + dz_off;",
             f"    for (long kk = lid; kk < {hidden}L; kk += {total_group(batch)}L) {{",
             f"        const __global {ctype} *wr = wm + kk * {k}L;"]
    lines += [f"        const {vec[w]} w{c} = {load[w]}(wr + {c}); {vec[w]} u{c} = 0;"
              for c, w in chunks]
    lines += [f"        for (long r = 0; r < {batch}L; r++) {{",
              f"            const __global {ctype} *dr = d + r * {k}L;",
              f"            const {ctype} a = h[h_off + {at}];"]
    lines += [f"            const {vec[w]} d{c} = {load[w]}(dr + {c}); u{c} += a * d{c};"
              for c, w in chunks]
    dot = " + ".join(f"{hsum[w]}(d{c} * w{c})" for c, w in chunks)
    lines += [f"            const {ctype} v = {dot};",
              f"            gin[gin_off + {at}] = {backward};", "        }"]
    lines += [f"        {store[w]}(wout + wout_off + kk * {k}L + {c}) = beta * w{c} + alpha * u{c};"
              for c, w in chunks]
    lines += ["    }", "    if (lid == 0) {",
              f"        for (long j = 0; j < {k}L; j++) {{",
              f"            {ctype} s = 0;",
              f"            for (long r = 0; r < {batch}L; r++) s += d[r * {k}L + j];",
              f"            vout[vout_off + j] = {column_epilogue};", "        }", "    }"]
    return "".join(line + "\n" for line in lines)
