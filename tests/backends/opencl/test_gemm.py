"""GemmPlan against NumPy: NN, NT, TN, TT, every kernel path, offsets, scalars, epilogues.

Every test runs on each PoCL platform: Debian's PoCL compiles for AVX-512 (wider blocks), the
pip one for AVX2.
"""

import types

import numpy as np
import pyopencl as cl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tg_kernel_runner import check_product as check  # registered by conftest.py

from tinygraph.backends.opencl import gemm

RELU = "(v > 0 ? v : 0)"
SIGMOID = "1 / (1 + exp(-v))"
EPILOGUES = {
    None: lambda v: v,
    RELU: lambda v: np.maximum(v, 0),
    SIGMOID: lambda v: 1 / (1 + np.exp(-v)),
}
# epilogues reading extra m x n operands e0, e1 (a sigmoid's and a dropout-masked ReLU's
# gradients): OpenCL expression -> (number of extras, NumPy function)
WITH_EXTRAS = {
    "v * e0 * (1 - e0)": (1, lambda v, e0: v * e0 * (1 - e0)),
    "v * 2 * e0 * (e1 > 0 ? 1.0f : 0.0f)": (2, lambda v, e0, e1: v * 2 * e0 * (e1 > 0)),
}
TRANS = {"NN": (False, False), "NT": (False, True), "TN": (True, False), "TT": (True, True)}


class ProgramCache:
    """Builds each distinct source once and remembers it."""

    def __init__(self):
        self.programs = {}

    def build(self, context, source, options=""):
        key = (source, options)
        if key not in self.programs:
            self.programs[key] = cl.Program(context, source).build(options=options)
        return self.programs[key]


class Env:
    """One context, queue, program cache and plan cache shared by every test in the module."""

    def __init__(self, platform):
        self.context = cl.Context(platform.get_devices(cl.device_type.CPU))
        self.queue = cl.CommandQueue(self.context)
        self.bits = gemm.vector_bits(self.context.devices[0])
        self.cache = ProgramCache()
        self.plans = {}

    def plan(self, m, n, k, op="NN", dtype=np.float32, bias=False, epilogue=None, extras=0):
        key = (m, n, k, op, np.dtype(dtype), bias, epilogue, extras)
        if key not in self.plans:
            trans_a, trans_b = TRANS[op]
            self.plans[key] = gemm.GemmPlan(
                self.context, m, n, k, trans_a=trans_a, trans_b=trans_b, dtype=dtype,
                bias=bias, epilogue=epilogue, extras=extras, program_cache=self.cache,
            )  # fmt: skip
        return self.plans[key]

    def buffer(self, host, offset, fill=np.nan):
        """A device buffer holding host at an element offset, surrounded by fill."""
        flat = np.full(offset + host.size + 5, fill, host.dtype)
        flat[offset : offset + host.size] = host.ravel()
        flags = cl.mem_flags.READ_WRITE | cl.mem_flags.COPY_HOST_PTR
        return cl.Buffer(self.context, flags, hostbuf=flat)

    def run(self, m, n, k, op="NN", dtype=np.float32, bias=False, epilogue=None,
            offsets=(0, 0, 0, 0), alpha=1.0, beta=0.0, seed=0):  # fmt: skip
        """Run one product on the device; return (result, float64 NumPy reference). An
        epilogue of WITH_EXTRAS reads extra operands, each at offset 2 + its index."""
        extras, epilogue_fn = WITH_EXTRAS.get(epilogue, (0, EPILOGUES.get(epilogue)))
        plan = self.plan(m, n, k, op, dtype, bias, epilogue, extras)
        trans_a, trans_b = TRANS[op]
        rng = np.random.default_rng(seed)
        a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
        b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
        # beta = 0 must not read C: start it as NaN.
        c = np.full((m, n), np.nan, dtype) if beta == 0 else rng.standard_normal((m, n))
        c = c.astype(dtype)
        d = rng.standard_normal(n).astype(dtype)
        e = [rng.standard_normal((m, n)).astype(dtype) for _ in range(extras)]
        bufs = [self.buffer(x, off) for x, off in zip((a, b, c, d), offsets)]
        plan.enqueue(
            self.queue, *bufs[:3], a_offset=offsets[0], b_offset=offsets[1],
            c_offset=offsets[2], bias=bufs[3] if bias else None, bias_offset=offsets[3],
            extras=[(self.buffer(x, 2 + j), 2 + j) for j, x in enumerate(e)],
            alpha=alpha, beta=beta,
        )  # fmt: skip
        out = np.empty(offsets[2] + c.size + 5, dtype)
        cl.enqueue_copy(self.queue, out, bufs[2])
        got = out[offsets[2] : offsets[2] + c.size].reshape(m, n)
        assert np.isnan(np.delete(out, np.s_[offsets[2] : offsets[2] + c.size])).all()
        ref = alpha * (a.T if trans_a else a).astype(np.float64) @ (b.T if trans_b else b)
        if beta:
            ref += beta * c
        if bias:
            ref += d
        return got, epilogue_fn(ref, *e)


