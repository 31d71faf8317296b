"""Tests for layers.model_io: round trips, rejected files, atomic saves."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from layers import Dropout, FullyConnected, ModelFileError, Network, Softmax, model_io


@st.composite
def networks(draw):
    sizes = draw(st.lists(st.integers(1, 9), min_size=2, max_size=5))
    layers = []
    if draw(st.booleans()):
        layers.append(Dropout(draw(st.sampled_from([0.1, 0.5]))))
    for n_in, n_out in zip(sizes[:-2], sizes[1:-1]):
        layers.append(FullyConnected(n_in, n_out, draw(st.sampled_from(
            ["sigmoid", "tanh", "relu", "linear"])), p_dropout=draw(st.sampled_from([0.0, 0.3]))))
    layers.append(Softmax(sizes[-2], sizes[-1], p_dropout=draw(st.sampled_from([0.0, 0.2]))))
    net = Network(layers, draw(st.integers(1, 64)), seed=draw(st.integers(0, 1000)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    for p in net.params:
        p.set_value(rng.normal(size=p.get_value().shape).astype(p.dtype))
    return net


def same(a: Network, b: Network) -> None:
    assert [type(x) for x in a.layers] == [type(x) for x in b.layers]
    assert [x.config() for x in a.layers] == [x.config() for x in b.layers]
    assert (a.mini_batch_size, a.seed) == (b.mini_batch_size, b.seed)
    for p, q in zip(a.params, b.params, strict=True):
        assert p.dtype == q.dtype
        np.testing.assert_array_equal(p.get_value(), q.get_value())


@settings(max_examples=10, deadline=None)
@given(networks())
def test_round_trip(tmp_path_factory, net):
    path = tmp_path_factory.mktemp("models") / "net.npz"
    net.save(path)
    same(net, Network.load(path))


def test_loaded_network_predicts_the_same(backend, tmp_path):
    net = Network([FullyConnected(4, 6, "relu"), Softmax(6, 3)], 5, seed=2)
    net.layers[1].w.set_value(np.random.default_rng(0).normal(size=(6, 3)).astype("float32"))
    x = np.random.default_rng(1).normal(size=(12, 4)).astype("float32")
    net.save(tmp_path / "m")  # no suffix added
    np.testing.assert_array_equal(Network.load(tmp_path / "m").predict_proba(x),
                                  net.predict_proba(x))


def test_custom_activation_cannot_be_saved(tmp_path):
    net = Network([FullyConnected(3, 4, lambda z: z * 2), Softmax(4, 2)], 2)
    with pytest.raises(ValueError, match="layer 0 .* custom activation"):
        net.save(tmp_path / "m.npz")
    assert not list(tmp_path.iterdir())


def small_net() -> Network:
    return Network([FullyConnected(3, 4), Softmax(4, 2)], 2)


def metadata(**changes) -> dict:
    layers = [{"kind": "FullyConnected", "n_in": 3, "n_out": 4, "activation": "sigmoid",
               "p_dropout": 0.0}, {"kind": "Softmax", "n_in": 4, "n_out": 2, "p_dropout": 0.0}]
    return {"format": model_io.FORMAT, "version": model_io.VERSION, "layers": layers,
            "mini_batch_size": 2, "seed": 0, **changes}


def params(shape0=(3, 4)) -> dict:
    shapes = [shape0, (4,), (4, 2), (2,)]
    return {f"param{i}": np.zeros(s, "float32") for i, s in enumerate(shapes)}


def write_raw(path, meta, arrays):
    with open(path, "wb") as file:
        np.savez(file, metadata=np.array(meta), **arrays)


@pytest.mark.parametrize("make, message", [
    (lambda p: p.write_bytes(b"not a zip file at all"), "not a readable .npz file"),
    (lambda p: p.write_bytes(b""), "not a readable .npz file"),
    (lambda p: (small_net().save(p), p.write_bytes(p.read_bytes()[:150])),
     "not a readable .npz file"),
    (lambda p: np.savez(p, **params()), "no metadata string"),
    (lambda p: write_raw(p, "{not json", params()), "corrupt metadata"),
    (lambda p: model_io.write_npz(p, {"format": "other"}, {}), "not a tinygraph.layers.model"),
    (lambda p: model_io.write_npz(p, metadata(version=99), params()), "format version 99"),
    (lambda p: model_io.write_npz(p, metadata(layers=[{"kind": "Conv"}]), params()),
     "unknown layer kind 'Conv'"),
    (lambda p: model_io.write_npz(p, metadata(mini_batch_size=0), params()),
     "invalid architecture"),
    (lambda p: model_io.write_npz(p, metadata(), params((4, 3))),
     r"parameter 0 is float32 \(4, 3\), expected float32 \(3, 4\)"),
    (lambda p: model_io.write_npz(p, metadata(), {**params(), "param4": np.zeros(1)}),
     "holds 5 arrays, the architecture needs 4"),
])
def test_bad_files_are_rejected(tmp_path, make, message):
    path = tmp_path / "broken.npz"
    make(path)
    with pytest.raises(ModelFileError, match=message) as info:
        Network.load(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("failure", ["replace", "writer"])
def test_failed_save_keeps_the_old_file(tmp_path, monkeypatch, failure):
    path = tmp_path / "net.npz"
    old = small_net()
    old.save(path)
    new = small_net()
    new.layers[0].w.set_value(np.ones((3, 4), "float32"))

    def boom(*args, **kwargs):
        raise OSError("disk full")

    if failure == "replace":
        monkeypatch.setattr(os, "replace", boom)
    else:
        monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(OSError, match="disk full"):
        new.save(path)
    monkeypatch.undo()
    same(old, Network.load(path))
    assert os.listdir(tmp_path) == ["net.npz"], "the temporary file is removed"
