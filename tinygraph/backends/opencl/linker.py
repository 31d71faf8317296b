"""The OpenCL linker: plans a graph once per shape signature and runs it.

Each call first runs the small host part of the graph (shapes, index arithmetic, random-stream
counters) in Python, which also yields the shape of every device tensor. Those shapes are the
plan key: a plan has its kernels built, buffers allocated and arguments preset, so a call only
sets the arguments that change (slice offsets, scalars, random counters) and enqueues.

Kernels that check indices or labels set a flag in one small buffer per plan. A call with
outputs waits for the device and reads the flags; a call without outputs returns at once and
its flags are read by ``sync()`` or by the next call with outputs (flags only ever get set, so
one read covers every call since the last).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import pyopencl as cl

from ...graph import Apply, Constant, Variable, graph_inputs, toposort
from ...ops.backprop_update import BackpropUpdate
from ...ops.blas import Gemm
from ...ops.crossentropy_total import CrossentropyGradTotal, DotCrossentropyGradTotal
from ...ops.elemwise import Elemwise
from ...ops.gemm_column_sums import GemmColumnSums
from ...ops.reduce_epilogue import ReduceEpilogue
from ...ops.shape import Shape
from ...ops.softmax_layer import SoftmaxLayerStep
from ...ops.subtensor import IncSubtensor
from ...ops.take_rows import TakeRows
from ...random.op import RandomDraw
from ...shared import SharedVariable
from ...types import is_float
from ..errors import reraise_with_node
from . import row_gathers
from .gemm import GemmPlan
from .kernel_spec import KernelSpec, Operand
from .kernels import RandomBase, RandomKey
from .launches import (
    CopyLaunch,
    HostFallbackLaunch,
    KernelLaunch,
    UploadLaunch,
)
from .lowering import LOWERINGS, copy_into, region_shape
from .lowering_kernels import KERNEL_LOWERINGS
from .row_gathers import RowsInPlace
from .storage import (
    DeviceArray,
    LogicalBuffer,
    SharedStorage,
    allocate,
    allocate_buffer,
    allocate_logical,
    read,
    read_view,
)

_SCALAR_TYPES = {"bool": np.uint8}


def _numpy_scalar(value, dtype: str):
    """A one-element host value as the NumPy scalar type a kernel argument needs."""
    return _SCALAR_TYPES.get(dtype, np.dtype(dtype).type)(np.asarray(value).reshape(()))


class OpenCLProgram:
    """A graph linked for an OpenCL device; ``run(inputs)`` returns the outputs and applies
    the updates in device memory."""

    def __init__(self, inputs: Sequence[Variable], outputs: Sequence[Variable],
                 updates: Sequence[tuple[SharedVariable, Variable]], name: str | None,
                 runtime, profile=None) -> None:
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        self.updates = list(updates)
        self.name = name
        self.runtime = runtime
        self.queue = runtime.queue
        self.profile = profile
        self._targets = self.outputs + [value for _, value in self.updates]
        self.nodes = toposort(self._targets)
        #: the nodes reading each variable, by its id
        self.clients: dict[int, list[Apply]] = {}
        for node in self.nodes:
            for var in dict.fromkeys(node.inputs):
                self.clients.setdefault(var.id, []).append(node)
        self._classify()
        self._prepare_steps()
        self._plans: dict[tuple, Plan] = {}
        self._last_shapes: dict[int, tuple] = dict(self._constant_shapes)
        self._last_key: tuple | None = None
        self._random_steps = [(node, in_ids, out_ids) for node, kind, in_ids, out_ids, _
                              in self._steps if kind == "random"]
        rng_ids = {in_ids[0] for _, in_ids, _ in self._random_steps}
        self._rng_states = [var for var in self.shared if var.id in rng_ids]
        #: the shared variables whose versions a call's host pass depends on (not the streams)
        self._versioned = [var for var in self.shared if var.id not in rng_ids]
        #: the random draws' new stream states (host values made by RandomDraw.next_state)
        self.drawn_state_ids = {out_ids[0] for _, _, out_ids in self._random_steps}
        self._repeatable = all(var.id not in self.host_ids for var in self.inputs) and all(
            self.drawn_state_ids.isdisjoint(in_ids) for _, kind, in_ids, _, _ in self._steps
            if kind != "random")
        self._last_pass: tuple = (None,)
        #: plans that ran calls without outputs whose error flags were not read yet
        self.unchecked_plans: set[Plan] = set()
        #: update values a Gemm or an elementwise kernel may write straight into the shared
        #: variable they update (read at the same positions, used nowhere else)
        consumed = {v.id for node in self.nodes for v in node.inputs}
        consumed.update(v.id for v in self.outputs)
        self.inplace_candidates = {
            value.id: target for target, value in self.updates
            if value.owner is not None and value.id not in consumed
            and _may_write_into(value, target)}

    def _classify(self) -> None:
        leaves = {var.id: var for var in graph_inputs(self._targets)}
        for target, _ in self.updates:
            leaves[target.id] = target
        self.shared = [v for v in leaves.values() if isinstance(v, SharedVariable)]
        self.constants = [v for v in leaves.values() if isinstance(v, Constant)]
        rng_states = {node.inputs[0].id for node in self.nodes
                      if isinstance(node.op, RandomDraw)}
        self.host_ids: set[int] = {c.id for c in self.constants}
        self.host_ids.update(v.id for v in self.inputs if v.ndim == 0)
        self.host_ids.update(v.id for v in self.shared if v.ndim == 0 or v.id in rng_states)
        self.host_nodes: set[int] = set()
        for node in self.nodes:
            if isinstance(node.op, RandomDraw):
                self.host_ids.add(node.outputs[0].id)
            elif isinstance(node.op, Shape) or (
                    all(v.id in self.host_ids for v in node.inputs)
                    and all(all(o.broadcastable) or (o.ndim == 1 and not is_float(o.dtype))
                            for o in node.outputs)):
                self.host_nodes.add(id(node))
                self.host_ids.update(o.id for o in node.outputs)
        for var in self.shared:
            if var.id not in self.host_ids and var.device_storage is None:
                var.device_storage = SharedStorage(self.runtime.context, self.queue)

    def _prepare_steps(self) -> None:
        """The per-call host pass as a flat list: (node, kind, input ids, output ids, memo)."""
        self._constant_values = {c.id: c.data for c in self.constants}
        self._constant_shapes = {c.id: c.data.shape for c in self.constants}
        self._steps = []
        for node in self.nodes:
            if id(node) in self.host_nodes:
                kind = "shape" if isinstance(node.op, Shape) else "host"
            elif isinstance(node.op, RandomDraw):
                kind = "random"
            elif isinstance(node.op, IncSubtensor):
                kind = "inc"
            elif any(not isinstance(node.inputs[i], Constant)
                     for i in node.op.shape_value_inputs):
                kind = "valued"
            else:
                kind = "pure"
            self._steps.append((node, kind, [v.id for v in node.inputs],
                                [v.id for v in node.outputs], {}))
        device_ids = [v.id for v in list(self.inputs) + self.shared]
        device_ids += [out.id for node in self.nodes for out in node.outputs]
        self._device_var_ids = [i for i in dict.fromkeys(device_ids) if i not in self.host_ids]

    def run(self, values: Sequence[np.ndarray]) -> list[np.ndarray]:
        signature = self._call_signature(values)
        if signature is not None and self._last_pass[0] == signature:
            _, host, shapes, key = self._last_pass
            if self._random_steps:
                host = self._next_random_states(host, shapes)
        else:
            host, shapes, key = self._host_pass(values)
            self._last_pass = (signature, host, shapes, key)
        plan = self._plans.get(key)
        if plan is None:
            plan = Plan(self, shapes, host)
            self._plans[key] = plan
        return plan.execute(values, host)

    def _call_signature(self, values) -> tuple | None:
        """What the host pass of a call depends on, when that is only the input shapes and
        the shared values (no host-valued inputs): a call with the same signature as the last
        one reuses its host pass, drawing only new random-stream states. The states of the
        streams are left out: they change every call and nothing but the draws reads them.
        None when every call needs a full pass."""
        if not self._repeatable:
            return None
        return (tuple(value.shape for value in values),
                tuple(var.version for var in self._versioned))

    def _next_random_states(self, host: dict, shapes: dict) -> dict:
        """The last pass's host values with the random draws' states computed again from the
        streams' current states (the draws' shapes are those of the last pass)."""
        host = dict(host)
        for var in self._rng_states:
            host[var.id] = var._value
        for node, in_ids, out_ids in self._random_steps:
            host[out_ids[0]] = node.op.next_state(host[in_ids[0]], shapes[out_ids[1]])
        return host

    def _host_pass(self, values):
        """Host values of the host part of the graph and shapes of every variable.

        Shapes start from the last call's: a device node is only inferred again when the shape
        of one of its inputs changed (``changed``), or when its output shape depends on host
        values. Host ops are memoised on their input values, shape inference on input shapes
        (and values), so a repeated call is mostly dictionary lookups."""
        host: dict[int, np.ndarray] = dict(self._constant_values)
        shapes: dict[int, tuple] = dict(self._last_shapes)
        changed: set[int] = set()

        def set_shape(var_id: int, shape: tuple) -> None:
            if shapes.get(var_id) != shape:
                shapes[var_id] = shape
                changed.add(var_id)

        for var, value in zip(self.inputs, values):
            set_shape(var.id, value.shape)
            if var.id in self.host_ids:
                host[var.id] = value
        for var in self.shared:
            if var.id in self.host_ids:
                host[var.id] = var._value
                set_shape(var.id, var._value.shape)
            else:
                storage = var.device_storage
                set_shape(var.id, var._value.shape if storage.array is None or
                          storage.host_is_newer else storage.array.shape)
        extra = []
        for node, kind, in_ids, out_ids, memo in self._steps:
            if kind == "pure" and self._last_key is not None and (
                    not changed or changed.isdisjoint(in_ids)):
                continue
            try:
                if kind == "shape":
                    shape = shapes[in_ids[0]]
                    host[out_ids[0]] = np.array(shape, dtype="int64")
                    set_shape(out_ids[0], (len(shape),))
                    continue
                if kind == "host":
                    inputs = [host[i] for i in in_ids]
                    key = tuple(_hashable(value) for value in inputs)
                    results = memo.get(key)
                    if results is None:
                        results = node.op.perform(node, inputs)
                        if len(memo) < 64:
                            memo[key] = results
                    for out_id, value in zip(out_ids, results):
                        host[out_id] = value
                        set_shape(out_id, np.shape(value))
                    continue
                in_shapes = tuple(shapes[i] for i in in_ids)
                key = in_shapes if kind == "pure" else (in_shapes, tuple(
                    _hashable(host.get(i)) for i in in_ids))
                out_shapes = memo.get(key)
                if out_shapes is None:
                    out_shapes = tuple(tuple(int(s) for s in shape) for shape in
                                       node.op.infer_shape(node, list(in_shapes),
                                                           [host.get(i) for i in in_ids]))
                    if len(memo) < 64:
                        memo[key] = out_shapes
                for out_id, shape in zip(out_ids, out_shapes):
                    set_shape(out_id, shape)
                if kind == "random":
                    host[out_ids[0]] = node.op.next_state(host[in_ids[0]], shapes[out_ids[1]])
                elif kind == "inc":
                    extra.append(region_shape(node, in_shapes[0], host))
            except Exception as exc:  # noqa: BLE001 - re-raised with the node described
                reraise_with_node(exc, node, [host.get(i, shapes.get(i)) for i in in_ids],
                                  self.name)
        if changed or self._last_key is None:
            self._last_key = tuple(shapes[i] for i in self._device_var_ids)
        self._last_shapes = shapes
        return host, shapes, self._last_key + tuple(extra)

    def sync(self) -> None:
        """Wait for the device and raise any error a call since the last check flagged."""
        self.queue.finish()
        self.check_flags()

    def check_flags(self) -> None:
        """Read the error flags of the plans that ran calls without outputs (after the queue
        finished): flags only ever get set, so one read covers all those calls."""
        while self.unchecked_plans:
            self.unchecked_plans.pop().check_flags(self.queue)

    def kernels_source(self) -> str:
        """The OpenCL source of every kernel of every plan made so far."""
        parts = []
        for key, plan in self._plans.items():
            parts.append(f"/* plan for shapes {key} */")
            parts.extend(f"/* {launch.label} */\n{launch.source}" for launch in plan.launches
                         if launch.source)
        return "\n".join(parts)


class Plan:
    """Everything for one shape signature: device arrays, presets, launches."""

    def __init__(self, program: OpenCLProgram, shapes: dict, host_values: dict) -> None:
        self.program = program
        self.runtime = program.runtime
        self.shapes = shapes
        self.host_values = host_values
        self.arrays: dict[int, DeviceArray] = {}
        #: gathered rows that products read in place, by variable id (see row_gathers.py)
        self.rows_in_place: dict[int, RowsInPlace] = {}
        self.launches: list = []
        #: (op label, node, operands) of kernels that flag bad indices, each owning one int32
        #: of ``_flag_buffer`` (zeroed once, read once per call)
        self.error_flags: list[tuple[str, object, list]] = []
        self._flag_buffer = LogicalBuffer(4)
        self.deferred: list = []
        self.inplace: set[int] = set()
        #: ids of the nodes whose in-place writes are deferred launches (run after all others)
        self.deferred_nodes: set[int] = set()
        #: (position among the inputs, device array) of each input uploaded per call
        self.input_arrays = []
        for position, var in enumerate(program.inputs):
            if var.id not in program.host_ids:
                array = allocate(self.runtime.context, shapes[var.id], var.dtype)
                self.arrays[var.id] = array
                self.input_arrays.append((position, array))
        self.shared_generations = {}
        for var in program.shared:
            if var.id not in program.host_ids:
                self.arrays[var.id] = var.device_storage.device_array(var)
                self.shared_generations[var.id] = var.device_storage.generation
        for node in program.nodes:
            if id(node) in program.host_nodes:
                continue
            lower = LOWERINGS.get(type(node.op)) or KERNEL_LOWERINGS.get(type(node.op))
            try:
                if lower is None:
                    self.host_fallback(node)
                else:
                    lower(self, node)
            except Exception as exc:  # noqa: BLE001 - re-raised with the node described
                reraise_with_node(exc, node, [shapes.get(v.id) for v in node.inputs],
                                  program.name)
        self.output_arrays = [None if var.id in program.host_ids else
                              self._readable(var) for var in program.outputs]
        #: device-computed new values of host-side shared variables (0-d shared scalars)
        self.host_update_arrays = [self._readable(value) for target, value in program.updates
                                   if target.id in program.host_ids
                                   and value.id not in program.host_ids]
        self.update_copies = []
        shared_buffers = {id(self.arrays[v.id].buffer) for v in program.shared
                          if v.id in self.arrays}
        for shared_var, value in program.updates:
            if shared_var.id in program.host_ids or shared_var.id in self.inplace:
                continue
            source = self.array(value)
            if id(source.buffer) in shared_buffers or not source.is_contiguous():
                copy = self.allocate(source.shape, source.dtype)
                copy_into(self, None, source, copy)
                source = copy
            self.update_copies.append(CopyLaunch(source, self.arrays[shared_var.id],
                                                 f"update {shared_var!r}"))
        self.launches.extend(self.deferred)
        self._shared_devices = [(v, g) for v in program.shared
                                if (g := self.shared_generations.get(v.id)) is not None]
        self._finalize()

    def _finalize(self) -> None:
        """Bind logical buffers to physical ones, reusing a buffer once its last reader ran
        (outputs, update sources and error flags live to the end), then preset arguments."""
        steps = self.launches + self.update_copies
        last_use: dict[int, int] = {}
        for index, launch in enumerate(steps):
            for array in launch.arrays():
                last_use[id(array.buffer)] = index
        pinned = [a for a in self.output_arrays if a is not None] + self.host_update_arrays
        for _, _, operands in self.error_flags:
            pinned += [a for a in operands if isinstance(a, DeviceArray)]
        pinned += [launch.source_array for launch in self.update_copies]
        for array in pinned:
            last_use[id(array.buffer)] = len(steps)
        last_use[id(self._flag_buffer)] = len(steps)
        free: list[cl.Buffer] = []
        self.device_bytes = 0
        self._flag_buffer.physical = self._take([], 4 * max(len(self.error_flags), 1))
        for index, launch in enumerate(steps):
            for array in launch.arrays():
                logical = array.buffer
                if isinstance(logical, LogicalBuffer) and logical.physical is None:
                    logical.physical = self._take(free, logical.nbytes)
            for array in launch.arrays():
                logical = array.buffer
                if isinstance(logical, LogicalBuffer) and last_use[id(logical)] == index and \
                        logical.physical is not None and logical.physical not in free:
                    free.append(logical.physical)
            if hasattr(launch, "finalize"):
                launch.finalize(self.host_values)
        self._clear_flags()

    def _clear_flags(self) -> None:
        """Zero the error flags (once when planned, and again after one reported an error)."""
        zeros = np.zeros(max(len(self.error_flags), 1), np.int32)
        cl.enqueue_copy(self.runtime.queue, self._flag_buffer.physical, zeros, is_blocking=True)

    def _take(self, free: list, nbytes: int) -> cl.Buffer:
        fitting = [b for b in free if b.size >= nbytes]
        if fitting:
            best = min(fitting, key=lambda b: b.size)
            free.remove(best)
            return best
        self.device_bytes += nbytes
        return allocate_buffer(self.runtime.context, nbytes, "an intermediate array")

    def _readable(self, var: Variable) -> DeviceArray:
        """A contiguous array holding ``var`` (views are copied on the device)."""
        array = self.array(var)
        inplace_buffers = {id(self.arrays[i].buffer) for i in self.inplace}
        if array.is_contiguous() and id(array.buffer) not in inplace_buffers:
            return array
        copy = self.allocate(array.shape, array.dtype)
        copy_into(self, None, array, copy)
        return copy

    # -- the interface lowering functions use -------------------------------------------------
    def shape(self, var: Variable) -> tuple[int, ...]:
        return self.shapes[var.id]

    def is_host_scalar(self, var) -> bool:
        """A one-element host value, passed to kernels by value."""
        return isinstance(var, Variable) and var.id in self.program.host_ids and \
            all(var.broadcastable)

    def allocate(self, shape, dtype) -> DeviceArray:
        """Plan-internal storage, bound to a physical buffer by :meth:`_finalize`."""
        return allocate_logical(shape, dtype)

    def new_array(self, var: Variable) -> DeviceArray:
        array = self.allocate(self.shapes[var.id], var.dtype)
        self.arrays[var.id] = array
        return array

    def set_array(self, var: Variable, array: DeviceArray) -> None:
        self.arrays[var.id] = array

    def array(self, var: Variable) -> DeviceArray:
        """The device array of ``var``; host values are uploaded (constants once), rows left
        in place are copied."""
        if var.id in self.arrays:
            return self.arrays[var.id]
        if var.id in self.rows_in_place:
            self.arrays[var.id] = row_gathers.copied(self, self.rows_in_place[var.id])
            return self.arrays[var.id]
        if var.id not in self.program.host_ids:
            raise RuntimeError(f"no device array for {var!r}: the plan is out of order")
        array = allocate(self.runtime.context, np.shape(self.host_values[var.id]), var.dtype)
        if isinstance(var, Constant):
            data = np.ascontiguousarray(var.data)
            if data.size:
                cl.enqueue_copy(self.runtime.queue, array.cl_buffer, data)
        else:
            self.launches.append(UploadLaunch(var.id, array, f"upload {var!r}"))
        self.arrays[var.id] = array
        return array

    def in_place_rows(self, var: Variable) -> RowsInPlace | None:
        """The rows ``var`` stands for when they were left in place (and not copied since,
        nor their transpose), else None: a lowering that reads them through the index does
        not call ``array``."""
        rows = self.rows_in_place.get(var.id)
        if rows is None or var.id in self.arrays or \
                rows.transpose_of is not None and rows.transpose_of.id in self.arrays:
            return None
        return rows

    def add_launch(self, launch, deferred: bool = False) -> None:
        """Append a launch; ``deferred`` ones run after all others (in-place updates)."""
        (self.deferred if deferred else self.launches).append(launch)

    def inplace_target(self, node, operands: list[DeviceArray],
                       aligned: list[DeviceArray] = (), output: int = 0,
                       deferred: bool = True) -> DeviceArray | None:
        """The shared array a kernel may overwrite in place (a deferred launch, after all
        others), or None when it must not: the output is not its own variable's update, its
        shape differs, or an operand reads an updated shared variable (which an earlier
        in-place launch may already have overwritten). ``operands`` are read anywhere;
        ``aligned`` ones only at the output's own positions, so the target itself may be one
        of them (``b - eta * gb`` reading ``b``). ``output`` picks the node's output. A launch
        that is not ``deferred`` (other kernels need its other outputs) runs in graph order,
        so every other kernel reading the shared variable must run before it; its operands
        may read other updated shared variables (their in-place updates run later: deferred,
        or in graph order after every reader), only not the target outside its positions."""
        shared_var = self.program.inplace_candidates.get(node.outputs[output].id)
        if shared_var is None or shared_var.id not in self.arrays or \
                self.shapes[shared_var.id] != self.shapes[node.outputs[output].id]:
            return None
        own = self.arrays[shared_var.id]
        if not deferred:
            if not self._read_only_before(node, own) or \
                    any(a.buffer is own.buffer for a in operands):
                return None
            self.inplace.add(shared_var.id)
            return own
        updated = {id(self.arrays[t.id].buffer) for t, _ in self.program.updates
                   if t.id in self.arrays}
        if any(id(a.buffer) in updated for a in operands) or \
                any(id(a.buffer) in updated for a in aligned if a is not own):
            return None
        self.inplace.add(shared_var.id)
        self.deferred_nodes.add(id(node.outputs[output].owner))
        return own

    def output_array(self, node, operands: list[DeviceArray], aligned: list[DeviceArray] = (),
                     output: int = 0, deferred: bool = True) -> tuple[DeviceArray, bool]:
        """(array, in place): the shared array ``inplace_target`` allows (same arguments),
        bound as the node's output, else a new array for it."""
        target = self.inplace_target(node, operands, aligned, output, deferred)
        if target is None:
            return self.new_array(node.outputs[output]), False
        self.set_array(node.outputs[output], target)
        return target, True

    def _read_only_before(self, node, array: DeviceArray) -> bool:
        """Whether every kernel reading ``array``'s buffer, other than ``node``'s, runs before
        ``node``'s: the nodes reading it or a view of it (lowered so far) come earlier in graph
        order and did not write in place deferred to the end, and no output or update reads it
        after the call. A part of a fused node (``Apply.part``) stands at the fused node's
        place."""
        views = {var_id for var_id, other in self.arrays.items() if other.buffer is array.buffer}
        node = node.outputs[0].owner
        position = self.program.nodes.index(node)
        for index, other in enumerate(self.program.nodes):
            if other is node or not any(v.id in views for v in other.inputs):
                continue
            if index > position or id(other) in self.deferred_nodes:
                return False
        finals = self.program.outputs + [value for _, value in self.program.updates]
        return not any(v.id in views for v in finals)

    def gemm_plan(self, m, n, k, trans_a, trans_b, dtype, **options) -> GemmPlan:
        """A new GEMM plan (each launch gets its own: plans own their packing scratch);
        ``options`` as for GemmPlan (bias, epilogue, extras, column_epilogue, columns)."""
        return GemmPlan(self.runtime.context, m, n, k, trans_a=trans_a, trans_b=trans_b,
                        dtype=dtype, program_cache=self.runtime.program_cache, **options)

    def host_fallback(self, node) -> None:
        inputs = [v.id if v.id in self.program.host_ids else self._readable(v)
                  for v in node.inputs]
        outputs = []
        for out in node.outputs:
            if out.id in self.program.host_ids:
                outputs.append(self.allocate((), out.dtype))
            else:
                outputs.append(self.new_array(out))
        self.launches.append(HostFallbackLaunch(node, inputs, outputs, str(node.op)))

    def add_spec(self, spec: KernelSpec, node, operands: list, outputs: list[DeviceArray],
                 deferred: bool = False) -> None:
        """Create the kernel of ``spec`` and bind its arguments (see kernel_spec.py); ``node``
        is None for the plan's own copies; ``deferred`` as for :meth:`add_launch`."""
        self.add_specs([spec], node, operands, outputs, deferred=deferred)

    def add_specs(self, specs: list[KernelSpec], node, operands: list, outputs: list,
                  random_state=None, deferred: bool = False, label: str | None = None) -> None:
        """Launch ``specs`` in order; they share the scratch buffers of the first spec. A
        one-element int32 scratch 0 is an error flag, cleared before and checked after.
        ``label`` names the launches (the node's op by default)."""
        if not specs:
            return
        label = label or (str(node.op) if node is not None else "copy")
        first = specs[0]
        for dtype in first.scratch_dtypes:
            if dtype == "float64":
                self.runtime.require_fp64(label)
        scratch = [self.allocate((size,), dtype)
                   for size, dtype in zip(first.scratch_sizes, first.scratch_dtypes)]
        if scratch and scratch[0].size == 1 and scratch[0].dtype == np.int32:
            scratch[0] = DeviceArray(self._flag_buffer, len(self.error_flags), (1,), (1,),
                                     np.dtype(np.int32))
            self.error_flags.append((label, node, list(operands)))
        for spec in specs:
            self._add_kernel(spec, label, operands, outputs, scratch, random_state, deferred)

    def _add_kernel(self, spec, label, operands, outputs, scratch, random_state,
                    deferred) -> None:
        kernel = self.runtime.program_cache.kernel(spec.source, spec.name)
        static, dynamic, index = {}, [], 0
        for arg in spec.args:
            if isinstance(arg, Operand) and arg.kind == "value":
                var = operands[arg.index]
                value_of = _scalar_getter(var)
                if isinstance(var, Constant) or not isinstance(var, Variable):
                    static[index] = value_of(self.host_values)
                else:
                    dynamic.append((index, value_of))
                index += 1
            elif isinstance(arg, Operand):
                array = {"in": operands, "out": outputs, "scratch": scratch}[arg.kind][arg.index]
                static[index] = array
                if callable(array.offset):
                    dynamic.append((index + 1, _offset_getter(array)))
                else:
                    static[index + 1] = np.int64(array.offset)
                index += 2
            elif isinstance(arg, (RandomKey, RandomBase)):
                word = 0 if isinstance(arg, RandomKey) else 1
                dynamic.append((index, _state_word(random_state, word)))
                index += 1
            else:
                static[index] = arg
                index += 1
        self.add_launch(KernelLaunch(kernel, spec.global_size, spec.local_size, static, dynamic,
                                     label + (" in place" if deferred else ""), spec.source),
                        deferred)

    # -- running ------------------------------------------------------------------------------
    def check_flags(self, queue) -> None:
        """Read the error flags after ``queue`` finished; raise if a kernel set one. The
        operands are re-checked with the op's NumPy code as of the last call."""
        if not self.error_flags:
            return
        flags = np.empty(len(self.error_flags), dtype=np.int32)
        cl.enqueue_copy(queue, flags, self._flag_buffer.physical, is_blocking=True)
        if flags.any():
            self._raise_flagged(queue, self.last_host_values, flags)

    def execute(self, values, host_values) -> list[np.ndarray]:
        program = self.program
        queue = self.runtime.queue
        self.last_host_values = host_values
        self._check_shared_buffers()
        if program.profile is not None:
            queue.finish()
            queue = self.runtime.queue_for(profiling=True)
        for position, array in self.input_arrays:
            data = np.ascontiguousarray(values[position])
            if data.size:
                cl.enqueue_copy(queue, array.cl_buffer, data, is_blocking=True)
        events = []
        if program.profile is None:
            for launch in self.launches:
                launch.enqueue(queue, host_values)
        else:
            for launch in self.launches:
                start = time.perf_counter()
                event = launch.enqueue(queue, host_values)
                events.append((launch.label, event, time.perf_counter() - start))
        outputs = []
        for var, array in zip(program.outputs, self.output_arrays):
            if array is None:
                outputs.append(np.array(host_values[var.id], dtype=var.dtype))
            else:
                outputs.append(read(queue, array, host_values, wait=False))
        host_updates = [read(queue, array, host_values, wait=False)
                        for array in self.host_update_arrays]
        if outputs or host_updates or program.profile is not None:
            queue.finish()
            self.check_flags(queue)
            program.unchecked_plans.discard(self)
            program.check_flags()
        elif self.error_flags:
            program.unchecked_plans.add(self)
        for launch in self.update_copies:
            event = launch.enqueue(queue, host_values)
            if program.profile is not None:
                events.append((launch.label, event, 0.0))
        computed = iter(host_updates)
        for shared_var, value in program.updates:
            if shared_var.id not in program.host_ids:
                shared_var.device_storage.mark_device_written()
            elif value.id in program.drawn_state_ids:
                shared_var._replace_value(host_values[value.id])
            elif value.id in host_values:
                shared_var.set_value(np.array(host_values[value.id], dtype=shared_var.dtype))
            else:
                shared_var.set_value(next(computed).reshape(shared_var.get_value().shape))
        if program.profile is not None:
            queue.finish()
            self._record(program.profile, events)
        return outputs

    @staticmethod
    def _record(profile, events) -> None:
        """Device time of each kernel from its event (host time for host steps)."""
        profile.calls += 1
        for label, event, host_seconds in events:
            if event is None:
                profile.record(label, host_seconds)
            else:
                profile.record(label, (event.profile.end - event.profile.start) * 1e-9)

    def _check_shared_buffers(self) -> None:
        """Upload shared values set on the host since the last call (same buffers)."""
        for var, generation in self._shared_devices:
            storage = var.device_storage
            if storage.host_is_newer:
                storage.device_array(var)
            if storage.generation != generation:
                raise RuntimeError(f"shared variable {var!r} changed shape since this "
                                   "function was planned; compile it again")

    def _raise_flagged(self, queue, host_values, flags) -> None:
        """A kernel flagged a bad index or label: clear the flags, then run the op's NumPy code
        on the operands to raise the same precise error as the NumPy backend."""
        self._clear_flags()
        for flag, (op_name, node, operands) in zip(flags, self.error_flags):
            if not flag:
                continue
            values = [read_view(queue, a, host_values) if isinstance(a, DeviceArray)
                      else np.asarray(host_values[a.id]) for a in operands]
            note = self._updated_operands_note(operands)
            if node is not None and len(values) == len(node.inputs):
                try:
                    node.op.perform(node, values)
                except Exception as exc:  # noqa: BLE001 - re-raised with the node described
                    if note:
                        exc = _with_note(exc, note)
                    reraise_with_node(exc, node, values, self.program.name)
            raise IndexError(f"{op_name}: an index or label was out of range in a call of "
                             f"function {self.program.name!r} since its errors were last "
                             "checked (detected on the OpenCL device; calls without outputs "
                             "are checked by the next call with outputs or by sync())"
                             + (f"\n  {note}" if note else ""))

    def _updated_operands_note(self, operands) -> str:
        """A warning that the values shown for some operands are not the ones the kernel read:
        this plan's calls update those shared variables in place (a step counter, say)."""
        updated = {id(self.arrays[var.id].buffer): var for var in self.program.shared
                   if var.id in self.inplace}
        names = sorted({repr(updated[id(a.buffer)]) for a in operands
                        if isinstance(a, DeviceArray) and id(a.buffer) in updated})
        if not names:
            return ""
        return (f"note: {', '.join(names)} shown as updated by the call (in place), not as "
                "the kernel read them")


