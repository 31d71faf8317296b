"""function(): outputs, updates, givens, input validation and runtime error messages."""

import re
import warnings

import numpy as np
import pytest

import tinygraph as tg


def test_single_and_list_outputs(compile_fn):
    x = tg.dvector("x")
    value = np.array([1.0, 2.0])
    single = compile_fn([x], x * 2)(value)
    assert isinstance(single, np.ndarray)
    np.testing.assert_array_equal(single, [2.0, 4.0])
    as_list = compile_fn([x], [x * 2])(value)
    assert isinstance(as_list, list) and len(as_list) == 1
    doubled, total = compile_fn([x], (x * 2, tg.sum(x)))(value)
    np.testing.assert_array_equal(doubled, [2.0, 4.0])
    assert total == 3.0 and total.shape == ()
    assert compile_fn([], [])() == []


def test_outputs_can_be_inputs_and_constants(compile_fn):
    x = tg.dvector("x")
    value = np.array([1.0, 2.0])
    same, three = compile_fn([x], [x, 3.0])(value)
    np.testing.assert_array_equal(same, value)
    assert three == 3.0
    same[0] = 100.0  # outputs are fresh arrays: the caller's input is untouched
    assert value[0] == 1.0


def test_keyword_inputs(compile_fn):
    x, y = tg.dscalar("x"), tg.dscalar("y")
    f = compile_fn([x, y], x - y)
    assert f(y=1.0, x=3.0) == 2.0
    assert f(3.0, y=1.0) == 2.0
    with pytest.raises(TypeError, match=r"unexpected keyword inputs \['z'\]"):
        f(1.0, 2.0, z=3.0)


def test_updates_as_pairs_or_dict_use_old_values(compile_fn):
    count = tg.shared(np.int64(0), name="count")
    acc = tg.shared(np.zeros(2), name="acc")
    x = tg.dvector("x")
    f = compile_fn([x], [acc * 1, count + 0], updates=[(acc, acc + x), (count, count + 1)])
    old_acc, old_count = f(np.array([1.0, 2.0]))
    np.testing.assert_array_equal(old_acc, [0.0, 0.0])  # computed before the update
    assert old_count == 0
    np.testing.assert_array_equal(acc.get_value(), [1.0, 2.0])
    assert count.get_value() == 1
    g = compile_fn([x], acc, updates={acc: acc * x})
    np.testing.assert_array_equal(g(np.array([3.0, 3.0])), [1.0, 2.0])
    np.testing.assert_array_equal(acc.get_value(), [3.0, 6.0])
    reset = compile_fn([], [], updates={count: 0, acc: tg.zeros_like(acc)})
    reset()
    assert count.get_value() == 0 and count.get_value().dtype == np.int64
    np.testing.assert_array_equal(acc.get_value(), [0.0, 0.0])


def test_updates_apply_together_so_a_swap_works(compile_fn):
    a = tg.shared(np.array([1.0, 2.0]), name="a")
    b = tg.shared(np.array([3.0, 4.0]), name="b")
    swap = compile_fn([], [a + 0, b + 0], updates=[(a, b), (b, a)])
    old_a, old_b = swap()
    np.testing.assert_array_equal(old_a, [1.0, 2.0])
    np.testing.assert_array_equal(old_b, [3.0, 4.0])
    np.testing.assert_array_equal(a.get_value(), [3.0, 4.0])
    np.testing.assert_array_equal(b.get_value(), [1.0, 2.0])
    swap()
    np.testing.assert_array_equal(a.get_value(), [1.0, 2.0])
    np.testing.assert_array_equal(b.get_value(), [3.0, 4.0])
    rotate = compile_fn([], [], updates={a: b * 2, b: a * 10})
    rotate()
    np.testing.assert_array_equal(a.get_value(), [6.0, 8.0])
    np.testing.assert_array_equal(b.get_value(), [10.0, 20.0])


def test_givens_minibatches_of_a_shared_dataset(compile_fn):
    data = np.arange(30, dtype="float32").reshape(10, 3)
    labels = np.arange(10, dtype="int32") % 3
    data_x, data_y = tg.shared(data, name="data_x"), tg.shared(labels, name="data_y")
    x, y, i = tg.fmatrix("x"), tg.ivector("y"), tg.lscalar("i")
    n = 4
    out = [tg.sum(x, axis=1), y * 2]
    f = compile_fn([i], out, givens={x: data_x[i * n:(i + 1) * n],
                                     y: data_y[i * n:(i + 1) * n]})
    for index in range(3):
        sums, doubled = f(index)
        np.testing.assert_array_equal(sums, data[index * n:(index + 1) * n].sum(axis=1))
        np.testing.assert_array_equal(doubled, labels[index * n:(index + 1) * n] * 2)
    data_x.set_value(data * 2)  # the function reads the current value
    np.testing.assert_array_equal(f(0)[0], (data * 2)[:n].sum(axis=1))


