"""OpenCL kernel generators: each returns the ``KernelSpec`` list one op launches in order
(reductions, softmax and crossentropy, integer-array indexing, arange and random draws)."""

from .generate import RandomBase, RandomKey, arange_specs, random_specs
from .indexing import gather_specs, scatter_specs, take_rows_specs
from .reduce import argmax_specs, reduce_specs
from .softmax import (
    crossentropy_grad_specs,
    crossentropy_specs,
    crossentropy_total_specs,
    dot_crossentropy_total_specs,
    softmax_specs,
)

__all__ = ["RandomBase", "RandomKey", "arange_specs", "argmax_specs", "crossentropy_grad_specs",
           "crossentropy_specs", "crossentropy_total_specs", "dot_crossentropy_total_specs",
           "gather_specs", "random_specs",
           "reduce_specs", "scatter_specs", "softmax_specs", "take_rows_specs"]
