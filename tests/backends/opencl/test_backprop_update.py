"""BackpropUpdatePlan against NumPy: P = epilogue(D @ W^T, E...), W_out = beta W + alpha H^T D
and V = column_epilogue(column sums of D, O...) in one kernel, in place and out of place.

Every test runs on each PoCL platform: Debian's PoCL compiles for AVX-512 (16-float vectors,
2 rows of W per block for a batch of 10), the pip one for AVX2 (8 floats, 1 row).
"""

import numpy as np
import pyopencl as cl
import pytest
from tg_kernel_runner import check_product as check  # registered by conftest.py

from tinygraph.backends.opencl import backprop_update as bu
from tinygraph.backends.opencl.program_cache import ProgramCache

# Epilogues by number of extra operands: OpenCL expression -> NumPy function. float64 has its
# own (a comparison of a double vector gives long lanes, which do not mix with float).
EPILOGUES = {
    np.float32: {
        0: ("(v > 0 ? v : 0)", lambda v: np.maximum(v, 0)),
        1: ("v * e0 * (1 - e0)", lambda v, e0: v * e0 * (1 - e0)),
        2: ("v * 2.0f * e0 * (e1 > 0.0f ? 1.0f : 0.0f)",
            lambda v, e0, e1: v * 2 * e0 * (e1 > 0)),
    },
    np.float64: {
        0: (None, lambda v: v),
        1: ("v * e0 * (1 - e0)", lambda v, e0: v * e0 * (1 - e0)),
        2: ("v * e0 - 0.5 * e1", lambda v, e0, e1: v * e0 - 0.5 * e1),
    },
}
# Column epilogues by number of column operands.
COLUMNS = {
    0: ("s", lambda s: s),
    1: ("o0 - 0.1f * s", lambda s, o0: o0 - 0.1 * s),
    2: ("o0 * 0.5f - o1 * s", lambda s, o0, o1: o0 * 0.5 - o1 * s),
}

