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
from .kernel_spec import KernelSpec, Operand, c_literal, c_type, fp64_pragma

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
    """An exact C literal of ``value``, cast to the C type of ``dtype``."""
    if dtype == "bool":
        return "1" if value else "0"
    return f"(({c_type(dtype)}){c_literal(value, dtype)})"


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


#: one local size for every elementwise kernel: PoCL compiles a kernel again for each new
#: local size, so a fixed size keeps one build per source
LOCAL_SIZE = 64


def collapse_axes(shape, strides_lists):
    """Drop length-1 axes and merge neighbours that every operand walks contiguously, so most
    elementwise kernels become 1-d or 2-d whatever the rank of the tensors."""
    axes = [a for a, n in enumerate(shape) if n != 1]
    new_shape = [shape[a] for a in axes]
    new_strides = [[strides[a] for a in axes] for strides in strides_lists]
    a = len(new_shape) - 2
    while a >= 0:
        if all(st[a] == st[a + 1] * new_shape[a + 1] for st in new_strides):
            new_shape[a] *= new_shape[a + 1]
            del new_shape[a + 1]
            for st in new_strides:
                st[a] = st[a + 1]
                del st[a + 1]
        a -= 1
    return new_shape, new_strides


def _index(name: str, strides, args: list, params: list) -> str:
    """Storage index of operand ``name`` from the coordinates c0..; strides 0 and 1 are baked
    in, others become ``long`` arguments."""
    terms = [f"{name}_off"]
    for a, stride in enumerate(strides):
        if stride == 0:
            continue
        if stride == 1:
            terms.append(f"c{a}")
        else:
            params.append(f"const long {name}_s{a}")
            args.append(np.int64(stride))
            terms.append(f"c{a} * {name}_s{a}")
    return " + ".join(terms)


def scalar_code(op: s.ScalarOp, operands: list[str], operand_dtypes: list[str],
                out_dtype: str, prefix: str = "v") -> tuple[list[str], str]:
    """(C lines, name of the result) computing ``op`` (or a ``Composite``) of the operand
    expressions, one ``const`` variable ``{prefix}{k}`` per step."""
    body, values, dtypes = [], list(operands), list(operand_dtypes)
    for k, (step, dtype) in enumerate(_steps(op, operand_dtypes, out_dtype)):
        if step[0] == "const":
            expr = literal(step[1], dtype)
        else:
            scalar_op, refs = step
            expr = scalar_expression(scalar_op, [values[r] for r in refs],
                                     [dtypes[r] for r in refs], dtype)
        body.append(f"    const {c_type(dtype)} {prefix}{k} = {expr};")
        values.append(f"{prefix}{k}")
        dtypes.append(dtype)
    return body, values[-1]


class StoreEpilogue:
    """An elementwise op applied to a reduced value as a reduction kernel stores it: the
    value is operand ``position``; the other operands (node inputs ``first_input``.. in
    order) are host scalars passed by value, single elements, or arrays laid out like the
    output."""

    def __init__(self, op: s.ScalarOp, position: int, value_dtype: str, operand_dtypes,
                 operand_kinds, out_dtype: str, first_input: int = 1) -> None:
        self.op, self.position, self.value_dtype = op, position, value_dtype
        self.operand_dtypes, self.operand_kinds = list(operand_dtypes), list(operand_kinds)
        self.out_dtype = out_dtype
        #: the node input the first operand is (the reduced array is input 0 of a reduction)
        self.first_input = first_input

    def params(self) -> list[str]:
        params = []
        for i, (dtype, kind) in enumerate(zip(self.operand_dtypes, self.operand_kinds)):
            ct = c_type(dtype)
            params.append(f"const {ct} e{i}" if kind == "value" else
                          f"__global const {ct} *e{i}, long e{i}_off")
        return params

    def args(self) -> list[Operand]:
        return [Operand("value" if kind == "value" else "in", i + self.first_input)
                for i, kind in enumerate(self.operand_kinds)]

    def store(self, value: str, index: str, tag: str) -> list[str]:
        """C lines storing the op of ``value`` at output element ``index`` of ``y``; ``tag``
        keeps the variable names of several stores apart."""
        loads = [f"e{i}" if kind == "value" else f"e{i}[e{i}_off]" if kind == "first" else
                 f"e{i}[e{i}_off + {index}]" for i, kind in enumerate(self.operand_kinds)]
        loads.insert(self.position, f"(({c_type(self.value_dtype)})({value}))")
        dtypes = list(self.operand_dtypes)
        dtypes.insert(self.position, self.value_dtype)
        body, result = scalar_code(self.op, loads, dtypes, self.out_dtype, prefix=f"t{tag}_")
        return ["    {", *body, f"    y[y_off + {index}] = ({c_type(self.out_dtype)}){result};",
                "    }"]


