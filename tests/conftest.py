"""Shared test configuration: hypothesis profiles, a known PoCL kernel cache, and the
``backend``/``compile_fn`` fixtures that run the core tests on NumPy and on OpenCL."""

import os
from pathlib import Path

os.environ.setdefault("POCL_CACHE_DIR",
                      str(Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
                          / "tinygraph" / "pocl"))

import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

import tinygraph as tg  # noqa: E402

settings.register_profile("default", max_examples=15, deadline=None, derandomize=True)
settings.register_profile("thorough", max_examples=300, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def _opencl_available() -> bool:
    try:
        from tinygraph.backends.opencl.device import select_device

        select_device("opencl")
        return True
    except Exception:  # noqa: BLE001 - any failure means: no usable OpenCL here
        return False


BACKENDS = ["numpy", pytest.param("opencl", marks=pytest.mark.skipif(
    not _opencl_available(), reason="no OpenCL platform (pip install '.[pocl]')"))]


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request):
    """The device the test's functions compile for (``config.device`` while it runs)."""
    previous = tg.config.device
    tg.config.device = request.param
    yield request.param
    tg.config.device = previous


@pytest.fixture(scope="session")
def compile_fn(backend):
    """Compile a graph (``tinygraph.function``'s signature) for the current backend. Every test
    that compiles uses this fixture (or ``backend``). Session-scoped: it holds no per-test
    state, and hypothesis tests may not use function-scoped fixtures."""
    return tg.function