def test_givens_as_pairs_and_with_constants(compile_fn):
    x, y = tg.dvector("x"), tg.dscalar("y")
    f = compile_fn([x], x * y, givens=[(y, 3.0)])
    np.testing.assert_array_equal(f(np.array([1.0, 2.0])), [3.0, 6.0])
    with pytest.raises(TypeError, match="givens replaces x .* dtype and rank must match"):
        compile_fn([y], x * y, givens={x: tg.fvector()})
    with pytest.raises(TypeError, match="givens replaces x"):
        compile_fn([y], x * y, givens={x: tg.dmatrix()})
    with pytest.raises(TypeError, match="givens must be a dict"):
        compile_fn([x], x, givens=[x])


def test_wrong_number_of_inputs(compile_fn):
    x, y = tg.dvector("x"), tg.dvector("y")
    f = compile_fn([x, y], x + y, name="adder")
    with pytest.raises(TypeError, match=r"function 'adder' takes 2 inputs \(x, y\), got 3"):
        f(np.ones(2), np.ones(2), np.ones(2))
    with pytest.raises(TypeError, match="function 'adder': missing a value for input y"):
        f(np.ones(2))


def test_float64_to_float32_input_lossless_only_unless_allow_downcast(compile_fn):
    x = tg.fvector("x")
    f = compile_fn([x], x * 2)
    got = f(np.array([1.0, 2.5, -0.125]))  # exactly representable: accepted
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, [2.0, 5.0, -0.25])
    with pytest.raises(TypeError, match=r"input 0 \(x\).*float64.*float32.*loses information"):
        f(np.array([0.1, 0.2]))
    with pytest.raises(TypeError, match="allow_downcast"):
        f(np.array([1e40]))
    lenient = compile_fn([x], x * 2, allow_downcast=True)
    np.testing.assert_allclose(lenient(np.array([0.1, 0.2])), [0.2, 0.4], rtol=1e-6)
    saved = tg.config.allow_downcast
    try:
        tg.config.allow_downcast = True
        np.testing.assert_allclose(compile_fn([x], x)(np.array([0.1])), [0.1], rtol=1e-6)
    finally:
        tg.config.allow_downcast = saved


def test_integer_and_list_inputs(compile_fn):
    x, i = tg.fvector("x"), tg.ivector("i")
    f = compile_fn([x, i], [x, i])
    got_x, got_i = f([1, 2], [3.0, 4.0])  # lossless conversions
    assert got_x.dtype == np.float32 and got_i.dtype == np.int32
    np.testing.assert_array_equal(got_i, [3, 4])
    with pytest.raises(TypeError, match=r"input 1 \(i\).*loses information"):
        f([1.0], [1.5])
    with pytest.raises(TypeError, match=r"input 1 \(i\).*loses information"):
        f([1.0], np.array([2 ** 40]))
    with pytest.raises(TypeError, match=r"input 0 \(x\).*loses information"):
        f(np.array([2 ** 25 + 1]), [1])
    with pytest.raises(TypeError, match=r"input 0 \(x\): cannot convert"):
        f(["a"], [1])


def test_rank_mismatch_names_the_input(compile_fn):
    m = tg.dmatrix("weights")
    f = compile_fn([m], m.T, name="tr")
    with pytest.raises(TypeError, match=r"function 'tr', input 0 \(weights\): expected a 2-d"):
        f(np.ones(3))
    with pytest.raises(TypeError, match="expected a 2-d"):
        f(1.0)


def test_runtime_shape_conflicts_name_the_op_and_shapes(compile_fn):
    x, y = tg.dmatrix("x"), tg.dmatrix("y")
    f = compile_fn([x, y], tg.tanh(x @ y) + x, name="layer")
    with pytest.raises(ValueError) as info:
        f(np.ones((2, 3)), np.ones((4, 2)))
    message = str(info.value)
    assert "dot" in message and "(2, 3)" in message and "(4, 2)" in message
    assert "function 'layer'" in message and "input 0 'x'" in message
    with pytest.raises(ValueError) as info:
        f(np.ones((2, 3)), np.ones((3, 4)))  # dot is fine; the addition is not
    message = str(info.value)
    # fused on OpenCL: into the product's epilogue
    assert re.search(r"(Elemwise|DotEpilogue)\{(add|Composite\{.*add\()", message)
    assert "(2, 4)" in message and "(2, 3)" in message


