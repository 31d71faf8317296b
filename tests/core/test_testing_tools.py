"""tinygraph.testing: verify_grad catches wrong gradients; the strategies produce what they
claim."""

import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygraph as tg
from tinygraph.testing import GradientError, verify_grad
from tinygraph.testing import strategies as tgs


class Cube(tg.Op):
    """x ** 3 with a gradient of ``factor * x ** 2`` (correct only for factor 3)."""

    __props__ = ("factor",)

    def __init__(self, factor):
        self.factor = factor

    def make_node(self, x):
        x = tg.as_variable(x)
        return tg.Apply(self, [x], [x.type])

    def perform(self, node, inputs):
        return [inputs[0] ** 3]

    def infer_shape(self, node, input_shapes, input_values):
        return [input_shapes[0]]

    def grad(self, inputs, output_grads):
        (x,) = inputs
        return [output_grads[0] * self.factor * x * x]


def test_verify_grad_accepts_a_correct_gradient(backend):
    verify_grad(Cube(3.0), [np.array([0.5, -1.0, 2.0])])


def test_verify_grad_catches_a_wrong_gradient_and_shows_the_mismatch(backend):
    with pytest.raises(GradientError) as info:
        verify_grad(Cube(2.0), [np.array([0.5, -1.0, 2.0])], rng=0)
    message = str(info.value)
    assert "gradient of input 0 (shape (3,)) is wrong" in message
    match = re.search(r"symbolic (\S+) vs finite differences (\S+);", message)
    symbolic, numeric = float(match.group(1)), float(match.group(2))
    assert symbolic == pytest.approx(numeric * 2 / 3, rel=1e-4)  # factor 2 instead of 3
    assert "allowed" in message
    assert isinstance(info.value, AssertionError)


def test_verify_grad_reports_the_wrong_input(backend):
    def fn(a, b):
        return a * 2.0 + Cube(1.0)(b)

    with pytest.raises(GradientError, match="gradient of input 1 \\(shape \\(2, 2\\)\\)"):
        verify_grad(fn, [np.ones(2), np.full((2, 2), 1.5)])


def test_verify_grad_catches_a_gradient_that_is_slightly_off(backend):
    class Scale(tg.Op):
        def make_node(self, x):
            x = tg.as_variable(x)
            return tg.Apply(self, [x], [x.type])

        def perform(self, node, inputs):
            return [inputs[0] * 2.0]

        def grad(self, inputs, output_grads):
            return [output_grads[0] * 2.001]

    with pytest.raises(GradientError):
        verify_grad(Scale(), [np.linspace(-1, 1, 6)])


def test_verify_grad_catches_non_finite_gradients(backend):
    class Nan(Cube):
        def grad(self, inputs, output_grads):
            return [output_grads[0] * np.nan]

    with pytest.raises(GradientError):
        verify_grad(Nan(3.0), [np.array([1.0])])


def test_verify_grad_needs_a_float_output(backend):
    with pytest.raises(TypeError, match="float tensor"):
        verify_grad(lambda x: x > 0, [np.ones(2)])


@given(dtype=tgs.dtypes(), float_dtype=tgs.dtypes(floats_only=True))
def test_dtypes(dtype, float_dtype):
    assert dtype in ("float32", "float64", "int32", "int64", "bool", "uint8")
    assert float_dtype in ("float32", "float64")


@given(shape=tgs.shapes(min_dims=1, max_dims=3, min_side=2, max_side=4))
def test_shapes_respect_their_bounds(shape):
    assert 1 <= len(shape) <= 3 and all(2 <= s <= 4 for s in shape)


@given(data=st.data())
def test_broadcastable_shapes_broadcast_against_the_shape(data):
    shape = data.draw(tgs.shapes(max_dims=4))
    other = data.draw(tgs.broadcastable_shapes(shape))
    assert len(other) <= len(shape)
    assert np.broadcast_shapes(shape, other) == shape
    assert all(o in (1, s) for o, s in zip(other[::-1], shape[::-1]))


@pytest.mark.parametrize("domain", sorted(tgs.DOMAINS))
@given(data=st.data())
def test_arrays_have_the_dtype_shape_and_domain(domain, data):
    dtype = data.draw(tgs.dtypes())
    shape = data.draw(tgs.shapes())
    if domain == "unit" and dtype not in ("float32", "float64", "bool"):
        with pytest.raises(ValueError, match="contains no values"):
            tgs.arrays(dtype, shape, domain)
        return
    value = data.draw(tgs.arrays(dtype, shape, domain))
    assert value.dtype == np.dtype(dtype) and value.shape == shape
    if dtype != "bool":
        low, high = tgs.DOMAINS[domain]
        if dtype not in ("float32", "float64"):
            low, high = max(np.ceil(low), np.iinfo(dtype).min), np.floor(high)
        assert np.all(value >= low) and np.all(value <= high), (value, low, high)
        assert np.all(np.isfinite(value))


@given(graph=tgs.elementwise_graphs(dtype="float64", max_inputs=3, max_ops=5))
def test_elementwise_graphs(compile_fn, graph):
    assert 1 <= len(graph.inputs) <= 3 and len(graph.values) == len(graph.inputs)
    first = graph.values[0].shape
    for var, value in zip(graph.inputs, graph.values):
        assert var.dtype == "float64" and value.dtype == np.float64
        assert var.broadcastable == tuple(s == 1 for s in value.shape)
        assert np.broadcast_shapes(first, value.shape) == first
    assert graph.output.dtype == "float64"
    want = graph.numpy_fn(*graph.values)
    assert want.shape == first and np.all(np.isfinite(want))
    np.testing.assert_allclose(compile_fn(graph.inputs, graph.output)(*graph.values), want,
                               rtol=1e-10, atol=1e-12)
