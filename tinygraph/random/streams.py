"""``RandomStreams``: Theano-style random streams on counter-based Philox-4x32-10.

Each draw gets its own shared state ``[key, counter]``; the key is derived from the seed and
the draw's index, so draws in one graph are independent, and the same seed gives the same
numbers on every backend. Every compiled function that uses a draw advances its counter
(Theano's default updates).
"""

from __future__ import annotations

import numpy as np

from ..config import config
from ..graph import Variable
from ..ops.shape import as_shape_vector
from ..shared import SharedVariable, shared
from ..types import canonical_dtype, is_float
from . import philox
from .op import RandomDraw


class RandomStreams:
    """A source of random tensors: ``uniform``, ``normal`` and ``binomial``."""

    def __init__(self, seed: int | None = None) -> None:
        if seed is None:
            seed = int(np.random.SeedSequence().entropy) & 0xFFFFFFFFFFFFFFFF
        self._seed = int(seed)
        self.states: list[SharedVariable] = []

    def seed(self, seed: int) -> None:
        """Restart every stream of this object from ``seed``."""
        self._seed = int(seed)
        for index, state in enumerate(self.states):
            state.set_value(_initial_state(self._seed, index))

    def get_state(self) -> list[np.ndarray]:
        """The states of all draws (for checkpoints)."""
        return [s.get_value() for s in self.states]

    def set_state(self, states) -> None:
        """Restore states saved by :meth:`get_state`."""
        states = list(states)
        if len(states) != len(self.states):
            raise ValueError(f"RandomStreams.set_state: got {len(states)} states for "
                             f"{len(self.states)} draws")
        for shared_state, value in zip(self.states, states):
            shared_state.set_value(np.asarray(value, dtype="int64"))

    def uniform(self, size, low=0.0, high=1.0, dtype: str | None = None) -> Variable:
        """Uniform numbers in [low, high)."""
        return self._draw("uniform", size, _float(dtype), low, high)

    def normal(self, size, avg=0.0, std=1.0, dtype: str | None = None) -> Variable:
        """Normally distributed numbers with mean ``avg`` and standard deviation ``std``."""
        return self._draw("normal", size, _float(dtype), avg, std)

    def binomial(self, size, n: int = 1, p=0.5, dtype: str = "int64") -> Variable:
        """Counts of successes in ``n`` trials of probability ``p`` (``n`` a constant)."""
        if not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"binomial: n must be a positive int constant, got {n!r}")
        return self._draw("binomial", size, canonical_dtype(dtype), 0, p, int(n))

    def _draw(self, distribution: str, size, dtype: str, a, b, n: int = 1) -> Variable:
        index = len(self.states)
        state = shared(_initial_state(self._seed, index), name=f"rng_state{index}")
        new_state, sample = RandomDraw(distribution, dtype, n)(state, as_shape_vector(size),
                                                                a, b)
        state.default_update = new_state
        self.states.append(state)
        return sample


def _float(dtype: str | None) -> str:
    dtype = canonical_dtype(dtype or config.floatX)
    if not is_float(dtype):
        raise TypeError(f"uniform/normal draws must be float32 or float64, got {dtype}")
    return dtype


def _initial_state(seed: int, index: int) -> np.ndarray:
    key = philox.derive_key(seed, index)
    return np.array([key, 0], dtype="uint64").view("int64")
