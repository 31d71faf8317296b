"""OpenCL-specific guarantees: random streams bit-identical to the NumPy backend, flat device
memory over many calls, host fallbacks absent from ordinary graphs."""

import numpy as np
import pytest

import tinygraph as tg

pytest.importorskip("pyopencl")


def _draws(device, seed):
    srng = tg.RandomStreams(seed)
    x = tg.matrix("x")
    outs = [srng.uniform((5, 7), -1.0, 2.0), srng.normal((9,), 1.0, 3.0),
            srng.binomial(x.shape, p=0.3, dtype="float32"), srng.binomial((6,), n=4, p=0.6),
            srng.uniform((3, 3), dtype="float64"), srng.normal((4,), dtype="float64")]
    f = tg.function([x], outs, device=device)
    data = np.zeros((13, 17), "float32")
    return [f(data) for _ in range(3)]


@pytest.mark.parametrize("seed", [0, 12345])
def test_random_streams_are_bit_identical_across_backends(seed):
    for calls_numpy, calls_opencl in zip(_draws("numpy", seed), _draws("opencl", seed)):
        for a, b in zip(calls_numpy, calls_opencl):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a.view(np.uint8), b.view(np.uint8))


def test_device_memory_stays_flat_over_many_calls():
    rng = np.random.default_rng(0)
    data = tg.shared(rng.random((100, 20), dtype=np.float32))
    w = tg.shared(np.zeros((20, 5), "float32"))
    x, i = tg.matrix("x"), tg.lscalar("i")
    cost = tg.mean(tg.tanh(x @ w) ** 2)
    step = tg.function([i], cost, updates={w: w - 0.1 * tg.grad(cost, w)},
                       givens={x: data[i * 10:(i + 1) * 10]}, device="opencl")
    step(0)
    plans = step._program._plans
    before = (len(plans), sum(p.device_bytes for p in plans.values()))
    for j in range(200):
        step(j % 10)
    after = (len(plans), sum(p.device_bytes for p in plans.values()))
    assert before == after


def test_integer_products_run_on_the_device():
    a, b, c = tg.imatrix("a"), tg.imatrix("b"), tg.imatrix("c")
    v = tg.lvector("v")
    f = tg.function([a, b, c, v], [a @ b, a @ c.T, a.T @ v[:3], v @ v], device="opencl")
    va = np.arange(12, dtype="int32").reshape(3, 4)
    vb = np.arange(8, dtype="int32").reshape(4, 2) - 3
    vv = np.arange(5) - 2
    got = f(va, vb, vb.T.copy(), vv)
    want = [va @ vb, va @ vb, va.T @ vv[:3], vv @ vv]
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
    assert "NumPy on the host" not in f.kernels_source()
