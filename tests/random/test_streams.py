"""RandomStreams: reproducible for a seed, independent draws, state advancing on every call."""

import numpy as np
import pytest

import tinygraph as tg
from tinygraph.random import philox


def test_same_seed_same_numbers_and_seed_restarts():
    def run(seed):
        srng = tg.RandomStreams(seed)
        f = tg.function([], [srng.uniform((4, 3)), srng.normal((7,)),
                             srng.binomial((5,), p=0.3)])
        return f(), f(), srng, f

    first, second, srng, f = run(123)
    again_first, again_second, _, _ = run(123)
    for a, b in zip(first + second, again_first + again_second):
        np.testing.assert_array_equal(a, b)
    srng.seed(123)
    for a, b in zip(f(), first):
        np.testing.assert_array_equal(a, b)
    other, _, _, _ = run(124)
    assert not np.array_equal(other[0], first[0])


def test_state_advances_each_call_and_draws_are_independent():
    srng = tg.RandomStreams(7)
    x = tg.matrix("x")
    mask_a = srng.binomial(x.shape, p=0.5, dtype="float32")
    mask_b = srng.binomial(x.shape, p=0.5, dtype="float32")
    f = tg.function([x], [mask_a, mask_b])
    data = np.zeros((20, 30), "float32")
    a1, b1 = f(data)
    a2, _ = f(data)
    assert not np.array_equal(a1, b1), "same-shaped draws in one graph must differ"
    assert not np.array_equal(a1, a2), "a draw must advance between calls"
    assert 0.4 < a1.mean() < 0.6


def test_draw_matches_philox_reference():
    srng = tg.RandomStreams(99)
    u = srng.uniform((3, 5), low=-2.0, high=3.0)
    f = tg.function([], u)
    key = philox.derive_key(99, 0)
    expected_first = philox.uniform(key, 0, (3, 5), "float32", -2.0, 3.0)
    np.testing.assert_array_equal(f(), expected_first)
    used = philox.blocks_used("uniform", 15, "float32")
    np.testing.assert_array_equal(f(), philox.uniform(key, used, (3, 5), "float32", -2.0, 3.0))


def test_distribution_statistics():
    srng = tg.RandomStreams(1)
    f = tg.function([], [srng.uniform((20000,), 1.0, 3.0), srng.normal((20000,), 2.0, 0.5),
                         srng.binomial((20000,), n=4, p=0.25)])
    u, z, k = f()
    assert u.dtype == np.float32 and u.min() >= 1.0 and u.max() < 3.0
    assert abs(u.mean() - 2.0) < 0.03
    assert abs(z.mean() - 2.0) < 0.02 and abs(z.std() - 0.5) < 0.02
    assert k.dtype == np.int64 and k.min() >= 0 and k.max() <= 4 and abs(k.mean() - 1.0) < 0.03


def test_symbolic_size_and_float64():
    srng = tg.RandomStreams(3)
    n = tg.lscalar("n")
    f = tg.function([n], srng.normal((n, 2), dtype="float64"))
    assert f(5).shape == (5, 2) and f(5).dtype == np.float64


def test_get_and_set_state_resume_the_stream():
    srng = tg.RandomStreams(5)
    f = tg.function([], srng.uniform((6,)))
    f()
    saved = srng.get_state()
    expected = f()
    f()
    srng.set_state(saved)
    np.testing.assert_array_equal(f(), expected)
    with pytest.raises(ValueError, match="states"):
        srng.set_state([])


def test_bad_arguments():
    srng = tg.RandomStreams(0)
    with pytest.raises(ValueError, match="n must be"):
        srng.binomial((3,), n=0)
    with pytest.raises(TypeError, match="float32 or float64"):
        srng.uniform((3,), dtype="int32")


def test_draw_sized_by_a_givens_replaced_input_advances():
    x, i = tg.vector("x"), tg.lscalar("i")
    data = tg.shared(np.arange(6, dtype="float32"))
    mask = tg.RandomStreams(0).uniform(x.shape)
    f = tg.function([i], x * mask, givens={x: data[i * 2:(i + 1) * 2]})
    first, second = f(0), f(0)
    assert first.shape == (2,) and not np.array_equal(first, second)


def test_draw_only_inside_givens_advances():
    z = tg.vector("z")
    f = tg.function([], z * 2.0, givens={z: tg.RandomStreams(1).uniform((3,))})
    assert not np.array_equal(f(), f())


def test_draws_follow_the_stream_when_a_shared_variable_resizes_them():
    """Repeated calls reuse the host pass and only advance the streams; a set_value that
    changes a draw's shape is seen by the next call."""
    data = tg.shared(np.ones(4, "float32"))
    f = tg.function([], data * tg.RandomStreams(11).uniform(data.shape))
    results = [f(), f()]
    data.set_value(np.full(6, 2.0, "float32"))
    results += [f(), f()]
    key, base, expected = philox.derive_key(11, 0), 0, []
    for size, scale in ((4, 1.0), (4, 1.0), (6, 2.0), (6, 2.0)):
        expected.append(scale * philox.uniform(key, base, (size,), "float32", 0.0, 1.0))
        base += philox.blocks_used("uniform", size, "float32")
    for got, want in zip(results, expected):
        np.testing.assert_array_equal(got, want)