def elemwise_spec(op: s.ScalarOp, input_dtypes: list[str], input_strides: list[tuple],
                  input_is_scalar_arg: list[bool], out_shape: tuple[int, ...],
                  out_dtype: str, out_strides: tuple[int, ...] | None = None) -> KernelSpec:
    """A kernel writing ``op`` of the inputs into an output of ``out_shape``.

    ``input_strides`` are element strides aligned with the output axes (0 where an input is
    broadcast). Inputs flagged in ``input_is_scalar_arg`` are passed by value (host scalars).
    ``out_strides`` writes into a strided view (concatenate, inc_subtensor); by default the
    output is contiguous. Sizes and strides other than 0 and 1 are kernel arguments, so one
    program serves every shape with the same layout pattern.
    """
    size = int(np.prod(out_shape))
    if out_strides is None:
        out_strides = tuple(int(np.prod(out_shape[a + 1:])) for a in range(len(out_shape)))
    arrays = [i for i, by_value in enumerate(input_is_scalar_arg) if not by_value]
    shape, strides = collapse_axes(out_shape, [input_strides[i] for i in arrays]
                                   + [out_strides])
    params, args = [], []
    loads = {}
    coordinate_params, coordinate_args = _coordinate_args(shape)
    for i, (dtype, by_value) in enumerate(zip(input_dtypes, input_is_scalar_arg)):
        ct = c_type(dtype)
        if by_value:
            params.append(f"const {ct} in{i}")
            args.append(Operand("value", i))
            loads[i] = f"in{i}"
        else:
            params.append(f"__global const {ct}* restrict in{i}, const long in{i}_off")
            args.append(Operand("in", i))
            index = _index(f"in{i}", strides[arrays.index(i)], args, params)
            loads[i] = f"in{i}[{index}]"
    params.append(f"__global {c_type(out_dtype)}* restrict out0, const long out0_off")
    args.append(Operand("out", 0))
    out_index = _index("out0", strides[-1], args, params)
    params += ["const long size", *coordinate_params]
    args += [np.int64(size), *coordinate_args]
    body, result = scalar_code(op, [loads[i] for i in range(len(input_dtypes))],
                               input_dtypes, out_dtype)
    source = (
        fp64_pragma(*input_dtypes, out_dtype) + HELPERS
        + f"__kernel void elemwise({', '.join(params)}) {{\n"
        + "    const long gid = get_global_id(0);\n"
        + "    if (gid >= size) return;\n"
        + _coordinates(len(shape))
        + "\n".join(body) + "\n"
        + f"    out0[{out_index}] = ({c_type(out_dtype)}){result};\n}}\n"
    )
    global_size = -(-max(size, 1) // LOCAL_SIZE) * LOCAL_SIZE
    return KernelSpec(source, "elemwise", (global_size,), (LOCAL_SIZE,), args)


def _coordinate_args(shape) -> tuple[list[str], list]:
    """Sizes of all axes but the first, as kernel arguments."""
    return ([f"const long n{a}" for a in range(1, len(shape))],
            [np.int64(n) for n in shape[1:]])


def _coordinates(ndim: int) -> str:
    """C computing coordinates c0..c{ndim-1} of element ``gid`` (C order)."""
    if ndim == 0:
        return ""
    if ndim == 1:
        return "    const long c0 = gid;\n"
    lines = ["    long rest = gid;"]
    for a in range(ndim - 1, 0, -1):
        lines.append(f"    const long c{a} = rest % n{a}; rest /= n{a};")
    lines.append("    const long c0 = rest;")
    return "\n".join(lines) + "\n"


def epilogue_expression(op: s.ScalarOp, dtype: str, names=None) -> str:
    """An OpenCL C expression in ``v`` (input 0 of ``op``, a ``Composite`` or a plain scalar op)
    and ``e0, e1, ...`` (its other inputs), or in ``names`` when given, valid for scalars and
    vectors of ``dtype`` (the GEMM kernels apply it to vectors): no casts, literals that widen,
    ``?:`` with component-wise conditions (comparisons give 1 or 0)."""
    values = list(names) if names is not None else ["v"] + [f"e{j}" for j in range(op.nin - 1)]
    suffix = "f" if dtype == "float32" else ""
    for step, _ in _steps(op, [dtype] * op.nin, dtype):
        if step[0] == "const":
            values.append(f"({c_literal(step[1], dtype)})")
            continue
        op, refs = step
        args = [values[r] for r in refs]
        a = args[0]
        b = args[1] if len(args) > 1 else None
        zero, one = f"(0x0p+0{suffix})", f"(0x1p+0{suffix})"
        expr = {
            "add": f"({a} + {b})", "sub": f"({a} - {b})", "mul": f"({a} * {b})",
            "true_div": f"({a} / {b})", "neg": f"(-{a})", "square": f"({a} * {a})",
            "exp": f"exp({a})", "log": f"log({a})", "tanh": f"tanh({a})", "sqrt": f"sqrt({a})",
            "sigmoid": f"({one} / ({one} + exp(-{a})))", "identity": a,
            "relu": f"({a} > {zero} ? {a} : {zero})",
            "maximum": f"({a} >= {b} ? {a} : {b})", "minimum": f"({a} <= {b} ? {a} : {b})",
            **{name: f"({a} {symbol} {b} ? {one} : {zero})" for name, symbol in
               (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="))},
        }.get(op.name)
        if expr is None:
            raise NotImplementedError(f"scalar op {op.name} is not available in GEMM epilogues")
        values.append(expr)
    return values[-1]
