"""``debugprint``: a graph as indented text, one line per variable."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from .graph import Constant, Variable


def _label(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def debugprint(obj, file=None, print_type: bool = False) -> str:
    """Print the graph of a variable, a list of variables or a compiled function; returns the
    text. Nodes already printed are shown by their ``[id X]`` only."""
    if hasattr(obj, "debugprint") and not isinstance(obj, Variable):
        return obj.debugprint(file=file)
    outputs: Sequence[Variable] = [obj] if isinstance(obj, Variable) else list(obj)
    ids: dict[tuple, str] = {}
    lines: list[str] = []

    def ident(key: tuple) -> str:
        if key not in ids:
            ids[key] = _label(len(ids))
        return ids[key]

    def visit(var: Variable, prefix: str, child_prefix: str) -> None:
        type_text = f" <{var.type}>" if print_type else ""
        name = f" '{var.name}'" if var.name else ""
        if var.owner is None:
            text = repr(var) if isinstance(var, Constant) or not var.name else var.name
            lines.append(f"{prefix}{text} [id {ident(('var', var.id))}]{type_text}")
            return
        node = var.owner
        seen = ("node", id(node)) in ids
        out = f".{var.index}" if len(node.outputs) > 1 else ""
        lines.append(f"{prefix}{node.op}{out} [id {ident(('node', id(node)))}]{name}{type_text}")
        if seen:
            return
        for inp in node.inputs:
            visit(inp, child_prefix + " |", child_prefix + " |")

    for out in outputs:
        visit(out, "", "")
    text = "\n".join(lines)
    print(text, file=file or sys.stdout)
    return text
