"""Neural-network ops: softmax, log-softmax, the fused stable softmax crossentropy, one-hot,
and the crossentropy helpers users write costs with."""

from __future__ import annotations

import numpy as np

from ..config import config
from ..graph import Apply, Op, as_variable
from ..types import TensorType, canonical_dtype, is_float, is_integer
from . import elemwise as ew
from .reduce import mean, sum
from .shape import arange, dimshuffle, shape
from .subtensor import getitem


def _np_log_softmax(x: np.ndarray) -> np.ndarray:
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


class _RowOp(Op):
    """Base for ops working on the last axis of a float tensor."""

    def make_node(self, x) -> Apply:
        x = as_variable(x)
        if x.ndim < 1 or not is_float(x.dtype):
            raise TypeError(f"{self}: expected a float tensor with at least one axis, got "
                            f"{x.type}")
        return Apply(self, [x], [x.type])

    def infer_shape(self, node, input_shapes, input_values):
        return [input_shapes[0]]


class Softmax(_RowOp):
    """exp(x) / sum(exp(x)) along the last axis, computed stably."""

    def perform(self, node, inputs):
        (x,) = inputs
        with np.errstate(all="ignore"):
            e = np.exp(x - x.max(axis=-1, keepdims=True))
            return [(e / e.sum(axis=-1, keepdims=True)).astype(x.dtype)]

    def grad(self, inputs, output_grads):
        (x,) = inputs
        (g,) = output_grads
        sm = self(x)
        return [sm * (g - sum(g * sm, -1, keepdims=True))]


class LogSoftmax(_RowOp):
    """log(softmax(x)) along the last axis, finite for any finite logits."""

    def perform(self, node, inputs):
        (x,) = inputs
        with np.errstate(all="ignore"):
            return [_np_log_softmax(x).astype(x.dtype)]

    def grad(self, inputs, output_grads):
        (x,) = inputs
        (g,) = output_grads
        return [g - softmax(x) * sum(g, -1, keepdims=True)]


def _check_labels(op, z_shape, y) -> None:
    if z_shape[0] != y.shape[0]:
        raise ValueError(f"{op}: {z_shape[0]} rows of logits but {y.shape[0]} labels")
    if y.size and (y.min() < 0 or y.max() >= z_shape[1]):
        raise ValueError(f"{op}: labels must lie in [0, {z_shape[1]}), got values from "
                         f"{y.min()} to {y.max()}")


class CrossentropySoftmax(Op):
    """Per-row negative log-likelihood ``-log_softmax(z)[i, y[i]]`` of integer labels, fused and
    stable; what ``-log(softmax(z))[arange(n), y]`` is rewritten to."""

    def make_node(self, z, y) -> Apply:
        z, y = as_variable(z), as_variable(y)
        if z.ndim != 2 or not is_float(z.dtype):
            raise TypeError(f"{self}: logits must be a float matrix, got {z.type}")
        if y.ndim != 1 or not is_integer(y.dtype):
            raise TypeError(f"{self}: labels must be an integer vector, got {y.type}")
        return Apply(self, [z, y], [TensorType(z.dtype, (z.broadcastable[0],))])

    def perform(self, node, inputs):
        z, y = inputs
        _check_labels(self, z.shape, y)
        with np.errstate(all="ignore"):
            logp = _np_log_softmax(z)
        return [(-logp[np.arange(len(y)), y]).astype(z.dtype)]

    def infer_shape(self, node, input_shapes, input_values):
        return [(input_shapes[0][0],)]

    def grad(self, inputs, output_grads):
        z, y = inputs
        return [CrossentropySoftmaxGrad()(output_grads[0], z, y), None]


class CrossentropySoftmaxGrad(Op):
    """Gradient of :class:`CrossentropySoftmax`: ``(softmax(z) - one_hot(y)) * g[:, None]``."""

    def make_node(self, g, z, y) -> Apply:
        g, z, y = as_variable(g), as_variable(z), as_variable(y)
        return Apply(self, [ew.cast(g, z.dtype), z, y], [z.type])

    def perform(self, node, inputs):
        g, z, y = inputs
        _check_labels(self, z.shape, y)
        with np.errstate(all="ignore"):
            out = np.exp(_np_log_softmax(z))
        out[np.arange(len(y)), y] -= 1
        return [(out * g[:, None]).astype(z.dtype)]

    def infer_shape(self, node, input_shapes, input_values):
        return [input_shapes[1]]

    def grad(self, inputs, output_grads):
        g, z, y = inputs
        (gg,) = output_grads
        sm = softmax(z)
        g_g = sum(gg * (sm - one_hot(y, shape(z)[1], z.dtype)), axis=1)
        row = dimshuffle(g, (0, "x"))
        g_z = row * sm * (gg - sum(gg * sm, 1, keepdims=True))
        return [g_g, g_z, None]


def softmax(x):
    """Softmax along the last axis."""
    return Softmax()(x)


def log_softmax(x):
    """log(softmax(x)) along the last axis, stable for large logits."""
    return LogSoftmax()(x)


def one_hot(labels, depth, dtype: str | None = None):
    """Rows of ``depth`` zeros with a one at each label (labels outside [0, depth) give zero
    rows)."""
    labels = as_variable(labels)
    if labels.ndim != 1 or not is_integer(labels.dtype):
        raise TypeError(f"one_hot: labels must be an integer vector, got {labels.type}")
    hot = ew.eq(dimshuffle(labels, (0, "x")), dimshuffle(arange(depth), ("x", 0)))
    return ew.cast(hot, canonical_dtype(dtype or config.floatX))


def categorical_crossentropy(coding_dist, true_dist):
    """Per-row crossentropy of predicted probabilities against integer labels (a vector) or a
    distribution (a matrix of the same shape)."""
    coding_dist, true_dist = as_variable(coding_dist), as_variable(true_dist)
    if true_dist.ndim == coding_dist.ndim - 1 and is_integer(true_dist.dtype):
        rows = arange(shape(true_dist)[0])
        return -ew.log(getitem(coding_dist, (rows, true_dist)))
    if true_dist.ndim == coding_dist.ndim:
        return -sum(true_dist * ew.log(coding_dist), axis=-1)
    raise TypeError("categorical_crossentropy: true_dist must be integer labels with one axis "
                    f"fewer than coding_dist ({coding_dist.type}) or a distribution of the same "
                    f"rank, got {true_dist.type}")


def binary_crossentropy(output, target):
    """Elementwise -(t log(o) + (1 - t) log(1 - o)); stable when ``output`` is a sigmoid."""
    output, target = as_variable(output), as_variable(target)
    return -(target * ew.log(output) + (1.0 - target) * ew.log(1.0 - output))


def nll_mean(logits, labels):
    """Mean negative log-likelihood of integer labels under softmax(logits), fused."""
    return mean(CrossentropySoftmax()(logits, labels))
