"""The symbolic graph: variables, constants, apply nodes, ops, and graph traversal."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

from .tensor_methods import TensorMethods
from .types import TensorType, canonical_dtype

_ids = itertools.count()


class Variable(TensorMethods):
    """A symbolic tensor: a type, and the apply node that computes it (``owner``) if any."""

    def __init__(self, type: TensorType, owner: Apply | None = None, index: int | None = None,
                 name: str | None = None) -> None:
        self.type = type
        self.owner = owner
        self.index = index
        self.name = name
        self.id = next(_ids)

    @property
    def dtype(self) -> str:
        return self.type.dtype

    @property
    def broadcastable(self) -> tuple[bool, ...]:
        return self.type.broadcastable

    @property
    def ndim(self) -> int:
        return self.type.ndim

    def __repr__(self) -> str:
        if self.name:
            return self.name
        if self.owner is not None:
            return f"{self.owner.op}.{self.index}" if len(self.owner.outputs) > 1 else \
                f"{self.owner.op}.out"
        return f"<{self.type}>"

    def __bool__(self) -> bool:
        raise TypeError(
            f"the symbolic variable {self!r} has no truth value; use tinygraph.switch/where "
            "for symbolic conditions"
        )

    def __iter__(self):
        raise TypeError(f"a symbolic variable ({self!r}) cannot be iterated; index it instead")

    def clone(self) -> Variable:
        """A fresh variable of the same type and name, without an owner."""
        return type(self)(self.type, name=self.name)


class Constant(Variable):
    """A variable with a fixed value. ``weak`` marks Python scalars, which adopt the dtype of
    whatever they are combined with (``x_float32 * 2.0`` stays float32)."""

    def __init__(self, type: TensorType, data: np.ndarray, name: str | None = None,
                 weak: bool = False) -> None:
        super().__init__(type, name=name)
        self.data = data
        self.data.setflags(write=False)
        self.weak = weak

    def __repr__(self) -> str:
        if self.name:
            return self.name
        if self.data.size <= 6:
            return np.array2string(self.data, separator=",").replace("\n", "")
        return f"Constant{{{self.data.dtype}{self.data.shape}}}"

    def clone(self) -> Constant:
        return Constant(self.type, self.data, name=self.name, weak=self.weak)

    def signature(self) -> tuple:
        """Hashable identity of the value, used to merge equal constants."""
        return (self.type, self.data.shape, self.data.tobytes())


def constant(value, dtype: str | None = None, name: str | None = None) -> Constant:
    """A constant tensor. Python scalars without ``dtype`` become weakly typed constants."""
    weak = dtype is None and type(value) in (int, float)
    if dtype is None:
        if type(value) is float:
            from .config import config

            dtype = config.floatX
        elif type(value) is int:
            dtype = "int64"
        else:
            dtype = np.asarray(value).dtype
    dtype = canonical_dtype(dtype)
    original = np.asarray(value)
    data = original.astype(dtype)
    if original.dtype.kind in "iub" and not np.array_equal(data, original):
        raise ValueError(f"constant {value!r} does not fit in dtype {dtype}")
    return Constant(TensorType(dtype, tuple(s == 1 for s in data.shape)), data, name, weak)


def as_variable(value, dtype: str | None = None) -> Variable:
    """A Variable for ``value``: variables pass through, everything else becomes a constant."""
    if isinstance(value, Variable):
        if dtype is not None and value.dtype != canonical_dtype(dtype):
            from .ops.elemwise import cast

            return cast(value, dtype)
        return value
    if isinstance(value, (list, tuple)) and any(isinstance(v, Variable) for v in value):
        from .ops.shape import stack

        return stack([as_variable(v, dtype) for v in value])
    return constant(value, dtype)


class Apply:
    """One application of an op to input variables, producing output variables."""

    def __init__(self, op: Op, inputs: Sequence[Variable], output_types: Sequence[TensorType]):
        self.op = op
        self.inputs = list(inputs)
        for i, inp in enumerate(self.inputs):
            if not isinstance(inp, Variable):
                raise TypeError(f"{op}: input {i} is {type(inp).__name__}, not a Variable")
        self.outputs = [Variable(t, owner=self, index=i) for i, t in enumerate(output_types)]

    @property
    def out(self) -> Variable:
        return self.outputs[0]

    @classmethod
    def part(cls, op: Op, inputs: Sequence[Variable], outputs: Sequence[Variable]) -> Apply:
        """``op`` applied to ``inputs`` giving the existing ``outputs`` (which keep their
        owner): one part of a fused node, for a backend that computes the parts separately."""
        node = cls.__new__(cls)
        node.op, node.inputs, node.outputs = op, list(inputs), list(outputs)
        return node

    def clone_with_new_inputs(self, inputs: Sequence[Variable]) -> Apply:
        """The same op applied to other inputs (re-running its type checks)."""
        return self.op.make_node(*inputs)

    def __repr__(self) -> str:
        return f"{self.op}({', '.join(map(repr, self.inputs))})"


class Op:
    """Defines semantics only: type checking (``make_node``), the NumPy reference (``perform``),
    the symbolic gradient (``grad``) and shape inference (``infer_shape``)."""

    __props__: tuple[str, ...] = ()
    #: indices of inputs whose *values* (not just shapes) decide the output shapes
    shape_value_inputs: tuple[int, ...] = ()

    def make_node(self, *inputs) -> Apply:
        raise NotImplementedError

    def perform(self, node: Apply, inputs: list[np.ndarray]) -> list[np.ndarray]:
        raise NotImplementedError(f"{self} has no NumPy implementation")

    def grad(self, inputs: list[Variable], output_grads: list[Variable | None]) -> list:
        raise NotImplementedError(f"{self} does not define a gradient")

    def infer_shape(self, node: Apply, input_shapes: list[tuple[int, ...]],
                    input_values: list) -> list[tuple[int, ...]]:
        """Output shapes from input shapes (and the values of ``shape_value_inputs``). This
        default runs ``perform`` on placeholder inputs (ones, or the values given), which is
        right for any op whose output shapes follow from those; ops override it for speed."""
        args = [np.asarray(value) if value is not None else np.ones(shape, dtype=var.dtype)
                for var, shape, value in zip(node.inputs, input_shapes, input_values)]
        return [np.shape(out) for out in self.perform(node, args)]

    def __call__(self, *inputs):
        node = self.make_node(*inputs)
        return node.outputs[0] if len(node.outputs) == 1 else node.outputs

    def _props(self) -> tuple:
        return tuple(getattr(self, p) for p in self.__props__)

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self._props() == other._props()

    def __hash__(self) -> int:
        return hash((type(self), self._props()))

    def __str__(self) -> str:
        props = self._props()
        if not props:
            return type(self).__name__
        return f"{type(self).__name__}{{{', '.join(map(_short, props))}}}"

    def __repr__(self) -> str:  # a method, so subclasses overriding __str__ change it too
        return str(self)


def _short(value) -> str:
    return getattr(value, "name", None) or str(value)


def toposort(outputs: Iterable[Variable]) -> list[Apply]:
    """Apply nodes needed for ``outputs``, each after the nodes computing its inputs."""
    order: list[Apply] = []
    seen: set[int] = set()
    for out in outputs:
        if out.owner is None or id(out.owner) in seen:
            continue
        stack = [(out.owner, False)]
        while stack:
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
                continue
            if id(node) in seen:
                continue
            seen.add(id(node))
            stack.append((node, True))
            for inp in reversed(node.inputs):
                if inp.owner is not None and id(inp.owner) not in seen:
                    stack.append((inp.owner, False))
    return order


def graph_inputs(outputs: Iterable[Variable]) -> list[Variable]:
    """Owner-less variables (inputs, shared variables, constants) the outputs depend on."""
    outputs = list(outputs)
    found: dict[int, Variable] = {}
    for out in outputs:
        if out.owner is None:
            found.setdefault(out.id, out)
    for node in toposort(outputs):
        for inp in node.inputs:
            if inp.owner is None:
                found.setdefault(inp.id, inp)
    return list(found.values())


def client_counts(outputs: Sequence[Variable]) -> Counter:
    """How many times each variable (by id) is used: as a node input or as an output."""
    counts: Counter = Counter(v.id for v in outputs)
    for node in toposort(outputs):
        counts.update(v.id for v in node.inputs)
    return counts


def ancestors(outputs: Iterable[Variable]) -> set[int]:
    """Ids of every variable the outputs depend on, the outputs included."""
    outputs = list(outputs)
    ids = {v.id for v in outputs}
    for node in toposort(outputs):
        ids.update(v.id for v in node.inputs)
        ids.update(v.id for v in node.outputs)
    return ids


def clone_replace(outputs: Sequence[Variable], replace: dict[Variable, Variable]
                  ) -> list[Variable]:
    """Rebuild ``outputs`` with the variables in ``replace`` substituted (types re-checked)."""
    memo: dict[int, Variable] = {var.id: new for var, new in replace.items()}
    for node in toposort(outputs):
        if all(v.id in memo for v in node.outputs):
            continue
        new_inputs = [memo.get(v.id, v) for v in node.inputs]
        if all(a is b for a, b in zip(new_inputs, node.inputs)):
            continue
        new_node = node.clone_with_new_inputs(new_inputs)
        for old, new in zip(node.outputs, new_node.outputs):
            memo.setdefault(old.id, new)
    return [memo.get(v.id, v) for v in outputs]

