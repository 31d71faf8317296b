"""``function``: compile inputs, outputs, updates and givens into a callable."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from .config import config
from .graph import Constant, Variable, as_variable, clone_replace, graph_inputs
from .profiling import Profile
from .shared import SharedVariable

_UNUSED = ("raise", "warn", "ignore")


class Function:
    """A compiled graph. Call it with one value per input; outputs are computed from the
    current shared values, then all updates are applied together (Theano semantics)."""

    def __init__(self, inputs, outputs, single_output, updates, name, program,
                 allow_downcast, device: str) -> None:
        self.inputs = inputs
        self.outputs = outputs
        self.updates = updates
        self.name = name
        self._single = single_output
        self._program = program
        self._allow_downcast = allow_downcast
        self.device = device
        #: a :class:`~tinygraph.profiling.Profile` when compiled with ``profile=True``
        self.profile = program.profile

    def __call__(self, *args, **kwargs):
        values = self._bind(args, kwargs)
        results = self._program.run(values)
        return results[0] if self._single else results

    def _bind(self, args, kwargs) -> list[np.ndarray]:
        if len(args) > len(self.inputs):
            raise TypeError(f"{self._label()} takes {len(self.inputs)} inputs "
                            f"({self._input_names()}), got {len(args)}")
        values = list(args)
        for var in self.inputs[len(args):]:
            if var.name in kwargs:
                values.append(kwargs.pop(var.name))
            else:
                raise TypeError(f"{self._label()}: missing a value for input {var!r} "
                                f"(inputs: {self._input_names()})")
        if kwargs:
            raise TypeError(f"{self._label()}: unexpected keyword inputs {sorted(kwargs)}")
        return [var.type.filter(value, name=f"{self._label()}, input {i} ({var!r})",
                                allow_downcast=self._allow_downcast)
                for i, (var, value) in enumerate(zip(self.inputs, values))]

    def _label(self) -> str:
        return f"function {self.name!r}" if self.name else "function"

    def _input_names(self) -> str:
        return ", ".join(repr(v) for v in self.inputs) or "none"

    def sync(self) -> None:
        """Wait until the device has finished this function's work. On OpenCL a call without
        outputs returns before its kernels ran, so that a loop of training steps never waits
        for the device; an error they detect (an index or label out of range) is raised by
        ``sync()`` or by the function's next call with outputs."""
        sync = getattr(self._program, "sync", None)
        if sync is not None:
            sync()

    def kernels_source(self) -> str:
        """The generated OpenCL code of this function (empty on the NumPy backend)."""
        source = getattr(self._program, "kernels_source", None)
        return source() if source else ""

    def debugprint(self, file=None) -> str:
        """Print the compiled (rewritten) graph of every output and update."""
        from .printing import debugprint

        targets = list(self.outputs) + [value for _, value in self.updates]
        return debugprint(targets, file=file)


def function(inputs: Sequence[Variable], outputs=None, updates=None, givens=None,
             name: str | None = None, rewrite: bool = True, on_unused_input: str = "raise",
             allow_downcast: bool | None = None, device: str | None = None,
             profile: bool | None = None) -> Function:
    """Compile a function from symbolic ``inputs`` to ``outputs`` (a variable or a list).

    ``updates``: pairs or a dict ``{shared: new_value}``, applied after the outputs are
    computed. ``givens``: pairs or a dict ``{var: replacement}`` substituted before
    compilation (e.g. ``{x: data[i * n:(i + 1) * n]}``). ``rewrite=False`` skips the graph
    rewrites (useful to compare against the optimised graph). ``device`` overrides
    ``config.device`` ("numpy", "opencl" or "opencl:P:D") for this function. ``profile``
    (default ``config.profile``) records the time of every kernel (OpenCL events) or op
    (NumPy) in ``fn.profile``; ``fn.profile.summary()`` prints the table.
    """
    inputs = _check_inputs(inputs)
    single = outputs is not None and not isinstance(outputs, (list, tuple))
    output_list = [] if outputs is None else [as_variable(o) for o in
                                              ([outputs] if single else outputs)]
    update_pairs = _check_updates(updates)
    replace = _check_givens(givens)
    targets = output_list + [value for _, value in update_pairs]
    if replace:
        targets = clone_replace(targets, replace)
    update_pairs = _with_default_updates(targets, update_pairs, len(output_list), replace)
    targets = targets[:len(output_list)] + [value for _, value in update_pairs]
    device = device or config.device
    if rewrite:
        from .rewrite import DEFAULT_PIPELINE, OPENCL_PIPELINE, optimize

        targets = optimize(targets, DEFAULT_PIPELINE if device == "numpy" else OPENCL_PIPELINE)
    _check_graph_inputs(targets, inputs, on_unused_input, name)
    outputs_final = targets[:len(output_list)]
    updates_final = [(shared_var, value) for (shared_var, _), value in
                     zip(update_pairs, targets[len(output_list):])]
    profile = Profile(name) if (config.profile if profile is None else profile) else None
    program = _link(device, inputs, outputs_final, updates_final, name, profile)
    return Function(inputs, outputs_final, single, updates_final, name, program,
                    config.allow_downcast if allow_downcast is None else allow_downcast, device)


