"""``Network``: a stack of layers ending in a ``Softmax``, with inference in minibatches."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

import tinygraph as tg
from tinygraph import SharedVariable, Variable

from .layers import Layer, Softmax


class Network:
    """A feed-forward network of ``layers`` (the last one a :class:`Softmax`).

    ``seed`` seeds the weight initialisation and the network's one ``tg.RandomStreams``
    (``srng``), which draws one dropout mask per dropping layer, once, for the training graph
    on ``x``: the number of random streams is fixed, so ``srng.get_state()`` checkpoints them.
    Inference runs in chunks of ``mini_batch_size`` examples; a last, smaller chunk is
    evaluated too (it gets its own plan on OpenCL).
    """

    def __init__(self, layers: Sequence[Layer], mini_batch_size: int, seed: int = 0) -> None:
        self.layers = list(layers)
        if not self.layers:
            raise ValueError("Network: no layers")
        if not isinstance(self.layers[-1], Softmax):
            raise ValueError(f"Network: the last layer must be a Softmax, got "
                             f"{self.layers[-1]!r}")
        if int(mini_batch_size) < 1:
            raise ValueError(f"Network: mini_batch_size must be positive, got {mini_batch_size}")
        self.mini_batch_size = int(mini_batch_size)
        self.seed = int(seed)
        self.widths = self._check_sizes()
        rng = np.random.default_rng(self.seed)
        for layer in self.layers:
            layer.initialize(rng)
        self.srng = tg.RandomStreams(self.seed)
        self.x = tg.matrix("x")
        self.y = tg.ivector("y")
        self.masks = self.draw_masks(self.x)
        self._functions: dict[tuple[str, str], tg.Function] = {}

    def _check_sizes(self) -> list[int]:
        """The input width of every layer; raises if consecutive sizes do not chain."""
        widths = []
        width = next(layer.n_in for layer in self.layers if layer.n_in is not None)
        source = None
        for index, layer in enumerate(self.layers):
            if layer.n_in is not None and layer.n_in != width:
                raise ValueError(
                    f"Network: layer {source} ({self.layers[source]!r}) outputs {width} units "
                    f"but layer {index} ({layer!r}) takes n_in={layer.n_in}")
            widths.append(width)
            if layer.n_out is not None:
                width, source = layer.n_out, index
        return widths

    @property
    def n_in(self) -> int:
        """The input width."""
        return self.widths[0]

    @property
    def n_out(self) -> int:
        """The number of classes."""
        return self.layers[-1].n_out

    @property
    def params(self) -> list[SharedVariable]:
        """All parameters, layer by layer (weights then biases)."""
        return [p for layer in self.layers for p in layer.params]

    @property
    def weights(self) -> list[SharedVariable]:
        """The weight matrices (what L2 regularisation penalises)."""
        return [p for p in self.params if p.ndim == 2]

    def draw_masks(self, x: Variable) -> list[Variable | None]:
        """New dropout masks (new random streams) for input ``x``, None for layers without
        dropout. The network draws them once, for ``self.x``."""
        floatx = tg.config.floatX
        return [self.srng.binomial((x.shape[0], width), p=1.0 - layer.p_dropout, dtype=floatx)
                if layer.p_dropout > 0 else None
                for layer, width in zip(self.layers, self.widths)]

    def forward(self, x: Variable, train: bool = False, params: Sequence[Variable] | None = None,
                masks: Sequence | None = None) -> Variable:
        """Class probabilities for ``x``. ``params`` replaces :attr:`params` (same order);
        ``masks`` (one per layer, None where unused) replaces the dropout masks, which are
        otherwise those drawn for ``self.x`` (so training graphs must be built on it)."""
        params = self.params if params is None else list(params)
        if len(params) != len(self.params):
            raise ValueError(f"forward: got {len(params)} parameters, the network has "
                             f"{len(self.params)}")
        if train and masks is None:
            if x is not self.x and any(m is not None for m in self.masks):
                raise ValueError("forward: build training graphs on net.x (its dropout masks "
                                 "are fixed), or pass masks")
            masks = self.masks
        masks = list(masks) if masks is not None else [None] * len(self.layers)
        start = 0
        for layer, mask in zip(self.layers, masks):
            count = len(layer.params)
            x = layer.forward(x, params[start:start + count], train, mask)
            start += count
        return x

    def cost(self, x: Variable, y: Variable, train: bool = False,
             params: Sequence[Variable] | None = None, masks: Sequence | None = None
             ) -> Variable:
        """Mean negative log-likelihood of labels ``y`` (see :meth:`forward`)."""
        p = self.forward(x, train, params, masks)
        return -tg.mean(tg.log(p)[tg.arange(y.shape[0]), y])

    def _function(self, kind: str) -> tg.Function:
        key = (kind, tg.config.device)
        if key not in self._functions:
            p = self.forward(self.x)
            output = p if kind == "proba" else tg.argmax(p, axis=1)
            self._functions[key] = tg.function([self.x], output, name=f"predict_{kind}")
        return self._functions[key]

    def _chunks(self, kind: str, x) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != self.n_in:
            raise ValueError(f"expected inputs of shape (n, {self.n_in}), got {x.shape}")
        function = self._function(kind)
        size = self.mini_batch_size
        parts = [np.asarray(function(x[i:i + size])) for i in range(0, len(x), size)]
        if not parts:
            return (np.zeros((0, self.n_out), tg.config.floatX) if kind == "proba"
                    else np.zeros(0, "int64"))
        return np.concatenate(parts)

    def predict_proba(self, x) -> np.ndarray:
        """Class probabilities (n, n_out) of the rows of ``x`` (inference mode)."""
        return self._chunks("proba", x)

    def predict(self, x) -> np.ndarray:
        """The most probable class of every row of ``x``."""
        return self._chunks("class", x)

    def accuracy(self, data) -> float:
        """The fraction of ``data = (x, y)`` classified correctly."""
        x, y = data
        y = np.asarray(y)
        if len(y) == 0:
            raise ValueError("accuracy: empty data set")
        return float(np.mean(self.predict(x) == y))

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the architecture and weights to ``path`` (see :mod:`layers.model_io`)."""
        from .model_io import save

        save(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Network:
        """A network read from a file written by :meth:`save`."""
        from .model_io import load

        return load(path)

    def __repr__(self) -> str:
        inner = ", ".join(repr(layer) for layer in self.layers)
        return f"Network([{inner}], mini_batch_size={self.mini_batch_size}, seed={self.seed})"
