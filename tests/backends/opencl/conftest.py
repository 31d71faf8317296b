"""Makes the test-only kernel runner importable as ``tg_kernel_runner`` (the suite runs with
``--import-mode=importlib``, so test directories are not packages)."""

import importlib.util
import sys
from pathlib import Path

if "tg_kernel_runner" not in sys.modules:
    _spec = importlib.util.spec_from_file_location(
        "tg_kernel_runner", Path(__file__).with_name("kernel_runner.py"))
    sys.modules["tg_kernel_runner"] = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(sys.modules["tg_kernel_runner"])
