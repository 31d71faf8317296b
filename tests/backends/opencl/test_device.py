"""Device selection, the per-device runtime and the program cache of the OpenCL backend."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pyopencl as cl
import pytest

from tinygraph import config
from tinygraph.backends.opencl import (
    KernelBuildError,
    OpenCLUnavailableError,
    device_info,
    get_context,
    select_device,
)
from tinygraph.backends.opencl import device as dev

POCL = "Portable Computing Language"
PIP_POCL = "OpenCL 3.0 PoCL 3.0-rc2  Linux, Release, RELOC, LLVM 14.0.6, SLEEF, DISTRO"
DEBIAN_POCL = "OpenCL 3.0 PoCL 3.1+debian  Linux, None+Asserts, RELOC, LLVM 15.0.6, SLEEF"

FILL = """
__kernel void fill(__global float *x, const float value) {
  x[get_global_id(0)] = value + get_global_id(0);
}
"""


class FakeDevice:
    def __init__(self, name: str, kind: int = cl.device_type.CPU) -> None:
        self.name = name
        self.type = kind


class FakePlatform:
    def __init__(self, name: str, version: str, devices: list[FakeDevice] | None = None) -> None:
        self.name = name
        self.version = version
        self._devices = devices

    def get_devices(self) -> list[FakeDevice]:
        if not self._devices:
            raise cl.RuntimeError("clGetDeviceIDs failed: DEVICE_NOT_FOUND")
        return self._devices


def fake_platforms(monkeypatch, *platforms: FakePlatform) -> None:
    monkeypatch.setattr(cl, "get_platforms", lambda: list(platforms))


def pocl(version: str, device: str = "cpu") -> FakePlatform:
    return FakePlatform(POCL, version, [FakeDevice(device)])


@pytest.fixture(scope="module")
def runtime():
    try:
        return get_context()
    except OpenCLUnavailableError as exc:
        pytest.skip(f"no OpenCL platform in this environment: {exc}")


# Spec parsing and the selection rule, on fake platforms


@pytest.mark.parametrize(
    "spec, expected", [("opencl", None), ("opencl:0:0", (0, 0)), ("opencl:12:3", (12, 3))]
)
def test_parse_spec(spec, expected):
    assert dev._parse_spec(spec) == expected


@pytest.mark.parametrize(
    "spec", ["", "numpy", "OpenCL", "opencl:", "opencl:0", "opencl:a:b", "opencl:-1:0",
             "opencl:0:0:0", " opencl", None]
)
def test_bad_spec_says_what_is_expected(spec):
    with pytest.raises(ValueError, match="'opencl' or 'opencl:P:D'"):
        select_device(spec)


def test_pocl_versions_order():
    versions = ["OpenCL 1.2 pocl 1.8", PIP_POCL, "OpenCL 3.0 PoCL 3.0", DEBIAN_POCL,
                "OpenCL 3.0 PoCL 3.1.1", "OpenCL 3.0 PoCL 6.0-pre main"]
    parsed = [dev._pocl_version(v) for v in versions]
    assert parsed == sorted(parsed)
    assert len(set(parsed)) == len(parsed)
    assert dev._pocl_version("OpenCL 3.0 CUDA 12.4.131") is None


@pytest.mark.parametrize("debian_first", [True, False])
def test_newest_pocl_wins_whatever_the_order(monkeypatch, debian_first):
    platforms = [pocl(DEBIAN_POCL, "debian cpu"), pocl(PIP_POCL, "pip cpu")]
    fake_platforms(monkeypatch, *(platforms if debian_first else platforms[::-1]))
    choice = select_device()
    assert choice.device.name == "debian cpu"
    assert choice.platform_index == (0 if debian_first else 1)
    assert "PoCL 3.1" in choice.rule


def test_equal_pocl_versions_go_to_the_first_platform(monkeypatch):
    fake_platforms(monkeypatch, pocl(PIP_POCL, "first"), pocl(PIP_POCL, "second"))
    assert select_device().device.name == "first"


def test_pocl_beats_other_cpu_platforms(monkeypatch):
    intel = FakePlatform("Intel(R) OpenCL", "OpenCL 3.0 WINDOWS", [FakeDevice("intel cpu")])
    fake_platforms(monkeypatch, intel, pocl(PIP_POCL, "pocl cpu"))
    assert select_device().device.name == "pocl cpu"


def test_first_cpu_without_pocl(monkeypatch):
    fake_platforms(
        monkeypatch,
        FakePlatform("A", "OpenCL 3.0 A", [FakeDevice("a cpu")]),
        FakePlatform("B", "OpenCL 3.0 B", [FakeDevice("b cpu")]),
    )
    choice = select_device()
    assert choice.device.name == "a cpu"
    assert "no PoCL platform" in choice.rule


def test_a_gpu_wins(monkeypatch):
    gpu = FakePlatform("NVIDIA CUDA", "OpenCL 3.0 CUDA", [FakeDevice("gpu", cl.device_type.GPU)])
    fake_platforms(monkeypatch, pocl(DEBIAN_POCL), pocl(PIP_POCL), gpu)
    choice = select_device("opencl")
    assert (choice.device.name, choice.spec) == ("gpu", "opencl:2:0")
    assert "GPU" in choice.rule


def test_explicit_spec(monkeypatch):
    fake_platforms(monkeypatch, pocl(DEBIAN_POCL, "debian cpu"), pocl(PIP_POCL, "pip cpu"))
    choice = select_device("opencl:1:0")
    assert choice.device.name == "pip cpu"
    assert choice.rule == "explicit spec 'opencl:1:0'"


@pytest.mark.parametrize("spec", ["opencl:2:0", "opencl:0:1"])
def test_out_of_range_lists_the_devices(monkeypatch, spec):
    fake_platforms(monkeypatch, pocl(DEBIAN_POCL, "debian cpu"), pocl(PIP_POCL, "pip cpu"))
    with pytest.raises(ValueError) as info:
        select_device(spec)
    message = str(info.value)
    for text in (spec, "platform 0", "platform 1", "PoCL 3.1+debian", "PoCL 3.0-rc2",
                 "opencl:0:0  debian cpu (CPU)", "opencl:1:0  pip cpu (CPU)"):
        assert text in message


def _no_platform(monkeypatch, how: str) -> None:
    if how == "raises":
        def get_platforms():
            raise cl.LogicError("clGetPlatformIDs failed: PLATFORM_NOT_FOUND_KHR")

        monkeypatch.setattr(cl, "get_platforms", get_platforms)
    elif how == "empty":
        fake_platforms(monkeypatch)
    elif how == "no devices":
        fake_platforms(monkeypatch, FakePlatform(POCL, PIP_POCL))
    else:
        monkeypatch.setattr(dev, "cl", None)
        monkeypatch.setattr(dev, "_IMPORT_ERROR", "no pyopencl (test)", raising=False)


@pytest.mark.parametrize("how", ["raises", "empty", "no devices", "no pyopencl"])
def test_no_platform_says_how_to_fix_it(monkeypatch, how):
    _no_platform(monkeypatch, how)
    with pytest.raises(OpenCLUnavailableError) as info:
        select_device()
    message = str(info.value)
    for hint in ('pip install "pyopencl[pocl]"', 'pip install ".[pocl]"',
                 "apt-get install pocl-opencl-icd", "TINYGRAPH_DEVICE=numpy",
                 'tinygraph.config.device = "numpy"'):
        assert hint in message
    assert isinstance(info.value, RuntimeError)


def test_device_info_for_numpy_without_opencl(monkeypatch):
    _no_platform(monkeypatch, "empty")
    text = device_info("numpy")
    assert "NumPy backend" in text and "OpenCL is unavailable" in text


# The real device


def test_runtime_is_cached_per_device(runtime):
    assert get_context() is runtime
    assert get_context(runtime.choice.spec) is runtime
    assert runtime.choice.device == runtime.device


def test_build_and_run_with_explicit_local_size(runtime):
    kernel = runtime.program_cache.kernel(FILL, "fill")
    out = cl.Buffer(runtime.context, cl.mem_flags.WRITE_ONLY, 64 * 4)
    kernel.set_args(out, np.float32(0.5))
    cl.enqueue_nd_range_kernel(runtime.queue, kernel, (64,), (16,))
    result = np.empty(64, np.float32)
    cl.enqueue_copy(runtime.queue, result, out)
    np.testing.assert_array_equal(result, np.arange(64, dtype=np.float32) + 0.5)


def test_program_cache_builds_once_and_hands_out_new_kernels(runtime):
    cache = dev.ProgramCache(runtime.context)
    first = cache.kernel(FILL, "fill")
    second = cache.kernel(FILL, "fill")
    assert cache.build(runtime.context, FILL) is cache.build(runtime.context, FILL)
    assert cache.builds == 1 and len(cache) == 1
    assert first is not second
    cache.kernel(FILL, "fill", "-DUNUSED=1")
    assert cache.builds == 2


def test_two_kernels_of_one_program_keep_their_own_arguments(runtime):
    kernels = [runtime.program_cache.kernel(FILL, "fill") for _ in range(2)]
    outs = [cl.Buffer(runtime.context, cl.mem_flags.WRITE_ONLY, 16 * 4) for _ in kernels]
    for kernel, out, value in zip(kernels, outs, (1.0, 2.0)):
        kernel.set_args(out, np.float32(value))
    for kernel in kernels:
        cl.enqueue_nd_range_kernel(runtime.queue, kernel, (16,), (16,))
    for out, value in zip(outs, (1.0, 2.0)):
        result = np.empty(16, np.float32)
        cl.enqueue_copy(runtime.queue, result, out)
        np.testing.assert_array_equal(result, np.arange(16, dtype=np.float32) + value)


def test_build_error_shows_log_and_source(runtime):
    source = "__kernel void f(__global float *x) {\n  int i = get_global_id(0);\n  x[i] = y;\n}\n"
    with pytest.raises(KernelBuildError) as info:
        runtime.program_cache.kernel(source, "f", "-DSOMETHING")
    message = str(info.value)
    assert "undeclared identifier 'y'" in message
    assert "source around line 3" in message and ">    3 |   x[i] = y;" in message
    assert "-DSOMETHING" in message


def test_unknown_kernel_name_lists_the_kernels(runtime):
    with pytest.raises(ValueError, match="no kernel 'fil' in the program; it defines: fill"):
        runtime.program_cache.kernel(FILL, "fil")


def test_build_refuses_another_context(runtime):
    with pytest.raises(ValueError, match="different cl.Context"):
        runtime.program_cache.build(cl.Context([runtime.device]), FILL)


@pytest.mark.parametrize("show", [False, True])
def test_compiler_warnings_hidden_unless_asked(runtime, monkeypatch, show):
    monkeypatch.setenv("PYOPENCL_COMPILER_OUTPUT", "1" if show else "0")
    source = f"#warning shown={show}\n{FILL}"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dev.ProgramCache(runtime.context).kernel(source, "fill")
    compiler = [w for w in caught if issubclass(w.category, cl.CompilerWarning)]
    assert bool(compiler) == show


def test_fp64_detection(runtime, monkeypatch):
    assert runtime.has_fp64 == ("cl_khr_fp64" in runtime.device.extensions.split())
    monkeypatch.setattr(runtime, "has_fp64", True)
    runtime.require_fp64("Exp(float64)")
    monkeypatch.setattr(runtime, "has_fp64", False)
    with pytest.raises(TypeError, match=r"Exp\(float64\) needs float64.*cl_khr_fp64"):
        runtime.require_fp64("Exp(float64)")


def test_queues(runtime):
    props = cl.command_queue_properties
    assert runtime.queue_for(False) is runtime.queue
    profiling = runtime.queue_for(profiling=True)
    assert profiling is runtime.queue_for(True)
    assert profiling.properties & props.PROFILING_ENABLE
    assert not profiling.properties & props.OUT_OF_ORDER_EXEC_MODE_ENABLE
    unordered = runtime.queue_for(out_of_order=True)
    assert bool(unordered.properties & props.OUT_OF_ORDER_EXEC_MODE_ENABLE) == (
        runtime.supports_out_of_order
    )


def test_device_info_mentions_the_device(runtime, monkeypatch):
    text = device_info("opencl")
    name = " ".join(runtime.device.name.split())
    for part in (name, runtime.choice.spec, "compute units", "GiB global memory",
                 "max allocation", "float64", "default rule"):
        assert part in text
    monkeypatch.setattr(config, "device", runtime.choice.spec)
    assert "explicit spec" in device_info()
    monkeypatch.setattr(config, "device", "numpy")
    assert device_info().startswith("NumPy backend") and name in device_info()


def test_clean_exit_after_uncaught_exception(runtime, tmp_path):
    script = tmp_path / "crash.py"
    script.write_text(textwrap.dedent(f"""
        import numpy as np, pyopencl as cl
        from tinygraph.backends.opencl import get_context
        rt = get_context()
        kernel = rt.program_cache.kernel({FILL!r}, "fill")
        out = cl.Buffer(rt.context, cl.mem_flags.WRITE_ONLY, 1 << 20)
        kernel.set_args(out, np.float32(1))
        cl.enqueue_nd_range_kernel(rt.queue_for(out_of_order=True), kernel, (1 << 18,), (64,))
        raise SystemError("uncaught on purpose")
    """))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
    assert done.returncode == 1, done.stderr
    assert "uncaught on purpose" in done.stderr