@pytest.fixture(scope="module")
def env(pocl_platform):
    env = Env(pocl_platform)
    yield env
    env.queue.finish()


random_product = dict(
    m=st.integers(1, 70),
    n=st.integers(1, 70),
    k=st.integers(1, 70),
    op=st.sampled_from(sorted(TRANS)),
    offsets=st.tuples(*[st.integers(0, 33)] * 4),
    alpha=st.sampled_from([1.0, -0.5]),
    beta=st.sampled_from([0.0, 1.0, 0.25]),
    bias=st.booleans(),
    epilogue=st.sampled_from(list(EPILOGUES)),
)


# Example counts come from the hypothesis profile (tests/conftest.py); compiling is slow, so no
# deadline.
@settings(deadline=None)
@given(**random_product)
def test_float32_random(env, m, n, k, op, offsets, alpha, beta, bias, epilogue):
    got, ref = env.run(m, n, k, op, np.float32, bias, epilogue, offsets, alpha, beta)
    check(got, ref, k, np.float32)


@settings(deadline=None)
@given(**random_product)
def test_float64_random(env, m, n, k, op, offsets, alpha, beta, bias, epilogue):
    got, ref = env.run(m, n, k, op, np.float64, bias, epilogue, offsets, alpha, beta)
    check(got, ref, k, np.float64)


# Shapes that take each kernel path, named by the kernel the plan picks for AVX2 and AVX-512
# (blocks of 4-6 and 5, 6 or 8 rows; 16 or 32 float columns).
PATHS = [
    ("NN", 10, 100, 784, "gemm_5", "gemm_5"),  # B read in place
    ("NN", 100, 130, 300, "gemm_6", "gemm_8"),  # partial last panel
    ("NN", 64, 40, 16384, "gemm_6", "gemm_8"),  # B (2.5 MiB) packed
    ("NN", 7, 7, 33, "gemm_narrow", "gemm_narrow"),  # n < NR, little work: rows, no packing
    ("NN", 700, 9, 400, "gemm_6", "gemm_8"),  # n < NR, much work: B packed and padded
    ("NN", 3, 9, 80000, "gemm_4", "gemm_5"),  # the same with m < MR
    ("NN", 13, 40, 1, "gemm_5", "gemm_8"),  # k = 1
    ("TN", 100, 7, 10, "gemm_narrow", "gemm_narrow"),  # an MLP's last weight update
    ("NT", 40, 7, 50, "gemm_narrow", "gemm_narrow"),  # B^T read in place, by columns
    ("NT", 64, 7, 50, "gemm_6", "gemm_8"),  # the same with more work: B^T packed, padded
    ("TT", 6, 7, 9, "gemm_narrow", "gemm_narrow"),
    ("NN", 200, 70, 3, "gemm_6", "gemm_8"),  # k tiny: several blocks per work-item
    ("NN", 301, 403, 157, "gemm_6", "gemm_8"),  # several bands of row blocks
    ("NT", 10, 45, 37, "gemm_dot", "gemm_dot"),  # B^T read in place along k
    ("NT", 64, 33, 50, "gemm_6", "gemm_8"),  # B^T packed by register transposes
    ("TN", 30, 40, 20, "gemm_6_cols", "gemm_8_cols"),  # A^T read in place
    ("TN", 100, 50, 400, "gemm_6_cols", "gemm_8_cols"),  # A^T in place, several panels
    ("TN", 1024, 40, 1024, "gemm_6_panel", "gemm_8_panel"),  # A^T (4 MiB) packed
    ("TN", 784, 200, 256, "gemm_6_panel", "gemm_8_cols"),  # A^T (784 KiB) packed on AVX2
    ("TN", 200, 60, 256, "gemm_6_cols", "gemm_8_cols"),  # A^T (200 KiB) in place
    ("TN", 3, 50, 400, "gemm_4_cols", "gemm_5_cols"),  # m < MR
    ("TT", 20, 40, 40, "gemm_5_cols", "gemm_5_cols"),  # A^T in place, B^T packed
    ("TT", 1024, 40, 1024, "gemm_6_panel", "gemm_8_panel"),  # both packed
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("op", "m", "n", "k", "avx2", "avx512"), PATHS)
def test_kernel_paths(env, op, m, n, k, avx2, avx512, dtype):
    kernel = avx512 if env.bits == 512 else avx2
    assert env.plan(m, n, k, op, dtype, True, SIGMOID)._gemm.function_name == kernel
    got, ref = env.run(m, n, k, op, dtype, True, SIGMOID, (3, 5, 7, 1), 0.5, 0.5)
    check(got, ref, k, dtype)