def test_unused_inputs(compile_fn):
    x, y = tg.dvector("x"), tg.dvector("y")
    with pytest.raises(ValueError, match=r"input 1 \(y\) is not used"):
        compile_fn([x, y], x * 2)
    with pytest.warns(UserWarning, match=r"input 1 \(y\) is not used") as record:
        f = compile_fn([x, y], x * 2, on_unused_input="warn")
    assert record[0].filename == __file__
    np.testing.assert_array_equal(f(np.ones(2), np.ones(5)), [2.0, 2.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        compile_fn([x, y], x * 2, on_unused_input="ignore")
    with pytest.raises(ValueError, match="on_unused_input must be one of"):
        compile_fn([x], x, on_unused_input="maybe")


def test_missing_inputs(compile_fn):
    x, y = tg.dvector("x"), tg.dvector("y")
    with pytest.raises(ValueError, match=r"depend on y .*neither an input nor replaced by "
                                         r"givens"):
        compile_fn([x], x * y)
    acc = tg.shared(np.zeros(2), name="acc")
    with pytest.raises(ValueError, match="depend on y"):
        compile_fn([x], x, updates=[(acc, acc + y)])


def test_bad_inputs_list(compile_fn):
    x = tg.dvector("x")
    s = tg.shared(np.zeros(2), name="s")
    with pytest.raises(TypeError, match="must be a list"):
        compile_fn(x, x)
    with pytest.raises(TypeError, match="is a shared variable"):
        compile_fn([s], s * 2)
    with pytest.raises(TypeError, match="not a free variable"):
        compile_fn([x * 2], x)
    with pytest.raises(TypeError, match="not a free variable"):
        compile_fn([tg.constant(1.0)], x, on_unused_input="ignore")
    with pytest.raises(ValueError, match="listed twice"):
        compile_fn([x, x], x)
    with pytest.raises(TypeError, match="is a ndarray, not a variable"):
        compile_fn([np.zeros(2)], x)


def test_bad_updates(compile_fn):
    x = tg.dvector("x")
    acc = tg.shared(np.zeros(2, "float32"), name="acc")
    with pytest.raises(TypeError, match=r"update of acc \(TensorType\(float32.*float64"):
        compile_fn([x], [], updates=[(acc, acc + x)])
    with pytest.raises(TypeError, match="update of acc"):
        compile_fn([], [], updates=[(acc, tg.sum(acc))])
    with pytest.raises(TypeError, match="only target shared variables"):
        compile_fn([x], [], updates=[(x, x * 2)])
    with pytest.raises(ValueError, match="updated twice"):
        compile_fn([], [], updates=[(acc, acc * 2), (acc, acc * 3)])
    with pytest.raises(TypeError, match="pairs"):
        compile_fn([], [], updates=[acc])
    f = compile_fn([x], [], updates=[(acc, tg.cast(acc + x, "float32"))])
    f(np.array([1.0, 2.0]))
    np.testing.assert_array_equal(acc.get_value(), [1.0, 2.0])


def test_function_debugprint_shows_the_compiled_graph(compile_fn, capsys):
    x = tg.dmatrix("x")
    w = tg.shared(np.ones((2, 2)), name="w")
    f = compile_fn([x], tg.sum(x @ w), updates=[(w, w * 0.5)], name="step")
    text = f.debugprint()
    assert capsys.readouterr().out.strip() == text
    lines = text.splitlines()
    assert lines[0].startswith("Sum{axes=(0, 1)} [id A]")
    assert any(line.startswith(" |Dot [id ") for line in lines)
    assert any(line.strip(" |").startswith("x [id ") for line in lines)
    w_ids = {line.split("[id ")[1].rstrip("]") for line in lines if line.strip(" |").startswith(
        "w [id ")}
    assert len(w_ids) == 1  # the same variable has the same id in the output and the update
    assert tg.debugprint(f, file=None) == text


def test_returning_a_shared_variable_that_is_updated_gives_the_old_value(compile_fn):
    s = tg.shared(np.array([1.0, 2.0]), name="s")
    f = compile_fn([], s, updates=[(s, s * 2)])
    np.testing.assert_array_equal(f(), [1.0, 2.0])
    np.testing.assert_array_equal(f(), [2.0, 4.0])
    np.testing.assert_array_equal(s.get_value(), [4.0, 8.0])
    assert compile_fn([], [], updates=[(s, s * 2)])() == []
