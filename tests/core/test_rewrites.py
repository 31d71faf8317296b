"""Graph rewrites: they keep values (property tests against rewrite=False), and each rewrite
does what it claims in the compiled graph (merge, constant folding, canonicalisation,
stabilisation)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygraph as tg
from tinygraph.graph import Constant, toposort
from tinygraph.ops.blas import Dot
from tinygraph.ops.elemwise import Elemwise
from tinygraph.ops.nnet import (
    CrossentropySoftmax,
    CrossentropySoftmaxGrad,
    CrossentropySoftmaxWithGrad,
    LogSoftmax,
    Softmax,
)
from tinygraph.rewrite import RewritePass, optimize
from tinygraph.testing import strategies as tgs


def op_types(fn):
    """The op classes in a compiled function's graph (outputs and updates)."""
    targets = list(fn.outputs) + [value for _, value in fn.updates]
    return [type(node.op) for node in toposort(targets)]


def count(fn, op_type):
    return op_types(fn).count(op_type)


@given(graph=tgs.elementwise_graphs())
def test_rewritten_elementwise_graphs_keep_their_values(compile_fn, graph):
    optimised = compile_fn(graph.inputs, graph.output)(*graph.values)
    plain = compile_fn(graph.inputs, graph.output, rewrite=False)(*graph.values)
    want = graph.numpy_fn(*graph.values)
    assert optimised.dtype == plain.dtype == np.dtype(graph.output.dtype)
    np.testing.assert_allclose(optimised, plain, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(optimised, want, rtol=1e-10, atol=1e-12)


@given(graph=tgs.elementwise_graphs(dtype="float32", max_ops=4))
def test_rewritten_float32_graphs_keep_their_values(compile_fn, graph):
    optimised = compile_fn(graph.inputs, graph.output)(*graph.values)
    plain = compile_fn(graph.inputs, graph.output, rewrite=False)(*graph.values)
    assert optimised.dtype == np.float32
    np.testing.assert_allclose(optimised, plain, rtol=1e-5, atol=1e-6)


def _nnet_patterns(z, y, n):
    """Expressions the stabilising rewrites match, each with its gradient wrt z."""
    rows = tg.arange(y.shape[0])
    logp = tg.log(tg.softmax(z))
    costs = {
        "network3": -tg.mean(logp[rows, y]),
        "log_then_index": -tg.mean(tg.log(tg.softmax(z)[rows, y])),
        "categorical_int": tg.mean(tg.categorical_crossentropy(tg.softmax(z), y)),
        "categorical_one_hot": tg.mean(tg.categorical_crossentropy(
            tg.softmax(z), tg.one_hot(y, z.shape[1], "float64"))),
        "n_rows": -tg.sum(logp[tg.arange(n), y[:n]]),
        "transposed": tg.sum(tg.log(tg.softmax(z).T) * tg.constant(np.arange(3.0))[:, None]),
        "reshaped": tg.sum(tg.log(tg.softmax(z).reshape((-1,)))),
        "exp_log_softmax": tg.sum(tg.exp(tg.log_softmax(z)) ** 2),
        "sigmoid": tg.sum(tg.binary_crossentropy(tg.sigmoid(z), tg.constant(0.25))),
    }
    return {name: [cost, tg.grad(cost, z)] for name, cost in costs.items()}


@given(data=st.data())
def test_rewritten_nnet_patterns_keep_their_values(compile_fn, data):
    rows = data.draw(st.integers(1, 5))
    logits = data.draw(tgs.arrays("float64", (rows, 3)))
    labels = np.array(data.draw(st.lists(st.integers(0, 2), min_size=rows, max_size=rows)))
    n = data.draw(st.integers(0, rows))
    z, y, m = tg.dmatrix("z"), tg.lvector("y"), tg.lscalar("n")
    for name, outputs in _nnet_patterns(z, y, m).items():
        optimised = compile_fn([z, y, m], outputs, on_unused_input="ignore")
        plain = compile_fn([z, y, m], outputs, rewrite=False, on_unused_input="ignore")
        for a, b in zip(optimised(logits, labels, n), plain(logits, labels, n)):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12, err_msg=name)


