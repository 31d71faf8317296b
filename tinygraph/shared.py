"""Shared variables: named values that persist between calls of compiled functions."""

from __future__ import annotations

import numpy as np

from .graph import Variable
from .types import TensorType, canonical_dtype


class SharedVariable(Variable):
    """A variable with a value of fixed type that every compiled function reads and updates.

    Backends may keep the value on their device; ``get_value`` brings it back on request.
    ``default_update`` (used by random streams) is applied by every function that reads the
    variable unless the function updates it explicitly.
    """

    def __init__(self, value: np.ndarray, name: str | None, broadcastable=None) -> None:
        bcast = broadcastable if broadcastable is not None else (False,) * value.ndim
        super().__init__(TensorType(value.dtype.name, bcast), name=name)
        self._value = value
        self.default_update: Variable | None = None
        self.device_storage = None
        #: counts ``set_value`` calls, so a compiled function can tell that nothing changed
        self.version = 0

    def get_value(self, borrow: bool = False) -> np.ndarray:
        """The current value (a copy unless ``borrow``)."""
        if self.device_storage is not None:
            self.device_storage.sync_to_host(self)
        return self._value if borrow else self._value.copy()

    def set_value(self, value, borrow: bool = False) -> None:
        """Replace the value; its dtype and ndim must match the variable's type."""
        array = np.asarray(value)
        label = f"shared variable {self.name or '<unnamed>'}"
        if array.dtype.name != self.dtype:
            raise TypeError(f"{label} has dtype {self.dtype}; got a value of dtype "
                            f"{array.dtype}. Convert it with .astype('{self.dtype}')")
        array = self.type.filter(array, name=label)
        self._replace_value(array if borrow and array.flags.writeable else array.copy())

    def _replace_value(self, array: np.ndarray) -> None:
        """Store ``array`` as the value, unchecked: the caller made it of this type."""
        self._value = array
        self.version += 1
        if self.device_storage is not None:
            self.device_storage.host_changed(self)

    def clone(self) -> SharedVariable:
        raise TypeError("shared variables cannot be cloned; they are the same in every graph")


def shared(value, name: str | None = None, borrow: bool = False,
           broadcastable=None) -> SharedVariable:
    """A shared variable holding ``value`` (copied unless ``borrow``). Its dtype and ndim are
    fixed from now on."""
    array = np.asarray(value)
    canonical_dtype(array.dtype)
    if not borrow or not array.flags.writeable:
        array = np.array(array, copy=True)
    return SharedVariable(array, name, broadcastable)
