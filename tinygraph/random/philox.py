"""Counter-based random numbers (Philox-4x32-10), bit-identical in NumPy and OpenCL C.

Every output element is a pure function of (key, base, element index), so results do not
depend on the backend, the device or its core count.

Conventions
-----------
- ``philox4x32_10``: Random123's Philox-4x32-10 (10 rounds, multipliers 0xD2511F53 and
  0xCD9E8D57, Weyl key increments 0x9E3779B9 and 0xBB67AE85).
- A draw uses a 64-bit ``key`` (k0 = low 32 bits, k1 = high 32 bits) and a 64-bit block
  counter ``base``. Block b = (base + block_index) mod 2**64 has counter (lo32(b), hi32(b), 0, 0)
  and yields the words (w0, w1, w2, w3). ``derive_key(seed, stream_index)`` mixes both with
  splitmix64; after a draw advance base by ``blocks_used(...)``.
- Element j is the j-th element in C order of the output:

  * uniform float32: block j//4, word w = w_{j%4}, u = (w >> 8) * 2**-24 in [0, 1).
  * uniform float64: block j//2, (wa, wb) = words (2*(j%2), 2*(j%2)+1),
    u = ((wa >> 5) * 2**26 + (wb >> 6)) * 2**-53 in [0, 1).
  * Both then return low + (high - low) * u, each op rounded in the output dtype.
  * normal (Box-Muller), float32: (wa, wb) = words (0, 1) of block j//4 if j%4 < 2, else
    words (2, 3); u1 = ((wa >> 8) + 1) * 2**-24 in (0, 1], u2 = (wb >> 8) * 2**-24.
    float64: block j//2; u1 = (53-bit integer of words (0, 1) as above + 1) * 2**-53,
    u2 = the uniform of words (2, 3). Then
    z = sqrt(-2 * log(u1)) * (cos(2 pi u2) if j is even else sin(2 pi u2))
    and the result is mean + std * z.
  * binomial(n, p): count of t in 0..n-1 with u_{j*n+t} < p, u being the uniform [0, 1)
    sequence of the same key and base in float32, or float64 when p has dtype float64.

log, sin(2 pi u) and cos(2 pi u) are computed here from + - * / sqrt and bit operations only
(no libm), with the same operation order in NumPy and OpenCL, so both round identically.
log follows fdlibm/musl (reduction to [sqrt(1/2), sqrt(2)), atanh series); sin and cos reduce
u exactly by quarter turns and use Taylor polynomials in r in [-1/8, 1/8].

OpenCL: ``opencl_source(dtype)`` returns helper functions (no kernels); see its docstring.
Programs that include them must not be built with -cl-fast-relaxed-math,
-cl-unsafe-math-optimizations or -cl-mad-enable.
"""

import numpy as np

_M32 = 0xFFFFFFFF
_M64 = 0xFFFFFFFFFFFFFFFF
_PHILOX_M = (0xD2511F53, 0xCD9E8D57)
_PHILOX_W = (0x9E3779B9, 0xBB67AE85)

