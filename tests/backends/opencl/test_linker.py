"""The OpenCL linker against the NumPy reference: fused elementwise kernels on random graphs,
views (transpose, slices with symbolic bounds, reshape), matrix products, updates and shared
state, plans per shape signature."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygraph as tg
from tinygraph.testing import strategies as tgs

pytest.importorskip("pyopencl")


def both(inputs, outputs, **kwargs):
    return (tg.function(inputs, outputs, device="numpy", **kwargs),
            tg.function(inputs, outputs, device="opencl", **kwargs))


@settings(deadline=None)
@given(tgs.elementwise_graphs(dtype="float32"))
def test_random_elementwise_graphs_match_numpy(graph):
    reference, opencl = both(graph.inputs, graph.output)
    np.testing.assert_allclose(opencl(*graph.values), reference(*graph.values),
                               rtol=2e-5, atol=2e-5)


@settings(deadline=None)
@given(tgs.elementwise_graphs(dtype="float64"))
def test_random_elementwise_graphs_float64(graph):
    reference, opencl = both(graph.inputs, graph.output)
    np.testing.assert_allclose(opencl(*graph.values), reference(*graph.values), rtol=1e-12,
                               atol=1e-12)


def test_integer_bool_and_mixed_dtypes():
    a, b = tg.imatrix("a"), tg.lvector("b")
    c = tg.bmatrix("c")
    outs = [a // 3, a % -4, (a * b) // 2, tg.switch(c, a, -a), c & (a > 0), a / 2,
            tg.abs(a), tg.sign(-a), a.astype("float32") * 0.5]
    reference, opencl = both([a, b, c], outs)
    rng = np.random.default_rng(0)
    values = [rng.integers(-9, 9, (3, 4)).astype("int32"), rng.integers(-5, 5, 4),
              rng.random((3, 4)) > 0.5]
    for got, want in zip(opencl(*values), reference(*values)):
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)


def test_math_functions_and_special_values():
    x = tg.vector("x")
    outs = [tg.exp(x), tg.log(x), tg.sqrt(x), tg.maximum(x, 0.5), tg.minimum(x, 0.5),
            tg.relu(x - 1), tg.clip(x, 0.2, 2.0), tg.floor(x), tg.ceil(x), tg.round(x),
            tg.softplus(x), tg.sigmoid(-x), tg.tanh(x), x ** 1.5, tg.log1p(x), tg.expm1(x)]
    reference, opencl = both([x], outs)
    value = np.array([0.0, 0.5, 1.5, 2.5, 3.7, np.nan, np.inf], dtype="float32")
    for got, want in zip(opencl(value), reference(value)):
        np.testing.assert_allclose(got, want, rtol=3e-6, equal_nan=True)


@pytest.mark.parametrize("transpose_a,transpose_b", [(False, False), (True, False),
                                                     (False, True), (True, True)])
def test_dot_with_transposed_views(transpose_a, transpose_b):
    a, b = tg.matrix("a"), tg.matrix("b")
    left = a.T if transpose_a else a
    right = b.T if transpose_b else b
    reference, opencl = both([a, b], left @ right)
    rng = np.random.default_rng(1)
    va = rng.normal(size=(7, 5) if transpose_a else (5, 7)).astype("float32")
    vb = rng.normal(size=(3, 7) if transpose_b else (7, 3)).astype("float32")
    np.testing.assert_allclose(opencl(va, vb), reference(va, vb), rtol=1e-5, atol=1e-5)


def test_dot_vector_cases_and_float64():
    m, v = tg.dmatrix("m"), tg.dvector("v")
    reference, opencl = both([m, v], [m @ v, v @ m.T, v @ v, tg.outer(v, v)])
    rng = np.random.default_rng(2)
    vm, vv = rng.normal(size=(4, 6)), rng.normal(size=6)
    for got, want in zip(opencl(vm, vv), reference(vm, vv)):
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_givens_slices_are_offsets_and_updates_apply():
    rng = np.random.default_rng(3)
    data = rng.normal(size=(40, 6)).astype("float32")
    results = {}
    for device in ("numpy", "opencl"):
        shared_data = tg.shared(data)
        w = tg.shared(np.ones((6, 2), "float32"), name="w")
        x, i = tg.matrix("x"), tg.lscalar("i")
        out = tg.tanh(x @ w)
        step = tg.function([i], out.sum(), updates={w: w - 0.01 * tg.grad(out.sum(), w)},
                           givens={x: shared_data[i * 8:(i + 1) * 8]}, device=device)
        sums = [float(step(j)) for j in (0, 3, 1, 4, 2)]
        results[device] = sums, w.get_value()
    np.testing.assert_allclose(results["opencl"][0], results["numpy"][0], rtol=1e-5)
    np.testing.assert_allclose(results["opencl"][1], results["numpy"][1], rtol=1e-5)


def test_updates_use_old_values_and_swap():
    a = tg.shared(np.arange(3, dtype="float32"), name="a")
    b = tg.shared(np.arange(3, 6, dtype="float32"), name="b")
    swap = tg.function([], [a + b], updates=[(a, b), (b, a)], device="opencl")
    (total,) = swap()
    np.testing.assert_array_equal(total, [3, 5, 7])
    np.testing.assert_array_equal(a.get_value(), [3, 4, 5])
    np.testing.assert_array_equal(b.get_value(), [0, 1, 2])
    a.set_value(np.zeros(3, "float32"))
    swap()
    np.testing.assert_array_equal(b.get_value(), [0, 0, 0])


def test_reshape_concatenate_inc_subtensor_alloc():
    x = tg.matrix("x")
    n = tg.lscalar("n")
    outs = [x.T.reshape((-1,)), tg.concatenate([x, x * 2], axis=1), tg.stack([x, x], axis=0),
            tg.inc_subtensor(x[1:, ::2], 10.0), tg.set_subtensor(x[:, 0], -1.0),
            tg.zeros((n, 2)) + 3.0, x[::-1, 1:]]
    reference, opencl = both([x, n], outs)
    value = np.arange(12, dtype="float32").reshape(3, 4)
    for got, want in zip(opencl(value, 2), reference(value, 2)):
        np.testing.assert_array_equal(got, want)


@settings(deadline=None, max_examples=10)
@given(st.integers(1, 7), st.integers(1, 7))
def test_new_shapes_get_new_plans(rows, cols):
    x = tg.matrix("x")
    f = tg.function([x], tg.sigmoid(x) * 2.0, device="opencl")
    value = np.linspace(-1, 1, rows * cols, dtype="float32").reshape(rows, cols)
    np.testing.assert_allclose(f(value), 2 / (1 + np.exp(-value)), rtol=1e-6)


def test_runtime_shape_error_names_op_and_shapes():
    a, b = tg.matrix("a"), tg.matrix("b")
    f = tg.function([a, b], a @ b, device="opencl")
    with pytest.raises(ValueError, match=r"Dot.*\(2, 3\).*\(4, 5\)|not aligned"):
        f(np.zeros((2, 3), "float32"), np.zeros((4, 5), "float32"))


def test_kernels_source_shows_generated_code():
    x = tg.vector("x")
    f = tg.function([x], tg.exp(x) + 1.0, device="opencl")
    f(np.zeros(3, "float32"))
    assert "__kernel" in f.kernels_source() and "exp(" in f.kernels_source()


def test_sgd_update_runs_as_one_in_place_product():
    rng = np.random.default_rng(4)
    data = rng.normal(size=(30, 8)).astype("float32")
    labels = rng.integers(0, 3, 30).astype("int32")
    results = {}
    for device in ("numpy", "opencl"):
        w = tg.shared(rng.normal(size=(8, 3)).astype("float32") * 0 + 0.1, name="w")
        x, y, i = tg.matrix("x"), tg.ivector("y"), tg.lscalar("i")
        p = tg.softmax(x @ w)
        cost = -tg.mean(tg.log(p)[tg.arange(y.shape[0]), y]) + 0.05 * tg.sum(w ** 2)
        step = tg.function([i], cost, updates={w: w - 0.5 * tg.grad(cost, w)},
                           givens={x: tg.shared(data)[i * 10:(i + 1) * 10],
                                   y: tg.shared(labels)[i * 10:(i + 1) * 10]},
                           device=device)
        costs = [float(step(j % 3)) for j in range(6)]
        results[device] = costs, w.get_value(), step
    np.testing.assert_allclose(results["opencl"][0], results["numpy"][0], rtol=1e-5)
    np.testing.assert_allclose(results["opencl"][1], results["numpy"][1], rtol=1e-5, atol=1e-6)
    source = results["opencl"][2].kernels_source()
    assert "Gemm in place" in source


def _run_updates(device, make_updates, outputs=()):
    a = tg.shared(np.arange(4, dtype="float32"), name="a")
    b = tg.shared(np.full(4, 10, dtype="float32"), name="b")
    x = tg.vector("x")
    fn = tg.function([x], list(outputs), updates=make_updates(a, b, x), device=device)
    for value in (np.ones(4, "float32"), np.full(4, 2, "float32")):
        fn(value)
    return a.get_value(), b.get_value(), fn


@pytest.mark.parametrize("name, make_updates, in_place", [
    ("independent", lambda a, b, x: {a: a - 0.5 * x, b: b * 2.0 + x}, 2),
    ("swap reads", lambda a, b, x: {a: a + b * x, b: b - a}, 0),
    ("one reads the other", lambda a, b, x: {a: a * x, b: b + a}, 1),
])
def test_elementwise_updates_run_in_place_only_when_safe(name, make_updates, in_place):
    want_a, want_b, _ = _run_updates("numpy", make_updates)
    got_a, got_b, fn = _run_updates("opencl", make_updates)
    np.testing.assert_array_equal(got_a, want_a)
    np.testing.assert_array_equal(got_b, want_b)
    assert fn.kernels_source().count(" in place */") == in_place


def test_a_product_reading_the_weights_it_updates_is_not_computed_in_place():
    rng = np.random.default_rng(0)
    start = rng.normal(size=(64, 64)).astype("float32")
    scale = rng.normal(size=(64, 64)).astype("float32") * 0.01
    results = {}
    for device in ("numpy", "opencl"):
        w, b = tg.shared(start, name="w"), tg.shared(scale, name="b")
        fn = tg.function([], [], updates={w: w - 0.1 * (w @ b)}, device=device)
        fn()
        results[device] = w.get_value(), fn
    np.testing.assert_allclose(results["opencl"][0], results["numpy"][0], rtol=1e-6,
                               atol=1e-6)
    assert "Gemm in place" not in results["opencl"][1].kernels_source()


def test_an_update_value_that_is_also_an_output_is_not_computed_in_place():
    a = tg.shared(np.arange(3, dtype="float32"), name="a")
    new_a = a * 2.0
    fn = tg.function([], new_a, updates={a: new_a}, device="opencl")
    np.testing.assert_array_equal(fn(), [0, 2, 4])
    np.testing.assert_array_equal(fn(), [0, 4, 8])
    assert " in place */" not in fn.kernels_source()


def _reduce_epilogues(fn) -> int:
    from tinygraph.graph import toposort
    from tinygraph.ops.reduce_epilogue import ReduceEpilogue

    targets = list(fn.outputs) + [value for _, value in fn.updates]
    return sum(isinstance(n.op, ReduceEpilogue) for n in toposort(targets))


@pytest.mark.parametrize("name, build, fused", [
    ("bias step", lambda x, b, t: {b: b - 0.1 * tg.sum(x, axis=0)}, 1),
    ("running total", lambda x, b, t: {t: t + tg.cast(tg.mean(x ** 2), "float64")}, 1),
    ("max, scaled", lambda x, b, t: {b: tg.max(x, axis=0) * 2.0 + b * b}, 1),
    ("both", lambda x, b, t: {b: b - tg.sum(x, axis=0), t: t + tg.cast(tg.sum(x), "float64")},
     2),
    ("broadcast result", lambda x, b, t: {b: b - tg.sum(x)}, 1),  # runs as two kernels
    ("reduces a product of its target",
     lambda x, b, t: {b: b - tg.sum(tg.outer(b, b), axis=0)}, 1),
])
def test_reductions_store_through_their_elementwise_consumer(name, build, fused):
    rng = np.random.default_rng(6)
    values = [rng.normal(size=(7, 37)).astype("float32") for _ in range(3)]
    results = {}
    for device in ("numpy", "opencl"):
        b = tg.shared(np.linspace(-1, 1, 37).astype("float32"), name="b")
        t = tg.shared(np.ones(1), name="t")
        x = tg.matrix("x")
        fn = tg.function([x], [], updates=build(x, b, t), device=device,
                         on_unused_input="ignore")
        for value in values:
            fn(value)
        results[device] = b.get_value(), t.get_value(), fn
    for got, want in zip(results["opencl"][:2], results["numpy"][:2]):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)  # float32 sums of 259
    assert _reduce_epilogues(results["opencl"][2]) == fused


@pytest.mark.parametrize("activation", ["sigmoid", "relu", "tanh", "linear", "scaled"])
@pytest.mark.parametrize("transpose", [False, True])
def test_bias_and_activation_fuse_into_the_product(activation, transpose):
    rng = np.random.default_rng(5)
    x = tg.matrix("x")
    w = tg.shared(rng.normal(size=(6, 9)).astype("float32"), name="w")
    b = tg.shared(rng.normal(size=9).astype("float32"), name="b")
    pre = (x.T if transpose else x) @ w + b
    out = {"sigmoid": tg.sigmoid(pre), "relu": tg.relu(pre), "tanh": tg.tanh(pre),
           "linear": pre, "scaled": tg.maximum(pre, 0.0) * 0.5 - 1.0}[activation]
    reference, opencl = both([x], out)
    value = rng.normal(size=(6, 7) if transpose else (7, 6)).astype("float32")
    np.testing.assert_allclose(opencl(value), reference(value), rtol=1e-5, atol=1e-6)
    assert "DotEpilogue" in opencl.kernels_source()


def test_scalar_shared_updated_from_a_device_value():
    total = tg.shared(np.zeros((), "float64"), name="total")
    x = tg.vector("x")
    add = tg.function([x], None, updates=[(total, total + tg.cast(tg.sum(x * x), "float64"))],
                      device="opencl")
    add(np.array([1.0, 2.0], "float32"))
    add(np.array([1.0], "float32"))
    assert total.get_value() == 6.0


def test_one_row_batch_gradient_with_fused_epilogue():
    x = tg.tensor("float64", broadcastable=(True, False), name="x")
    w = tg.shared(np.linspace(-1, 1, 12).reshape(4, 3), name="w")
    b = tg.shared(np.zeros(3), name="b")
    grads = tg.grad(tg.sum(tg.tanh(x @ w + b)), [w, b])
    reference, opencl = both([x], grads)
    value = np.array([[0.5, -0.2, 0.1, 0.3]])
    for got, want in zip(opencl(value), reference(value)):
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_fewer_labels_than_rows_in_the_fused_crossentropy():
    x, y = tg.matrix("x"), tg.ivector("y")
    w = tg.shared(np.zeros((2, 2), "float32"), name="w")
    p = tg.softmax(x @ w)
    cost = -tg.mean(tg.log(p)[tg.arange(y.shape[0]), y])
    reference, opencl = both([x, y], [cost, tg.grad(cost, w)])
    values = (np.eye(2, dtype="float32"), np.array([1], "int32"))
    for got, want in zip(opencl(*values), reference(*values)):
        np.testing.assert_allclose(got, want, rtol=1e-6)


def test_errors_of_calls_without_outputs_surface_at_sync():
    data = tg.shared(np.arange(12, dtype="float32").reshape(6, 2))
    total = tg.shared(np.zeros(2, "float32"))
    idx = tg.lvector("idx")
    accumulate = tg.function([idx], [], updates={total: total + data[idx].sum(axis=0)},
                             device="opencl")
    accumulate(np.array([0, 1]))
    accumulate.sync()
    np.testing.assert_array_equal(total.get_value(), [2, 4])
    accumulate(np.array([0, 9]))
    with pytest.raises(IndexError, match="index 9 is out of bounds"):
        accumulate.sync()
    accumulate(np.array([2, 10]))
    accumulate(np.array([0, 1]))  # returns at once: the device has not been waited for
    with pytest.raises(IndexError, match="AdvancedSubtensor.*out of range in a call of"):
        accumulate.sync()  # the bad call was not the last: no NumPy re-check is possible
    accumulate.sync()  # the flags were cleared


def test_calls_reuse_the_host_pass_until_a_shared_value_changes(monkeypatch):
    """A call with no host-valued inputs and no random streams reuses the last call's host
    pass (shapes, host scalars), until a shared value is set or an input changes shape."""
    scale = tg.shared(np.float32(2.0), name="scale")
    v = tg.shared(np.arange(4, dtype="float32"), name="v")
    x = tg.matrix("x")
    fn = tg.function([x], x.sum(axis=0) * scale + v.shape[0], device="opencl")
    program = fn._program
    passes = []
    host_pass = program._host_pass
    monkeypatch.setattr(program, "_host_pass", lambda values: passes.append(1) or
                        host_pass(values))
    data = np.ones((3, 4), "float32")
    for _ in range(3):
        np.testing.assert_allclose(fn(data), [10.0] * 4)
    assert len(passes) == 1
    borrowed = np.array(3.0, "float32")
    scale.set_value(borrowed, borrow=True)
    np.testing.assert_allclose(fn(data), [13.0] * 4)
    borrowed[...] = 5.0  # changed in place: only a new set_value makes it visible, as on NumPy
    scale.set_value(borrowed, borrow=True)
    np.testing.assert_allclose(fn(data), [19.0] * 4)
    np.testing.assert_allclose(fn(np.ones((2, 4), "float32")), [14.0] * 4)
    v.set_value(np.zeros(4, "float32"))
    np.testing.assert_allclose(fn(data), [19.0] * 4)
    assert len(passes) == 5


def test_host_valued_inputs_and_random_streams_run_the_host_pass_every_call():
    n = tg.lscalar("n")
    fn = tg.function([n], tg.arange(n).sum(), device="opencl")
    assert [int(fn(k)) for k in (3, 4, 3)] == [3, 6, 3]
    streams = tg.RandomStreams(seed=3)
    draw = tg.function([], streams.uniform((5,)), device="opencl")
    first, second = draw(), draw()
    assert not np.array_equal(first, second)


def _dot_epilogues(fn):
    return [node.op for node in fn._program.nodes if type(node.op).__name__ == "DotEpilogue"]


@pytest.mark.parametrize(("name", "build", "extras"), [
    ("sigmoid", lambda p, h, m: p * h * (1 - h), 1),
    ("relu", lambda p, h, m: p * (h > 0), 1),
    ("dropout relu", lambda p, h, m: p * 2.0 * m * (h > 0), 2),
    ("extra used twice", lambda p, h, m: p * h + h * h, 1),
])
def test_backward_products_read_activations_in_their_epilogue(name, build, extras):
    """``(g @ W.T) * f(h)``, a layer's backward pass, runs as one product whose epilogue reads
    h (and a dropout mask) at the positions it stores."""
    rng = np.random.default_rng(7)
    g, h, mask = tg.matrix("g"), tg.matrix("h"), tg.matrix("mask")
    w = tg.shared(rng.normal(size=(37, 11)).astype("float32"), name="w")
    out = build(g @ w.T, h, mask)
    inputs = [g, h, mask] if extras == 2 else [g, h]
    reference, opencl = both(inputs, out, on_unused_input="ignore")
    values = [rng.normal(size=(9, 11)).astype("float32")] + [
        rng.normal(size=(9, 37)).astype("float32") for _ in inputs[1:]]
    np.testing.assert_allclose(opencl(*values), reference(*values), rtol=1e-5, atol=1e-5)
    (op,) = _dot_epilogues(opencl)
    assert op.n_extra == extras and not op.has_bias
    assert not [node for node in opencl._program.nodes if type(node.op).__name__ == "Elemwise"]


def test_bias_activation_and_an_extra_operand_in_one_epilogue():
    rng = np.random.default_rng(8)
    x, e = tg.matrix("x"), tg.matrix("e")
    w = tg.shared(rng.normal(size=(20, 40)).astype("float32"), name="w")
    b = tg.shared(rng.normal(size=40).astype("float32"), name="b")
    reference, opencl = both([x, e], tg.sigmoid(x @ w + b) * e - e)
    values = [rng.normal(size=(5, 20)).astype("float32"), rng.normal(size=(5, 40)).astype(
        "float32")]
    np.testing.assert_allclose(opencl(*values), reference(*values), rtol=1e-5, atol=1e-6)
    (op,) = _dot_epilogues(opencl)
    assert op.has_bias and op.n_extra == 1


def test_comparisons_that_do_not_scale_a_float_stay_out_of_the_product():
    """A comparison is 1 or 0 inside the product's epilogue, which is only right where it
    multiplies a float: bool + bool (logical or) keeps its own kernel."""
    g, h = tg.matrix("g"), tg.matrix("h")
    w = tg.shared(np.eye(3, dtype="float32"), name="w")
    out = (g @ w) * ((h > 0) + (h > 1))
    reference, opencl = both([g, h], out)
    values = [np.ones((2, 3), "float32"), np.full((2, 3), 2.0, "float32")]
    np.testing.assert_allclose(opencl(*values), reference(*values))
    assert not _dot_epilogues(opencl)


def test_an_extra_operand_of_another_shape_is_an_error_naming_the_shapes():
    g, h = tg.matrix("g"), tg.matrix("h")
    w = tg.shared(np.eye(3, dtype="float32"), name="w")
    reference, opencl = both([g, h], (g @ w) * h)
    values = [np.ones((2, 3), "float32"), np.ones((4, 3), "float32")]
    for fn in (reference, opencl):
        with pytest.raises(ValueError, match=r"\(2, 3\).*\(4, 3\)|\(4, 3\).*\(2, 3\)"):
            fn(*values)


def _sgd_layer(batch_rows, in_place=True, lmbda=0.0):
    """One dense layer's SGD updates on a given gradient: W - eta * (h.T @ d) (with L2
    decay) and b - eta * sum(d, 0)."""
    rng = np.random.default_rng(batch_rows)
    h, d = tg.matrix("h"), tg.matrix("d")
    w = tg.shared(rng.normal(size=(37, 45)).astype("float32"), name="w")
    b = tg.shared(rng.normal(size=45).astype("float32"), name="b")
    new_w = w - 0.1 * (h.T @ d) - lmbda * w
    new_b = b - 0.1 * tg.sum(d, axis=0)
    values = [rng.normal(size=(batch_rows, 37)).astype("float32"),
              rng.normal(size=(batch_rows, 45)).astype("float32")]
    return [h, d], (w, new_w), (b, new_b), values


@pytest.mark.parametrize("batch_rows", [10, 256, 0])
def test_a_layers_weight_and_bias_updates_run_as_one_product(batch_rows):
    results = {}
    for device in ("numpy", "opencl"):
        inputs, (w, new_w), (b, new_b), values = _sgd_layer(batch_rows, lmbda=0.01)
        fn = tg.function(inputs, [], updates=[(w, new_w), (b, new_b)], device=device)
        for _ in range(3):
            fn(*values)
        results[device] = w.get_value(), b.get_value(), fn
    for got, want in zip(results["opencl"][:2], results["numpy"][:2]):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    source = results["opencl"][2].kernels_source()
    if batch_rows:
        assert source.count("/* GemmColumnSums") == 1 and source.count(" in place */") == 1
    else:
        assert "GemmColumnSums" in source and "NumPy on the host" in source


def test_a_fused_bias_update_that_is_also_an_output_is_not_written_in_place():
    """The output must be the new bias, read after the call: the fused product stores it in
    a buffer of its own and the update copies it into the bias."""
    inputs, (w, new_w), (b, new_b), values = _sgd_layer(10)
    reference = tg.function(inputs, new_b, device="numpy", on_unused_input="ignore")
    fn = tg.function(inputs, new_b, updates=[(w, new_w), (b, new_b)], device="opencl")
    expected = reference(*values)
    np.testing.assert_allclose(fn(*values), expected, rtol=1e-5)
    np.testing.assert_allclose(b.get_value(), expected, rtol=1e-5)
    assert "/* GemmColumnSums" in fn.kernels_source()
    assert " in place */" in fn.kernels_source()  # the weights


def _cost_total_step(rows, total_shape=(1,), labels=None):
    """A softmax layer's SGD step that also adds the minibatch's mean cost to a total."""
    rng = np.random.default_rng(rows)
    x, y = tg.matrix("x"), tg.ivector("y")
    w = tg.shared(rng.normal(size=(6, 4)).astype("float32"), name="w")
    total = tg.shared(np.zeros(total_shape, "float64"), name="total")
    cost = -tg.mean(tg.log(tg.softmax(x @ w))[tg.arange(y.shape[0]), y])
    updates = [(w, w - 0.1 * tg.grad(cost, w)), (total, total + tg.cast(cost, "float64"))]
    values = (rng.normal(size=(rows, 6)).astype("float32"),
              rng.integers(0, 4, rows if labels is None else labels).astype("int32"))
    return [x, y], updates, (w, total), values


@pytest.mark.parametrize(("rows", "total_shape", "labels"),
                         [(10, (1,), None), (300, (1,), None), (7, (), 5), (9, (3,), None)])
def test_the_cost_total_is_summed_by_the_crossentropy_kernel(rows, total_shape, labels):
    """One kernel computes the crossentropy gradient and adds the mean cost to the total, in
    place; a total of several elements (the mean broadcast) takes two kernels."""
    results = {}
    for device in ("numpy", "opencl"):
        inputs, updates, shared, values = _cost_total_step(rows, total_shape, labels)
        fn = tg.function(inputs, [], updates=updates, device=device, name="step")
        for _ in range(3):
            fn(*values)
        results[device] = [v.get_value() for v in shared], fn
    for got, want in zip(results["opencl"][0], results["numpy"][0]):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    fn = results["opencl"][1]
    fused = total_shape != (3,)
    assert ("tg_crossentropy_total" in fn.kernels_source()) == fused
    (plan,) = fn._program._plans.values()
    copies = [launch.label for launch in plan.update_copies]
    assert copies == ([] if fused else ["update total"])  # in place, or copied into the total


def test_a_bad_label_in_the_fused_cost_total_raises_the_crossentropy_error():
    inputs, updates, _, (x, y) = _cost_total_step(10)
    fn = tg.function(inputs, [], updates=updates, device="opencl", name="step")
    y[3] = 9
    fn(x, y)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 4\), got values from 0 to 9"):
        fn.sync()


def _counter_walk(rows: int, width: int):
    """(function, step, data, table): each call gathers ``rows`` rows of ``data`` (``width``
    columns) by the table row ``step`` selects, and advances ``step``."""
    rng = np.random.default_rng(3)
    table = tg.shared(rng.permutation(4 * rows).reshape(4, rows), name="table")
    step = tg.shared(np.zeros(1, "int64"), name="step")
    data = tg.shared(rng.normal(size=(4 * rows, width)).astype("float32"), name="data")
    gathered = data[tg.reshape(table[step], (rows,))]
    fn = tg.function([], gathered * 2.0, updates=[(step, step + 1)], device="opencl",
                     name="walk", profile=True)
    return fn, step, data.get_value(), table.get_value()


@pytest.mark.parametrize("rows, width, in_place", [(16, 8, True), (300, 784, False)])
def test_the_gather_advances_the_step_counter(rows, width, in_place):
    """The gather kernel writes step + 1 over the counter when it runs as one work-group (a
    small gather), else into an array the call then copies over it; either way each call
    gathers the rows the counter selected before it."""
    fn, step, data, table = _counter_walk(rows, width)
    for i in range(3):
        np.testing.assert_array_equal(fn(), data[table[i]] * 2.0)
    assert step.get_value()[0] == 3
    labels = [label for label, *_ in fn.profile.rows()]
    assert sum(label.startswith("TakeRows{table[selector] as") and "selector + 1" in label
               for label in labels) == 1, labels
    assert not any(label.startswith("Elemwise{add}") for label in labels), labels
    assert any(label == "update step" for label in labels) == (not in_place), labels


def test_an_error_says_which_values_the_call_had_updated_in_place():
    """A step counter out of the table's range is reported after the call incremented it in
    place: the error names the counter as shown after the update."""
    table = tg.shared(np.zeros((3, 2), "int64"), name="table")
    step = tg.shared(np.zeros(1, "int64"), name="step")
    data = tg.shared(np.arange(8.0, dtype="float32").reshape(4, 2), name="data")
    total = tg.shared(np.zeros((), "float32"), name="total")
    rows = tg.reshape(table[step], (2,))
    fn = tg.function([], [], updates=[(step, step + 1), (total, total + tg.sum(data[rows]))],
                     device="opencl", name="walk")
    for _ in range(3):
        fn()
    with pytest.raises(IndexError, match=r"index 4 is out of bounds") as info:
        fn()  # step 3 is out of the table's 3 rows (total, a host scalar, makes the call wait)
    assert "note: step shown as updated by the call (in place)" in str(info.value)
