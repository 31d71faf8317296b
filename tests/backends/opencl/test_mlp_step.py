"""Issue 3's acceptance: a 784-100-10 MLP training step (forward, backward, fused in-place
updates) on the OpenCL device from a compiled function with minibatches given by ``givens``,
matching the NumPy reference step for step."""

import numpy as np
import pytest

import tinygraph as tg

pytest.importorskip("pyopencl")


def build_training_step(device, data_x, data_y, seed=0, batch=10, eta=0.1, lmbda=0.1,
                        profile=False):
    rng = np.random.default_rng(seed)
    w1 = tg.shared(rng.normal(0, 1 / np.sqrt(784), (784, 100)).astype("float32"), name="w1")
    b1 = tg.shared(np.zeros(100, "float32"), name="b1")
    w2 = tg.shared(rng.normal(0, 1 / np.sqrt(100), (100, 10)).astype("float32"), name="w2")
    b2 = tg.shared(np.zeros(10, "float32"), name="b2")
    x, y, i = tg.matrix("x"), tg.ivector("y"), tg.lscalar("i")
    hidden = tg.sigmoid(x @ w1 + b1)
    p = tg.softmax(hidden @ w2 + b2)
    n = data_x.get_value(borrow=True).shape[0]
    cost = (-tg.mean(tg.log(p)[tg.arange(y.shape[0]), y])
            + lmbda / (2 * n) * (tg.sum(w1 ** 2) + tg.sum(w2 ** 2)))
    params = [w1, b1, w2, b2]
    grads = tg.grad(cost, params)
    step = tg.function([i], cost, updates=[(p_, p_ - eta * g) for p_, g in zip(params, grads)],
                       givens={x: data_x[i * batch:(i + 1) * batch],
                               y: data_y[i * batch:(i + 1) * batch]},
                       device=device, name="train_mb", profile=profile)
    return step, params


def test_mlp_training_step_matches_numpy_and_updates_in_place():
    rng = np.random.default_rng(42)
    images = rng.random((200, 784), dtype=np.float32)
    labels = rng.integers(0, 10, 200).astype("int32")
    runs = {}
    for device in ("numpy", "opencl"):
        data_x, data_y = tg.shared(images), tg.shared(labels)
        step, params = build_training_step(device, data_x, data_y)
        costs = [float(step(j % 20)) for j in range(25)]
        runs[device] = costs, [p.get_value() for p in params], step
    np.testing.assert_allclose(runs["opencl"][0], runs["numpy"][0], rtol=1e-4)
    for got, want in zip(runs["opencl"][1], runs["numpy"][1]):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    assert runs["opencl"][0][-1] < runs["opencl"][0][0]
    source = runs["opencl"][2].kernels_source()
    assert source.count("/* GemmColumnSums{") == 1 and source.count("/* BackpropUpdate{") == 1 \
        and source.count(" in place */") == 2, \
        "each layer's weight and bias updates must be one in-place kernel (the output layer's " \
        "with the backward product)"
    assert "NumPy on the host" not in source, "every op of the step must run on the device"


def test_mlp_step_profile_lists_kernels():
    rng = np.random.default_rng(1)
    data_x = tg.shared(rng.random((40, 784), dtype=np.float32))
    data_y = tg.shared(rng.integers(0, 10, 40).astype("int32"))
    step, _ = build_training_step("opencl", data_x, data_y, profile=True)
    for j in range(3):
        step(j)
    rows = step.profile.rows()
    labels = [label for label, *_ in rows]
    assert step.profile.calls == 3
    assert all(calls % 3 == 0 for _, calls, _, _, _ in rows)
    assert any(label.startswith("GemmColumnSums{") and label.endswith(" in place")
               for label in labels)
    assert "CrossentropySoftmaxWithGrad{False}" in labels
    assert abs(sum(share for *_, share in rows) - 1) < 1e-6
    assert "train_mb" in step.profile.summary()
