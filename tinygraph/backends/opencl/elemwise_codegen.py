"""OpenCL C for elementwise nodes: each scalar op (or a fused ``Composite``) becomes one
expression per step; one work-item computes one output element of any rank, reading strided,
broadcast (stride 0) or offset inputs.

The pip PoCL does not inline builtins such as ``fabs``/``fmax``/``min``, so they are written as
``?:`` here; transcendental functions use the builtins (``exp``, ``log``, ...).
"""

from __future__ import annotations

import numpy as np

from ...ops import scalar as s
from ...ops.composite import Composite
from ...types import is_float, upcast
from .kernel_spec import KernelSpec, Operand, c_type, element_index, fp64_pragma

HELPERS = """
inline long tg_floordiv_l(long a, long b) {
    if (b == 0) return 0;
    long q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}
inline long tg_mod_l(long a, long b) {
    if (b == 0) return 0;
    long r = a % b;
    return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r;
}
"""


def literal(value, dtype: str) -> str:
    """An exact C literal of ``value`` as ``dtype``."""
    if dtype == "bool":
        return "1" if value else "0"
    if not is_float(dtype):
        return f"(({c_type(dtype)}){int(value)}L)"
    value = float(np.dtype(dtype).type(value))
    if np.isnan(value):
        return f"(({c_type(dtype)})NAN)"
    if np.isinf(value):
        return f"(({c_type(dtype)}){'-' if value < 0 else ''}INFINITY)"
    return f"(({c_type(dtype)}){value.hex()}{'f' if dtype == 'float32' else ''})"


def _float_mod(a: str, b: str, t: str) -> str:
    return (f"({b} == 0 ? ({t})NAN : ({a} - floor({a} / {b}) * {b}))")


def scalar_expression(op: s.ScalarOp, args: list[str], arg_dtypes: list[str],
                      out_dtype: str) -> str:
    """C expression computing ``op`` on the argument expressions."""
    name = op.name
    t = c_type(out_dtype)
    if isinstance(op, s.Cast):
        if out_dtype == "bool":
            return f"(({args[0]}) != 0)"
        return f"(({t})({args[0]}))"
    if name in ("eq", "neq", "lt", "le", "gt", "ge"):
        common = c_type(upcast(*arg_dtypes))
        a, b = (f"(({common}){x})" for x in args)
        symbol = {"eq": "==", "neq": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}[name]
        return f"({a} {symbol} {b})"
    if name in ("and", "or", "xor", "not"):
        a = args[0]
        if name == "not":
            return f"(!({a}))"
        b = args[1]
        return {"and": f"(({a}) && ({b}))", "or": f"(({a}) || ({b}))",
                "xor": f"((!({a})) != (!({b})))"}[name]
    if name == "switch":
        c, a, b = args
        return f"(({c}) ? (({t})({a})) : (({t})({b})))"
    if name == "second":
        return f"(({t})({args[1]}))"
    cast = [f"(({t})({x}))" for x in args]
    a = cast[0]
    b = cast[1] if len(cast) > 1 else None
    floating = is_float(out_dtype)
    one, zero = literal(1, out_dtype), literal(0, out_dtype)
    simple = {
        "add": f"({a} + {b})", "sub": f"({a} - {b})", "mul": f"({a} * {b})",
        "true_div": f"({a} / {b})", "neg": f"(-{a})", "identity": a,
        "maximum": f"(({a} != {a} || {a} >= {b}) ? {a} : {b})",
        "minimum": f"(({a} != {a} || {a} <= {b}) ? {a} : {b})",
        "square": f"({a} * {a})",
        "relu": f"(({a} > {zero} || {a} != {a}) ? {a} : {zero})",
    }
    if name in simple:
        return simple[name]
    if name == "abs":
        return f"({a} <= {zero} ? -{a} : {a})" if floating or out_dtype != "uint8" else a
    if name == "sign":
        return f"({a} != {a} ? {a} : ({t})(({a} > {zero}) - ({a} < {zero})))"
    if name == "floor_div":
        return f"floor({a} / {b})" if floating else f"(({t})tg_floordiv_l({a}, {b}))"
    if name == "mod":
        return _float_mod(a, b, t) if floating else f"(({t})tg_mod_l({a}, {b}))"
    if name == "clip":
        lo, hi = cast[1], cast[2]
        return f"({a} < {lo} ? {lo} : ({a} > {hi} ? {hi} : {a}))"
    if name in ("floor", "ceil", "round"):
        if not floating:
            return a
        return {"floor": f"floor({a})", "ceil": f"ceil({a})", "round": f"rint({a})"}[name]
    if name == "sigmoid":
        return f"({one} / ({one} + exp(-{a})))"
    if name == "softplus":
        absolute = f"({a} <= {zero} ? -{a} : {a})"
        return f"(log1p(exp(-{absolute})) + ({a} > {zero} ? {a} : {zero}))"
    if name == "pow":
        return f"pow({a}, {b})"
    if name in ("exp", "log", "log1p", "expm1", "sqrt", "sin", "cos", "tanh"):
        return f"{name}({a})"
    raise NotImplementedError(f"the OpenCL backend has no code for scalar op {name}")


