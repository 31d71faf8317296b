"""Minibatch rows read in place: a ``TakeRows`` output that only matrix products read is
never copied; the products read its rows from the gathered array through the index.

An SGD step gathers its minibatch, ``data_x[rows]``, and reads it twice: as A of the first
layer's product and, transposed, as A of that layer's weight update. Copying the rows costs
a launch and a pass through memory that the first product then repeats (W2, 256 rows of 784
floats: 108 us of a 1226 us step on PoCL 3.1). The products read the rows through the index
instead (GemmPlan's ``a_rows``, BackpropUpdatePlan's ``h_rows``), and the ``TakeRows`` kernel
writes that index, each entry checked as before, in place of the rows.

The plan decides this per output when it lowers the ``TakeRows`` node (``stays_in_place``),
from the nodes that read it; a lowering that asks for such an output with ``Plan.array``
anyway gets it copied then (``copied``), so a wrong guess only costs a launch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...graph import Apply, Variable
from ...ops.blas import Dot, DotEpilogue, Gemm
from ...ops.gemm_column_sums import GemmColumnSums
from ...ops.shape import DimShuffle
from .backprop_update import supports as backprop_update_supports
from .kernels import take_rows_specs
from .storage import DeviceArray

#: ops whose input at this position may be rows read in place (A of the product)
_READERS = {Dot: 0, DotEpilogue: 0, Gemm: 2, GemmColumnSums: 2}


@dataclass(frozen=True)
class RowsInPlace:
    """The rows ``index`` (an int32 device vector, entries in range) of the 2-d contiguous
    ``source``, output of ``node`` (a ``TakeRows``); ``transpose_of`` is None, or the output
    of which these are the transpose."""

    source: DeviceArray
    index: DeviceArray
    node: Apply
    transpose_of: Variable | None = None

    @property
    def rows(self) -> int:
        """Rows of the source: the range of the index."""
        return self.source.shape[0]

    def transposed(self, of: Variable) -> RowsInPlace:
        """The transpose of these rows, which are the variable ``of``."""
        return RowsInPlace(self.source, self.index, self.node, of)


def is_transpose(node: Apply) -> bool:
    """Whether ``node`` transposes a matrix."""
    return isinstance(node.op, DimShuffle) and tuple(node.op.new_order) == (1, 0)


def _only_products_read(plan, var: Variable, rows: int, transposed: bool = False) -> bool:
    """Whether every node reading ``var`` (``rows`` gathered rows, or their transpose) reads
    it as A of a product or transposes it for one (host nodes read only its shape), and no
    output or update is ``var``. A transpose is read in place only by a weight update that
    the update kernel of backprop_update.py computes (up to 64 rows). The GEMM kernels would
    read a scattered row per step along k: in W2 (256 rows) its updates took 191-242 us per
    launch, against 166 us after a copy, which cancelled the copy's saving."""
    program = plan.program
    if any(v is var for v in program.outputs) or any(v is var for _, v in program.updates):
        return False
    for node in program.clients.get(var.id, ()):
        if id(node) in program.host_nodes:
            continue
        if is_transpose(node):
            if transposed or not _only_products_read(plan, node.outputs[0], rows, True):
                return False
            continue
        position = _READERS.get(type(node.op))
        if position is None or [i for i, v in enumerate(node.inputs) if v is var] != [position]:
            return False
        if transposed and not (isinstance(node.op, GemmColumnSums) and backprop_update_supports(
                rows, plan.runtime.device, var.dtype, backward=False)):
            return False
    return True


def stays_in_place(plan, node: Apply, j: int, source: DeviceArray) -> bool:
    """Whether output ``j`` of the ``TakeRows`` node ``node``, rows of ``source``, is to be
    read in place: only products read it, ``source`` is a float matrix of contiguous rows at
    a fixed offset, and no update of the call writes its buffer (products run after such an
    update may)."""
    if len(source.shape) != 2 or source.dtype not in (np.float32, np.float64) or \
            source.strides != (source.shape[1], 1) or callable(source.offset):
        return False
    updated = {id(plan.arrays[t.id].buffer) for t, _ in plan.program.updates
               if t.id in plan.arrays}
    if id(source.buffer) in updated:
        return False
    return _only_products_read(plan, node.outputs[j], plan.shape(node.outputs[j])[0])


def copied(plan, rows: RowsInPlace) -> DeviceArray:
    """The rows copied after all, for a lowering that reads them with ``Plan.array``: the
    ``TakeRows`` kernel once more, on the checked index (the transpose: a view of them)."""
    if rows.transpose_of is not None:
        base = plan.array(rows.transpose_of)
        (n, width), (stride, _) = base.shape, base.strides
        return DeviceArray(base.buffer, base.offset, (width, n), (1, stride), base.dtype)
    n = rows.index.shape[0]
    target = plan.allocate((n, rows.source.shape[1]), rows.source.dtype)
    specs = take_rows_specs(n, ["int32"], [rows.index.shape], [rows.index.strides],
                            [rows.source.dtype.name], [rows.source.shape],
                            [rows.source.strides])
    plan.add_specs(specs, rows.node, [rows.index, rows.source], [target])
    return target
