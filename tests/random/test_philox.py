"""Tests for tinygraph/random/philox.py: known answers, NumPy/OpenCL bit-identity, statistics."""

import importlib.util
from pathlib import Path

import numpy as np
import pyopencl as cl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

_PATH = Path(__file__).resolve().parents[2] / "tinygraph" / "random" / "philox.py"
_SPEC = importlib.util.spec_from_file_location("tg_philox", _PATH)
philox = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(philox)

F32, F64 = np.dtype(np.float32), np.dtype(np.float64)
_SUFFIX = {F32: "f32", F64: "f64"}
_TWO_PI = np.longdouble("6.28318530717958647692528676655900577")

_KERNELS = """
__kernel void philox(__global uint4 *out, __global const uint4 *ctr, uint k0, uint k1) {
    size_t j = get_global_id(0);
    uint4 c = ctr[j];
    out[j] = tg_philox4x32_10(c.x, c.y, c.z, c.w, k0, k1);
}
"""
_TYPED_KERNELS = """
__kernel void uniform_S(__global T *out, ulong key, ulong base, T low, T high) {
    size_t j = get_global_id(0);
    out[j] = tg_uniform_S(key, base, j, low, high);
}
__kernel void normal_S(__global T *out, ulong key, ulong base, T mean, T std) {
    size_t j = get_global_id(0);
    out[j] = tg_normal_S(key, base, j, mean, std);
}
__kernel void binomial_S(__global uint *out, ulong key, ulong base, uint n, T p) {
    size_t j = get_global_id(0);
    out[j] = tg_binomial_S(key, base, j, n, p);
}
__kernel void log_S(__global T *out, __global const T *x) {
    size_t j = get_global_id(0);
    out[j] = tg_log_S(x[j]);
}
__kernel void sqrt_div_S(__global T *out, __global const T *x) {
    size_t j = get_global_id(0);
    out[2 * j] = SQRT(x[j]);
    out[2 * j + 1] = x[j] / x[j + 1];
}
__kernel void sincos2pi_S(__global T *out, __global const T *u) {
    size_t j = get_global_id(0);
    out[2 * j] = tg_trig2pi_S(u[j], 1u);
    out[2 * j + 1] = tg_trig2pi_S(u[j], 0u);
}
"""


class OpenCL:
    """A PoCL context with the test kernels, each created once."""

    def __init__(self):
        platforms = cl.get_platforms()
        platform = next((p for p in platforms if "PoCL" in p.version), platforms[0])
        self.ctx = cl.Context(platform.get_devices())
        self.queue = cl.CommandQueue(self.ctx)
        src = philox.opencl_source(F32) + philox.opencl_source(F64) + _KERNELS
        for dtype, ctype in ((F32, "float"), (F64, "double")):
            sqrt = "__builtin_sqrtf" if dtype == F32 else "__builtin_sqrt"
            src += (
                _TYPED_KERNELS.replace("_S", "_" + _SUFFIX[dtype])
                .replace("T ", ctype + " ")
                .replace("SQRT", sqrt)
            )
        self.program = cl.Program(self.ctx, src).build()
        self.kernels = {k.function_name: k for k in self.program.all_kernels()}

    def run(self, name, n_items, out_shape, out_dtype, *args):
        """Launch kernel ``name`` over ``n_items`` work-items; array args are copied in."""
        mf = cl.mem_flags
        bufs = [
            cl.Buffer(self.ctx, mf.READ_ONLY | mf.COPY_HOST_PTR, hostbuf=a)
            if isinstance(a, np.ndarray)
            else a
            for a in args
        ]
        out = np.empty(out_shape, out_dtype)
        out_buf = cl.Buffer(self.ctx, mf.WRITE_ONLY, max(out.nbytes, 1))
        local = next(s for s in (64, 16, 4, 1) if n_items % s == 0)
        kernel = self.kernels[name]
        kernel.set_args(out_buf, *bufs)
        cl.enqueue_nd_range_kernel(self.queue, kernel, (n_items,), (local,))
        cl.enqueue_copy(self.queue, out, out_buf)
        return out

    def draw(self, dist, dtype, key, base, size, *params):
        """OpenCL draw of ``size`` elements of ``dist`` in precision ``dtype``."""
        out_dtype = np.uint32 if dist == "binomial" else dtype
        args = [np.uint64(key), np.uint64(base)] + list(params)
        return self.run(f"{dist}_{_SUFFIX[dtype]}", size, size, out_dtype, *args)

    def close(self):
        self.queue.finish()
        del self.kernels, self.program, self.queue, self.ctx


