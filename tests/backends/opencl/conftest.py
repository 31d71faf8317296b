"""Makes the test-only kernel runner importable as ``tg_kernel_runner`` (the suite runs with
``--import-mode=importlib``, so test directories are not packages), and gives the tests of
planned kernels each PoCL platform in turn (``pocl_platform``)."""

import importlib.util
import sys
from pathlib import Path

import pyopencl as cl
import pytest

if "tg_kernel_runner" not in sys.modules:
    _spec = importlib.util.spec_from_file_location(
        "tg_kernel_runner", Path(__file__).with_name("kernel_runner.py"))
    sys.modules["tg_kernel_runner"] = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(sys.modules["tg_kernel_runner"])

POCL = [p for p in cl.get_platforms() if "Portable Computing Language" in p.name]


@pytest.fixture(scope="module", params=range(len(POCL)) or [None], ids=lambda i: f"pocl{i}")
def pocl_platform(request):
    """Each PoCL CPU platform (Debian's and the pip one, when both are installed)."""
    if request.param is None:
        pytest.skip("needs the PoCL CPU platform")
    return POCL[request.param]
