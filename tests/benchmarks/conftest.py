"""The device the OpenCL benchmarks' tests time on."""

import pytest


@pytest.fixture
def opencl_device(backend):
    """tinygraph's choice of OpenCL device (a ``DeviceChoice``); the NumPy run skips."""
    if backend != "opencl":
        pytest.skip("the benchmark times OpenCL")
    from tinygraph.backends.opencl.device import select_device

    return select_device("opencl")