def _link(device: str, inputs, outputs, updates, name, profile):
    """The backend program running the optimised graph on ``device``."""
    if device == "numpy":
        from .backends.numpy_backend import NumpyProgram

        return NumpyProgram(inputs, outputs, updates, name, profile)
    from .backends.opencl.device import get_context
    from .backends.opencl.linker import OpenCLProgram

    return OpenCLProgram(inputs, outputs, updates, name, get_context(device), profile)


def _check_inputs(inputs) -> list[Variable]:
    if isinstance(inputs, Variable):
        raise TypeError("function: inputs must be a list of variables, e.g. function([x], y)")
    inputs = list(inputs)
    for i, var in enumerate(inputs):
        if not isinstance(var, Variable):
            raise TypeError(f"function: input {i} is a {type(var).__name__}, not a variable")
        if isinstance(var, SharedVariable):
            raise TypeError(f"function: input {i} ({var!r}) is a shared variable; shared "
                            "variables are implicit inputs and must not be listed")
        if isinstance(var, Constant) or var.owner is not None:
            raise TypeError(f"function: input {i} ({var!r}) is not a free variable; inputs "
                            "must be created with tinygraph.scalar/vector/matrix/...")
    if len({v.id for v in inputs}) != len(inputs):
        raise ValueError("function: the same variable is listed twice as input")
    return inputs


def _pairs(mapping, what: str) -> list[tuple]:
    if mapping is None:
        return []
    items = list(mapping.items()) if isinstance(mapping, dict) else list(mapping)
    for item in items:
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise TypeError(f"function: {what} must be a dict or (variable, value) pairs")
    return [tuple(item) for item in items]


def _check_updates(updates) -> list[tuple[SharedVariable, Variable]]:
    pairs = []
    seen = set()
    for target, value in _pairs(updates, "updates"):
        if not isinstance(target, SharedVariable):
            raise TypeError(f"function: updates can only target shared variables, got {target!r}")
        if target.id in seen:
            raise ValueError(f"function: shared variable {target!r} is updated twice")
        seen.add(target.id)
        value = as_variable(value)
        if isinstance(value, Constant) and value.weak:
            value = as_variable(value.data.item(), target.dtype)
        if value.dtype != target.dtype or value.ndim != target.ndim:
            raise TypeError(
                f"function: the update of {target!r} ({target.type}) has type {value.type}; "
                f"updates must keep the dtype and rank (cast with tinygraph.cast(value, "
                f"'{target.dtype}'))")
        pairs.append((target, value))
    return pairs


def _check_givens(givens) -> dict[Variable, Variable]:
    replace = {}
    for var, value in _pairs(givens, "givens"):
        if not isinstance(var, Variable):
            raise TypeError(f"function: givens keys must be variables, got {var!r}")
        value = as_variable(value, var.dtype if not isinstance(value, Variable) else None)
        if value.dtype != var.dtype or value.ndim != var.ndim:
            raise TypeError(f"function: givens replaces {var!r} ({var.type}) by a value of "
                            f"type {value.type}; dtype and rank must match")
        replace[var] = value
    return replace


def _with_default_updates(targets, update_pairs, n_outputs, replace):
    """Add the default updates (e.g. random-stream states) of shared variables in the graph,
    with ``givens`` substituted in them too (a draw's size may depend on a replaced input)."""
    pairs = list(zip([t for t, _ in update_pairs], targets[n_outputs:]))
    updated = {t.id for t, _ in pairs}
    pending = list(targets)
    while pending:
        new = []
        for var in graph_inputs(pending):
            if isinstance(var, SharedVariable) and var.default_update is not None and \
                    var.id not in updated:
                updated.add(var.id)
                value = var.default_update
                if replace:
                    value = clone_replace([value], replace)[0]
                pairs.append((var, value))
                new.append(value)
        pending = new
    return pairs


def _check_graph_inputs(targets, inputs, on_unused_input: str, name) -> None:
    if on_unused_input not in _UNUSED:
        raise ValueError(f"on_unused_input must be one of {_UNUSED}")
    leaves = graph_inputs(targets)
    leaf_ids = {v.id for v in leaves}
    input_ids = {v.id for v in inputs}
    label = f"function {name!r}" if name else "function"
    for var in leaves:
        if not isinstance(var, (Constant, SharedVariable)) and var.id not in input_ids:
            raise ValueError(f"{label}: the outputs depend on {var!r} ({var.type}), which is "
                             "neither an input nor replaced by givens; add it to the inputs")
    for i, var in enumerate(inputs):
        if var.id not in leaf_ids and on_unused_input != "ignore":
            message = (f"{label}: input {i} ({var!r}) is not used by any output or update "
                       "(pass on_unused_input='ignore' to allow this)")
            if on_unused_input == "raise":
                raise ValueError(message)
            warnings.warn(message, stacklevel=3)