def _steps(op: s.ScalarOp, input_dtypes: list[str], out_dtype: str):
    """The op as a list of (scalar_op, argument refs, out dtype) or constants."""
    if isinstance(op, Composite):
        return list(zip(op.steps, op.step_dtypes))
    return [((op, tuple(range(len(input_dtypes)))), out_dtype)]


def elemwise_spec(op: s.ScalarOp, input_dtypes: list[str], input_strides: list[tuple],
                  input_is_scalar_arg: list[bool], out_shape: tuple[int, ...],
                  out_dtype: str, out_strides: tuple[int, ...] | None = None) -> KernelSpec:
    """A kernel writing ``op`` of the inputs into a contiguous output of ``out_shape``.

    ``input_strides`` are element strides aligned with the output axes (0 where an input is
    broadcast). Inputs flagged in ``input_is_scalar_arg`` are passed by value (host scalars).
    ``out_strides`` writes into a strided view instead (concatenate, inc_subtensor).
    """
    size = int(np.prod(out_shape))
    params, args, loads = [], [], []
    for i, (dtype, strides, by_value) in enumerate(zip(input_dtypes, input_strides,
                                                       input_is_scalar_arg)):
        ct = c_type(dtype)
        if by_value:
            params.append(f"const {ct} in{i}")
            args.append(Operand("value", i))
            loads.append(f"in{i}")
        else:
            params.append(f"__global const {ct}* restrict in{i}, const long in{i}_off")
            args.append(Operand("in", i))
            index = element_index("gid", out_shape, strides, f"in{i}_off")
            loads.append(f"in{i}[{index}]")
    params.append(f"__global {c_type(out_dtype)}* restrict out0, const long out0_off")
    args.append(Operand("out", 0))
    body, names, dtypes = [], [], list(input_dtypes)
    values = list(loads)
    for k, (step, dtype) in enumerate(_steps(op, input_dtypes, out_dtype)):
        var = f"v{k}"
        if step[0] == "const":
            expr = literal(step[1], dtype)
        else:
            scalar_op, refs = step
            expr = scalar_expression(scalar_op, [values[r] for r in refs],
                                     [dtypes[r] for r in refs], dtype)
        body.append(f"    const {c_type(dtype)} {var} = {expr};")
        values.append(var)
        dtypes.append(dtype)
        names.append(var)
    out_index = "out0_off + gid" if out_strides is None else element_index(
        "gid", out_shape, out_strides, "out0_off")
    source = (
        fp64_pragma(*input_dtypes, out_dtype) + HELPERS
        + f"__kernel void elemwise({', '.join(params)}) {{\n"
        + "    const long gid = get_global_id(0);\n"
        + f"    if (gid >= {size}L) return;\n"
        + "\n".join(body) + "\n"
        + f"    out0[{out_index}] = ({c_type(out_dtype)}){names[-1]};\n}}\n"
    )
    local = 64 if size >= 64 else max(1, size)
    global_size = -(-max(size, 1) // local) * local
    return KernelSpec(source, "elemwise", (global_size,), (local,), args)
