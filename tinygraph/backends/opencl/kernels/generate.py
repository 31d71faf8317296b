"""Kernels generating values: ``arange`` and random draws (Philox, bit-identical to
``tinygraph.random.philox``'s NumPy functions)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ....random.philox import opencl_source
from ..kernel_spec import KernelSpec, Operand, c_literal, c_type, fp64_pragma
from .reduce import guard, launch_1d


@dataclass(frozen=True)
class RandomKey:
    """Argument placeholder: the draw's 64-bit key, bound by the linker as ``np.uint64``."""


@dataclass(frozen=True)
class RandomBase:
    """Argument placeholder: the draw's first Philox block counter, as ``np.uint64``."""


def arange_specs(dtype, start, step, n: int) -> list[KernelSpec]:
    """Output 0 = ``numpy.arange(start, start + n * step, step, dtype)`` bit for bit: element
    1 is ``dtype(start + step)`` and element i >= 2 is ``start + i * delta`` in ``dtype`` with
    ``delta = element 1 - element 0`` (NumPy's fill)."""
    dtype = np.dtype(dtype)
    if n == 0:
        return []
    first = dtype.type(start)
    second = dtype.type(start + step)
    with np.errstate(over="ignore"):
        delta = second - first
    ctype = c_type(dtype)
    gsize, lsize = launch_1d(n)
    start, delta = c_literal(first, dtype), c_literal(delta, dtype)
    rest = (f"{start} + ({ctype})gid * {delta}" if dtype.kind == "f"
            else f"({ctype})({start} + gid * {delta})")  # NumPy: in npy_intp, then cast
    value = f"gid == 0 ? {start} : gid == 1 ? {c_literal(second, dtype)} : {rest}"
    src = (f"{fp64_pragma(dtype)}__kernel void tg_arange(__global {ctype} *y, long y_off) {{\n"
           "    #pragma OPENCL FP_CONTRACT OFF\n"
           f"    long gid = get_global_id(0);\n{guard(n, gsize)}"
           f"    y[y_off + gid] = {value};\n}}\n")
    return [KernelSpec(src, "tg_arange", gsize, lsize, [Operand("out", 0)])]


_LANES = 16  # Philox blocks per work-item in the vector kernels
_WEYL = (0x9E3779B9, 0xBB67AE85)


def _philox_lanes() -> list[str]:
    """C lines computing Philox-4x32-10 of blocks ``base + gid * 16 + lane`` in uint16 lanes
    ``c0 .. c3`` (the same arithmetic as ``tg_philox4x32_10``)."""
    lines = ["uint k0 = (uint)key, k1 = (uint)(key >> 32);",
             f"ulong16 blk = base + (ulong)gid * {_LANES}ul + "
             f"(ulong16)({', '.join(str(i) for i in range(_LANES))});",
             "uint16 c0 = __builtin_convertvector(blk, uint16);",
             "uint16 c1 = __builtin_convertvector(blk >> 32, uint16), c2 = 0, c3 = 0;",
             "ulong16 p0, p1;"]
    for r in range(10):
        w0, w1 = ((r * w) & 0xFFFFFFFF for w in _WEYL)
        lines += ["p0 = __builtin_convertvector(c0, ulong16) * 0xD2511F53ul;",
                  "p1 = __builtin_convertvector(c2, ulong16) * 0xCD9E8D57ul;",
                  f"c0 = __builtin_convertvector(p1 >> 32, uint16) ^ c1 ^ (k0 + {w0:#x}u);",
                  "c1 = __builtin_convertvector(p1, uint16);",
                  f"c2 = __builtin_convertvector(p0 >> 32, uint16) ^ c3 ^ (k1 + {w1:#x}u);",
                  "c3 = __builtin_convertvector(p0, uint16);"]
    return lines


def _lane_values(distribution, suffix, otype) -> list[str]:
    """C lines computing ``v0 ..``: per element of a block, the 16 lanes' values (as the
    ``tg_*_<suffix>`` helpers compute them; 24- and 53-bit integers convert exactly as
    signed)."""
    if suffix == "f32":
        units = [f"__builtin_convertvector(__builtin_convertvector(c{e} >> 8, int16), float16)"
                 " * 0x1p-24f" for e in range(4)]
        vtype, cmp = "float16", "int16"
    else:
        units = [f"__builtin_convertvector(__builtin_convertvector(__builtin_convertvector("
                 f"c{2 * e} >> 5, ulong16) << 26 | __builtin_convertvector(c{2 * e + 1} >> 6, "
                 "ulong16), long16), double16) * 0x1p-53" for e in range(2)]
        vtype, cmp = "double16", "long16"
    if distribution == "uniform":
        return [f"{vtype} v{e} = a + (b - a) * ({u});" for e, u in enumerate(units)]
    return [f"{otype}16 v{e} = __builtin_convertvector(-({cmp})(({u}) < b), {otype}16);"
            for e, u in enumerate(units)]