@pytest.mark.parametrize("epilogue", list(WITH_EXTRAS))
@pytest.mark.parametrize(("op", "m", "n", "k", "avx2", "avx512"), PATHS)
def test_epilogues_reading_extra_operands(env, op, m, n, k, avx2, avx512, epilogue):
    """Every store path (full, shifted last block with beta, padded, by columns) reads the
    extra operands at the elements it stores."""
    got, ref = env.run(m, n, k, op, np.float32, True, epilogue, (3, 5, 7, 1), 0.5, 0.5)
    check(got, ref, k, np.float32)


def test_extra_operands_are_checked(env):
    plan = env.plan(4, 5, 6, "NN", np.float32, False, "v * e0", 1)
    buf = env.buffer(np.zeros(40, np.float32), 0)
    with pytest.raises(ValueError, match="1 extra epilogue operands and 0 column-sum operands; "
                       "got 0 in all"):
        plan.enqueue(env.queue, buf, buf, buf)
    with pytest.raises(ValueError, match=r"extras\[0\] needs 20 elements from offset 30"):
        plan.enqueue(env.queue, buf, buf, buf, extras=[(buf, 30)])


@pytest.mark.parametrize(("column_epilogue", "operands", "in_place"),
                         [("o0 - 0.5f * s", 1, False), ("o0 - 0.5f * s", 1, True), ("s", 0, False)])
@pytest.mark.parametrize(("op", "m", "n", "k", "avx2", "avx512"), PATHS)
def test_column_sums_of_b_beside_the_product(env, op, m, n, k, avx2, avx512, column_epilogue,
                                             operands, in_place):
    """V = column_epilogue(sums over k of op(B), O0): a layer's bias update computed by the
    kernel of its weight update, on every kernel path, beside an in-place C update; in place
    (V is O0) every column is updated exactly once."""
    trans_a, trans_b = TRANS[op]
    plan = gemm.GemmPlan(env.context, m, n, k, trans_a=trans_a, trans_b=trans_b,
                         column_epilogue=column_epilogue, columns=operands,
                         program_cache=env.cache)
    assert plan._gemm.function_name != "gemm_dot"
    rng = np.random.default_rng(11)
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(np.float32)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(np.float32)
    c, o = rng.standard_normal((m, n)).astype(np.float32), rng.standard_normal(n).astype(
        np.float32)
    bufs = [env.buffer(x, off) for x, off in zip((a, b, c, o), (3, 5, 7, 2))]
    v, v_offset = (bufs[3], 2) if in_place else (env.buffer(np.zeros(n, np.float32), 4), 4)
    plan.enqueue(env.queue, *bufs[:3], a_offset=3, b_offset=5, c_offset=7,
                 column_sums=[(v, v_offset)] + [(bufs[3], 2)] * operands, alpha=-0.5, beta=1.0)
    got_c, got_v = np.empty(7 + c.size + 5, np.float32), np.empty(v_offset + n + 5, np.float32)
    cl.enqueue_copy(env.queue, got_c, bufs[2])
    cl.enqueue_copy(env.queue, got_v, v)
    op_b = (b.T if trans_b else b).astype(np.float64)
    ref_c = c - 0.5 * (a.T if trans_a else a).astype(np.float64) @ op_b
    check(got_c[7:7 + c.size].reshape(m, n), ref_c, k, np.float32)
    sums = op_b.sum(axis=0)
    check(got_v[v_offset:v_offset + n], o - 0.5 * sums if operands else sums, k, np.float32)
    assert np.isnan(got_v[:v_offset]).all() and np.isnan(got_v[v_offset + n:]).all()


