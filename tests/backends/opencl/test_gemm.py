"""GemmPlan against NumPy: every transpose mode, random shapes, offsets, scalars and epilogues."""

import importlib.util
import pathlib

import numpy as np
import pyopencl as cl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

_PATH = pathlib.Path(__file__).parents[3] / "tinygraph" / "backends" / "opencl" / "gemm.py"
_SPEC = importlib.util.spec_from_file_location("tinygraph_opencl_gemm", _PATH)
gemm = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(gemm)

RELU = "(v > 0 ? v : 0)"
SIGMOID = "1 / (1 + exp(-v))"
EPILOGUES = {None: lambda v: v, RELU: lambda v: np.maximum(v, 0),
             SIGMOID: lambda v: 1 / (1 + np.exp(-v))}


class ProgramCache:
    """Builds each distinct source once; counts builds so tests can check program reuse."""

    def __init__(self):
        self.programs = {}

    def build(self, context, source, options=""):
        key = (source, options)
        if key not in self.programs:
            self.programs[key] = cl.Program(context, source).build(options=options)
        return self.programs[key]


@pytest.fixture(scope="module")
def env():
    platform = next(p for p in cl.get_platforms() if "Portable Computing Language" in p.name)
    context = cl.Context(platform.get_devices(cl.device_type.CPU))
    queue = cl.CommandQueue(context)
    yield context, queue, ProgramCache(), {}
    queue.finish()


def run(env, m, n, k, *, trans_a=False, trans_b=False, dtype=np.float32, bias=False,
        epilogue=None, offsets=(0, 0, 0, 0), alpha=1.0, beta=0.0, seed=0):
    """Run one product on the device and return (result, NumPy reference)."""
    context, queue, cache, plans = env
    key = (m, n, k, trans_a, trans_b, np.dtype(dtype), bias, epilogue)
    if key not in plans:
        plans[key] = gemm.GemmPlan(context, m, n, k, trans_a=trans_a, trans_b=trans_b,
                                   dtype=dtype, bias=bias, epilogue=epilogue,
                                   program_cache=cache)
    plan = plans[key]
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
    c = rng.standard_normal((m, n)).astype(dtype)
    d = rng.standard_normal(n).astype(dtype)
    bufs = []
    for host, off in zip((a, b, c, d), offsets):
        flat = np.full(off + host.size + 7, np.nan, dtype)
        flat[off:off + host.size] = host.ravel()
        bufs.append(cl.Buffer(context, cl.mem_flags.READ_WRITE | cl.mem_flags.COPY_HOST_PTR,
                              hostbuf=flat))
    plan.enqueue(queue, bufs[0], bufs[1], bufs[2], a_offset=offsets[0], b_offset=offsets[1],
                 c_offset=offsets[2], bias=bufs[3] if bias else None, bias_offset=offsets[3],
                 alpha=alpha, beta=beta)
    out = np.empty(offsets[2] + c.size + 7, dtype)
    cl.enqueue_copy(queue, out, bufs[2])
    assert np.isnan(out[:offsets[2]]).all() and np.isnan(out[offsets[2] + c.size:]).all()
    ref = alpha * (a.T if trans_a else a).astype(np.float64) @ (b.T if trans_b else b)
    if beta:
        ref += beta * c
    if bias:
        ref += d
    ref = EPILOGUES[epilogue](ref)
    return out[offsets[2]:offsets[2] + c.size].reshape(m, n), ref


def check(got, ref, k, dtype):
    tol = (1e-5 if dtype == np.float32 else 1e-13) * (k + 10)
    np.testing.assert_allclose(got, ref, rtol=tol, atol=tol)


dims = st.integers(1, 70)


@settings(max_examples=25, deadline=None)
@given(m=dims, n=dims, k=dims, trans=st.sampled_from([(0, 0), (0, 1), (1, 0)]),
       offsets=st.tuples(*[st.integers(0, 33)] * 4), alpha=st.sampled_from([1.0, -0.5]),
       beta=st.sampled_from([0.0, 1.0, 0.25]), bias=st.booleans(),
       epilogue=st.sampled_from(list(EPILOGUES)))
def test_float32_random(env, m, n, k, trans, offsets, alpha, beta, bias, epilogue):
    got, ref = run(env, m, n, k, trans_a=bool(trans[0]), trans_b=bool(trans[1]), bias=bias,
                   epilogue=epilogue, offsets=offsets, alpha=alpha, beta=beta)
    check(got, ref, k, np.float32)
