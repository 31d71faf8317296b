"""Softmax, log-softmax and fused crossentropy kernels against float64 NumPy and the ops."""


import numpy as np
import pytest
import tg_kernel_runner as kr  # registered by conftest.py
from hypothesis import given
from hypothesis import strategies as st

from tinygraph.backends.opencl.kernel_spec import KernelSpec, Operand
from tinygraph.backends.opencl.kernels import (
    crossentropy_grad_specs,
    crossentropy_specs,
    softmax_specs,
)
from tinygraph.backends.opencl.kernels.softmax import math_source

SIZES = [1, 2, 3, 7, 10, 17, 64, 129]
RTOL = {"float32": 2e-6, "float64": 1e-14}


def log_softmax64(x):
    x = np.asarray(x, np.float64)
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


@pytest.mark.parametrize("ctype, dtype, ulps", [("float", np.float32, 2),
                                                ("double", np.float64, 2)])
def test_exp_and_log_are_accurate(ctype, dtype, ulps):
    pragma = "#pragma OPENCL EXTENSION cl_khr_fp64 : enable\n" if ctype == "double" else ""
    src = (pragma + math_source(ctype)
           + f"__kernel void f(__global const {ctype} *x, long x_off, __global {ctype} *e, "
           f"long e_off, __global {ctype} *g, long g_off) {{\n    long i = get_global_id(0);\n"
           f"    e[e_off + i] = tg_expn_{ctype}(x[x_off + i]);\n"
           f"    g[g_off + i] = tg_logp_{ctype}(-x[x_off + i]);\n}}\n")
    low = -110.0 if ctype == "float" else -750.0
    x = -np.concatenate([np.geomspace(1e-30, -low, 20_000), np.linspace(0, -low, 20_000),
                         [0.0, np.inf, np.nan]]).astype(dtype)
    spec = KernelSpec(src, "f", (x.size,), (1,),
                      [Operand("in", 0), Operand("out", 0), Operand("out", 1)])
    (e, g), _ = kr.runner().run([spec], [x], [(x.shape, dtype), (x.shape, dtype)])
    with np.errstate(all="ignore"):
        ref_e = np.exp(x.astype(np.longdouble)).astype(dtype)
        ref_g = np.log(-x.astype(np.longdouble)).astype(dtype)
    tiny = np.finfo(dtype).smallest_normal
    ok = ref_e >= tiny
    assert np.all(np.abs(e[ok] - ref_e[ok]) <= ulps * np.spacing(ref_e[ok]))
    assert np.all(np.abs(e[~ok][:-1] - ref_e[~ok][:-1]) <= 2 * np.spacing(tiny))
    assert np.isnan(e[-1]) and e[-2] == 0
    ok = (-x >= tiny) & (-x < np.inf)  # log: positive normal numbers
    assert np.all(np.abs(g[ok] - ref_g[ok]) <= ulps * np.spacing(np.abs(ref_g[ok])))
    assert np.isnan(g[-1])


@st.composite
def row_cases(draw):
    shape = tuple(draw(st.lists(st.sampled_from(SIZES), min_size=1, max_size=3)))
    if np.prod(shape) > 20_000:
        shape = shape[-2:]
    return (shape, draw(st.sampled_from(["float32", "float64"])), draw(st.booleans()),
            draw(st.sampled_from([0.1, 5.0, 50.0])), draw(kr.layouts(len(shape))),
            draw(st.integers(0, 2**16)))


@given(row_cases())
def test_softmax_matches_numpy(case):
    shape, dtype, log, scale, layout, seed = case
    data = kr.random_array(np.random.default_rng(seed), shape, dtype, -scale, scale)
    x = kr.embed(data, **layout)
    specs = softmax_specs(dtype, x.shape, x.strides, log)
    (got,), _ = kr.runner().run(specs, [x], [(shape, dtype)])
    ref = log_softmax64(x.array)
    if log:
        atol = RTOL[dtype] * 4 * (1 + np.abs(ref).max())
        np.testing.assert_allclose(got, ref, rtol=RTOL[dtype] * 4, atol=atol)
    else:
        subnormal = np.finfo(dtype).smallest_subnormal  # results may be subnormal
        np.testing.assert_allclose(got, np.exp(ref), rtol=RTOL[dtype] * 8, atol=8 * subnormal)


def test_softmax_special_values():
    x = np.array([[0, -np.inf, 1], [np.nan, 0, 1], [-np.inf, -np.inf, -np.inf],
                  [1e30, -1e30, 1e30]], np.float32)
    for log in (False, True):
        (got,), _ = kr.runner().run(softmax_specs("float32", x.shape, (3, 1), log), [x],
                                    [(x.shape, "float32")])
        with np.errstate(all="ignore"):
            ref = log_softmax64(x)
        np.testing.assert_allclose(got, ref if log else np.exp(ref), rtol=1e-6)