def test_merge_shares_equal_computations(compile_fn):
    x, w = tg.dmatrix("x"), tg.dmatrix("w")
    out = tg.sum(tg.dot(x, w) + tg.dot(x, w) + tg.softmax(tg.dot(x, w)) * tg.softmax(x @ w),
                 axis=1)
    merged = compile_fn([x, w], out)
    plain = compile_fn([x, w], out, rewrite=False)
    assert count(plain, Dot) == 4 and count(plain, Softmax) == 2
    assert count(merged, Dot) == 1 and count(merged, Softmax) == 1
    xv, wv = np.eye(2), np.array([[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_allclose(merged(xv, wv), plain(xv, wv))


def test_merge_shares_across_outputs_and_updates(compile_fn):
    x = tg.dmatrix("x")
    acc = tg.shared(np.zeros(2), name="acc")
    f = compile_fn([x], [tg.dot(x, x), tg.dot(x, x).T],
                   updates=[(acc, acc + tg.sum(tg.dot(x, x), axis=0))])
    assert count(f, Dot) == 1
    f(np.eye(2) * 2)
    np.testing.assert_array_equal(acc.get_value(), [4.0, 4.0])


def test_merge_pass_merges_equal_constants():
    from tinygraph.rewrite import merge

    x = tg.dvector("x")
    a, b = tg.constant(np.arange(3.0)), tg.constant(np.arange(3.0))
    out_a, out_b = merge([x + a, x + b])
    assert out_a is out_b


def test_constant_folding_folds(compile_fn):
    f = compile_fn([], tg.constant(np.arange(4.0)) * 2 + 1)
    assert op_types(f) == [] and isinstance(f.outputs[0], Constant)
    np.testing.assert_array_equal(f(), [1.0, 3.0, 5.0, 7.0])
    x = tg.dvector("x")
    out = x * (tg.exp(tg.constant(0.0)) + tg.constant(4.0))
    g = compile_fn([x], out)
    for node in toposort(g.outputs):
        assert not all(isinstance(v, Constant) for v in node.inputs), node
    assert len(toposort(g.outputs)) == 1  # exp, add and the padding dimshuffle are gone
    assert len(toposort(compile_fn([x], out, rewrite=False).outputs)) == 4
    np.testing.assert_array_equal(g(np.array([1.0, 2.0])), [5.0, 10.0])


def test_canonicalisation_removes_neutral_elements(compile_fn):
    v = tg.dvector("v")
    f = compile_fn([v], [v * 1, 1 * v, v + 0, 0 + v, v - 0, v / 1, v ** 1, tg.neg(-v), v.T.T])
    assert all(out is v for out in f.outputs)
    assert op_types(f) == []
    i = tg.ivector("i")
    f = compile_fn([i], i / 1)  # the division changes the type: it must stay
    assert f(np.array([3], "int32")).dtype == np.dtype(tg.config.floatX)


def test_canonicalisation_simplifies_powers_and_dimshuffles(compile_fn):
    x = tg.dmatrix("x")
    f = compile_fn([x], [x ** 2, x ** 0.5, x.dimshuffle("x", 1, 0).dimshuffle(2, 1)])
    names = [node.op.scalar_op.name for node in toposort(f.outputs)
             if hasattr(node.op, "scalar_op")]
    assert "pow" not in names
    assert f.outputs[2] is x
    value = np.array([[1.0, 4.0], [9.0, 2.0]])
    sq, root, same = f(value)
    np.testing.assert_allclose(sq, value ** 2)
    np.testing.assert_allclose(root, np.sqrt(value))
    np.testing.assert_array_equal(same, value)


@pytest.mark.parametrize("build", [
    lambda x: tg.log(tg.softmax(x)),
    lambda x: tg.log(tg.softmax(x).T),
    lambda x: tg.log(tg.softmax(x).dimshuffle(1, "x", 0)),
    lambda x: tg.log(tg.softmax(x).reshape((-1,))),
    lambda x: tg.log(tg.softmax(x.reshape((x.shape[0], 1, -1))).reshape(x.shape, ndim=2)),
    lambda x: tg.log(tg.softmax(x)[:1]),
], ids=["plain", "transpose", "dimshuffle", "reshape", "reshape_3d", "slice"])
def test_log_of_softmax_becomes_log_softmax(compile_fn, build):
    x = tg.dmatrix("x")
    out = build(x)
    f = compile_fn([x], out)
    assert LogSoftmax in op_types(f) and Softmax not in op_types(f)
    value = np.array([[1e4, 0.0, -1e4], [1.0, 2.0, 3.0]])
    got = f(value)
    assert np.all(np.isfinite(got))
    plain = compile_fn([x], out, rewrite=False)(value)
    with np.errstate(divide="ignore"):
        assert not np.all(np.isfinite(plain))  # log(0) without the rewrite
    moderate = value / 1e4
    np.testing.assert_allclose(f(moderate), compile_fn([x], out, rewrite=False)(moderate),
                               rtol=1e-12)


def test_network3_cost_becomes_the_fused_crossentropy(compile_fn):
    z, y = tg.dmatrix("z"), tg.lvector("y")
    cost = -tg.mean(tg.log(tg.softmax(z))[tg.arange(y.shape[0]), y])
    gz = tg.grad(cost, z)
    f = compile_fn([z, y], [cost, gz])
    types = op_types(f)
    assert (CrossentropySoftmax in types and CrossentropySoftmaxGrad in types) or \
        (f.device == "opencl" and CrossentropySoftmaxWithGrad in types)
    assert Softmax not in types and LogSoftmax not in types
    logits = np.array([[1e4, 0.0, -1e4], [0.0, 1e4, 5.0]])
    labels = np.array([1, 0])
    value, grad = f(logits, labels)
    assert np.isfinite(value) and np.all(np.isfinite(grad))
    np.testing.assert_allclose(value, (1e4 + 1e4) / 2)
    np.testing.assert_allclose(grad, [[0.5, -0.5, 0.0], [-0.5, 0.5, 0.0]], atol=1e-12)


def test_opencl_computes_the_crossentropy_and_its_gradient_in_one_node():
    z, y = tg.matrix("z"), tg.ivector("y")
    cost = tg.nll_mean(z, y)
    fn = tg.function([z, y], [cost, tg.grad(cost, z)], device="opencl")
    types = op_types(fn)
    assert types.count(CrossentropySoftmaxWithGrad) == 1
    assert CrossentropySoftmax not in types and CrossentropySoftmaxGrad not in types
    grad_node = next(n for n in toposort(fn.outputs)
                     if isinstance(n.op, CrossentropySoftmaxWithGrad))
    assert grad_node.inputs[0].broadcastable == (True,), "the mean's gradient is not filled"
    reference = tg.function([z, y], [cost, tg.grad(cost, z)], device="numpy")
    logits = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
    labels = np.array([0, 3, 1, 1, 2], "int32")
    for got, want in zip(fn(logits, labels), reference(logits, labels)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)


def test_a_gradient_that_depends_on_the_costs_is_not_fused(compile_fn):
    z, y = tg.dmatrix("z"), tg.lvector("y")
    costs = -tg.log(tg.softmax(z))[tg.arange(y.shape[0]), y]
    cost = tg.sum(costs ** 2)
    fn = compile_fn([z, y], [cost, tg.grad(cost, z)])
    assert CrossentropySoftmaxWithGrad not in op_types(fn)
    logits = np.array([[0.5, -1.0, 2.0], [0.0, 1.0, -3.0]])
    labels = np.array([2, 1])
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    nll = -np.log(p[[0, 1], labels])
    onehot = np.eye(3)[labels]
    value, grad = fn(logits, labels)
    np.testing.assert_allclose(value, np.sum(nll ** 2))
    np.testing.assert_allclose(grad, 2 * nll[:, None] * (p - onehot), rtol=1e-12)


def test_negations_move_out_of_sums_and_means_and_cancel(compile_fn):
    x = tg.dmatrix("x")
    fn = compile_fn([x], [-tg.mean(-x), -tg.sum(-x, axis=0)])
    assert Elemwise not in op_types(fn)
    value = np.arange(6.0).reshape(2, 3)
    mean, sums = fn(value)
    assert mean == 2.5
    np.testing.assert_array_equal(sums, [3, 5, 7])


def test_shapes_are_read_from_operands_not_results(compile_fn):
    x, y = tg.dmatrix("x"), tg.lvector("y")
    costs = -tg.log(tg.softmax(x))[tg.arange(y.shape[0]), y]
    fn = compile_fn([x, y], tg.exp(x).shape[0] * 10 + costs.shape[0])
    nodes = toposort(fn.outputs)
    assert not any(isinstance(n.op, (CrossentropySoftmax, Softmax, LogSoftmax)) for n in nodes)
    assert not any(isinstance(n.op, Elemwise) and n.op.scalar_op.name == "exp" for n in nodes)
    assert fn(np.zeros((4, 3)), np.array([0, 1])) == 42


def test_grad_stabilises_before_differentiating_even_without_rewrites(compile_fn):
    z, y = tg.dmatrix("z"), tg.lvector("y")
    cost = -tg.mean(tg.log(tg.softmax(z))[tg.arange(y.shape[0]), y])
    gz = tg.grad(cost, z)
    f = compile_fn([z, y], [cost, gz], rewrite=False)
    assert CrossentropySoftmaxGrad in op_types(f)  # built by grad, not by function
    logits = np.array([[1e4, 0.0, -1e4], [0.0, 1e4, 5.0]])
    with np.errstate(divide="ignore"):
        value, grad = f(logits, np.array([1, 0]))
    assert not np.isfinite(value)  # the cost itself is not rewritten: log(0)
    assert np.all(np.isfinite(grad))
    np.testing.assert_allclose(grad, [[0.5, -0.5, 0.0], [-0.5, 0.5, 0.0]], atol=1e-12)


def test_large_logits_give_finite_cost_and_gradients_in_float32(compile_fn):
    x, y = tg.fmatrix("x"), tg.ivector("y")
    w = tg.shared(np.array([[1.0, -1.0], [-1.0, 1.0]], "float32") * 1e4, name="w")
    cost = tg.mean(tg.categorical_crossentropy(tg.softmax(x @ w), y))
    gw = tg.grad(cost, w)
    f = compile_fn([x, y], [cost, gw])
    value, grad = f(np.array([[1.0, 0.0], [0.0, 1.0]], "float32"), np.array([1, 1], "int32"))
    assert np.isfinite(value) and np.all(np.isfinite(grad))
    np.testing.assert_allclose(value, 1e4, rtol=1e-6)


def test_exp_of_log_softmax_becomes_softmax(compile_fn):
    x = tg.dmatrix("x")
    f = compile_fn([x], tg.exp(tg.log_softmax(x)))
    assert Softmax in op_types(f) and LogSoftmax not in op_types(f)
    value = np.array([[1.0, 2.0, 3.0]])
    np.testing.assert_allclose(f(value), np.exp(value) / np.exp(value).sum())


def test_log_of_sigmoid_becomes_softplus(compile_fn):
    x = tg.dvector("x")
    outs = [tg.log(tg.sigmoid(x)), tg.log(1 - tg.sigmoid(x))]
    value = np.array([-800.0, -30.0, 0.0, 30.0, 800.0])
    got_log_sig, got_log_one_minus = compile_fn([x], outs)(value)
    np.testing.assert_allclose(got_log_sig, -np.logaddexp(0, -value), rtol=1e-12)
    np.testing.assert_allclose(got_log_one_minus, -np.logaddexp(0, value), rtol=1e-12)
    with np.errstate(all="ignore"):
        plain = compile_fn([x], outs, rewrite=False)(value)
    assert not np.all(np.isfinite(plain[0])) and not np.all(np.isfinite(plain[1]))


def test_rewrites_keep_output_types():
    x = tg.tensor("float32", broadcastable=(True, False), name="x")
    outs = [x * 1, tg.log(tg.softmax(x)), x ** 2, (x + 0).T]
    for before, after in zip(outs, optimize(outs)):
        assert after.type == before.type


def test_a_rewrite_changing_the_type_is_rejected():
    def bad(node):
        out = node.outputs[0]
        return [tg.cast(out, "float32")] if out.dtype == "float64" else None

    x = tg.dvector("x")
    with pytest.raises(TypeError, match="rewrite bad replaced"):
        RewritePass("bad", [bad])([tg.exp(x)])


def assert_fused_keeps_values(inputs, fused, outputs, values, rtol=1e-6):
    """The rewritten outputs, run by the NumPy reference, equal the unfused ones."""
    got = tg.function(inputs, fused, device="numpy", rewrite=False)(*values)
    want = tg.function(inputs, outputs, device="numpy", rewrite=False)(*values)
    for g, w_ in zip(got, want):
        np.testing.assert_allclose(g, w_, rtol=rtol, atol=1e-6)


def test_product_epilogues_with_extra_operands_keep_their_values():
    """The OpenCL pipeline's DotEpilogue (bias, activation, and a matrix read alongside) run
    by the NumPy reference: the same values as the unfused graph."""
    from tinygraph.ops.blas import DotEpilogue
    from tinygraph.rewrite import OPENCL_PIPELINE

    rng = np.random.default_rng(3)
    x, h = tg.matrix("x"), tg.matrix("h")
    w = tg.shared(rng.normal(size=(6, 5)).astype("float32"), name="w")
    b = tg.shared(rng.normal(size=5).astype("float32"), name="b")
    v = tg.shared(rng.normal(size=(6, 5)).astype("float32"), name="v")
    outputs = [tg.sigmoid(x @ w + b) * h, (x @ v) * h * (1 - h) * (h > 0)]
    fused = optimize(outputs, OPENCL_PIPELINE)
    ops = [node.op for node in toposort(fused) if isinstance(node.op, DotEpilogue)]
    assert [(op.has_bias, op.n_extra) for op in ops] == [(True, 1), (False, 1)]
    values = [rng.normal(size=(4, 6)).astype("float32"), rng.normal(size=(4, 5)).astype(
        "float32")]
    assert_fused_keeps_values([x, h], fused, outputs, values)


def test_weight_and_bias_updates_become_one_node_that_keeps_their_values():
    """The OpenCL pipeline's GemmColumnSums (a Gemm and a column-sum update of its B), run by
    the NumPy reference, gives the unfused values; a bias update of another matrix stays."""
    from tinygraph.ops.gemm_column_sums import GemmColumnSums
    from tinygraph.rewrite import OPENCL_PIPELINE

    rng = np.random.default_rng(4)
    h, d, e = tg.matrix("h"), tg.matrix("d"), tg.matrix("e")
    w = tg.shared(rng.normal(size=(6, 5)).astype("float32"), name="w")
    b = tg.shared(rng.normal(size=5).astype("float32"), name="b")
    c = tg.shared(rng.normal(size=5).astype("float32"), name="c")
    outputs = [w - 0.1 * (h.T @ d), tg.sum(d, axis=0) * 0.5 + b, c - tg.sum(e, axis=0)]
    fused = optimize(outputs, OPENCL_PIPELINE)
    nodes = [node for node in toposort(fused) if isinstance(node.op, GemmColumnSums)]
    assert len(nodes) == 1 and nodes[0].outputs[1] in fused
    values = [rng.normal(size=(3, 6)).astype("float32"), rng.normal(size=(3, 5)).astype(
        "float32"), rng.normal(size=(3, 5)).astype("float32")]
    assert_fused_keeps_values([h, d, e], fused, outputs, values)


def test_the_cost_total_joins_the_crossentropy_gradient_and_keeps_its_value():
    """The OpenCL pipeline's CrossentropyGradTotal, run by the NumPy reference: the running
    total and the weights' update as the unfused graph computes them."""
    from tinygraph.ops.crossentropy_total import CrossentropyGradTotal
    from tinygraph.rewrite import OPENCL_PIPELINE

    rng = np.random.default_rng(6)
    x, y = tg.matrix("x"), tg.ivector("y")
    w = tg.shared(rng.normal(size=(5, 3)).astype("float32"), name="w")
    total = tg.shared(np.full(1, 2.0), name="total")
    cost = -tg.mean(tg.log(tg.softmax(x @ w))[tg.arange(y.shape[0]), y])
    outputs = [w - 0.1 * tg.grad(cost, w), total + tg.cast(cost, "float64")]
    fused = optimize(outputs, OPENCL_PIPELINE)
    assert [type(node.op) for node in toposort(fused)].count(CrossentropyGradTotal) == 1
    values = [rng.normal(size=(4, 5)).astype("float32"), np.array([0, 2, 1, 2], "int32")]
    assert_fused_keeps_values([x, y], fused, outputs, values)


def test_a_softmax_layers_logits_join_its_crossentropy_total_and_keep_their_values():
    """The OpenCL pipeline's DotCrossentropyGradTotal (the logits product with its bias, its
    crossentropy gradient and the running cost total), run by the NumPy reference: the
    unfused values. Logits without a bias stay a product of their own."""
    from tinygraph.ops.crossentropy_total import CrossentropyGradTotal, DotCrossentropyGradTotal
    from tinygraph.rewrite import OPENCL_PIPELINE

    rng = np.random.default_rng(8)
    x, y = tg.matrix("x"), tg.ivector("y")
    w = tg.shared(rng.normal(size=(5, 3)).astype("float32"), name="w")
    b = tg.shared(rng.normal(size=3).astype("float32"), name="b")
    total = tg.shared(np.full(1, 2.0), name="total")
    values = [rng.normal(size=(4, 5)).astype("float32"), np.array([0, 2, 1, 2], "int32")]
    for logits, fused_kind in ((x @ w + b, DotCrossentropyGradTotal),
                               (x @ w, CrossentropyGradTotal)):
        cost = -tg.mean(tg.log(tg.softmax(logits))[tg.arange(y.shape[0]), y])
        outputs = [w - 0.1 * tg.grad(cost, w), total + tg.cast(cost, "float64")]
        fused = optimize(outputs, OPENCL_PIPELINE)
        kinds = [type(node.op) for node in toposort(fused)]
        assert kinds.count(fused_kind) == 1
        assert kinds.count(DotCrossentropyGradTotal) + kinds.count(CrossentropyGradTotal) == 1
        assert_fused_keeps_values([x, y], fused, outputs, values)


def test_a_softmax_layers_whole_step_becomes_one_node_that_keeps_its_values():
    """The OpenCL pipeline's SoftmaxLayerStep (the output layer's logits, crossentropy
    gradient and cost total, its backward product and weight and bias updates), run by the
    NumPy reference: the unfused values."""
    from tinygraph.ops.backprop_update import BackpropUpdate
    from tinygraph.ops.softmax_layer import SoftmaxLayerStep
    from tinygraph.rewrite import OPENCL_PIPELINE

    rng = np.random.default_rng(9)
    x, y = tg.matrix("x"), tg.ivector("y")
    w1 = tg.shared(rng.normal(size=(6, 5)).astype("float32"), name="w1")
    b1 = tg.shared(rng.normal(size=5).astype("float32"), name="b1")
    w = tg.shared(rng.normal(size=(5, 3)).astype("float32"), name="w")
    b = tg.shared(rng.normal(size=3).astype("float32"), name="b")
    total = tg.shared(np.full(1, 2.0), name="total")
    h = tg.sigmoid(x @ w1 + b1)
    cost = -tg.mean(tg.log(tg.softmax(h @ w + b))[tg.arange(y.shape[0]), y])
    outputs = [p - 0.1 * tg.grad(cost, p) for p in (w1, b1, w, b)]
    outputs.append(total + tg.cast(cost, "float64"))
    fused = optimize(outputs, OPENCL_PIPELINE)
    kinds = [type(node.op) for node in toposort(fused)]
    assert kinds.count(SoftmaxLayerStep) == 1 and BackpropUpdate not in kinds
    values = [rng.normal(size=(4, 6)).astype("float32"), np.array([0, 2, 1, 2], "int32")]
    assert_fused_keeps_values([x, y], fused, outputs, values)


def test_a_layers_backward_product_and_updates_become_one_node_that_keeps_their_values():
    """The OpenCL pipeline's BackpropUpdate (the gradient at a layer's input, d @ W.T times
    the activation's derivative, with the layer's weight and bias updates), run by the NumPy
    reference: the unfused values. The first layer has no backward product and stays a
    GemmColumnSums."""
    from tinygraph.ops.backprop_update import BackpropUpdate
    from tinygraph.ops.gemm_column_sums import GemmColumnSums
    from tinygraph.rewrite import OPENCL_PIPELINE

    rng = np.random.default_rng(7)
    x, d = tg.matrix("x"), tg.matrix("d")
    w1 = tg.shared(rng.normal(size=(6, 5)).astype("float32"), name="w1")
    b1 = tg.shared(rng.normal(size=5).astype("float32"), name="b1")
    w2 = tg.shared(rng.normal(size=(5, 4)).astype("float32"), name="w2")
    b2 = tg.shared(rng.normal(size=4).astype("float32"), name="b2")
    h = tg.sigmoid(x @ w1 + b1)
    d1 = (d @ w2.T) * h * (1 - h)
    outputs = [w2 * 0.99 - 0.1 * (h.T @ d), b2 - 0.1 * tg.sum(d, axis=0),
               w1 - 0.1 * (x.T @ d1), b1 - 0.1 * tg.sum(d1, axis=0)]
    fused = optimize(outputs, OPENCL_PIPELINE)
    kinds = [type(node.op) for node in toposort(fused)]
    assert kinds.count(BackpropUpdate) == 1 and kinds.count(GemmColumnSums) == 1
    values = [rng.normal(size=(3, 6)).astype("float32"), rng.normal(size=(3, 4)).astype(
        "float32")]
    assert_fused_keeps_values([x, d], fused, outputs, values, rtol=1e-5)