# Per dtype: uniforms per Philox block, log constants (ln2 split, fdlibm/musl Lg1..), and
# Taylor coefficients of sin(2 pi r) / r and cos(2 pi r) in powers of r**2.
_CONST = {
    np.dtype(np.float32): dict(
        per_block=4,
        ln2="0x1.62e3p-1 0x1.2fefa2p-17",
        lg="0x1.555554p-1 0x1.999c26p-2 0x1.23d3dcp-2 0x1.f13c4cp-3",
        sin="0x1.921fb6p+2 -0x1.4abbcep+5 0x1.466bc6p+6 -0x1.32d2ccp+6 0x1.507834p+5",
        cos="0x1p+0 -0x1.3bd3ccp+4 0x1.03c1f0p+6 -0x1.55d3c8p+6 0x1.e1f506p+5 -0x1.a6d1f2p+4",
    ),
    np.dtype(np.float64): dict(
        per_block=2,
        ln2="0x1.62e42feep-1 0x1.a39ef35793c76p-33",
        lg="0x1.5555555555593p-1 0x1.999999997fa04p-2 0x1.2492494229359p-2 0x1.c71c51d8e78afp-3 "
        "0x1.7466496cb03dep-3 0x1.39a09d078c69fp-3 0x1.2f112df3e5244p-3",
        sin="0x1.921fb54442d18p+2 -0x1.4abbce625be53p+5 0x1.466bc6775aae2p+6 -0x1.32d2cce62bd86p+6 "
        "0x1.50783487ee782p+5 -0x1.e3074fde8871fp+3 0x1.e8f434d018d63p+1 -0x1.6fadb9f155744p-1 "
        "0x1.aaec32af93359p-4",
        cos="0x1p+0 -0x1.3bd3cc9be45dep+4 0x1.03c1f081b5ac4p+6 -0x1.55d3c7e3cbffap+6 "
        "0x1.e1f506891babbp+5 -0x1.a6d1f2a204a8cp+4 0x1.f9d38a3763cc3p+2 -0x1.b6e24f44b128fp+0 "
        "0x1.20c62c2f2d7f5p-2",
    ),
}
_DISTRIBUTIONS = ("uniform", "normal", "binomial")


def _float_dtype(dtype):
    dtype = np.dtype(dtype)
    if dtype not in _CONST:
        raise ValueError(f"unsupported dtype {dtype}; use float32 or float64")
    return dtype


def _consts(dtype, name):
    return [dtype.type(float.fromhex(c)) for c in _CONST[dtype][name].split()]


def _horner(x, coeffs):
    acc = coeffs[-1]
    for c in reversed(coeffs[:-1]):
        acc = c + x * acc
    return acc


def philox4x32_10(ctr, key):
    """Philox-4x32-10 of counter words ``ctr`` (4 uint32 arrays) under ``key`` = (k0, k1) ints."""
    c0, c1, c2, c3 = np.broadcast_arrays(*(np.asarray(c, np.uint32) for c in ctr))
    m0, m1 = (np.uint64(m) for m in _PHILOX_M)
    for r in range(10):
        k0 = np.uint32((int(key[0]) + r * _PHILOX_W[0]) & _M32)
        k1 = np.uint32((int(key[1]) + r * _PHILOX_W[1]) & _M32)
        p0 = c0.astype(np.uint64) * m0
        p1 = c2.astype(np.uint64) * m1
        c0, c1, c2, c3 = (
            (p1 >> np.uint64(32)).astype(np.uint32) ^ c1 ^ k0,
            p1.astype(np.uint32),
            (p0 >> np.uint64(32)).astype(np.uint32) ^ c3 ^ k1,
            p0.astype(np.uint32),
        )
    return c0, c1, c2, c3


def derive_key(seed, stream_index):
    """64-bit key of draw ``stream_index`` of a RandomStreams seeded with ``seed``."""

    def splitmix64(x):
        x = (x + 0x9E3779B97F4A7C15) & _M64
        x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
        x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
        return x ^ (x >> 31)

    return splitmix64(splitmix64(seed & _M64) ^ (stream_index & _M64))


