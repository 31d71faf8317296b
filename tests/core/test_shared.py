"""Shared variables: copy/borrow semantics of get_value/set_value, and a type fixed at creation."""

import numpy as np
import pytest

import tinygraph as tg


def test_shared_copies_its_value_unless_borrowed():
    value = np.arange(3.0)
    copied = tg.shared(value, name="copied")
    borrowed = tg.shared(value, name="borrowed", borrow=True)
    value[0] = 100.0
    np.testing.assert_array_equal(copied.get_value(), [0.0, 1.0, 2.0])
    np.testing.assert_array_equal(borrowed.get_value(), [100.0, 1.0, 2.0])
    assert copied.name == "copied" and isinstance(copied, tg.SharedVariable)


def test_get_value_copies_unless_borrowed():
    s = tg.shared(np.zeros(3))
    got = s.get_value()
    got[0] = 5.0
    assert s.get_value()[0] == 0.0
    inner = s.get_value(borrow=True)
    assert inner is s.get_value(borrow=True)
    inner[1] = 7.0
    assert s.get_value()[1] == 7.0


def test_set_value_copies_unless_borrowed():
    s = tg.shared(np.zeros(3, "float32"))
    new = np.ones(3, "float32")
    s.set_value(new)
    new[0] = 9.0
    np.testing.assert_array_equal(s.get_value(), [1.0, 1.0, 1.0])
    s.set_value(new, borrow=True)
    assert s.get_value(borrow=True) is new
    readonly = np.full(3, 2.0, "float32")
    readonly.setflags(write=False)
    s.set_value(readonly, borrow=True)  # never keeps a read-only array
    assert s.get_value(borrow=True).flags.writeable
    np.testing.assert_array_equal(s.get_value(), [2.0, 2.0, 2.0])


def test_type_is_fixed_at_creation():
    s = tg.shared(np.zeros((2, 3), "float32"), name="weights")
    assert s.type == tg.TensorType("float32", (False, False))
    with pytest.raises(TypeError, match="weights has dtype float32.*float64"):
        s.set_value(np.zeros((2, 3)))
    with pytest.raises(TypeError, match="weights has dtype float32.*int32"):
        s.set_value(np.zeros((2, 3), "int32"))
    with pytest.raises(TypeError, match="weights: expected a 2-d array"):
        s.set_value(np.zeros(6, "float32"))
    s.set_value(np.ones((5, 1), "float32"))  # other shapes of the same rank are fine
    assert s.get_value().shape == (5, 1)
    unnamed = tg.shared(np.zeros(2))
    with pytest.raises(TypeError, match="<unnamed>"):
        unnamed.set_value(np.zeros(2, "float32"))


def test_dtype_from_the_value_and_unsupported_dtypes():
    assert tg.shared(np.float32(1.0)).type == tg.TensorType("float32", ())
    assert tg.shared(3.0).dtype == "float64"
    assert tg.shared([1, 2]).dtype == "int64"
    assert tg.shared(np.zeros(2, bool)).dtype == "bool"
    with pytest.raises(TypeError, match="complex64 is not supported"):
        tg.shared(np.zeros(2, "complex64"))
    with pytest.raises(TypeError, match="not supported"):
        tg.shared(np.zeros(2, "int8"))


def test_broadcastable_shared_variable():
    s = tg.shared(np.ones((1, 3)), broadcastable=(True, False))
    assert s.broadcastable == (True, False)
    with pytest.raises(ValueError, match="broadcastable"):
        s.set_value(np.ones((2, 3)))


def test_shared_variables_cannot_be_cloned():
    with pytest.raises(TypeError, match="cannot be cloned"):
        tg.shared(np.zeros(1)).clone()


def test_functions_read_the_current_value_and_update_it(compile_fn):
    s = tg.shared(np.array([1.0, 2.0]), name="s")
    x = tg.dvector("x")
    f = compile_fn([x], s * x)
    np.testing.assert_array_equal(f(np.array([2.0, 2.0])), [2.0, 4.0])
    s.set_value(np.array([10.0, 20.0]))
    np.testing.assert_array_equal(f(np.array([2.0, 2.0])), [20.0, 40.0])
    bump = compile_fn([], [], updates=[(s, s + 1.0)])
    before = s.get_value()
    bump()
    np.testing.assert_array_equal(s.get_value(), [11.0, 21.0])
    np.testing.assert_array_equal(before, [10.0, 20.0])  # an earlier copy is unaffected
