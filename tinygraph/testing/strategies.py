"""Hypothesis strategies for tinygraph: dtypes, shapes, arrays in safe ranges per op, and
random elementwise expression graphs with a NumPy evaluator to compare against."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

FLOAT_DTYPES = ("float32", "float64")
ALL_DTYPES = ("float32", "float64", "int32", "int64", "bool", "uint8")

#: value ranges where each kind of op is smooth and well conditioned
DOMAINS = {
    "real": (-3.0, 3.0),
    "positive": (0.1, 3.0),
    "unit": (0.05, 0.95),
    "large": (-1e4, 1e4),
}


def dtypes(floats_only: bool = False) -> st.SearchStrategy[str]:
    return st.sampled_from(FLOAT_DTYPES if floats_only else ALL_DTYPES)


def shapes(min_dims: int = 0, max_dims: int = 3, min_side: int = 1,
           max_side: int = 5) -> st.SearchStrategy[tuple[int, ...]]:
    """Array shapes, size-1 axes included."""
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side,
                            max_side=max_side)


@st.composite
def broadcastable_shapes(draw, shape: tuple[int, ...]) -> tuple[int, ...]:
    """A shape that broadcasts against ``shape``: some axes set to 1, leading axes dropped."""
    drop = draw(st.integers(0, len(shape)))
    return tuple(1 if draw(st.booleans()) else s for s in shape[drop:])


def arrays(dtype: str, shape, domain: str = "real") -> st.SearchStrategy[np.ndarray]:
    """Arrays of ``dtype`` and ``shape`` (a tuple or a strategy) with values in ``domain``."""
    if dtype == "bool":
        return hnp.arrays(dtype, shape, elements=st.booleans())
    low, high = DOMAINS[domain]
    if dtype in FLOAT_DTYPES:
        width = 32 if dtype == "float32" else 64
        if width == 32:  # hypothesis needs bounds exactly representable in float32
            low, high = _float32_inside(low, high)
        elements = st.floats(low, high, width=width, allow_nan=False, allow_infinity=False)
    else:
        info = np.iinfo(dtype)
        int_low = max(int(np.ceil(low)), info.min)
        int_high = min(int(np.floor(high)), info.max)
        if int_low > int_high:
            raise ValueError(f"arrays: the domain {domain!r} ({low}, {high}) contains no "
                             f"values of dtype {dtype}")
        elements = st.integers(int_low, int_high)
    return hnp.arrays(dtype, shape, elements=elements)


def _float32_inside(low: float, high: float) -> tuple[float, float]:
    """The closest float32 values inside ``[low, high]``."""
    low32, high32 = np.float32(low), np.float32(high)
    if low32 < low:
        low32 = np.nextafter(low32, np.float32(np.inf))
    if high32 > high:
        high32 = np.nextafter(high32, np.float32(-np.inf))
    return float(low32), float(high32)


@dataclass
class ElementwiseGraph:
    """A random elementwise expression: symbolic inputs and output, input values, and a
    NumPy function computing the same thing."""

    inputs: list
    output: object
    values: list
    numpy_fn: object


_UNARY = {
    "exp": (lambda t, x: t.exp(x * 0.5), lambda x: np.exp(x * 0.5)),
    "tanh": (lambda t, x: t.tanh(x), np.tanh),
    "sigmoid": (lambda t, x: t.sigmoid(x), lambda x: 1 / (1 + np.exp(-x))),
    "square": (lambda t, x: t.square(x), np.square),
    "neg": (lambda t, x: -x, np.negative),
    "softplus": (lambda t, x: t.softplus(x), lambda x: np.log1p(np.exp(-abs(x))) +
                 np.maximum(x, 0)),
    "log1p_sq": (lambda t, x: t.log1p(x * x), lambda x: np.log1p(x * x)),
    "sin": (lambda t, x: t.sin(x), np.sin),
}
_BINARY = {
    "add": (lambda t, x, y: x + y, np.add),
    "sub": (lambda t, x, y: x - y, np.subtract),
    "mul": (lambda t, x, y: x * y, np.multiply),
    "maximum": (lambda t, x, y: t.maximum(x, y), np.maximum),
    "div": (lambda t, x, y: x / (1.5 + t.tanh(y)), lambda x, y: x / (1.5 + np.tanh(y))),
}


@st.composite
def elementwise_graphs(draw, dtype: str = "float64", max_inputs: int = 3,
                       max_ops: int = 6) -> ElementwiseGraph:
    """A random expression of smooth elementwise ops over 1-3 broadcasting inputs."""
    import tinygraph as tg

    shape = draw(shapes(min_dims=1, max_dims=3, max_side=4))
    n_inputs = draw(st.integers(1, max_inputs))
    input_shapes = [shape] + [draw(broadcastable_shapes(shape)) for _ in range(n_inputs - 1)]
    inputs = [tg.tensor(dtype, broadcastable=tuple(s == 1 for s in shp), name=f"x{i}")
              for i, shp in enumerate(input_shapes)]
    values = [draw(arrays(dtype, shp)) for shp in input_shapes]
    symbolic = list(inputs)
    numeric = [lambda vals, i=i: vals[i] for i in range(n_inputs)]
    for _ in range(draw(st.integers(1, max_ops))):
        if draw(st.booleans()):
            name = draw(st.sampled_from(sorted(_UNARY)))
            sym, num = _UNARY[name]
            k = draw(st.integers(0, len(symbolic) - 1))
            symbolic.append(sym(tg, symbolic[k]))
            numeric.append(lambda vals, f=num, a=numeric[k]: f(a(vals)))
        else:
            name = draw(st.sampled_from(sorted(_BINARY)))
            sym, num = _BINARY[name]
            k = draw(st.integers(0, len(symbolic) - 1))
            m = draw(st.integers(0, len(symbolic) - 1))
            symbolic.append(sym(tg, symbolic[k], symbolic[m]))
            numeric.append(lambda vals, f=num, a=numeric[k], b=numeric[m]: f(a(vals), b(vals)))
    output = symbolic[-1]
    for var in symbolic[:n_inputs]:
        output = output + 0 * var
    final = numeric[-1]

    def numpy_fn(*vals):
        result = final(list(vals))
        for v in vals:
            result = result + 0 * v
        return result

    return ElementwiseGraph(inputs, output, values, numpy_fn)
