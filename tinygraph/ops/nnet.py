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


def _check_labels(op, z_shape, y, all_rows: bool = False) -> None:
    rows = z_shape[0]
    if (y.shape[0] != rows) if all_rows else (y.shape[0] > rows):
        need = "one label per row" if all_rows else "at most one label per row"
        raise ValueError(f"{op}: {rows} rows of logits but {y.shape[0]} labels ({need})")
    if y.size and (y.min() < 0 or y.max() >= z_shape[1]):
        raise ValueError(f"{op}: labels must lie in [0, {z_shape[1]}), got values from "
                         f"{y.min()} to {y.max()}")


class CrossentropySoftmax(Op):
    """Negative log-likelihoods ``-log_softmax(z)[i, y[i]]`` for ``i < len(y)``, fused and
    stable; what ``-log(softmax(z))[arange(len(y)), y]`` is rewritten to. ``all_rows``
    requires one label per row of ``z`` (the form ``arange(z.shape[0])``)."""

    __props__ = ("all_rows",)

    def __init__(self, all_rows: bool = False) -> None:
        self.all_rows = all_rows

    def make_node(self, z, y) -> Apply:
        z, y = as_variable(z), as_variable(y)
        if z.ndim != 2 or not is_float(z.dtype):
            raise TypeError(f"{self}: logits must be a float matrix, got {z.type}")
        if y.ndim != 1 or not is_integer(y.dtype):
            raise TypeError(f"{self}: labels must be an integer vector, got {y.type}")
        return Apply(self, [z, y], [TensorType(z.dtype, y.broadcastable)])

    def perform(self, node, inputs):
        z, y = inputs
        _check_labels(self, z.shape, y, self.all_rows)
        with np.errstate(all="ignore"):
            logp = _np_log_softmax(z[:len(y)])
        return [(-logp[np.arange(len(y)), y]).astype(z.dtype)]

    def infer_shape(self, node, input_shapes, input_values):
        z_shape, y_shape = input_shapes
        rows, labels = z_shape[0], y_shape[0]
        if (labels != rows) if self.all_rows else (labels > rows):
            _check_labels(self, z_shape, np.zeros(y_shape, dtype="int64"), self.all_rows)
        return [(labels,)]

    def grad(self, inputs, output_grads):
        z, y = inputs
        return [CrossentropySoftmaxGrad()(output_grads[0], z, y), None]


class CrossentropySoftmaxGrad(Op):
    """Gradient of :class:`CrossentropySoftmax`: row ``i < len(y)`` is
    ``(softmax(z[i]) - one_hot(y[i])) * g[i]``, the other rows are zero. ``g`` may be a
    broadcastable one-element vector: the same gradient for every row (a mean's)."""

    def make_node(self, g, z, y) -> Apply:
        g, z, y = as_variable(g), as_variable(z), as_variable(y)
        if g.ndim != 1:
            raise TypeError(f"{self}: the output gradient must be a vector, got {g.type}")
        return Apply(self, [ew.cast(g, z.dtype), z, y], [z.type])

    def perform(self, node, inputs):
        g, z, y = inputs
        _check_labels(self, z.shape, y)
        n = len(y)
        out = np.zeros_like(z)
        with np.errstate(all="ignore"):
            out[:n] = np.exp(_np_log_softmax(z[:n]))
        out[np.arange(n), y] -= 1
        out[:n] *= g[:, None]
        return [out.astype(z.dtype)]

    def infer_shape(self, node, input_shapes, input_values):
        g_shape, z_shape, y_shape = input_shapes
        broadcast = node.inputs[0].broadcastable[0] and g_shape == (1,)
        if y_shape[0] > z_shape[0] or not (broadcast or g_shape == y_shape):
            raise ValueError(f"{self}: {z_shape[0]} rows of logits, {y_shape[0]} labels and "
                             f"{g_shape[0]} gradients (at most one label per row, one gradient "
                             "per label)")
        return [z_shape]

    def grad(self, inputs, output_grads):
        from .subtensor import getitem, inc_subtensor

        g, z, y = inputs
        (gg,) = output_grads
        n = shape(y)[0]
        z_n, gg_n = getitem(z, slice(None, n)), getitem(gg, slice(None, n))
        sm = softmax(z_n)
        g_g = sum(gg_n * (sm - one_hot(y, shape(z)[1], z.dtype)), axis=1)
        if g.broadcastable[0]:
            g_g = sum(g_g, axis=0, keepdims=True)
        row = dimshuffle(g, (0, "x"))
        g_z_n = row * sm * (gg_n - sum(gg_n * sm, 1, keepdims=True))
        g_z = inc_subtensor(getitem(ew.zeros_like(z), slice(None, n)), g_z_n)
        return [g_g, g_z, None]


class CrossentropySoftmaxWithGrad(Op):
    """:class:`CrossentropySoftmax` ``(z, y)`` and :class:`CrossentropySoftmaxGrad`
    ``(g, z, y)`` in one pass over the logits: outputs ``(nll, dz)``. Made by a rewrite after
    differentiation, when ``g`` does not depend on ``nll``."""

    __props__ = ("all_rows",)

    def __init__(self, all_rows: bool = False) -> None:
        self.all_rows = all_rows

    def make_node(self, g, z, y) -> Apply:
        forward = CrossentropySoftmax(self.all_rows).make_node(z, y)
        backward = CrossentropySoftmaxGrad().make_node(g, z, y)
        return Apply(self, backward.inputs, [forward.outputs[0].type, backward.outputs[0].type])

    def perform(self, node, inputs):
        g, z, y = inputs
        _check_labels(self, z.shape, y, self.all_rows)
        return [CrossentropySoftmax(self.all_rows).perform(None, [z, y])[0],
                CrossentropySoftmaxGrad().perform(None, inputs)[0]]

    def infer_shape(self, node, input_shapes, input_values):
        g_shape, z_shape, y_shape = input_shapes
        forward = CrossentropySoftmax(self.all_rows).infer_shape(None, [z_shape, y_shape], [])
        return forward + CrossentropySoftmaxGrad().infer_shape(node, input_shapes, [])

    def grad(self, inputs, output_grads):
        raise NotImplementedError(f"{self} is created after differentiation")


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