@st.composite
def crossentropy_cases(draw):
    n = draw(st.sampled_from([1, 2, 10, 33, 256]))
    k = draw(st.sampled_from([1, 2, 10, 17, 100]))
    return (n, k, draw(st.sampled_from(["float32", "float64"])),
            draw(st.sampled_from(["int32", "int64", "uint8"])), draw(kr.layouts(2, False)),
            draw(st.integers(0, 2)), draw(st.integers(0, 2**16)))


def crossentropy_inputs(n, k, dtype, y_dtype, layout, y_pad, seed):
    rng = np.random.default_rng(seed)
    z = kr.embed(kr.random_array(rng, (n, k), dtype, -8, 8), **layout)
    y = kr.embed(rng.integers(0, k, n).astype(y_dtype), pads=(y_pad,), offset=y_pad)
    g = kr.embed(kr.random_array(rng, (n,), dtype), pads=(y_pad,), offset=1)
    return z, y, g


@given(crossentropy_cases())
def test_crossentropy_forward_and_grad(case):
    n, k, dtype, y_dtype, layout, y_pad, seed = case
    z, y, g = crossentropy_inputs(n, k, dtype, y_dtype, layout, y_pad, seed)
    logp = log_softmax64(z.array)
    rows = np.arange(n)
    specs = crossentropy_specs(dtype, z.shape, z.strides, y_dtype, y.strides)
    (nll,), (err,) = kr.runner().run(specs, [z, y], [((n,), dtype)])
    ref = -logp[rows, y.array]
    np.testing.assert_allclose(nll, ref, rtol=RTOL[dtype] * 4, atol=RTOL[dtype] * 40)
    assert err[0] == 0
    specs = crossentropy_grad_specs(dtype, g.strides, z.shape, z.strides, y_dtype, y.strides)
    (grad,), (err,) = kr.runner().run(specs, [g, z, y], [((n, k), dtype)])
    ref = np.exp(logp)
    ref[rows, y.array] -= 1
    ref *= g.array[:, None]
    np.testing.assert_allclose(grad, ref, rtol=RTOL[dtype] * 8, atol=RTOL[dtype] * 4)
    assert err[0] == 0


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("g_kind", ["vector", "broadcast", "value"])
def test_crossentropy_with_grad_in_one_kernel(dtype, g_kind):
    z, y, g = crossentropy_inputs(7, 12, dtype, "int32", {"order": [1, 0]}, 2, 3)
    logp = log_softmax64(z.array)
    rows = np.arange(7)
    scale = g.array[0]
    g_input, g_strides, g_ref = {
        "vector": (g, g.strides, g.array),
        "broadcast": (kr.embed(np.full(7, scale), broadcast=(0,), offset=3), (0,),
                      np.full(7, scale)),
        "value": (np.dtype(dtype).type(scale), None, np.full(7, scale)),
    }[g_kind]
    specs = crossentropy_grad_specs(dtype, g_strides, z.shape, z.strides, "int32", y.strides,
                                    with_costs=True)
    (nll, grad), (err,) = kr.runner().run(specs, [g_input, z, y],
                                          [((7,), dtype), ((7, 12), dtype)])
    np.testing.assert_allclose(nll, -logp[rows, y.array], rtol=RTOL[dtype] * 4,
                               atol=RTOL[dtype] * 40)
    ref = np.exp(logp)
    ref[rows, y.array] -= 1
    ref *= g_ref[:, None]
    np.testing.assert_allclose(grad, ref, rtol=RTOL[dtype] * 8, atol=RTOL[dtype] * 4)
    assert err[0] == 0


@pytest.mark.parametrize("bad", [-1, 10, 200])
def test_crossentropy_flags_bad_labels(bad):
    z, y, g = crossentropy_inputs(6, 10, "float32", "int64", {}, 0, 0)
    y.buffer[y.offset + 3 * y.strides[0]] = bad
    labels = np.array(y.array)
    specs = crossentropy_specs("float32", z.shape, z.strides, "int64", y.strides)
    (nll,), (err,) = kr.runner().run(specs, [z, y], [((6,), "float32")])
    assert err[0] == 1
    good = np.arange(6) != 3
    ref = -log_softmax64(z.array)[np.arange(6)[good], labels[good]]
    np.testing.assert_allclose(nll[good], ref, rtol=1e-5)
    specs = crossentropy_grad_specs("float32", g.strides, z.shape, z.strides, "int64",
                                    y.strides)
    _, (err,) = kr.runner().run(specs, [g, z, y], [((6, 10), "float32")])
    assert err[0] == 1