def _with_note(exc: Exception, note: str) -> Exception:
    """``exc`` with ``note`` added to its message, as the same exception type if possible."""
    try:
        return type(exc)(f"{exc}\n  {note}")
    except Exception:  # noqa: BLE001 - an exception type with other arguments
        return RuntimeError(f"{exc}\n  {note}")


def _may_write_into(value: Variable, target: SharedVariable) -> bool:
    """Whether ``value``'s node can compute it in the buffer of ``target``: a Gemm
    accumulating into it, or an elementwise op (also a reduction's epilogue, a GemmColumnSums'
    or BackpropUpdate's column update and a crossentropy's total) reading it at the output's
    positions. A SoftmaxLayerStep's outputs are its parts': a crossentropy's total and a
    BackpropUpdate's outputs. A TakeRows node's advanced selector goes over its selector."""
    node = value.owner
    if isinstance(node.op, TakeRows):
        return node.op.advance is not None and value is node.outputs[-1] and \
            node.inputs[1] is target
    if isinstance(node.op, SoftmaxLayerStep):
        loss, backprop = node.op.parts(node)
        return _may_write_into((loss.outputs[:1] + backprop.outputs)[value.index], target)
    updates = (GemmColumnSums, BackpropUpdate)
    if isinstance(node.op, Gemm) or isinstance(node.op, updates) and value.index == 0:
        return node.inputs[0] is target
    if isinstance(node.op, BackpropUpdate) and value.index == 2:
        return False
    operands = node.inputs[5:5 + node.op.n_column] if isinstance(node.op, BackpropUpdate) else \
        node.inputs[5:] if isinstance(node.op, GemmColumnSums) else \
        node.inputs[3:] if isinstance(node.op, CrossentropyGradTotal) else \
        node.inputs[5:] if isinstance(node.op, DotCrossentropyGradTotal) else \
        node.inputs[1:] if isinstance(node.op, ReduceEpilogue) else \
        node.inputs if isinstance(node.op, Elemwise) else []
    return target in operands and target.broadcastable == value.broadcastable and \
        target.dtype == value.dtype


def _scalar_getter(var):
    if isinstance(var, Variable):
        dtype = var.dtype
        return lambda host_values: _numpy_scalar(host_values[var.id], dtype)
    value = np.asarray(var)
    return lambda host_values: _numpy_scalar(value, value.dtype.name)


def _hashable(value):
    """A dictionary key for a small host value (None for device values)."""
    if value is None:
        return None
    array = np.asarray(value)
    return (array.dtype.str, array.shape, array.tobytes())


def _state_word(state: Variable, word: int):
    """The key (word 0) or counter (word 1) of a random stream's host state, as uint64."""
    return lambda host_values: np.asarray(host_values[state.id]).view(np.uint64)[word]


def _offset_getter(array: DeviceArray):
    return lambda host_values: np.int64(array.offset(host_values))