@pytest.fixture(scope="module")
def ocl():
    env = OpenCL()
    yield env
    env.close()


def _bits(a):
    a = np.asarray(a)
    return a.view(np.uint32 if a.dtype.itemsize == 4 else np.uint64)


def _ulps(approx, ref, dtype):
    ref_d = ref.astype(dtype)
    return np.abs(approx.astype(np.longdouble) - ref) / np.spacing(np.abs(ref_d))


def _ref_sincos2pi(u):
    """Long double sin/cos(2 pi u) with exact reduction by quarter turns."""
    ul = u.astype(np.longdouble)
    q = np.rint(4 * ul)
    x = (ul - q / 4) * _TWO_PI
    s, c = np.sin(x), np.cos(x)
    q = q.astype(np.int64) % 4
    sin = np.choose(q, [s, c, -s, -c])
    cos = np.choose(q, [c, -s, -c, s])
    return sin, cos


def _unit_grid(rng, dtype, n):
    """n numbers u in [0, 1) on the generator's grid (plus edge values)."""
    bits = 24 if dtype == F32 else 53
    m = rng.integers(0, 2**bits, n, dtype=np.int64)
    m = np.concatenate([m, [0, 1, 2**bits - 1, 2 ** (bits - 1), 2 ** (bits - 2), 2 ** (bits - 3)]])
    return (m.astype(np.float64) * 2.0**-bits).astype(dtype)


KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]


@pytest.mark.parametrize("ctr, key, expected", KAT)
def test_known_answers(ocl, ctr, key, expected):
    words = philox.philox4x32_10(tuple(np.array([c], np.uint32) for c in ctr), key)
    assert tuple(int(w[0]) for w in words) == expected
    out = ocl.run("philox", 1, (1, 4), np.uint32, np.array([ctr], np.uint32), *map(np.uint32, key))
    assert tuple(out[0]) == expected


def test_philox_vectorised_matches_opencl(ocl):
    rng = np.random.default_rng(1)
    ctr = rng.integers(0, 2**32, (1000, 4), dtype=np.uint32)
    key = (0x12345678, 0x9ABCDEF0)
    words = np.stack(philox.philox4x32_10(tuple(ctr.T), key), axis=1)
    out = ocl.run("philox", 1000, (1000, 4), np.uint32, ctr, *map(np.uint32, key))
    np.testing.assert_array_equal(words, out)


def test_counter_layout_and_carry():
    key = 0xDEADBEEF01234567
    u = philox.uniform(key, 2**32 - 1, 8, F32)
    k = (key & 0xFFFFFFFF, key >> 32)
    for i, (lo, hi) in enumerate([(0xFFFFFFFF, 0), (0, 1)]):
        words = philox.philox4x32_10((lo, hi, 0, 0), k)
        expected = [(int(w) >> 8) * 2.0**-24 for w in words]
        np.testing.assert_array_equal(u[4 * i : 4 * i + 4], np.float32(expected))


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("dist", ["uniform", "normal"])
def test_blocks_used_and_base_advance(dist, dtype):
    draw = getattr(philox, dist)
    key, size = 77, 10
    used = philox.blocks_used(dist, size, dtype)
    assert used == (3 if dtype == F32 else 5)
    per = 4 if dtype == F32 else 2
    whole = draw(key, 5, used * per + 6, dtype)
    np.testing.assert_array_equal(_bits(draw(key, 5 + used, 6, dtype)), _bits(whole[-6:]))
    np.testing.assert_array_equal(_bits(draw(key, 5, size, dtype)), _bits(whole[:size]))


def test_blocks_used_binomial():
    assert philox.blocks_used("binomial", 10, F32, n=3) == 8
    assert philox.blocks_used("binomial", 10, F64, n=3) == 15
    with pytest.raises(ValueError):
        philox.blocks_used("gamma", 10, F32)


