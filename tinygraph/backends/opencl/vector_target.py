"""The vector instructions compute-bound kernels are written for on a device, and how they get
compiled for them.

PoCL compiles for the CPU its LLVM knows. On this Zen 4 machine Debian's PoCL 3.1 targets
AVX-512 and names the target in the device name; the pip PoCL 3.0 (LLVM 14) targets AVX2, 16
vector registers, which caps a GEMM block at 6 x 16 floats. Its compiler still emits AVX-512 for
a function marked ``__attribute__((target(...)))`` when the CPU has it. A kernel's own mark is
lost: PoCL inlines the kernel into a work-group function built for its default target, and the
8 x 32 blocks then spill (1.3-1.9x slower). A function the kernel calls keeps it. So these
kernels are a thin ``__kernel`` calling a body function, which such a device compiles for
AVX-512 and does not inline (pip PoCL, in-process A/B: 256x784x200 1.2x, 10x1000x1000 1.3x,
1024^3 1.13x faster, 0.90-1.09 of PoCL 3.1's speed there; training steps of W2 0.91 and W3
0.76 of their time).
"""

from __future__ import annotations

import pyopencl as cl

AVX512_FEATURES = ("avx512f", "avx512vl", "avx512bw", "avx512dq")
_POCL = "Portable Computing Language"


def cpu_has_avx512() -> bool:
    """Whether this CPU and OS run the AVX512_FEATURES (NumPy's runtime CPU detection)."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as features
    except ImportError:
        try:
            from numpy.core._multiarray_umath import __cpu_features__ as features
        except ImportError:
            return False
    return all(features.get(name.upper(), False) for name in AVX512_FEATURES)


def compiles_for_avx512(device) -> bool:
    """Whether the device's compiler targets AVX-512 by default (PoCL names its CPU device
    after the target)."""
    return "avx512" in getattr(device, "name", "").lower()


def pocl_cpu(device) -> bool:
    """Whether the device is PoCL's CPU device: it runs kernels on this process's CPU."""
    platform = getattr(device, "platform", None)
    return _POCL in getattr(platform, "name", "") and bool(
        getattr(device, "type", 0) & cl.device_type.CPU)


def avx512_by_attribute(device) -> bool:
    """Whether AVX-512 code reaches this device only through a target attribute: a PoCL CPU
    device compiling for less, on a CPU that has it."""
    return not compiles_for_avx512(device) and pocl_cpu(device) and cpu_has_avx512()


def vector_bits(device) -> int:
    """512 if the device runs AVX-512 kernels (natively or by attribute), else 256."""
    return 512 if compiles_for_avx512(device) or avx512_by_attribute(device) else 256


def needs_avx512_attribute(device, bits: int) -> bool:
    """Whether kernels designed for ``bits``-bit vectors need the AVX-512 target attribute on
    this device (512 on a device that reaches AVX-512 only that way)."""
    return bits == 512 and avx512_by_attribute(device)


def target_section(lines: list[str], attribute: bool) -> list[str]:
    """``lines`` (functions, not kernels) compiled for AVX-512 when ``attribute``, else as is."""
    if not attribute:
        return lines
    features = ",".join(AVX512_FEATURES)
    return [
        f'#pragma clang attribute push (__attribute__((target("{features}"))), '
        "apply_to = function)",
        *lines,
        "#pragma clang attribute pop",
    ]


def body_header(name: str, params: str, attribute: bool) -> str:
    """First line of the body function of kernel ``name``: its parameters and the work-item
    index ``item`` (what get_global_id(0) gives the kernel). Not inlined when ``attribute``:
    PoCL would inline it into code built for its default target."""
    inline = "__attribute__((noinline))" if attribute else "inline"
    return f"static {inline} void {name}_body({params}, const int item)"


def argument_names(params: str) -> str:
    """The names in a C parameter list: "A, a_off" for "__global float *A, const int a_off"."""
    return ", ".join(param.split()[-1].lstrip("*") for param in params.split(","))


def kernel_calling_body(name: str, params: str, args: str) -> list[str]:
    """The ``__kernel`` ``name`` taking ``params`` that calls its body function with ``args``
    (their names) and its work-item index."""
    return [f"__kernel void {name}({params}) {{ {name}_body({args}, get_global_id(0)); }}"]


def epilogue_overloads(ctype: str, widths, params, expression: str) -> list[str]:
    """Overloads of ``epilogue`` for vectors of ``ctype`` with these lane counts.

    Vectors of up to 256 bits compute ``expression`` (in v and the parameters' names), wider
    ones split in halves: a builtin such as exp taking a 512-bit vector is then never called,
    which the pip PoCL cannot compile for double8 and which changes the calling convention in
    AVX-512 body functions. ``params(t)`` gives the parameters after v for type t, and the
    halves pass ``.lo``/``.hi`` of each.
    """
    lanes = 256 // (8 * (8 if ctype == "double" else 4))
    widths = set(widths)
    while halves := {w // 2 for w in widths if w > lanes} - widths:
        widths |= halves
    out = []
    for w in sorted(widths):
        t = f"{ctype}{w}" if w > 1 else ctype
        head = f"inline {t} __attribute__((overloadable)) epilogue({t} v{params(t)})"
        if w <= lanes:
            out.append(f"{head} {{ return {expression}; }}")
            continue
        names = [p.split()[-1] for p in params(t).split(",")[1:]]
        lo, hi = ("".join(f", {n}.{h}" for n in names) for h in ("lo", "hi"))
        out.append(f"{head} {{ return ({t})(epilogue(v.lo{lo}), epilogue(v.hi{hi})); }}")
    return out
