"""Errors raised while running a compiled graph, with the failing node described."""

from __future__ import annotations

from ..graph import Apply


def describe_failure(node: Apply, values, function_name: str | None) -> str:
    """A message naming the op, its input types and shapes, and where it came from."""
    parts = []
    for i, (var, value) in enumerate(zip(node.inputs, values)):
        shape = value if isinstance(value, tuple) else getattr(value, "shape", None)
        label = f" {var.name!r}" if var.name else ""
        parts.append(f"    input {i}{label}: {var.type}, shape {shape}")
    where = f" in function {function_name!r}" if function_name else ""
    return f"{node.op} failed{where}\n" + "\n".join(parts)


def reraise_with_node(exc: Exception, node: Apply, values, function_name: str | None):
    """Re-raise ``exc`` as the same exception type with the node described."""
    message = f"{exc}\n  {describe_failure(node, values, function_name)}"
    try:
        new = type(exc)(message)
    except Exception:
        new = RuntimeError(message)
    raise new from exc
