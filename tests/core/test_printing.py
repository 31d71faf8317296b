"""debugprint: one indented line per variable, ``[id X]`` labels, repeated nodes by id only."""

import io

import numpy as np

import tinygraph as tg


def test_debugprint_format():
    x = tg.dmatrix("x")
    y = tg.exp(x)
    out = y * y + 2.0
    text = tg.debugprint(out, file=io.StringIO())
    assert text == "\n".join([
        "Elemwise{add} [id A]",
        " |Elemwise{mul} [id B]",
        " | |Elemwise{exp} [id C]",
        " | | |x [id D]",
        " | |Elemwise{exp} [id C]",
        " |DimShuffle{x,x} [id E]",
        " | |2. [id F]",
    ])


def test_debugprint_writes_to_file_and_stdout(capsys):
    x = tg.dvector("x")
    buffer = io.StringIO()
    text = tg.debugprint(tg.sum(x), file=buffer)
    assert buffer.getvalue() == text + "\n"
    assert capsys.readouterr().out == ""
    tg.debugprint(tg.sum(x))
    assert capsys.readouterr().out == text + "\n"


def test_debugprint_of_several_outputs_shares_ids_and_shows_types_and_names():
    x = tg.dvector("x")
    hidden = tg.tanh(x)
    hidden.name = "hidden"
    text = tg.debugprint([hidden * 2.0, hidden], file=io.StringIO(), print_type=True)
    lines = text.splitlines()
    assert lines[0] == "Elemwise{mul} [id A] <TensorType(float64, (?,))>"
    assert lines[1] == " |Elemwise{tanh} [id B] 'hidden' <TensorType(float64, (?,))>"
    assert lines[2] == " | |x [id C] <TensorType(float64, (?,))>"
    assert lines[-1] == "Elemwise{tanh} [id B] 'hidden' <TensorType(float64, (?,))>"
    assert len(lines) == 6


def test_debugprint_of_leaves_constants_and_unnamed_inputs():
    assert tg.debugprint(tg.dvector("v"), file=io.StringIO()) == "v [id A]"
    assert tg.debugprint(tg.dvector(), file=io.StringIO()) == "<TensorType(float64, (?,))> [id A]"
    big = tg.constant(np.zeros((3, 4)))
    assert tg.debugprint(big, file=io.StringIO()) == "Constant{float64(3, 4)} [id A]"
    labels = [f"[id {chr(65 + i)}]" for i in range(26)] + ["[id AA]", "[id AB]"]
    x = tg.dscalar("x")
    out = x
    for _ in range(27):
        out = tg.exp(out)
    text = tg.debugprint(out, file=io.StringIO())
    found = [line[line.index("[id"):] for line in text.splitlines()]
    assert found == labels


def test_debugprint_of_a_compiled_function_shows_the_rewritten_graph(compile_fn):
    x = tg.dmatrix("x")
    f = compile_fn([x], tg.log(tg.softmax(x)) * 1)
    text = tg.debugprint(f, file=io.StringIO())
    assert text == "LogSoftmax [id A]\n |x [id B]"
    assert f.debugprint(file=io.StringIO()) == text


def test_ops_print_readably_with_str_and_repr():
    x = tg.dmatrix("x")
    cases = {tg.sum(x, axis=0): "Sum{axes=(0,)}", x[1:]: "Subtensor{1:}",
             tg.exp(x): "Elemwise{exp}", x.T: "Transpose{1,0}", x @ x: "Dot"}
    for var, text in cases.items():
        assert str(var.owner.op) == repr(var.owner.op) == text
