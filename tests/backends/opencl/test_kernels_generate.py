"""arange and random-draw kernels: bit-identical to NumPy's arange and tinygraph's philox."""


import numpy as np
import pytest
import tg_kernel_runner as kr  # registered by conftest.py
from hypothesis import given
from hypothesis import strategies as st

from tinygraph.backends.opencl.kernels import arange_specs, random_specs
from tinygraph.random import philox

SHAPES = [(), (1,), (3,), (4,), (7, 5), (2, 3, 11), (2, 64), (1001,)]


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64"])
@pytest.mark.parametrize("start, step, n", [(0, 1, 1), (0, 1, 2), (0, 1, 300), (5, -3, 77),
                                            (0.1, 0.3, 1000), (-2.5, 0.7, 3), (1e6, 1e-3, 999),
                                            (3, 2, 0)])
def test_arange_is_bit_identical(dtype, start, step, n):
    if np.dtype(dtype).kind == "i" and (start != int(start) or step != int(step)):
        return
    t = np.dtype(dtype).type
    start, step = t(start).item(), t(step).item()
    ref = np.arange(start, start + n * step, step, dtype=dtype)[:n]
    assert ref.size == n
    specs = arange_specs(dtype, start, step, n)
    if n == 0:
        assert specs == []
        return
    (got,), _ = kr.runner().run(specs, [], [((n,), dtype)])
    np.testing.assert_array_equal(got.view(f"u{ref.itemsize}"), ref.view(f"u{ref.itemsize}"))


def draw_random(distribution, dtype, n_trials, shape, key, base, a, b):
    pdtype = dtype if np.dtype(dtype).kind == "f" else "float32"
    params = [None, None, np.array(a, pdtype), np.array(b, pdtype)]
    specs = random_specs(distribution, dtype, n_trials, shape)
    (_, got), _ = kr.runner().run(specs, params, [((2,), "int64"), (shape, dtype)], key=key,
                                  base=base)
    return got


@given(distribution=st.sampled_from(["uniform", "normal", "binomial"]),
       dtype=st.sampled_from(["float32", "float64"]), shape=st.sampled_from(SHAPES),
       key=st.integers(0, 2**64 - 1), base=st.integers(0, 2**64 - 1),
       n_trials=st.sampled_from([1, 3]))
def test_random_is_bit_identical_to_philox(distribution, dtype, shape, key, base, n_trials):
    a, b = (np.float32(-1.5), np.float32(2.25)) if dtype == "float32" else (-1.5, 2.25)
    if distribution == "uniform":
        ref = philox.uniform(key, base, shape, dtype, np.array(a, dtype), np.array(b, dtype))
    elif distribution == "normal":
        ref = philox.normal(key, base, shape, dtype, np.array(a, dtype), np.array(b, dtype))
    else:
        b = 0.3
        ref = philox.binomial(key, base, shape, n_trials, np.array(b, dtype), dtype)
    got = draw_random(distribution, dtype, n_trials, shape, key, base, a, b)
    np.testing.assert_array_equal(got.view(f"u{got.itemsize}"), ref.view(f"u{ref.itemsize}"))


@pytest.mark.parametrize("dtype", ["int64", "int32", "bool", "float32"])
@pytest.mark.parametrize("n_trials", [1, 5])
def test_binomial_output_dtypes(dtype, n_trials):
    key, base, shape = 2**63 + 12345, 2**64 - 3, (13, 3)
    p = np.float32(0.6) if dtype != "float64" else 0.6
    ref = philox.binomial(key, base, shape, n_trials, np.asarray(p), dtype)
    got = draw_random("binomial", dtype, n_trials, shape, key, base, 0.0, p)
    np.testing.assert_array_equal(got, ref)


def test_empty_draw_has_no_kernels():
    assert random_specs("normal", "float32", 1, (3, 0)) == []
