"""Graph rewrites in explicit, ordered passes: merge, constant folding, canonicalisation and
stabilisation. Nothing is registered by import side effects; the pipeline is the list below."""

from __future__ import annotations

from collections.abc import Sequence

from ..graph import Variable
from .backprop_update import fuse_backprop_updates
from .canonicalize import CANONICALIZE
from .constant_folding import fold_constants
from .crossentropy import (
    crossentropy_grad_of_fill,
    fuse_crossentropy_total,
    fuse_crossentropy_with_grad,
    fuse_logits_into_crossentropy,
)
from .engine import RewritePass
from .epilogue import fuse_epilogues
from .fusion import fuse_elemwise
from .gemm import rewrite_gemm
from .gemm_column_sums import fuse_gemm_column_sums
from .merge import merge
from .random_draw import fuse_random_draw_maps
from .reduce_epilogue import fuse_reduce_epilogues
from .softmax_layer import fuse_softmax_layer_steps
from .stabilize import STABILIZE
from .take_rows import advance_row_selectors, fuse_row_gathers

constant_folding = RewritePass("constant_folding", [fold_constants])
canonicalize = RewritePass("canonicalize", CANONICALIZE + (crossentropy_grad_of_fill,))
stabilize_pass = RewritePass("stabilize", STABILIZE)

#: the passes ``function`` runs, in order
DEFAULT_PIPELINE = (merge, constant_folding, canonicalize, stabilize_pass, canonicalize, merge)
#: the OpenCL backend also turns updates into in-place products, computes a crossentropy with
#: its gradient (and the running total of its costs), fuses elementwise chains, product
#: epilogues and reduction epilogues (a bias update into its weight update's product), a dense
#: layer's backward product with its updates (one pass over its weights), a softmax output
#: layer's product with its crossentropy gradient (and with its updates), a random draw with
#: the elementwise op reading its sample (a dropout mask and the masked activations), and
#: gathers the rows selected by one index in one node (after DEFAULT_PIPELINE's final merge, so
#: equal index computations are already one variable), which also advances a step counter
#: selecting them when the function does
OPENCL_PIPELINE = DEFAULT_PIPELINE + (rewrite_gemm, constant_folding, fuse_crossentropy_with_grad,
                                      fuse_elemwise, fuse_epilogues, fuse_reduce_epilogues,
                                      fuse_gemm_column_sums, fuse_backprop_updates,
                                      fuse_crossentropy_total, fuse_logits_into_crossentropy,
                                      fuse_softmax_layer_steps, fuse_random_draw_maps,
                                      fuse_row_gathers, advance_row_selectors, merge)


def optimize(outputs: Sequence[Variable], passes=DEFAULT_PIPELINE) -> list[Variable]:
    """``outputs`` after every pass of ``passes`` in turn."""
    outputs = list(outputs)
    for rewrite_pass in passes:
        outputs = rewrite_pass(outputs)
    return outputs


def stabilize(outputs: Sequence[Variable]) -> list[Variable]:
    """Only the canonicalising and stabilising passes (used by ``grad`` before it
    differentiates)."""
    return optimize(outputs, (canonicalize, stabilize_pass))


__all__ = ["DEFAULT_PIPELINE", "OPENCL_PIPELINE", "RewritePass", "fuse_elemwise", "fuse_epilogues",
           "fuse_crossentropy_with_grad", "fuse_reduce_epilogues", "fuse_row_gathers",
           "advance_row_selectors",
           "fuse_gemm_column_sums", "fuse_backprop_updates", "fuse_crossentropy_total",
           "fuse_logits_into_crossentropy", "fuse_softmax_layer_steps", "fuse_random_draw_maps",
           "rewrite_gemm",
           "optimize",
           "stabilize", "merge", "constant_folding", "canonicalize", "stabilize_pass"]