_keys = st.integers(0, 2**64 - 1)
_bases = st.one_of(
    st.integers(0, 2**64 - 1),
    st.integers(2**32 - 600, 2**32 + 10),
    st.integers(2**64 - 600, 2**64 - 1),
)
_sizes = st.sampled_from([1, 3, 5, 7, 64, 333, 1000, 1001, 4096])
_dtypes = st.sampled_from([F32, F64])
_cases = settings(max_examples=12, deadline=None)


@_cases
@given(key=_keys, base=_bases, size=_sizes, dtype=_dtypes, low=st.floats(-10, 10))
def test_uniform_matches_opencl(ocl, key, base, size, dtype, low):
    high = dtype.type(low) + dtype.type(3.5)
    ref = philox.uniform(key, base, size, dtype, low, high)
    out = ocl.draw("uniform", dtype, key, base, size, dtype.type(low), high)
    np.testing.assert_array_equal(_bits(ref), _bits(out))


@_cases
@given(key=_keys, base=_bases, size=_sizes, dtype=_dtypes, mean=st.floats(-10, 10))
def test_normal_matches_opencl(ocl, key, base, size, dtype, mean):
    std = dtype.type(2.5)
    ref = philox.normal(key, base, size, dtype, mean, std)
    out = ocl.draw("normal", dtype, key, base, size, dtype.type(mean), std)
    np.testing.assert_array_equal(_bits(ref), _bits(out))


@_cases
@given(
    key=_keys,
    base=_bases,
    size=_sizes,
    dtype=_dtypes,
    n=st.integers(2, 9),
    p=st.floats(0, 1),
)
def test_binomial_matches_opencl(ocl, key, base, size, dtype, n, p):
    p = dtype.type(p)
    for n_trials in (1, n):
        ref = philox.binomial(key, base, size, n_trials, p, np.int32)
        out = ocl.draw("binomial", dtype, key, base, size, np.uint32(n_trials), p)
        np.testing.assert_array_equal(ref, out.astype(np.int32))


@pytest.mark.parametrize("dtype", [F32, F64])
def test_opencl_sqrt_and_division_are_exact(ocl, dtype):
    """The helpers rely on PoCL rounding sqrt and / correctly, like NumPy."""
    itype = np.uint32 if dtype == F32 else np.uint64
    top = 0x7F800000 if dtype == F32 else 0x7FF0000000000000
    x = np.random.default_rng(5).integers(1, top, 100_001, dtype=itype).view(dtype)
    out = ocl.run(f"sqrt_div_{_SUFFIX[dtype]}", x.size - 1, (x.size - 1, 2), dtype, x)
    np.testing.assert_array_equal(_bits(np.sqrt(x[:-1])), _bits(out[:, 0]))
    with np.errstate(over="ignore", under="ignore"):
        np.testing.assert_array_equal(_bits(x[:-1] / x[1:]), _bits(out[:, 1]))


@pytest.mark.parametrize("dtype", [F32, F64])
def test_math_helpers_match_opencl(ocl, dtype):
    rng = np.random.default_rng(2)
    u = _unit_grid(rng, dtype, 100_000)
    x = u + dtype.type(2.0**-24 if dtype == F32 else 2.0**-53)
    log = ocl.run(f"log_{_SUFFIX[dtype]}", x.size, x.size, dtype, x)
    np.testing.assert_array_equal(_bits(philox.log(x)), _bits(log))
    sincos = ocl.run(f"sincos2pi_{_SUFFIX[dtype]}", u.size, (u.size, 2), dtype, u)
    sin, cos = philox.sincos2pi(u)
    np.testing.assert_array_equal(_bits(sin), _bits(sincos[:, 0]))
    np.testing.assert_array_equal(_bits(cos), _bits(sincos[:, 1]))


@pytest.mark.parametrize("dtype, max_ulp", [(F32, 1.0), (F64, 1.0)])
def test_log_accuracy(dtype, max_ulp):
    rng = np.random.default_rng(3)
    x = _unit_grid(rng, dtype, 200_000) + dtype.type(2.0**-24 if dtype == F32 else 2.0**-53)
    x = np.concatenate([x, rng.uniform(1e-30, 1e30, 10_000).astype(dtype)])
    ulps = _ulps(philox.log(x), np.log(x.astype(np.longdouble)), dtype)
    assert ulps.max() <= max_ulp


