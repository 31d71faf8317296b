"""Activation functions, by name: ``sigmoid``, ``tanh``, ``relu`` and ``linear``."""

from __future__ import annotations

from collections.abc import Callable

import tinygraph as tg
from tinygraph import Variable

Activation = Callable[[Variable], Variable]

sigmoid = tg.sigmoid
tanh = tg.tanh
relu = tg.relu


def linear(z: Variable) -> Variable:
    """The identity."""
    return z


#: The activations a model file can name.
ACTIVATIONS: dict[str, Activation] = {
    "sigmoid": sigmoid,
    "tanh": tanh,
    "relu": relu,
    "linear": linear,
}


def resolve(activation: str | Activation) -> tuple[str | None, Activation]:
    """``(name, function)`` for a name or a callable; ``name`` is None for a callable that is
    not one of :data:`ACTIVATIONS`."""
    if isinstance(activation, str):
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose one of "
                             f"{', '.join(ACTIVATIONS)} or pass a callable")
        return activation, ACTIVATIONS[activation]
    if not callable(activation):
        raise TypeError(f"activation must be a name or a callable, got {activation!r}")
    for name, function in ACTIVATIONS.items():
        if function is activation:
            return name, function
    return None, activation
