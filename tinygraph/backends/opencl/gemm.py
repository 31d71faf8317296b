"""Matrix-product kernels: C = epilogue(alpha * op(A) @ op(B) + beta * C + bias) on OpenCL.

Tuned for PoCL on x86 CPUs (see /work/shared/POCL.md): each work-item computes an MR x NR block
of C in vector registers, reading B either directly or from 16-column panels packed by a small
kernel, with no local memory and no branches in the inner loop.
"""

from __future__ import annotations

import numpy as np
import pyopencl as cl

_PACK_K = 64  # k rows packed per work-item
_NV = 2  # vectors per row of a C block: 16 floats or 8 doubles, two AVX2 registers
_UNROLL = 4  # k steps per inner-loop iteration
_MR_CHOICES = (4, 5, 6)  # rows per C block; 6 x 2 accumulators fill the 16 AVX2 registers
_PACK_MIN_BLOCKS = 8  # pack B once this many row blocks reuse each panel
_BAND_BYTES = 256 * 1024  # A rows walked per panel, kept in L2

_TYPES = {
    np.dtype(np.float32): ("float", 8),
    np.dtype(np.float64): ("double", 4),
}


def _gemm_source(ctype, vw, trans_a, bias, epilogue, mr, nv, unroll):
    """OpenCL source of the gemm kernel and the two B-packing kernels."""
    vt = f"{ctype}{vw}"
    nr = vw * nv
    lines = []
    if ctype == "double":
        lines.append("#pragma OPENCL EXTENSION cl_khr_fp64 : enable")
    lines += [
        f"typedef {vt} __attribute__((aligned(sizeof({ctype})))) vtu;",
        f"#define EPI(v) ({epilogue or 'v'})",
        "",
    ]
    bias_args = f"__global const {ctype} *bias, const int bias_off," if bias else ""
    a_step = "M" if trans_a else "1"
    lines += [
        f"__kernel void gemm(__global const {ctype} *A, const int a_off,",
        f"                   __global const {ctype} *B, const int b_off,",
        f"                   __global {ctype} *C, const int c_off, {bias_args}",
        "                   const int M, const int N, const int K, const int packed,",
        "                   const int mb,",
        f"                   const {ctype} alpha, const {ctype} beta)",
        "{",
        # Work-items walk down a band of mb row blocks for each panel in turn, so the band of A
        # and the current B panel stay in cache.
        f"  const int nbi = (M + {mr - 1}) / {mr};",
        f"  const int npan = (N + {nr - 1}) / {nr};",
        "  const int w = get_global_id(0);",
        "  const int band = w / (mb * npan);",
        "  const int rem = w - band * mb * npan;",
        "  const int rows = nbi - band * mb < mb ? nbi - band * mb : mb;",
        "  const int j = rem / rows;",
        f"  const int i0 = (band * mb + rem - j * rows) * {mr};",
        f"  const int lo = j * {nr};",
        f"  const int cs = (packed || lo + {nr} <= N) ? lo : N - {nr};",
        f"  const __global {ctype} *bp = packed ? B + (size_t)j * K * {nr} : B + b_off + cs;",
        f"  const size_t bs = packed ? {nr} : N;",
    ]
    for r in range(mr):
        row = f"(i0 + {r} < M ? i0 + {r} : M - 1)"
        off = row if trans_a else f"(size_t){row} * K"
        lines.append(f"  const __global {ctype} *a{r} = A + a_off + {off};")
    for r in range(mr):
        lines.append("  " + " ".join(f"{vt} c{r}_{q} = 0;" for q in range(nv)))

    def step(u):
        out = []
        for q in range(nv):
            out.append(f"    const {vt} b{q} = *(const __global vtu *)(bp + {u} * bs + {q * vw});")
        for r in range(mr):
            out.append(f"    const {ctype} x{r} = a{r}[{u} * {a_step}];")
            for q in range(nv):
                out.append(f"    c{r}_{q} = x{r} * b{q} + c{r}_{q};")
        return ["   {"] + out + ["   }"]

    lines.append("  int kk = 0;")
    lines.append(f"  for (; kk + {unroll} <= K; kk += {unroll}) {{")
    for u in range(unroll):
        lines += step(u)
    lines.append(f"    bp += {unroll} * bs;")
    for r in range(mr):
        lines.append(f"    a{r} += {unroll} * {a_step};")
    lines.append("  }")
    lines.append("  for (; kk < K; ++kk) {")
    lines += step(0)
    lines.append("    bp += bs;")
    for r in range(mr):
        lines.append(f"    a{r} += {a_step};")
    lines.append("  }")

    # Epilogue: full tiles store vectors; the partial last tile goes through a union, guarded.
    lines.append(f"  if (lo + {nr} <= N) {{")
    for q in range(nv):
        if bias:
            lines.append(
                f"    const {vt} d{q} = *(const __global vtu *)(bias + bias_off + lo + {q * vw});"
            )
    for r in range(mr):
        lines.append(f"    if (i0 + {r} < M) {{")
        lines.append(f"      __global {ctype} *cp = C + c_off + (size_t)(i0 + {r}) * N + lo;")
        for q in range(nv):
            lines.append(f"      {{ {vt} v = alpha * c{r}_{q};")
            lines.append(f"        if (beta != 0) v = beta * *(__global vtu *)(cp + {q * vw}) + v;")
            if bias:
                lines.append(f"        v += d{q};")
            lines.append(f"        *(__global vtu *)(cp + {q * vw}) = EPI(v); }}")
        lines.append("    }")
    lines.append("  } else {")
    lines.append(f"    union {{ {vt} v[{nv}]; {ctype} s[{nr}]; }} t;")
    for r in range(mr):
        lines.append(f"    if (i0 + {r} < M) {{")
        lines.append(f"      __global {ctype} *cp = C + c_off + (size_t)(i0 + {r}) * N;")
        for q in range(nv):
            lines.append(f"      t.v[{q}] = alpha * c{r}_{q};")
        lines.append(f"      for (int c = 0; c < {nr}; ++c) {{")
        lines.append("        const int col = cs + c;")
        lines.append("        if (col >= lo && col < N) {")
        lines.append("          if (beta != 0) t.s[c] += beta * cp[col];")
        if bias:
            lines.append("          t.s[c] += bias[bias_off + col];")
        lines.append("        }")
        lines.append("      }")
        for q in range(nv):
            lines.append(f"      t.v[{q}] = EPI(t.v[{q}]);")
        lines.append(f"      for (int c = 0; c < {nr}; ++c) {{")
        lines.append("        const int col = cs + c;")
        lines.append("        if (col >= lo && col < N) cp[col] = t.s[c];")
        lines.append("      }")
        lines.append("    }")
    lines.append("  }")
    lines.append("}")
    lines.append("")

    # Packing: panel j holds columns [j*NR, j*NR+NR) of B for every k, zero padded.
    lines += [
        f"__kernel void pack_b(__global const {ctype} *B, const int b_off,",
        f"                     __global {ctype} *P, const int K, const int N)",
        "{",
        f"  const int k0 = get_global_id(0) * {_PACK_K};",
        f"  const int k1 = k0 + {_PACK_K} < K ? k0 + {_PACK_K} : K;",
        "  const int j = get_global_id(1);",
        f"  const int lo = j * {nr};",
        f"  __global {ctype} *dst = P + (size_t)j * K * {nr};",
        f"  const __global {ctype} *src = B + b_off + lo;",
        f"  if (lo + {nr} <= N) {{",
        "    for (int kk = k0; kk < k1; ++kk) {",
    ]
    for q in range(nv):
        lines.append(
            f"      *(__global {vt} *)(dst + kk * {nr} + {q * vw})"
            f" = *(const __global vtu *)(src + (size_t)kk * N + {q * vw});"
        )
    lines += [
        "    }",
        "  } else {",
        "    for (int kk = k0; kk < k1; ++kk)",
        f"      for (int c = 0; c < {nr}; ++c)",
        f"        dst[kk * {nr} + c] = lo + c < N ? src[(size_t)kk * N + c] : 0;",
        "  }",
        "}",
        "",
        f"__kernel void pack_bt(__global const {ctype} *B, const int b_off,",
        f"                      __global {ctype} *P, const int K, const int N)",
        "{",
        f"  const int k0 = get_global_id(0) * {_PACK_K};",
        f"  const int k1 = k0 + {_PACK_K} < K ? k0 + {_PACK_K} : K;",
        "  const int j = get_global_id(1);",
        f"  const int lo = j * {nr};",
        f"  __global {ctype} *dst = P + (size_t)j * K * {nr};",
        f"  for (int c = 0; c < {nr}; ++c) {{",
        "    const int col = lo + c < N ? lo + c : N - 1;",
        f"    const __global {ctype} *src = B + b_off + (size_t)col * K;",
        "    if (lo + c < N)",
        f"      for (int kk = k0; kk < k1; ++kk) dst[kk * {nr} + c] = src[kk];",
        "    else",
        f"      for (int kk = k0; kk < k1; ++kk) dst[kk * {nr} + c] = 0;",
        "  }",
        "}",
    ]
    return "\n".join(lines) + "\n"