class Env:
    """One context, queue and program cache shared by every test of the module."""

    def __init__(self, platform):
        self.context = cl.Context(platform.get_devices(cl.device_type.CPU))
        self.queue = cl.CommandQueue(self.context)
        self.device = self.context.devices[0]
        self.bits = bu.vector_bits(self.device)
        self.cache = ProgramCache(self.context)
        self.plans = {}

    def plan(self, batch, n_in, n_out, dtype=np.float32, extras=0, columns=1):
        key = (batch, n_in, n_out, np.dtype(dtype), extras, columns)
        if key not in self.plans:
            self.plans[key] = bu.BackpropUpdatePlan(
                self.context, batch, n_in, n_out, dtype=dtype,
                epilogue=EPILOGUES[dtype][extras][0], extras=extras,
                column_epilogue=COLUMNS[columns][0], columns=columns, program_cache=self.cache)
        return self.plans[key]

    def buffer(self, host, offset):
        """A device buffer holding host at an element offset, surrounded by NaN."""
        flat = np.full(offset + host.size + 5, np.nan, host.dtype)
        flat[offset:offset + host.size] = host.ravel()
        flags = cl.mem_flags.READ_WRITE | cl.mem_flags.COPY_HOST_PTR
        return cl.Buffer(self.context, flags, hostbuf=flat)

    def read(self, buf, offset, shape, dtype):
        """The shape-d array at offset in buf; asserts everything around it is still NaN."""
        size = int(np.prod(shape))
        flat = np.empty(buf.size // np.dtype(dtype).itemsize, dtype)
        cl.enqueue_copy(self.queue, flat, buf)
        outside = np.concatenate([flat[:offset], flat[offset + size:]])
        assert np.isnan(outside).all(), "a store outside the operand"
        return flat[offset:offset + size].reshape(shape)


@pytest.fixture(scope="module")
def env(pocl_platform):
    env = Env(pocl_platform)
    yield env
    env.queue.finish()


def _update_operands(env, rng, batch, n_in, n_out, dtype, columns, in_place, off):
    """Random H, D, W and O0.. in buffers at the offsets ``off``, and the outputs W_out and V
    (W itself and O0 when ``in_place``, else fresh buffers): (arrays, buffers, outputs)."""
    h = rng.standard_normal((batch, n_in)).astype(dtype)
    d = rng.standard_normal((batch, n_out)).astype(dtype)
    w = rng.standard_normal((n_in, n_out)).astype(dtype)
    o = [rng.standard_normal(n_out).astype(dtype) for _ in range(columns)]
    bh, bd, bw = env.buffer(h, off["h"]), env.buffer(d, off["d"]), env.buffer(w, off["w"])
    ob = [(env.buffer(x, 1 + k), 1 + k) for k, x in enumerate(o)]
    if in_place:
        w_out, w_out_offset = bw, off["w"]
        v, v_offset = ob[0] if columns else (env.buffer(np.zeros(n_out, dtype), off["v"]),
                                             off["v"])
    else:
        w_out, w_out_offset = env.buffer(np.zeros_like(w), off["w_out"]), off["w_out"]
        v, v_offset = env.buffer(np.zeros(n_out, dtype), off["v"]), off["v"]
    return (h, d, w, o), (bh, bd, bw, ob), (w_out, w_out_offset, v, v_offset)


def run_step(env, batch, n_in, n_out, dtype=np.float32, extras=0, columns=1, in_place=True,
             offsets=None, alpha=-0.01, beta=1.0, p_is_e0=False, seed=0):
    """Run one step on fresh operands and compare P, W_out and V with NumPy in float64."""
    plan = env.plan(batch, n_in, n_out, dtype, extras, columns)
    rng = np.random.default_rng(seed)
    off = dict(h=0, d=0, w=0, w_out=0, p=0, v=0) if offsets is None else offsets
    (h, d, w, o), (bh, bd, bw, ob), (w_out, w_out_offset, v, v_offset) = _update_operands(
        env, rng, batch, n_in, n_out, dtype, columns, in_place, off)
    e = [rng.standard_normal((batch, n_in)).astype(dtype) for _ in range(extras)]
    eb = [(env.buffer(x, 2 + k), 2 + k) for k, x in enumerate(e)]
    if p_is_e0:
        p, p_offset = eb[0]
    else:
        p, p_offset = env.buffer(np.zeros((batch, n_in), dtype), off["p"]), off["p"]
    plan.enqueue(env.queue, bh, bd, bw, w_out, p, h_offset=off["h"], d_offset=off["d"],
                 w_offset=off["w"], w_out_offset=w_out_offset, p_offset=p_offset, extras=eb,
                 column_sums=[(v, v_offset), *ob], alpha=alpha, beta=beta)
    h64, d64, w64 = (x.astype(np.float64) for x in (h, d, w))
    ref_p = EPILOGUES[dtype][extras][1](d64 @ w64.T, *e)
    ref_w = beta * w64 + alpha * (h64.T @ d64)
    ref_v = COLUMNS[columns][1](d64.sum(axis=0), *o)
    check(env.read(p, p_offset, (batch, n_in), dtype), ref_p, n_out, dtype)
    check(env.read(w_out, w_out_offset, (n_in, n_out), dtype), ref_w, batch, dtype)
    # float literals such as 0.1f round the column epilogue of float64 to float precision
    check(env.read(v, v_offset, (n_out,), dtype), ref_v, batch,
          np.float32 if columns else dtype)


OFFSETS = dict(h=3, d=5, w=7, w_out=2, p=4, v=6)

# batch, n_in, n_out, dtype, extras, columns, in place, offsets, alpha, beta. Shapes cover
# partial blocks of rows (n_in % R), partial chunks (n_in % VW), n_out < VW and tails.
CASES = [
    (10, 1000, 1000, np.float32, 2, 1, True, None, -0.01, 1.0),  # an MLP's hidden layer
    (10, 100, 10, np.float32, 2, 1, True, None, -0.01, 1.0),  # its last layer
    (10, 33, 7, np.float32, 2, 1, False, OFFSETS, 0.5, 0.25),
    (10, 7, 100, np.float32, 0, 0, True, OFFSETS, -0.5, 0.9),
    (10, 1, 1, np.float32, 1, 2, False, None, 1.0, 1.0),
    (3, 33, 100, np.float32, 1, 2, True, OFFSETS, -0.1, 0.5),
    (3, 100, 33, np.float32, 1, 2, False, None, 2.0, 0.0),
    (1, 7, 33, np.float32, 0, 1, True, None, -1.0, 1.0),
    (1, 33, 1, np.float32, 0, 1, False, OFFSETS, 0.5, 2.0),
    (10, 100, 10, np.float64, 1, 1, True, OFFSETS, -0.01, 1.0),
    (10, 33, 7, np.float64, 1, 1, False, None, 0.5, 0.25),
    (3, 7, 33, np.float64, 2, 0, True, None, -0.5, 1.0),
    (3, 100, 1000, np.float64, 2, 0, False, OFFSETS, 1.0, 0.5),
]


@pytest.mark.parametrize(
    ("batch", "n_in", "n_out", "dtype", "extras", "columns", "in_place", "offsets", "alpha",
     "beta"), CASES)
def test_matches_numpy(env, batch, n_in, n_out, dtype, extras, columns, in_place, offsets, alpha,
                       beta):
    run_step(env, batch, n_in, n_out, dtype, extras, columns, in_place, offsets, alpha, beta)


def test_largest_batch(env):
    """The largest batch the registers allow (one row per block)."""
    batch = bu.max_batch(env.bits)
    assert bu.supports(batch, env.device) and env.plan(batch, 40, 17, extras=1).rows == 1
    run_step(env, batch, 40, 17, extras=1, offsets=OFFSETS, alpha=-0.5, beta=0.5)


def test_p_replaces_an_extra_operand(env):
    """P may be the epilogue's operand E0 itself (each element is read before it is stored)."""
    run_step(env, 3, 100, 33, extras=1, columns=2, p_is_e0=True, alpha=0.5)
    run_step(env, 10, 33, 7, extras=2, in_place=False, p_is_e0=True)


def test_rows_per_block():
    """As many rows as the registers hold: B * R dot products + 3 R + 1 <= registers."""
    assert [bu._rows_per_block(b, 512) for b in (1, 3, 5, 10, 13, 28)] == [4, 4, 2, 2, 1, 1]
    assert [bu._rows_per_block(b, 256) for b in (1, 3, 5, 10, 12)] == [2, 2, 1, 1, 1]
    assert (bu.max_batch(256), bu.max_batch(512)) == (12, 28)
    assert bu.BackpropUpdatePlan.max_batch(256, np.float64) == 12


def test_repeated_steps_follow_changes(env):
    """Calls reuse the previous arguments only while buffers and offsets are the same; alpha
    and beta are set again when they change."""
    batch, n_in, n_out = 10, 33, 20
    plan = env.plan(batch, n_in, n_out, extras=1, columns=1)
    programs = env.cache.builds
    rng = np.random.default_rng(5)
    h = rng.standard_normal((batch, n_in)).astype(np.float32)
    d = rng.standard_normal((batch, n_out)).astype(np.float32)
    e = rng.standard_normal((batch, n_in)).astype(np.float32)
    w = rng.standard_normal((n_in, n_out)).astype(np.float32)
    o = rng.standard_normal(n_out).astype(np.float32)
    sets = []
    for off in (0, 3):
        sets.append(dict(off=off, h=env.buffer(h, off), d=env.buffer(d, off), e=env.buffer(e, off),
                         w=env.buffer(w, off), o=env.buffer(o, off),
                         p=env.buffer(np.zeros((batch, n_in), np.float32), off)))
    expect_w = [w.astype(np.float64)] * 2
    expect_o = [o.astype(np.float64)] * 2
    for k, alpha, beta in [(0, -0.1, 1.0), (0, -0.1, 1.0), (1, 0.5, 0.5), (0, 0.5, 0.5),
                           (0, -0.2, 1.0), (1, -0.2, 1.0)]:
        s, off = sets[k], sets[k]["off"]
        with pytest.raises(ValueError, match="h needs"):
            plan.enqueue(env.queue, s["h"], s["d"], s["w"], s["w"], s["p"], h_offset=99,
                         extras=[(s["e"], off)], column_sums=[(s["o"], off)] * 2)
        plan.enqueue(env.queue, s["h"], s["d"], s["w"], s["w"], s["p"], h_offset=off,
                     d_offset=off, w_offset=off, w_out_offset=off, p_offset=off,
                     extras=[(s["e"], off)], column_sums=[(s["o"], off)] * 2, alpha=alpha,
                     beta=beta)
        ref_p = (d.astype(np.float64) @ expect_w[k].T) * e * (1 - e)
        expect_w[k] = beta * expect_w[k] + alpha * (h.T.astype(np.float64) @ d)
        expect_o[k] = expect_o[k] - 0.1 * d.sum(axis=0, dtype=np.float64)
        check(env.read(s["p"], off, (batch, n_in), np.float32), ref_p, n_out, np.float32)
        check(env.read(s["w"], off, (n_in, n_out), np.float32), expect_w[k], batch, np.float32)
        check(env.read(s["o"], off, (n_out,), np.float32), expect_o[k], batch, np.float32)
    assert env.cache.builds == programs


def test_one_program_per_batch_size(env):
    """Shapes are kernel arguments: plans differing only in shape share one program."""
    sources = {env.plan(10, n_in, n_out, extras=2).source() for n_in, n_out in
               [(1000, 1000), (100, 10), (7, 1)]}
    assert len(sources) == 1 and "__kernel void backprop_update" in sources.pop()


def test_supports(env):
    top = bu.max_batch(env.bits)
    assert bu.supports(1, env.device) and bu.supports(top, env.device, np.float64)
    assert not bu.supports(top + 1, env.device)
    assert not bu.supports(0, env.device)
    assert not bu.supports(10, env.device, np.int32)
    assert not bu.supports(2.0, env.device)


def test_plan_arguments_are_checked(env):
    ctx, top = env.context, bu.max_batch(env.bits)
    kw = dict(column_epilogue="s", columns=0)
    with pytest.raises(ValueError, match=f"batch {top + 1} needs more vector registers.*"
                                         f"at most {top}"):
        bu.BackpropUpdatePlan(ctx, top + 1, 10, 10, **kw)
    with pytest.raises(ValueError, match="n_in must be a positive int"):
        bu.BackpropUpdatePlan(ctx, 10, 0, 10, **kw)
    with pytest.raises(ValueError, match="batch must be a positive int"):
        bu.BackpropUpdatePlan(ctx, 2.5, 10, 10, **kw)
    with pytest.raises(ValueError, match="dtype must be float32 or float64"):
        bu.BackpropUpdatePlan(ctx, 10, 10, 10, dtype=np.int32, **kw)
    with pytest.raises(ValueError, match="column_epilogue must be"):
        bu.BackpropUpdatePlan(ctx, 10, 10, 10, column_epilogue=None, columns=0)
    with pytest.raises(ValueError, match="extras must be an int >= 0"):
        bu.BackpropUpdatePlan(ctx, 10, 10, 10, extras=-1, **kw)


def test_operands_are_checked(env):
    batch, n_in, n_out = 3, 7, 5
    plan = env.plan(batch, n_in, n_out, extras=1, columns=1)

    def buf(n):
        return cl.Buffer(env.context, cl.mem_flags.READ_WRITE, n * 4)

    big = buf(200)
    h, d, w, p, e, v, o = buf(21), buf(15), buf(35), buf(21), buf(21), buf(5), buf(5)
    ok = dict(extras=[(e, 0)], column_sums=[(v, 0), (o, 0)])
    with pytest.raises(ValueError, match=r"w needs 35 elements from offset 1 but its buffer "
                                         r"holds 35 \(batch=3, n_in=7, n_out=5\)"):
        plan.bind(h, d, w, w, p, w_offset=1, **ok)
    with pytest.raises(ValueError, match="d needs 15 elements"):
        plan.bind(h, buf(14), w, w, p, **ok)
    with pytest.raises(ValueError, match=r"column_sums\[1\] \(O0\) needs 5 elements"):
        plan.bind(h, d, w, w, p, extras=[(e, 0)], column_sums=[(v, 0), (o, 2)])
    with pytest.raises(ValueError, match="built for 1 extra epilogue operands and 2 column-sum"
                                         " operands"):
        plan.bind(h, d, w, w, p, column_sums=[(v, 0), (o, 0)])
    with pytest.raises(ValueError, match="must be a pyopencl Buffer"):
        plan.bind(np.zeros(21, np.float32), d, w, w, p, **ok)
    with pytest.raises(ValueError, match="w_out overlaps w"):
        plan.bind(h, d, big, big, p, w_offset=0, w_out_offset=3, **ok)
    with pytest.raises(ValueError, match="p overlaps h"):
        plan.bind(h, d, w, w, h, **ok)
    with pytest.raises(ValueError, match=r"column_sums\[0\] \(V\) overlaps d"):
        plan.bind(h, d, w, w, p, extras=[(e, 0)], column_sums=[(d, 0), (o, 0)])
    launches = plan.bind(h, d, w, w, p, **ok)  # in place is fine
    assert launches == [(plan._kernel, plan._grid, (1,))]


# The update without the backward product (backward=False): W_out = beta W + alpha H^T D and
# V only, as for a first layer. D stays in registers in groups of 12 batch rows (AVX-512) or
# 5 (AVX2), so larger batches take several groups, the later ones adding to W_out.


def update_plan(env, batch, n_in, n_out, dtype=np.float32, columns=1):
    key = ("update", batch, n_in, n_out, np.dtype(dtype), columns)
    if key not in env.plans:
        env.plans[key] = bu.BackpropUpdatePlan(
            env.context, batch, n_in, n_out, dtype=dtype, column_epilogue=COLUMNS[columns][0],
            columns=columns, backward=False, program_cache=env.cache)
    return env.plans[key]


def run_update(env, batch, n_in, n_out, dtype=np.float32, columns=1, in_place=True,
               offsets=None, alpha=-0.01, beta=1.0, seed=0):
    """One update on fresh operands against NumPy in float64 (p=None; p_offset is ignored)."""
    plan = update_plan(env, batch, n_in, n_out, dtype, columns)
    rng = np.random.default_rng(seed)
    off = dict(h=0, d=0, w=0, w_out=0, v=0) if offsets is None else offsets
    (h, d, w, o), (bh, bd, bw, ob), (w_out, w_out_offset, v, v_offset) = _update_operands(
        env, rng, batch, n_in, n_out, dtype, columns, in_place, off)
    plan.enqueue(env.queue, bh, bd, bw, w_out, None, h_offset=off["h"], d_offset=off["d"],
                 w_offset=off["w"], w_out_offset=w_out_offset, p_offset=99,
                 column_sums=[(v, v_offset), *ob], alpha=alpha, beta=beta)
    h64, d64, w64 = (x.astype(np.float64) for x in (h, d, w))
    check(env.read(w_out, w_out_offset, (n_in, n_out), dtype), beta * w64 + alpha * (h64.T @ d64),
          batch, dtype)
    check(env.read(v, v_offset, (n_out,), dtype), COLUMNS[columns][1](d64.sum(axis=0), *o),
          batch, np.float32 if columns else dtype)
    if not in_place:
        check(env.read(bw, off["w"], (n_in, n_out), dtype), w64, 0, dtype)  # W untouched


# batch, n_in, n_out, dtype, columns, in place, offsets, alpha, beta. Shapes cover partial
# blocks of rows, several work-items, n_out < VW, column tails of every width and 2 groups.
UPDATE_CASES = [
    (10, 784, 100, np.float32, 1, True, None, -0.1, 1.0),  # an MLP's first layer
    (10, 33, 7, np.float32, 1, False, OFFSETS, 0.5, 0.25),
    (10, 7, 100, np.float32, 0, True, OFFSETS, -0.5, 0.9999),
    (13, 67, 45, np.float32, 2, False, OFFSETS, -0.1, 1.0),
    (13, 41, 31, np.float32, 1, True, None, 0.5, 0.5),
    (3, 100, 33, np.float32, 2, False, None, 2.0, 0.0),
    (1, 7, 33, np.float32, 1, True, OFFSETS, -1.0, 0.5),
    (1, 33, 1, np.float32, 0, False, None, 0.5, 1.0),
    (10, 33, 7, np.float64, 1, True, OFFSETS, -0.01, 1.0),
    (13, 40, 15, np.float64, 0, False, None, 0.5, 0.25),
    (1, 70, 37, np.float64, 2, True, None, -1.0, 0.9999),
]


@pytest.mark.parametrize(
    ("batch", "n_in", "n_out", "dtype", "columns", "in_place", "offsets", "alpha", "beta"),
    UPDATE_CASES)
def test_update_only_matches_numpy(env, batch, n_in, n_out, dtype, columns, in_place, offsets,
                                   alpha, beta):
    run_update(env, batch, n_in, n_out, dtype, columns, in_place, offsets, alpha, beta)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_update_only_largest_batch(env, dtype):
    """The largest batch without the backward product, more than with it."""
    batch = bu.max_batch(env.bits, dtype, backward=False)
    assert batch > bu.max_batch(env.bits, dtype) and bu.supports(batch, env.device, dtype,
                                                                 backward=False)
    run_update(env, batch, 41, 19, dtype, 1, True, OFFSETS, -0.5, 0.5)
    run_update(env, batch, 9, 3, dtype, 0, False, None, 1.0, 1.0)


def test_update_only_limits():
    assert (bu.max_batch(256, backward=False), bu.max_batch(512, backward=False)) == (64, 64)
    assert bu.BackpropUpdatePlan.max_batch(256, np.float64, False) == 64
    assert [bu._rows_per_block(b, bits, False) for b in (1, 10, 64) for bits in (256, 512)] == \
        [2] * 6


def test_update_only_supports(env):
    top = bu.max_batch(env.bits, backward=False)
    assert bu.supports(top, env.device, np.float64, backward=False)
    assert bu.supports(bu.max_batch(env.bits) + 1, env.device, backward=False)
    assert not bu.supports(top + 1, env.device, backward=False)
    assert not bu.supports(0, env.device, backward=False)
    assert not bu.supports(10, env.device, np.int32, backward=False)


def test_update_only_repeated_steps_follow_changes(env):
    """Arguments are reused while buffers and offsets are the same (p_offset is ignored);
    alpha and beta are set again when they change."""
    batch, n_in, n_out = 13, 35, 20
    plan = update_plan(env, batch, n_in, n_out)
    programs = env.cache.builds
    rng = np.random.default_rng(7)
    h = rng.standard_normal((batch, n_in)).astype(np.float32)
    d = rng.standard_normal((batch, n_out)).astype(np.float32)
    w = rng.standard_normal((n_in, n_out)).astype(np.float32)
    o = rng.standard_normal(n_out).astype(np.float32)
    sets = [dict(off=off, h=env.buffer(h, off), d=env.buffer(d, off), w=env.buffer(w, off),
                 o=env.buffer(o, off)) for off in (0, 3)]
    expect_w = [w.astype(np.float64)] * 2
    expect_o = [o.astype(np.float64)] * 2
    for k, alpha, beta, p_offset in [(0, -0.1, 1.0, 0), (0, -0.1, 1.0, 5), (1, 0.5, 0.5, 0),
                                     (0, 0.5, 0.5, 0), (0, -0.2, 1.0, 0), (1, -0.2, 1.0, 1)]:
        s, off = sets[k], sets[k]["off"]
        plan.enqueue(env.queue, s["h"], s["d"], s["w"], s["w"], None, h_offset=off,
                     d_offset=off, w_offset=off, w_out_offset=off, p_offset=p_offset,
                     column_sums=[(s["o"], off)] * 2, alpha=alpha, beta=beta)
        expect_w[k] = beta * expect_w[k] + alpha * (h.T.astype(np.float64) @ d)
        expect_o[k] = expect_o[k] - 0.1 * d.sum(axis=0, dtype=np.float64)
        check(env.read(s["w"], off, (n_in, n_out), np.float32), expect_w[k], batch, np.float32)
        check(env.read(s["o"], off, (n_out,), np.float32), expect_o[k], batch, np.float32)
    assert env.cache.builds == programs


def test_update_only_one_program_per_batch_size(env):
    sources = {update_plan(env, 10, n_in, n_out).source() for n_in, n_out in
               [(784, 100), (33, 7), (7, 100)]}
    assert len(sources) == 1
    source = sources.pop()
    assert "__kernel void backprop_update" in source and " *P," not in source
    assert "epilogue(" not in source.replace("column_epilogue(", "")


def test_update_only_arguments_are_checked(env):
    ctx, top = env.context, bu.max_batch(env.bits, backward=False)
    kw = dict(column_epilogue="s", columns=0, backward=False)
    with pytest.raises(ValueError, match="backward=False.*epilogue: it must be None and "
                                         "extras 0"):
        bu.BackpropUpdatePlan(ctx, 10, 10, 10, epilogue="v", **kw)
    with pytest.raises(ValueError, match="backward=False.*it must be None and extras 0"):
        bu.BackpropUpdatePlan(ctx, 10, 10, 10, extras=1, **kw)
    with pytest.raises(ValueError, match=f"batch {top + 1} is too large for the update "
                                         f"without the backward product.*at most {top}"):
        bu.BackpropUpdatePlan(ctx, top + 1, 10, 10, **kw)
    with pytest.raises(ValueError, match="batch must be a positive int"):
        bu.BackpropUpdatePlan(ctx, 0, 10, 10, **kw)

    batch, n_in, n_out = 3, 7, 5
    plan = update_plan(env, batch, n_in, n_out)

    def buf(n):
        return cl.Buffer(env.context, cl.mem_flags.READ_WRITE, n * 4)

    big = buf(200)
    h, d, w, v, o = buf(21), buf(15), buf(35), buf(5), buf(5)
    ok = dict(column_sums=[(v, 0), (o, 0)])
    with pytest.raises(ValueError, match=r"pass p=None"):
        plan.bind(h, d, w, w, buf(21), **ok)
    with pytest.raises(ValueError, match="built for 0 extra epilogue operands"):
        plan.bind(h, d, w, w, None, extras=[(buf(21), 0)], **ok)
    with pytest.raises(ValueError, match="w needs 35 elements from offset 1"):
        plan.bind(h, d, w, w, None, w_offset=1, **ok)
    with pytest.raises(ValueError, match="w_out overlaps w"):
        plan.bind(h, d, big, big, None, w_offset=0, w_out_offset=3, **ok)
    with pytest.raises(ValueError, match="w_out overlaps h"):
        plan.bind(big, d, w, big, None, w_out_offset=20, **ok)
    with pytest.raises(ValueError, match=r"column_sums\[0\] \(V\) overlaps d"):
        plan.bind(h, d, w, w, None, column_sums=[(d, 0), (o, 0)])
    launches = plan.bind(h, d, w, w, None, p_offset=7, column_sums=[(o, 0), (o, 0)])
    assert launches == [(plan._kernel, plan._grid, (1,))]
