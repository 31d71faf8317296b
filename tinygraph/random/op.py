"""``RandomDraw``: one draw of a counter-based random stream, as a graph op.

Inputs are the stream state (an int64 vector ``[key, counter]`` holding uint64 bit patterns),
the output shape and two distribution parameters; outputs are the advanced state and the sample.
"""

from __future__ import annotations

import math

import numpy as np

from ..graph import Apply, Op, as_variable
from ..ops.shape import _static_length
from ..types import TensorType, is_float
from . import philox

DISTRIBUTIONS = ("uniform", "normal", "binomial")


class RandomDraw(Op):
    """Samples of ``distribution`` (parameters: uniform low/high, normal mean/std, binomial
    p and the constant trial count ``n``) with the given ``dtype``."""

    __props__ = ("distribution", "dtype", "n")
    shape_value_inputs = (1,)
    never_fold = True

    def __init__(self, distribution: str, dtype: str, n: int = 1) -> None:
        if distribution not in DISTRIBUTIONS:
            raise ValueError(f"unknown distribution {distribution!r}")
        self.distribution = distribution
        self.dtype = dtype
        self.n = n

    def param_dtype(self) -> str:
        """The float dtype the parameters and uniforms are computed in."""
        if self.distribution == "binomial":
            return self.dtype if is_float(self.dtype) else "float32"
        return self.dtype

    def make_node(self, state, shape_vector, a, b) -> Apply:
        state = as_variable(state)
        if state.type != TensorType("int64", (False,)):
            raise TypeError(f"{self}: the state must be an int64 vector, got {state.type}")
        params = []
        for name, value in (("first parameter", a), ("second parameter", b)):
            value = as_variable(value, self.param_dtype()) if not hasattr(value, "type") \
                else value
            if value.ndim != 0:
                raise TypeError(f"{self}: the {name} must be a scalar, got {value.type}")
            from ..ops.elemwise import cast

            params.append(cast(value, self.param_dtype()))
        ndim = _static_length(shape_vector)
        outputs = [state.type, TensorType(self.dtype, (False,) * ndim)]
        return Apply(self, [state, shape_vector, *params], outputs)

    def perform(self, node, inputs):
        state, shape, a, b = inputs
        key, base = (int(v) & 0xFFFFFFFFFFFFFFFF for v in state.view("uint64"))
        shape = tuple(int(s) for s in shape)
        if any(s < 0 for s in shape):
            raise ValueError(f"{self}: negative size in shape {shape}")
        if self.distribution == "uniform":
            sample = philox.uniform(key, base, shape, self.dtype, a, b)
        elif self.distribution == "normal":
            sample = philox.normal(key, base, shape, self.dtype, a, b)
        else:
            sample = philox.binomial(key, base, shape, self.n, b, self.dtype)
        return [self.next_state(state, shape), np.asarray(sample, dtype=self.dtype)]

    def next_state(self, state: np.ndarray, shape) -> np.ndarray:
        """The state after drawing a sample of ``shape`` from ``state``."""
        key, base = (int(v) for v in np.asarray(state).view("uint64"))
        used = philox.blocks_used(self.distribution, math.prod(int(s) for s in shape),
                                  self.param_dtype(), self.n)
        return np.array([key, (base + used) & 0xFFFFFFFFFFFFFFFF], dtype="uint64").view("int64")

    def infer_shape(self, node, input_shapes, input_values):
        return [(2,), tuple(int(s) for s in input_values[1])]

    def grad(self, inputs, output_grads):
        return [None] * len(inputs)

    def __str__(self) -> str:
        return f"RandomDraw{{{self.distribution}, {self.dtype}}}"
