"""Layers: ``FullyConnected``, ``Softmax`` and ``Dropout``.

A layer's ``p_dropout`` drops units of its *input* during training (as in network3), with
inverted dropout: kept units are scaled by ``1 / (1 - p)``, so inference uses the weights as
they are. The masks are drawn by the :class:`~layers.network.Network`; :meth:`Layer.forward`
is pure (parameters and mask are arguments), so whole-network gradients can be checked with
float64 parameters and fixed masks.

Default initialisation (biases are zero):

* sigmoid: Glorot uniform with the factor 4 of Glorot & Bengio (2010) for the logistic
  function, ``U(-4a, 4a)``, ``a = sqrt(6 / (n_in + n_out))``;
* tanh and linear: Glorot uniform, ``U(-a, a)``;
* relu: He normal, ``N(0, sqrt(2 / n_in))``;
* ``Softmax``: weights zero, like network3 (the gradient still separates the classes).

``init`` may be a callable ``(rng, n_in, n_out) -> array`` for the weights of a
``FullyConnected`` layer, ``rng`` a ``numpy.random.Generator``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

import tinygraph as tg
from tinygraph import SharedVariable, Variable

from .activations import Activation, resolve

Init = Callable[[np.random.Generator, int, int], np.ndarray]


def glorot_uniform(rng: np.random.Generator, n_in: int, n_out: int,
                   gain: float = 1.0) -> np.ndarray:
    """``U(-gain * a, gain * a)`` with ``a = sqrt(6 / (n_in + n_out))``."""
    limit = gain * np.sqrt(6.0 / (n_in + n_out))
    return rng.uniform(-limit, limit, size=(n_in, n_out))


def he_normal(rng: np.random.Generator, n_in: int, n_out: int) -> np.ndarray:
    """``N(0, sqrt(2 / n_in))``."""
    return rng.normal(0.0, np.sqrt(2.0 / n_in), size=(n_in, n_out))


def _check_p(p: float, what: str) -> float:
    p = float(p)
    if not 0.0 <= p < 1.0:
        raise ValueError(f"{what}: the dropout probability must be in [0, 1), got {p}")
    return p


def apply_dropout(x: Variable, p: float, train: bool, mask) -> Variable:
    """Inverted dropout of ``x``: ``x * mask / (1 - p)`` when training with ``p > 0``."""
    if not train or p == 0.0:
        return x
    if mask is None:
        raise ValueError("a dropout mask is needed when training with p_dropout > 0")
    return x * mask * (1.0 / (1.0 - p))


class Layer:
    """Base class: ``n_in``/``n_out`` (None for a size-preserving layer), ``p_dropout`` (of
    the input), ``params`` (shared variables, created by :meth:`initialize`)."""

    kind = "layer"
    n_in: int | None = None
    n_out: int | None = None
    p_dropout = 0.0

    def __init__(self) -> None:
        self.params: list[SharedVariable] = []

    def initialize(self, rng: np.random.Generator) -> None:
        """Create the parameters (called once, by the network)."""

    def forward(self, x: Variable, params: Sequence[Variable], train: bool,
                mask=None) -> Variable:
        """The output for input ``x`` given this layer's ``params``."""
        raise NotImplementedError

    def config(self) -> dict:
        """The constructor arguments, for model files (JSON-serialisable)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"


class _Affine(Layer):
    """A layer ``f(x @ W + b)`` with input dropout."""

    def __init__(self, n_in: int, n_out: int, p_dropout: float) -> None:
        super().__init__()
        for name, value in (("n_in", n_in), ("n_out", n_out)):
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{type(self).__name__}: {name} must be a positive int, "
                                 f"got {value!r}")
        self.n_in, self.n_out = int(n_in), int(n_out)
        self.p_dropout = _check_p(p_dropout, type(self).__name__)

    @property
    def w(self) -> SharedVariable:
        """The weight matrix (n_in, n_out)."""
        return self.params[0]

    @property
    def b(self) -> SharedVariable:
        """The bias vector (n_out,)."""
        return self.params[1]

    def initialize(self, rng: np.random.Generator) -> None:
        if self.params:
            raise ValueError(f"{self!r} already belongs to a network; create a new layer")
        floatx = tg.config.floatX
        weights = np.asarray(self.initial_weights(rng), dtype=floatx)
        if weights.shape != (self.n_in, self.n_out):
            raise ValueError(f"{self!r}: init returned shape {weights.shape}, expected "
                             f"{(self.n_in, self.n_out)}")
        self.params = [tg.shared(weights, name="w"),
                       tg.shared(np.zeros(self.n_out, dtype=floatx), name="b")]

    def linear_part(self, x: Variable, params: Sequence[Variable], train: bool,
                    mask) -> Variable:
        w, b = params
        return apply_dropout(x, self.p_dropout, train, mask) @ w + b


class FullyConnected(_Affine):
    """A fully connected layer ``activation(x @ W + b)``."""

    kind = "FullyConnected"

    def __init__(self, n_in: int, n_out: int, activation: str | Activation = "sigmoid",
                 p_dropout: float = 0.0, init: Init | None = None) -> None:
        super().__init__(n_in, n_out, p_dropout)
        self.activation_name, self.activation = resolve(activation)
        self.init = init

    def initial_weights(self, rng: np.random.Generator) -> np.ndarray:
        if self.init is not None:
            return self.init(rng, self.n_in, self.n_out)
        if self.activation_name == "relu":
            return he_normal(rng, self.n_in, self.n_out)
        gain = 4.0 if self.activation_name == "sigmoid" else 1.0
        return glorot_uniform(rng, self.n_in, self.n_out, gain)

    def forward(self, x: Variable, params: Sequence[Variable], train: bool,
                mask=None) -> Variable:
        return self.activation(self.linear_part(x, params, train, mask))

    def config(self) -> dict:
        return {"n_in": self.n_in, "n_out": self.n_out,
                "activation": self.activation_name or self.activation,
                "p_dropout": self.p_dropout}


class Softmax(_Affine):
    """The output layer ``softmax(x @ W + b)``; weights and biases start at zero."""

    kind = "Softmax"

    def __init__(self, n_in: int, n_out: int, p_dropout: float = 0.0) -> None:
        super().__init__(n_in, n_out, p_dropout)

    def initial_weights(self, rng: np.random.Generator) -> np.ndarray:
        return np.zeros((self.n_in, self.n_out))

    def forward(self, x: Variable, params: Sequence[Variable], train: bool,
                mask=None) -> Variable:
        return tg.softmax(self.linear_part(x, params, train, mask))

    def config(self) -> dict:
        return {"n_in": self.n_in, "n_out": self.n_out, "p_dropout": self.p_dropout}


class Dropout(Layer):
    """Inverted dropout of its input with probability ``p`` (identity at inference)."""

    kind = "Dropout"

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p_dropout = _check_p(p, "Dropout")

    def forward(self, x: Variable, params: Sequence[Variable], train: bool,
                mask=None) -> Variable:
        return apply_dropout(x, self.p_dropout, train, mask)

    def config(self) -> dict:
        return {"p": self.p_dropout}


#: Layer classes by ``kind`` (model files).
LAYER_KINDS: dict[str, type[Layer]] = {cls.kind: cls for cls in (FullyConnected, Softmax,
                                                                   Dropout)}