def _pick_mr(m):
    """Rows per work-item: the fewest padded rows, weighting each block by its B traffic."""
    return min(_MR_CHOICES, key=lambda mr: (-(-m // mr) * (mr + 2), -mr))


class GemmPlan:
    """One planned product C = epilogue(alpha * op(A) @ op(B) + beta * C + bias), shapes fixed.

    The program, kernels and packing scratch are made once here; enqueue only sets arguments
    and enqueues one or two kernels. The scratch is reused, so enqueue a plan in order.
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
        program_cache=None,
    ):
        shapes = f"m={m}, n={n}, k={k}"
        for name, v in (("m", m), ("n", n), ("k", k)):
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise ValueError(f"GemmPlan: {name} must be a positive int ({shapes})")
        dtype = np.dtype(dtype)
        if dtype not in _TYPES:
            raise ValueError(f"GemmPlan: dtype must be float32 or float64, got {dtype} ({shapes})")
        if dtype == np.float64 and any("cl_khr_fp64" not in d.extensions for d in context.devices):
            raise ValueError("GemmPlan: float64 needs a device with cl_khr_fp64; use float32")
        if epilogue is not None and not isinstance(epilogue, str):
            raise ValueError(
                f"GemmPlan: epilogue must be an OpenCL C expression in v or None, got {epilogue!r}"
            )
        m, n, k = int(m), int(n), int(k)
        if max(m * k, k * n, m * n) >= 2**31:
            raise ValueError(f"GemmPlan: operands over 2**31 elements are not supported ({shapes})")
        self.m, self.n, self.k = m, n, k
        self.trans_a, self.trans_b, self.dtype = bool(trans_a), bool(trans_b), dtype
        self.bias, self.epilogue = bool(bias), epilogue

        ctype, vw = _TYPES[dtype]
        nr = vw * _NV
        mr = _pick_mr(m)
        nbi, npan = -(-m // mr), -(-n // nr)
        self._packed = self.trans_b or n < nr or nbi >= _PACK_MIN_BLOCKS
        self._source = _gemm_source(ctype, vw, self.trans_a, self.bias, epilogue, mr, _NV, _UNROLL)
        if program_cache is None:
            program = cl.Program(context, self._source).build()
        else:
            program = program_cache.build(context, self._source)

        scalar = dtype.type
        self._scalar = scalar
        self._gemm = cl.Kernel(program, "gemm")
        self._gemm.set_scalar_arg_dtypes(
            [None, np.int32, None, np.int32, None, np.int32]
            + ([None, np.int32] if self.bias else [])
            + [np.int32] * 5
            + [scalar, scalar]
        )
        band = max(1, _BAND_BYTES // (mr * k * dtype.itemsize))
        self._shape_args = (m, n, k, int(self._packed), band)
        self._grid = (nbi * npan,)
        if self._packed:
            self._pack = cl.Kernel(program, "pack_bt" if self.trans_b else "pack_b")
            self._pack.set_scalar_arg_dtypes([None, np.int32, None, np.int32, np.int32])
            self._panels = cl.Buffer(
                context, cl.mem_flags.READ_WRITE, npan * nr * k * dtype.itemsize
            )
            self._pack_grid = (-(-k // _PACK_K), npan)

    def source(self) -> str:
        """All OpenCL source this plan uses."""
        return self._source

    def _check(self, name, buf, offset, count):
        if offset < 0 or (offset + count) * self.dtype.itemsize > buf.size:
            raise ValueError(
                f"GemmPlan: {name} needs {count} elements from offset {offset} but its buffer "
                f"holds {buf.size // self.dtype.itemsize} (m={self.m}, n={self.n}, k={self.k})"
            )

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
        alpha: float = 1.0,
        beta: float = 0.0,
        wait_for=None,
    ) -> cl.Event:
        """Enqueue the product on queue; offsets are in elements. Returns the last event."""
        m, n, k = self.m, self.n, self.k
        self._check("a", a, a_offset, m * k)
        self._check("b", b, b_offset, k * n)
        self._check("c", c, c_offset, m * n)
        if self.bias:
            if bias is None:
                raise ValueError("GemmPlan: this plan was built with bias=True; pass bias=")
            self._check("bias", bias, bias_offset, n)
            bias_args = (bias, bias_offset)
        elif bias is not None:
            raise ValueError("GemmPlan: bias given to a plan built with bias=False")
        else:
            bias_args = ()
        if self._packed:
            self._pack.set_args(b, b_offset, self._panels, k, n)
            wait_for = [
                cl.enqueue_nd_range_kernel(
                    queue, self._pack, self._pack_grid, (1, 1), wait_for=wait_for
                )
            ]
            b, b_offset = self._panels, 0
        self._gemm.set_args(
            a, a_offset, b, b_offset, c, c_offset, *bias_args, *self._shape_args, alpha, beta
        )
        return cl.enqueue_nd_range_kernel(queue, self._gemm, self._grid, (1,), wait_for=wait_for)