@pytest.mark.parametrize("dtype, max_ulp", [(F32, 2.0), (F64, 2.0)])
def test_sincos2pi_accuracy(dtype, max_ulp):
    u = _unit_grid(np.random.default_rng(4), dtype, 200_000)
    sin, cos = philox.sincos2pi(u)
    ref_sin, ref_cos = _ref_sincos2pi(u)
    assert _ulps(sin, ref_sin, dtype).max() <= max_ulp
    assert _ulps(cos, ref_cos, dtype).max() <= max_ulp


@pytest.mark.parametrize("dtype", [F32, F64])
def test_uniform_statistics(dtype):
    u = philox.uniform(philox.derive_key(1, 0), 0, (250, 400), dtype)
    assert u.shape == (250, 400) and u.dtype == dtype
    assert u.min() >= 0 and u.max() < 1
    assert abs(u.mean() - 0.5) < 0.005 and abs(u.var() - 1 / 12) < 0.002
    v = philox.uniform(philox.derive_key(1, 0), 0, (250, 400), dtype, -2.0, 3.0)
    assert v.min() >= -2 and v.max() < 3 and abs(v.mean() - 0.5) < 0.03


@pytest.mark.parametrize("dtype", [F32, F64])
def test_normal_statistics(dtype):
    z = philox.normal(philox.derive_key(2, 0), 0, 100_000, dtype)
    assert z.dtype == dtype and np.isfinite(z).all()
    assert abs(z.mean()) < 0.02 and abs(z.var() - 1) < 0.03
    assert abs((z**3).mean()) < 0.05 and abs((z**4).mean() - 3) < 0.15
    y = philox.normal(philox.derive_key(2, 0), 0, 100_000, dtype, 5.0, 0.5)
    assert abs(y.mean() - 5) < 0.01 and abs(y.std() - 0.5) < 0.01


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("n, p", [(1, 0.5), (1, 0.1), (5, 0.3)])
def test_binomial_statistics(dtype, n, p):
    b = philox.binomial(philox.derive_key(3, 0), 0, 100_000, n, dtype.type(p), np.float32)
    assert b.dtype == np.float32 and b.min() >= 0 and b.max() <= n
    assert abs(b.mean() - n * p) < 0.02 * n
    assert abs(b.var() - n * p * (1 - p)) < 0.03 * n


def test_binomial_edges_and_precision():
    key = philox.derive_key(4, 0)
    assert (philox.binomial(key, 0, 50, 3, 0.0, np.int8) == 0).all()
    assert (philox.binomial(key, 0, 50, 3, 1.0, np.int8) == 3).all()
    u32 = philox.uniform(key, 0, 30, F32).reshape(10, 3)
    u64 = philox.uniform(key, 0, 30, F64).reshape(10, 3)
    p = np.array([0.3] * 10)
    np.testing.assert_array_equal(philox.binomial(key, 0, 10, 3, 0.3, np.int64), (u32 < 0.3).sum(1))
    np.testing.assert_array_equal(philox.binomial(key, 0, 10, 3, p, np.int64), (u64 < 0.3).sum(1))


def test_keys_and_streams_differ():
    keys = {philox.derive_key(seed, i) for seed in range(20) for i in range(50)}
    assert len(keys) == 1000 and all(0 <= k < 2**64 for k in keys)
    assert philox.derive_key(7, 3) == philox.derive_key(7, 3)
    draws = [philox.uniform(philox.derive_key(7, i), 0, 1000, F32) for i in range(4)]
    draws.append(philox.uniform(philox.derive_key(8, 0), 0, 1000, F32))
    for i, a in enumerate(draws):
        for b in draws[i + 1 :]:
            assert (a == b).mean() < 0.01
            assert abs(np.corrcoef(a, b)[0, 1]) < 0.15


def test_rejects_other_dtypes():
    with pytest.raises(ValueError):
        philox.uniform(1, 0, 4, np.float16)
    with pytest.raises(ValueError):
        philox.opencl_source(np.int32)
