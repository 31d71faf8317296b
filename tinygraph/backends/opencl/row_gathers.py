"""Minibatch rows read in place: a ``TakeRows`` output that only matrix products read is
never copied; the products read its rows from the gathered array through the index.

An SGD step gathers its minibatch, ``data_x[rows]``, and reads it twice: as A of the first
layer's product and, transposed, as A of that layer's weight update. Copying the rows costs
a launch and a pass through memory that the first product then repeats (W2, 256 rows of 784
floats: 108 us of a 1226 us step on PoCL 3.1). The products read the rows through the index
instead (GemmPlan's ``a_rows``, BackpropUpdatePlan's ``h_rows``), and the ``TakeRows`` kernel
writes that index, each entry checked as before, in place of the rows.

The plan decides this per output when it lowers the ``TakeRows`` node (``in_place``), from
the nodes that read it. A weight update of many rows reads them faster from a copy; then the
forward product, which reads them first, stores the copy as it reads (GemmPlan's ``a_copy``),
which costs far less than a gather kernel's pass. A lowering that asks for rows left in
place with ``Plan.array`` anyway gets them copied then (``copied``), so a wrong guess only
costs a launch.
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
    of which these are the transpose. With ``copied_by_first_reader`` the first product
    reading them stores them as it reads (GemmPlan's ``a_copy``) for the readers after it."""

    source: DeviceArray
    index: DeviceArray
    node: Apply
    transpose_of: Variable | None = None
    copied_by_first_reader: bool = False

    @property
    def rows(self) -> int:
        """Rows of the source: the range of the index."""
        return self.source.shape[0]

    def transposed(self, of: Variable) -> RowsInPlace:
        """The transpose of these rows, which are the variable ``of``."""
        return RowsInPlace(self.source, self.index, self.node, of, self.copied_by_first_reader)


def is_transpose(node: Apply) -> bool:
    """Whether ``node`` transposes a matrix."""
    return isinstance(node.op, DimShuffle) and tuple(node.op.new_order) == (1, 0)


def _readers(plan, var: Variable, rows: int, transposed: bool = False) -> list | None:
    """``(node, cheap)`` for every node reading ``var`` (``rows`` gathered rows, or their
    transpose) as A of a product, through transposes (host nodes read only its shape); None
    when another node reads it or it is an output or update. ``cheap``: the reader loses
    nothing reading the rows in place. A transpose is cheap only for a weight update that the
    update kernel of backprop_update.py computes (up to 64 rows): the GEMM kernels read a
    scattered row per step along k, and W2's updates (256 rows) took 191-242 us per launch
    that way against 166 us on a copy."""
    program = plan.program
    if any(v is var for v in program.outputs) or any(v is var for _, v in program.updates):
        return None
    found = []
    for node in program.clients.get(var.id, ()):
        if id(node) in program.host_nodes:
            continue
        if is_transpose(node):
            below = None if transposed else _readers(plan, node.outputs[0], rows, True)
            if below is None:
                return None
            found += below
            continue
        position = _READERS.get(type(node.op))
        if position is None or [i for i, v in enumerate(node.inputs) if v is var] != [position]:
            return None
        found.append((node, not transposed or isinstance(node.op, GemmColumnSums) and
                      backprop_update_supports(rows, plan.runtime.device, var.dtype,
                                               backward=False)))
    return found


def in_place(plan, node: Apply, j: int, source: DeviceArray) -> tuple[bool, bool]:
    """``(in place, copied by the first reader)`` for output ``j`` of the ``TakeRows`` node
    ``node``, rows of ``source``: in place when only products read it, ``source`` is a float
    matrix of contiguous rows at a fixed offset and no update of the call writes its buffer
    (products run after such an update may). When some reader would lose by reading them in
    place, the first reader must be a product that copies them as it reads (a layer's
    forward product, before its weight update), else they are copied as before."""
    if len(source.shape) != 2 or source.dtype not in (np.float32, np.float64) or \
            source.strides != (source.shape[1], 1) or callable(source.offset):
        return False, False
    updated = {id(plan.arrays[t.id].buffer) for t, _ in plan.program.updates
               if t.id in plan.arrays}
    if id(source.buffer) in updated:
        return False, False
    var = node.outputs[j]
    readers = _readers(plan, var, plan.shape(var)[0])
    if not readers:
        return False, False
    if all(cheap for _, cheap in readers):
        return True, False
    order = {id(n): i for i, n in enumerate(plan.program.nodes)}
    first = min((n for n, _ in readers), key=lambda n: order[id(n)])
    if isinstance(first.op, (Dot, DotEpilogue)) and first.inputs[0] is var:
        return True, True
    return False, False


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