@pytest.mark.parametrize("bits", [256, 512])
def test_other_vector_width(env, bits, monkeypatch):
    """Both block shapes on this device, whatever it compiles for: edge shapes, offsets, and a
    sigmoid (512-bit vectors of doubles take exp in halves: the pip PoCL cannot compile a
    double8 exp)."""
    monkeypatch.setattr(gemm, "vector_bits", lambda device: bits)
    shapes = [("NN", 10, 100, 784), ("NN", 13, 33, 1), ("NT", 7, 70, 9), ("NT", 40, 33, 20),
              ("TN", 17, 31, 5), ("TN", 100, 50, 400), ("TT", 9, 50, 30)]  # fmt: skip
    for dtype, epilogue in [(np.float32, SIGMOID), (np.float64, SIGMOID), (np.float64, RELU)]:
        env.plans.clear()
        for op, m, n, k in shapes:
            got, ref = env.run(m, n, k, op, dtype, True, epilogue, (3, 5, 7, 1), 0.5, 0.5)
            check(got, ref, k, dtype)
    env.plans.clear()


@pytest.mark.parametrize("epilogue", list(EPILOGUES))
@pytest.mark.parametrize("op", sorted(TRANS))
def test_epilogues_with_bias(env, op, epilogue):
    got, ref = env.run(37, 51, 29, op, np.float32, True, epilogue, offsets=(1, 2, 3, 4))
    check(got, ref, 29, np.float32)


def test_sgd_update_in_place(env):
    """W <- beta * W + alpha * X^T G, repeated with new scalars and no new program."""
    rng = np.random.default_rng(1)
    x, g = rng.standard_normal((10, 784), "f"), rng.standard_normal((10, 100), "f")
    w = rng.standard_normal((784, 100), "f")
    plan = env.plan(784, 100, 10, "TN")
    programs = len(env.cache.programs)
    bufs = [env.buffer(v, 0) for v in (x, g, w)]
    expect = w.astype(np.float64)
    for alpha, beta in [(-0.1, 1.0), (-0.05, 0.999), (0.3, 0.5)]:
        plan.enqueue(env.queue, *bufs, alpha=alpha, beta=beta)
        expect = beta * expect + alpha * (x.T.astype(np.float64) @ g)
    out = np.empty(w.size + 5, "f")
    cl.enqueue_copy(env.queue, out, bufs[2])
    check(out[: w.size].reshape(w.shape), expect, 10, np.float32)
    assert len(env.cache.programs) == programs


