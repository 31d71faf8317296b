"""Row gathers sharing one index become one ``TakeRows`` node (one kernel on OpenCL).

The ``AdvancedSubtensor`` nodes indexing axis 0 of their input with the same integer vector
``rows`` are grouped, e.g. a minibatch's images and labels ``data_x[rows]``, ``data_y[rows]``.
When ``rows`` is ``reshape(table[selector], (size,))`` (a row of a permutation table chosen by
a step counter) the fused node reads the index straight from the table, so that gather goes
too; a single gather is fused only then (alone with a plain vector it gains nothing).

The fused node computes exactly what the gathers did, errors included (see
:mod:`tinygraph.ops.take_rows`). A gather whose input depends on another gather of its group
stays out of that group: one node cannot compute both.

``advance_row_selectors`` then gives such a node the function's ``selector + k`` too (the
trainer's step counter update, ``step + 1``): the OpenCL kernel reading the counter also
advances it, and the step has one launch fewer.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..graph import Apply, Constant, Variable, clone_replace, toposort
from ..ops import scalar
from ..ops.elemwise import Elemwise
from ..ops.shape import Reshape
from ..ops.subtensor import AdvancedSubtensor
from ..ops.take_rows import TakeRows
from ..types import is_integer
from .engine import rebuild


def _row_index(node: Apply) -> Variable | None:
    """The index vector of a gather of rows by one integer vector, else None."""
    if not isinstance(node.op, AdvancedSubtensor) or len(node.inputs) != 2:
        return None
    index = node.inputs[1]
    return index if index.ndim == 1 else None


def _table_lookup(index: Variable) -> tuple[Variable, Variable, int] | None:
    """``(table, selector, size)`` when ``index`` is ``reshape(table[selector], (size,))``
    with a constant size, a matrix table and a vector selector, else None."""
    node = index.owner
    if node is None or not isinstance(node.op, Reshape) or \
            not isinstance(node.inputs[1], Constant):
        return None
    rows = node.inputs[0].owner
    if rows is None or not isinstance(rows.op, AdvancedSubtensor) or len(rows.inputs) != 2:
        return None
    table, selector = rows.inputs
    if table.ndim != 2 or selector.ndim != 1:
        return None
    (size,) = node.inputs[1].data
    return table, selector, int(size)


def _groups(nodes: list[Apply]) -> dict[int, list[Apply]]:
    """Row gathers by the id of their index vector, in graph order."""
    groups: dict[int, list[Apply]] = {}
    for node in nodes:
        index = _row_index(node)
        if index is not None:
            groups.setdefault(index.id, []).append(node)
    return groups


def _independent(members: list[Apply], nodes: list[Apply]) -> list[Apply]:
    """The members whose gathered input does not depend on another member's output."""
    downstream = {m.outputs[0].id for m in members}
    for node in nodes:
        if any(v.id in downstream for v in node.inputs):
            downstream.update(v.id for v in node.outputs)
    return [m for m in members if m.inputs[0].id not in downstream]


def _fusable_group(outputs: list[Variable]) -> list[Apply] | None:
    """The first group of row gathers worth one ``TakeRows`` node, or None."""
    nodes = toposort(outputs)
    for members in _groups(nodes).values():
        members = _independent(members, nodes)
        if len(members) > 1 or (members and _table_lookup(members[0].inputs[1])):
            return members
    return None


def _fuse(outputs: list[Variable], members: list[Apply]) -> list[Variable]:
    """``outputs`` with the gathers ``members`` computed by one ``TakeRows`` node."""
    index = members[0].inputs[1]
    lookup = _table_lookup(index)
    arrays = [m.inputs[0] for m in members]
    if lookup is None:
        gathered = TakeRows()(index, *arrays)
    else:
        table, selector, size = lookup
        gathered = TakeRows(size)(table, selector, *arrays)
    if not isinstance(gathered, list):
        gathered = [gathered]
    replacement = {id(m): out for m, out in zip(members, gathered)}
    return rebuild(outputs, lambda node, inputs, memo: replacement.get(id(node)))


def fuse_row_gathers(outputs: Sequence[Variable]) -> list[Variable]:
    """The graph with the row gathers sharing an index fused, one group at a time (a group
    may gather from the outputs of another)."""
    outputs = list(outputs)
    while (members := _fusable_group(outputs)) is not None:
        outputs = _fuse(outputs, members)
    return outputs


def _advance(var: Variable, selector: Variable) -> int | None:
    """k when ``var`` is ``selector + k`` (either order) for an integer constant k of one
    element, of the selector's own type, else None."""
    node = var.owner
    if node is None or not isinstance(node.op, Elemwise) or node.op.scalar_op is not scalar.add \
            or var.type != selector.type:
        return None
    first, second = node.inputs
    constant = second if first is selector else first if second is selector else None
    if not isinstance(constant, Constant) or constant.data.size != 1 or \
            not is_integer(constant.dtype):
        return None
    return int(constant.data.reshape(()))


def advance_row_selectors(outputs: Sequence[Variable]) -> list[Variable]:
    """The graph with each table-form ``TakeRows`` node also computing an output (or update
    value) ``selector + k`` of the graph, which then reads the node's extra output."""
    outputs = list(outputs)
    replace: dict[Variable, Variable] = {}
    for node in toposort(outputs):
        if not isinstance(node.op, TakeRows) or not node.op.from_table or \
                node.op.advance is not None:
            continue
        selector = node.inputs[1]
        for var in outputs:
            k = _advance(var, selector)
            if k is None or var in replace:
                continue
            *rows, advanced = TakeRows(node.op.flat_size, k)(*node.inputs)
            replace.update(zip(node.outputs, rows))
            replace[var] = advanced
            break
    return clone_replace(outputs, replace) if replace else outputs
