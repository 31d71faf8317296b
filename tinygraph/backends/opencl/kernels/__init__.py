"""OpenCL kernel generators: each returns the ``KernelSpec`` list one op launches in order
(reductions, softmax and crossentropy, a softmax output layer, integer-array indexing, arange
and random draws)."""

from .generate import RandomBase, RandomKey, arange_specs, maps_in_lanes, random_specs
from .indexing import gather_specs, scatter_specs, take_rows_one_group, take_rows_specs
from .reduce import argmax_specs, reduce_specs
from .softmax import (
    crossentropy_grad_specs,
    crossentropy_specs,
    crossentropy_total_specs,
    softmax_specs,
)
from .softmax_layer import (
    backward_operands,
    column_operands,
    dot_crossentropy_total_specs,
    softmax_layer_step_specs,
)

__all__ = ["RandomBase", "RandomKey", "arange_specs", "argmax_specs", "backward_operands",
           "column_operands", "crossentropy_grad_specs", "crossentropy_specs",
           "crossentropy_total_specs", "dot_crossentropy_total_specs", "gather_specs",
           "maps_in_lanes", "random_specs", "reduce_specs", "scatter_specs",
           "softmax_layer_step_specs", "softmax_specs", "take_rows_one_group",
           "take_rows_specs"]