def _lanes_body(distribution, suffix, otype, size, n_others=None):
    """Kernel body of the vector kernels: 16 blocks per work-item, their elements stored as
    16-element vectors (the last work-item copies its part element by element). With
    ``n_others`` (a count), each element also goes through ``tg_map`` with the elements of the
    operands ``o0 ..`` at its position, into ``z``."""
    per_block = 4 if suffix == "f32" else 2
    chunk = _LANES * per_block
    vtype = f"{otype}16" if distribution == "binomial" else (
        "float16" if suffix == "f32" else "double16")
    lines = _philox_lanes() + _lane_values(distribution, suffix, otype)
    stores = []
    for c in range(chunk // 16):
        parts = [f"v{q % per_block}.s{q // per_block:x}" for q in range(16 * c, 16 * c + 16)]
        stores.append(f"({vtype})({', '.join(parts)})")
    lines.append(f"{vtype} chunk[{len(stores)}] = {{{', '.join(stores)}}};")
    lines.append(f"__global {otype} *out = y + y_off + gid * {chunk}L;")
    store = [f"*(__global tg_out16_u *)(out + {16 * c}) = chunk[{c}];"
             for c in range(len(stores))]
    copy = f"out[q] = (({otype} *)chunk)[q];"
    if n_others is not None:
        others = [f"o{j}" for j in range(n_others)]
        lines += [f"const __global {otype} *{o}p = {o} + {o}_off + gid * {chunk}L;"
                  for o in others]
        lines.append(f"__global {otype} *zp = z + z_off + gid * {chunk}L;")
        copy += (f" zp[q] = tg_map(out[q]{''.join(f', {o}p[q]' for o in others)});")
        for c in range(len(stores)):
            loads = "".join(f", *(const __global tg_out16_u *)({o}p + {16 * c})"
                            for o in others)
            store.append(f"*(__global tg_out16_u *)(zp + {16 * c}) = "
                         f"tg_map16(chunk[{c}]{loads});")
    if size % chunk:
        lines += [f"long rem = {size}L - gid * {chunk}L;",
                  f"if (rem < {chunk}L) {{",
                  f"    for (long q = 0; q < rem; q++) {{ {copy} }}",
                  "    return;", "}"]
    lines += store
    return (f"typedef {otype}16 __attribute__((aligned(sizeof({otype})))) tg_out16_u;\n",
            "".join(f"    {line}\n" for line in lines), -(-size // chunk))


def _normal_values(suffix):
    """C lines computing ``v0 ..``: the normal draws of the elements of block ``base + gid``
    from its words ``w``, exactly as ``tg_normal_<suffix>`` does, one log per pair."""
    if suffix == "f32":
        ftype, sqrt = "float", "__builtin_sqrtf(-2.0f"
        pairs = [("(float)((w.x >> 8) + 1u) * 0x1p-24f", "tg_unit_f32(w.y)"),
                 ("(float)((w.z >> 8) + 1u) * 0x1p-24f", "tg_unit_f32(w.w)")]
    else:
        ftype, sqrt = "double", "__builtin_sqrt(-2.0"
        pairs = [("(double)((((ulong)(w.x >> 5) << 26) | (w.y >> 6)) + 1ul) * 0x1p-53",
                  "tg_unit_f64(w.z, w.w)")]
    lines = []
    for k, (u1, u2) in enumerate(pairs):
        lines += [f"{ftype} rad_{k} = {sqrt} * tg_log_{suffix}({u1}));",
                  f"{ftype} u2_{k} = {u2};"]
        lines += [f"{ftype} v{2 * k + odd} = a + b * (rad_{k} * "
                  f"tg_trig2pi_{suffix}(u2_{k}, {odd}u));" for odd in (0, 1)]
    return lines


def maps_in_lanes(distribution: str, n_trials: int) -> bool:
    """Whether ``random_specs`` can apply a map to the draws (the vector kernels)."""
    return distribution == "uniform" or distribution == "binomial" and n_trials == 1


def random_specs(distribution: str, dtype, n_trials: int, shape, map_expression=None,
                 map_inputs: int = 0) -> list[KernelSpec]:
    """Output 1 (the sample of a ``RandomDraw``) filled with ``distribution`` draws of element
    index j, as ``philox.uniform/normal/binomial(key, base, shape, ...)`` give them. Arguments:
    ``RandomKey()``, ``RandomBase()`` and inputs 2 and 3, 0-d arrays holding the parameters
    (low/high, mean/std, or p for binomial, which does not read input 2).

    Uniform and one-trial binomial draws (dropout masks) compute 16 Philox blocks per
    work-item in vector lanes; normal draws one block (4 or 2 elements) per work-item; other
    binomials one element per work-item.

    With ``map_expression`` (vector draws only, see ``maps_in_lanes``; a float ``dtype``),
    output 2 also gets ``map_expression`` of each draw ``m`` and the elements ``e0 ..`` at its
    position of inputs 4 .. 3 + ``map_inputs``, contiguous arrays of ``shape`` and ``dtype``
    (a ``RandomDrawMap``): an expression valid for scalars and vectors."""
    dtype = np.dtype(dtype)
    size = math.prod(shape)
    if size == 0:
        return []
    pdtype = dtype if dtype.kind == "f" else np.dtype(np.float32)
    suffix = "f32" if pdtype == np.float32 else "f64"
    ptype, otype = c_type(pdtype), c_type(dtype)
    params = ["__global const {t} *pa, long pa_off", "__global const {t} *pb, long pb_off"]
    args = [Operand("out", 1), RandomKey(), RandomBase(), Operand("in", 2), Operand("in", 3)]
    reads = f"    {ptype} a = pa[pa_off], b = pb[pb_off];\n"
    if distribution == "binomial":
        params, args = params[1:], args[:3] + args[4:]
        reads = f"    {ptype} b = pb[pb_off];\n"
    typedef = ""
    if distribution == "binomial" and n_trials != 1:
        n_items = size
        body = (f"    y[y_off + gid] = ({otype})tg_binomial_{suffix}(key, base, (ulong)gid, "
                f"{n_trials}u, b);\n")
    elif distribution == "normal":
        per_block = 4 if suffix == "f32" else 2
        n_items = -(-size // per_block)
        lines = ["uint4 w = tg_philox_block(key, base + (ulong)gid);", *_normal_values(suffix),
                 f"__global {otype} *out = y + y_off + gid * {per_block}L;"]
        for e in range(per_block):
            store = f"out[{e}] = v{e};"
            lines.append(f"if (gid * {per_block}L + {e}L < {size}L) {store}"
                         if size % per_block and e else store)
        body = "".join(f"    {line}\n" for line in lines)
    else:
        typedef, body, n_items = _lanes_body(distribution, suffix, otype, size,
                                             None if map_expression is None else map_inputs)
    helpers = ""
    if map_expression is not None:
        if not maps_in_lanes(distribution, n_trials) or dtype.kind != "f":
            raise ValueError(f"random_specs: no map for {distribution} draws of {dtype}")
        for name, vtype in (("tg_map", otype), ("tg_map16", f"{otype}16")):
            operands = ", ".join([f"{vtype} m"] + [f"{vtype} e{j}" for j in range(map_inputs)])
            helpers += (f"{vtype} {name}({operands}) {{\n    #pragma OPENCL FP_CONTRACT OFF\n"
                        f"    return {map_expression};\n}}\n")
        params += [f"__global const {otype} *o{j}, long o{j}_off" for j in range(map_inputs)]
        params.append(f"__global {otype} *z, long z_off")
        args += [Operand("in", 4 + j) for j in range(map_inputs)] + [Operand("out", 2)]
    gsize, lsize = launch_1d(n_items)
    src = (fp64_pragma(dtype, pdtype) + opencl_source(pdtype) + typedef + helpers
           + f"__kernel void tg_{distribution}(__global {otype} *y, long y_off, ulong key, "
           f"ulong base, {', '.join(p.format(t=ptype) for p in params)}) {{\n"
           "    #pragma OPENCL FP_CONTRACT OFF\n    long gid = get_global_id(0);\n"
           + guard(n_items, gsize) + reads + body + "}\n")
    return [KernelSpec(src, f"tg_{distribution}", gsize, lsize, args)]
