"""``TakeRows``: the rows (axis 0) of several arrays gathered with one shared integer index.

Two forms, told apart by ``flat_size``:

- ``TakeRows()(index, a1, ..., an)`` -> ``a1[index], ..., an[index]`` for an integer vector
  ``index``;
- ``TakeRows(flat_size)(table, selector, a1, ..., an)`` -> the same with
  ``index = reshape(table[selector], (flat_size,))`` for an integer matrix ``table`` and an
  integer vector ``selector``: a minibatch's example indices read straight from a permutation
  table by a step counter, as the SGD trainer does;
- ``TakeRows(flat_size, advance=k)(table, selector, a1, ..., an)`` -> the same and
  ``selector + k``: the step counter advanced for the next call, so that the OpenCL kernel
  that reads it also writes it (one launch fewer per training step).

Each output is exactly what the ``AdvancedSubtensor`` gathers (and, in the second form, the
``Reshape``) it stands for give, errors included: their messages name those ops. The OpenCL
backend runs all the gathers as one kernel. Made by a rewrite after differentiation
(:mod:`tinygraph.rewrite.take_rows`).
"""

from __future__ import annotations

import numpy as np

from ..graph import Apply, Op, Variable, as_variable
from ..types import TensorType, is_integer
from .shape import Reshape
from .subtensor import AdvancedSubtensor, _check_index_values

#: the ops whose errors ``TakeRows`` reproduces word for word
_GATHER = AdvancedSubtensor()
_FLATTEN = Reshape(1)


class TakeRows(Op):
    """``a_j[index]`` for every array ``a_j``; see the module docstring for the two forms."""

    __props__ = ("flat_size", "advance")

    def __init__(self, flat_size: int | None = None, advance: int | None = None) -> None:
        if flat_size is not None and flat_size < -1:
            raise ValueError(f"TakeRows: flat_size must be -1 (inferred) or a length, got "
                             f"{flat_size}")
        if advance is not None and flat_size is None:
            raise ValueError("TakeRows: advance needs the table form (a flat_size): it "
                             "advances the selector")
        self.flat_size = flat_size
        self.advance = None if advance is None else int(advance)

    @property
    def from_table(self) -> bool:
        """Whether the index is ``reshape(table[selector], (flat_size,))`` (inputs 0 and 1)
        rather than input 0 itself."""
        return self.flat_size is not None

    @property
    def n_index_inputs(self) -> int:
        """How many leading inputs describe the index (the rest are the gathered arrays)."""
        return 2 if self.from_table else 1

    def make_node(self, *inputs) -> Apply:
        inputs = [as_variable(v) for v in inputs]
        index_inputs, arrays = inputs[:self.n_index_inputs], inputs[self.n_index_inputs:]
        if not arrays:
            raise TypeError(f"{self}: no arrays to gather rows from")
        roles = ("table", "selector") if self.from_table else ("index",)
        for role, var, ndim in zip(roles, index_inputs, (2, 1) if self.from_table else (1,)):
            if var.ndim != ndim or not is_integer(var.dtype):
                raise TypeError(f"{self}: the {role} must be a {ndim}-d integer tensor, got "
                                f"{var.type}")
        for j, array in enumerate(arrays):
            if array.ndim < 1:
                raise TypeError(f"{self}: array {j} is {array.type}; gathering rows needs at "
                                "least one axis")
        index_bcast = (self.flat_size == 1,) if self.from_table else index_inputs[0].broadcastable
        outputs = [TensorType(a.dtype, index_bcast + a.broadcastable[1:]) for a in arrays]
        if self.advance is not None:
            outputs.append(index_inputs[1].type)
        return Apply(self, inputs, outputs)

    def _index(self, index_inputs: list[np.ndarray]) -> np.ndarray:
        """The index vector, checked as the unfused ``table[selector]`` and reshape check it."""
        if not self.from_table:
            return index_inputs[0]
        table, selector = index_inputs
        _check_index_values(_GATHER, table.shape, [selector])
        rows = table[selector]
        return rows.reshape(self._index_length(rows.shape))

    def _index_length(self, rows_shape) -> int:
        """Length of the flattened ``table[selector]`` of ``rows_shape`` (raises the reshape's
        error when it has not ``flat_size`` elements)."""
        return _FLATTEN.infer_shape(None, [tuple(rows_shape)], [None, [self.flat_size]])[0][0]

    def perform(self, node, inputs):
        index = self._index(inputs[:self.n_index_inputs])
        outputs = []
        for array in inputs[self.n_index_inputs:]:
            _check_index_values(_GATHER, array.shape, [index])
            outputs.append(np.array(array[index]))
        if self.advance is not None:
            selector = inputs[1]
            outputs.append((selector + np.asarray(self.advance, selector.dtype))
                           .astype(selector.dtype))
        return outputs

    def infer_shape(self, node, input_shapes, input_values):
        index_shapes = input_shapes[:self.n_index_inputs]
        if self.from_table:
            table_shape, selector_shape = index_shapes
            length = self._index_length((selector_shape[0], table_shape[1]))
        else:
            length = index_shapes[0][0]
        shapes = [(length,) + tuple(shape[1:]) for shape in input_shapes[self.n_index_inputs:]]
        return shapes + ([tuple(input_shapes[1])] if self.advance is not None else [])

    def grad(self, inputs: list[Variable], output_grads):
        raise NotImplementedError(f"{self} is created by a rewrite after differentiation; "
                                  "differentiate the AdvancedSubtensor gathers it replaces")

    def __str__(self) -> str:
        if self.advance is not None:
            return f"TakeRows{{table[selector] as {self.flat_size} rows, selector + " \
                f"{self.advance}}}"
        if self.from_table:
            return f"TakeRows{{table[selector] as {self.flat_size} rows}}"
        return "TakeRows"