def blocks_used(distribution, n_elements, dtype, n=1):
    """Philox blocks consumed by a draw: advance base by this much before the next draw.

    ``dtype`` is the float precision of the uniforms (for binomial: float64 iff p is float64).
    """
    if distribution not in _DISTRIBUTIONS:
        raise ValueError(f"unknown distribution {distribution!r}")
    if distribution == "binomial":
        n_elements *= n
    return -(-n_elements // _CONST[_float_dtype(dtype)]["per_block"])


def _blocks(key, base, n_blocks):
    b = np.uint64(base & _M64) + np.arange(n_blocks, dtype=np.uint64)
    lo = b.astype(np.uint32)
    hi = (b >> np.uint64(32)).astype(np.uint32)
    zero = np.zeros_like(lo)
    return philox4x32_10((lo, hi, zero, zero), (key & _M32, (key >> 32) & _M32))


def _unit32(w, offset=0):
    return ((w >> np.uint32(8)) + np.uint32(offset)).astype(np.float32) * np.float32(2.0**-24)


def _unit64(wa, wb, offset=0):
    i = (wa >> np.uint32(5)).astype(np.uint64) << np.uint64(26) | wb >> np.uint32(6)
    return (i + np.uint64(offset)).astype(np.float64) * np.float64(2.0**-53)


def _uniform01(key, base, size, dtype):
    w = _blocks(key, base, blocks_used("uniform", size, dtype))
    if dtype == np.float32:
        u = np.stack([_unit32(x) for x in w], axis=-1)
    else:
        u = np.stack([_unit64(w[0], w[1]), _unit64(w[2], w[3])], axis=-1)
    return u.reshape(-1)[:size]


def _shape(size_or_shape):
    if isinstance(size_or_shape, (int, np.integer)):
        return (int(size_or_shape),)
    return tuple(int(s) for s in size_or_shape)


def uniform(key, base, size_or_shape, dtype, low=0.0, high=1.0):
    """Uniform [low, high) numbers of float32/float64 ``dtype``; low/high broadcast."""
    dtype = _float_dtype(dtype)
    shape = _shape(size_or_shape)
    u = _uniform01(key, base, int(np.prod(shape)), dtype).reshape(shape)
    low = np.asarray(low, dtype)
    return low + (np.asarray(high, dtype) - low) * u


def log(x):
    """Natural log of positive normal float32/float64 ``x`` (musl's branch-free logf/log)."""
    x = np.asarray(x)
    dtype = _float_dtype(x.dtype)
    t = dtype.type
    if dtype == np.float32:
        ix = x.view(np.uint32) + np.uint32(0x3F800000 - 0x3F3504F3)
        k = (ix >> np.uint32(23)).astype(np.int32) - np.int32(127)
        m = ((ix & np.uint32(0x7FFFFF)) + np.uint32(0x3F3504F3)).view(np.float32)
    else:
        ix = x.view(np.uint64) + np.uint64((0x3FF00000 - 0x3FE6A09E) << 32)
        k = (ix >> np.uint64(52)).astype(np.int64) - np.int64(1023)
        m = ((ix & np.uint64(0xFFFFFFFFFFFFF)) + np.uint64(0x3FE6A09E << 32)).view(np.float64)
    ln2_hi, ln2_lo = _consts(dtype, "ln2")
    lg = _consts(dtype, "lg")
    f = m - t(1)
    hfsq = t(0.5) * f * f
    s = f / (t(2) + f)
    z = s * s
    w = z * z
    r = z * _horner(w, lg[0::2]) + w * _horner(w, lg[1::2])
    dk = k.astype(dtype)
    return s * (hfsq + r) + dk * ln2_lo - hfsq + f + dk * ln2_hi


def sincos2pi(u):
    """(sin(2 pi u), cos(2 pi u)) for float32/float64 ``u`` in [0, 1)."""
    u = np.asarray(u)
    dtype = _float_dtype(u.dtype)
    t = dtype.type
    q = (u * t(4) + t(0.5)).astype(np.int32)
    r = u - q.astype(dtype) * t(0.25)
    z = r * r
    s = r * _horner(z, _consts(dtype, "sin"))
    c = _horner(z, _consts(dtype, "cos"))

    def quadrant(qq):
        v = np.where(qq & 1, s, c)
        return np.where((qq + 1) & 2, -v, v)

    return quadrant(q + 3), quadrant(q)


def normal(key, base, shape, dtype, mean=0.0, std=1.0):
    """Normal(mean, std) numbers of float32/float64 ``dtype`` by Box-Muller; mean/std broadcast."""
    dtype = _float_dtype(dtype)
    shape = _shape(shape)
    size = int(np.prod(shape))
    w = _blocks(key, base, blocks_used("normal", size, dtype))
    if dtype == np.float32:
        pairs = [(_unit32(w[0], 1), _unit32(w[1])), (_unit32(w[2], 1), _unit32(w[3]))]
    else:
        pairs = [(_unit64(w[0], w[1], 1), _unit64(w[2], w[3]))]
    out = []
    for u1, u2 in pairs:
        rad = np.sqrt(dtype.type(-2) * log(u1))
        sin, cos = sincos2pi(u2)
        out += [rad * cos, rad * sin]
    z = np.stack(out, axis=-1).reshape(-1)[:size].reshape(shape)
    return np.asarray(mean, dtype) + np.asarray(std, dtype) * z


def binomial(key, base, shape, n, p, dtype):
    """Binomial(n, p) counts as ``dtype``; uniforms are float64 iff p has dtype float64."""
    shape = _shape(shape)
    size = int(np.prod(shape))
    prec = np.dtype(np.float64 if getattr(p, "dtype", None) == np.float64 else np.float32)
    u = _uniform01(key, base, size * n, prec).reshape(shape + (n,))
    hits = u < np.asarray(p, prec)[..., None]
    return hits.sum(axis=-1, dtype=np.int64).astype(dtype)


def _c_lit(c, dtype):
    return f"({c}{'f' if dtype == np.float32 else ''})"


def _c_horner(x, coeffs, dtype):
    out = _c_lit(coeffs[-1], dtype)
    for c in reversed(coeffs[:-1]):
        out = f"({_c_lit(c, dtype)} + {x} * {out})"
    return out


_C_PHILOX = """
#ifndef TG_PHILOX_CL
#define TG_PHILOX_CL
#define TG_INLINE static inline __attribute__((always_inline))
#define TG_PHILOX_ROUND(k0, k1) \\
    p0 = 0xD2511F53ul * c0; p1 = 0xCD9E8D57ul * c2; \\
    c2 = (uint)(p0 >> 32) ^ c3 ^ (k1); c0 = (uint)(p1 >> 32) ^ c1 ^ (k0); \\
    c1 = (uint)p1; c3 = (uint)p0;

/* Philox-4x32-10 of counter (c0, c1, c2, c3) under key (k0, k1). */
TG_INLINE uint4 tg_philox4x32_10(uint c0, uint c1, uint c2, uint c3, uint k0, uint k1) {
    ulong p0, p1;
    TG_PHILOX_ROUND(k0, k1)
    TG_PHILOX_ROUND(k0 + 0x9E3779B9u, k1 + 0xBB67AE85u)
    TG_PHILOX_ROUND(k0 + 0x3C6EF372u, k1 + 0x76CF5D0Au)
    TG_PHILOX_ROUND(k0 + 0xDAA66D2Bu, k1 + 0x32370B8Fu)
    TG_PHILOX_ROUND(k0 + 0x78DDE6E4u, k1 + 0xED9EBA14u)
    TG_PHILOX_ROUND(k0 + 0x1715609Du, k1 + 0xA9066899u)
    TG_PHILOX_ROUND(k0 + 0xB54CDA56u, k1 + 0x646E171Eu)
    TG_PHILOX_ROUND(k0 + 0x5384540Fu, k1 + 0x1FD5C5A3u)
    TG_PHILOX_ROUND(k0 + 0xF1BBCDC8u, k1 + 0xDB3D7428u)
    TG_PHILOX_ROUND(k0 + 0x8FF34781u, k1 + 0x96A522ADu)
    return (uint4)(c0, c1, c2, c3);
}

/* The 4 words of block `block` of the stream with 64-bit key `key`. */
TG_INLINE uint4 tg_philox_block(ulong key, ulong block) {
    return tg_philox4x32_10((uint)block, (uint)(block >> 32), 0u, 0u,
                            (uint)key, (uint)(key >> 32));
}
#endif
"""

_C_F32 = """
#ifndef TG_RANDOM_F32_CL
#define TG_RANDOM_F32_CL
TG_INLINE float tg_unit_f32(uint w) {
    return (float)(w >> 8) * 0x1p-24f;
}

TG_INLINE float tg_log_f32(float x) {
    #pragma OPENCL FP_CONTRACT OFF
    uint ix = as_uint(x) + (0x3F800000u - 0x3F3504F3u);
    float dk = (float)((int)(ix >> 23) - 127);
    float f = as_float((ix & 0x7FFFFFu) + 0x3F3504F3u) - 1.0f;
    float hfsq = 0.5f * f * f;
    float s = f / (2.0f + f);
    float z = s * s;
    float w = z * z;
    float r = z * @LG_ODD@ + w * @LG_EVEN@;
    return s * (hfsq + r) + dk * @LN2_LO@ - hfsq + f + dk * @LN2_HI@;
}

/* cos(2 pi u) if odd == 0 else sin(2 pi u), for u in [0, 1). */
TG_INLINE float tg_trig2pi_f32(float u, uint odd) {
    #pragma OPENCL FP_CONTRACT OFF
    int q = (int)(u * 4.0f + 0.5f);
    float r = u - (float)q * 0.25f;
    float z = r * r;
    float s = r * @SIN@;
    float c = @COS@;
    uint qq = (uint)q + 3u * odd;
    float v = (qq & 1u) ? s : c;
    return ((qq + 1u) & 2u) ? -v : v;
}

/* The [0, 1) uniform of element j. */
TG_INLINE float tg_unit_at_f32(ulong key, ulong base, ulong j) {
    uint4 w = tg_philox_block(key, base + (j >> 2));
    uint even = (j & 1ul) ? w.y : w.x;
    uint odd = (j & 1ul) ? w.w : w.z;
    return tg_unit_f32((j & 2ul) ? odd : even);
}

TG_INLINE float tg_uniform_f32(ulong key, ulong base, ulong j, float low, float high) {
    #pragma OPENCL FP_CONTRACT OFF
    return low + (high - low) * tg_unit_at_f32(key, base, j);
}

TG_INLINE float tg_normal_f32(ulong key, ulong base, ulong j, float mean, float std) {
    #pragma OPENCL FP_CONTRACT OFF
    uint4 w = tg_philox_block(key, base + (j >> 2));
    uint wa = (j & 2ul) ? w.z : w.x;
    uint wb = (j & 2ul) ? w.w : w.y;
    float u1 = (float)((wa >> 8) + 1u) * 0x1p-24f;
    float rad = __builtin_sqrtf(-2.0f * tg_log_f32(u1));
    return mean + std * (rad * tg_trig2pi_f32(tg_unit_f32(wb), (uint)j & 1u));
}

/* Count of t < n with uniform(j * n + t) < p; costs n Philox blocks. */
TG_INLINE uint tg_binomial_f32(ulong key, ulong base, ulong j, uint n, float p) {
    uint count = 0u;
    for (uint t = 0u; t < n; t++) count += (uint)(tg_unit_at_f32(key, base, j * n + t) < p);
    return count;
}
#endif
"""

_C_F64 = """
#ifndef TG_RANDOM_F64_CL
#define TG_RANDOM_F64_CL
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
TG_INLINE double tg_unit_f64(uint wa, uint wb) {
    return (double)(((ulong)(wa >> 5) << 26) | (wb >> 6)) * 0x1p-53;
}

TG_INLINE double tg_log_f64(double x) {
    #pragma OPENCL FP_CONTRACT OFF
    ulong ix = as_ulong(x) + ((ulong)(0x3FF00000u - 0x3FE6A09Eu) << 32);
    double dk = (double)((long)(ix >> 52) - 1023l);
    double f = as_double((ix & 0xFFFFFFFFFFFFFul) + ((ulong)0x3FE6A09Eu << 32)) - 1.0;
    double hfsq = 0.5 * f * f;
    double s = f / (2.0 + f);
    double z = s * s;
    double w = z * z;
    double r = z * @LG_ODD@ + w * @LG_EVEN@;
    return s * (hfsq + r) + dk * @LN2_LO@ - hfsq + f + dk * @LN2_HI@;
}

/* cos(2 pi u) if odd == 0 else sin(2 pi u), for u in [0, 1). */
TG_INLINE double tg_trig2pi_f64(double u, uint odd) {
    #pragma OPENCL FP_CONTRACT OFF
    int q = (int)(u * 4.0 + 0.5);
    double r = u - (double)q * 0.25;
    double z = r * r;
    double s = r * @SIN@;
    double c = @COS@;
    uint qq = (uint)q + 3u * odd;
    double v = (qq & 1u) ? s : c;
    return ((qq + 1u) & 2u) ? -v : v;
}

/* The [0, 1) uniform of element j. */
TG_INLINE double tg_unit_at_f64(ulong key, ulong base, ulong j) {
    uint4 w = tg_philox_block(key, base + (j >> 1));
    uint wa = (j & 1ul) ? w.z : w.x;
    uint wb = (j & 1ul) ? w.w : w.y;
    return tg_unit_f64(wa, wb);
}

TG_INLINE double tg_uniform_f64(ulong key, ulong base, ulong j, double low, double high) {
    #pragma OPENCL FP_CONTRACT OFF
    return low + (high - low) * tg_unit_at_f64(key, base, j);
}

TG_INLINE double tg_normal_f64(ulong key, ulong base, ulong j, double mean, double std) {
    #pragma OPENCL FP_CONTRACT OFF
    uint4 w = tg_philox_block(key, base + (j >> 1));
    double u1 = (double)((((ulong)(w.x >> 5) << 26) | (w.y >> 6)) + 1ul) * 0x1p-53;
    double rad = __builtin_sqrt(-2.0 * tg_log_f64(u1));
    return mean + std * (rad * tg_trig2pi_f64(tg_unit_f64(w.z, w.w), (uint)j & 1u));
}

/* Count of t < n with uniform(j * n + t) < p; costs n Philox blocks. */
TG_INLINE uint tg_binomial_f64(ulong key, ulong base, ulong j, uint n, double p) {
    uint count = 0u;
    for (uint t = 0u; t < n; t++) count += (uint)(tg_unit_at_f64(key, base, j * n + t) < p);
    return count;
}
#endif
"""


def opencl_source(dtype):
    """OpenCL C helpers (no kernels) for float32 or float64 draws; concatenations are safe.

    Element index ``j``, 64-bit ``key`` and block ``base`` are ulong arguments (as in NumPy):
    ``T tg_uniform_<s>(key, base, j, T low, T high)``,
    ``T tg_normal_<s>(key, base, j, T mean, T std)``,
    ``uint tg_binomial_<s>(key, base, j, uint n, T p)`` (the count), with <s> = f32 (T float)
    or f64 (T double, enables cl_khr_fp64), plus ``uint4 tg_philox_block(key, block)`` and
    ``uint4 tg_philox4x32_10(c0, c1, c2, c3, k0, k1)``. All are always_inline and each
    function body sets FP_CONTRACT OFF; sqrt is clang's ``__builtin_sqrt[f]`` (the pip PoCL
    does not inline ``sqrt``). Pass ``n`` as a literal so the binomial loop unrolls.
    """
    dtype = _float_dtype(dtype)
    const = {name: _CONST[dtype][name].split() for name in ("ln2", "lg", "sin", "cos")}
    subs = {
        "@LN2_HI@": _c_lit(const["ln2"][0], dtype),
        "@LN2_LO@": _c_lit(const["ln2"][1], dtype),
        "@LG_ODD@": _c_horner("w", const["lg"][0::2], dtype),
        "@LG_EVEN@": _c_horner("w", const["lg"][1::2], dtype),
        "@SIN@": _c_horner("z", const["sin"], dtype),
        "@COS@": _c_horner("z", const["cos"], dtype),
    }
    src = _C_F32 if dtype == np.float32 else _C_F64
    for token, text in subs.items():
        src = src.replace(token, text)
    return _C_PHILOX + src