def test_repeated_enqueues_follow_changes(env):
    """Calls reuse the previous call's arguments only while buffers and offsets are the same."""
    rng = np.random.default_rng(2)
    m, n, k = 9, 40, 23
    plan = env.plan(m, n, k, "NN", bias=True, epilogue=RELU)
    a, b = rng.standard_normal((m, k), "f"), rng.standard_normal((k, n), "f")
    d = rng.standard_normal(n).astype("f")
    a_bufs = [env.buffer(a, off) for off in (0, 3)]
    b_buf, d_buf = env.buffer(b, 1), env.buffer(d, 2)
    c_bufs = [env.buffer(np.zeros((m, n), "f"), off) for off in (0, 5)]
    for a_off, c_off, alpha in [(0, 0, 1.0), (0, 0, 1.0), (3, 5, 2.0), (0, 0, 2.0), (3, 5, 1.0)]:
        with pytest.raises(ValueError, match="a needs"):
            plan.enqueue(env.queue, a_bufs[1], b_buf, c_bufs[0], a_offset=9, bias=d_buf)
        c_buf = c_bufs[c_off > 0]
        plan.enqueue(
            env.queue, a_bufs[a_off > 0], b_buf, c_buf, a_offset=a_off, b_offset=1,
            c_offset=c_off, bias=d_buf, bias_offset=2, alpha=alpha,
        )  # fmt: skip
        out = np.empty(c_off + m * n + 5, "f")
        cl.enqueue_copy(env.queue, out, c_buf)
        ref = np.maximum(alpha * (a.astype(np.float64) @ b) + d, 0)
        check(out[c_off : c_off + m * n].reshape(m, n), ref, k, np.float32)


def test_one_program_per_kind(env):
    """Shapes are kernel arguments: every NN float32 product shares one program."""
    sources = {env.plan(m, n, k).source() for m, n, k in [(1, 1, 1), (10, 100, 784), (300, 9, 2)]}
    assert len(sources) == 1
    assert "__kernel" in sources.pop()


def test_single_element(env):
    for op in TRANS:
        got, ref = env.run(1, 1, 1, op, np.float32, True, RELU, (0, 1, 2, 3), 2.0, 0.5)
        check(got, ref, 1, np.float32)


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        ((0, 4, 4), {}, "m must be a positive int"),
        ((4, -1, 4), {}, "n must be a positive int"),
        ((4, 4, 2.5), {}, "k must be a positive int"),
        ((4, 4, True), {}, "k must be a positive int"),
        ((4, 4, 4), {"dtype": np.int32}, "dtype must be float32 or float64"),
        ((4, 4, 4), {"dtype": np.float16}, "dtype must be float32 or float64"),
        ((4, 4, 4), {"dtype": "no such type"}, "dtype must be float32 or float64"),
        ((4, 4, 4), {"epilogue": 3}, "epilogue must be an OpenCL C expression"),
        ((50000, 50000, 1), {}, "2\\*\\*31"),
    ],
)
def test_bad_plans(env, args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        gemm.GemmPlan(env.context, *args, **kwargs)


def test_float64_needs_fp64():
    device = types.SimpleNamespace(extensions="cl_khr_byte_addressable_store")
    context = types.SimpleNamespace(devices=[device])
    with pytest.raises(ValueError, match="cl_khr_fp64"):
        gemm.GemmPlan(context, 2, 2, 2, dtype=np.float64)


def test_bad_enqueues(env):
    plan = env.plan(4, 5, 6)
    a, b, c = (env.buffer(np.zeros(s, "f"), 0, 0) for s in (24, 30, 20))
    small = env.buffer(np.zeros(10, "f"), 0, 0)
    with pytest.raises(ValueError, match=r"a needs 24 elements from offset 0 .*m=4, n=5, k=6"):
        plan.enqueue(env.queue, small, b, c)
    with pytest.raises(ValueError, match="c needs 20 elements from offset 20"):
        plan.enqueue(env.queue, a, b, c, c_offset=20)
    with pytest.raises(ValueError, match="b needs 30 elements from offset -1"):
        plan.enqueue(env.queue, a, b, c, b_offset=-1)
    with pytest.raises(ValueError, match="bias=False"):
        plan.enqueue(env.queue, a, b, c, bias=small)
    with pytest.raises(ValueError, match="bias=True"):
        env.plan(4, 5, 6, bias=True).enqueue(env.queue, a, b, c)
    with pytest.raises(ValueError, match="must be a pyopencl Buffer"):
        plan.enqueue(env.queue, np.zeros(24, "f"), b, c)
