"""Which vector instructions the compute-bound kernels are written for on a device, and the
source that gets a body function compiled for AVX-512 by attribute."""

from __future__ import annotations

import pathlib
import types

import numpy as np
import pyopencl as cl
import pytest

from tinygraph.backends.opencl import backprop_update, gemm
from tinygraph.backends.opencl import vector_target as vt

POCL = types.SimpleNamespace(name="Portable Computing Language")


def fake_device(name, platform=POCL, kind=cl.device_type.CPU):
    return types.SimpleNamespace(name=name, platform=platform, type=kind)


@pytest.mark.parametrize("cpu_avx512", [True, False])
def test_a_device_compiling_for_avx512_needs_no_attribute(cpu_avx512, monkeypatch):
    monkeypatch.setattr(vt, "cpu_has_avx512", lambda: cpu_avx512)
    device = fake_device("pthread-skylake-avx512-AMD EPYC 9R14")
    assert vt.vector_bits(device) == 512
    assert not vt.needs_avx512_attribute(device, 512)
    assert not vt.needs_avx512_attribute(device, 256)


def test_pocl_compiling_for_avx2_reaches_avx512_by_attribute(monkeypatch):
    monkeypatch.setattr(vt, "cpu_has_avx512", lambda: True)
    device = fake_device("pthread-AMD EPYC 9R14")
    assert vt.vector_bits(device) == 512
    assert vt.needs_avx512_attribute(device, 512)
    assert not vt.needs_avx512_attribute(device, 256)


def test_no_attribute_without_avx512_in_the_cpu(monkeypatch):
    monkeypatch.setattr(vt, "cpu_has_avx512", lambda: False)
    device = fake_device("pthread-AMD EPYC 9R14")
    assert vt.vector_bits(device) == 256
    assert not vt.needs_avx512_attribute(device, 512)


@pytest.mark.parametrize("device", [
    fake_device("NVIDIA GeForce", types.SimpleNamespace(name="NVIDIA CUDA"), cl.device_type.GPU),
    fake_device("pthread-AMD EPYC", types.SimpleNamespace(name="Other CPU OpenCL")),
    fake_device("pocl GPU", POCL, cl.device_type.GPU),
    types.SimpleNamespace(extensions=""),
], ids=["gpu", "other-cpu-platform", "pocl-non-cpu", "bare"])
def test_only_pocl_cpu_devices_get_the_attribute(device, monkeypatch):
    monkeypatch.setattr(vt, "cpu_has_avx512", lambda: True)
    assert vt.vector_bits(device) == 256
    assert not vt.needs_avx512_attribute(device, 512)


def test_cpu_detection_agrees_with_the_kernel():
    cpuinfo = pathlib.Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        pytest.skip("needs Linux's /proc/cpuinfo")
    flags = set()
    for line in cpuinfo.read_text().splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
    assert vt.cpu_has_avx512() == all(name in flags for name in vt.AVX512_FEATURES)


def test_real_pocl_devices():
    """Debian's PoCL names its AVX-512 target; the pip PoCL needs the attribute on an
    AVX-512 CPU."""
    devices = [d for p in cl.get_platforms() if "Portable" in p.name
               for d in p.get_devices(cl.device_type.CPU)]
    if not devices:
        pytest.skip("needs the PoCL CPU platform")
    for device in devices:
        native = "avx512" in device.name.lower()
        assert vt.needs_avx512_attribute(device, 512) == (not native and vt.cpu_has_avx512())
        assert vt.vector_bits(device) == (512 if native or vt.cpu_has_avx512() else 256)


def test_epilogues_wider_than_256_bits_are_split_in_halves():
    lines = vt.epilogue_overloads("float", {16, 4}, lambda t: f", {t} e0", "v * e0")
    assert lines == [
        "inline float4 __attribute__((overloadable)) epilogue(float4 v, float4 e0)"
        " { return v * e0; }",
        "inline float8 __attribute__((overloadable)) epilogue(float8 v, float8 e0)"
        " { return v * e0; }",
        "inline float16 __attribute__((overloadable)) epilogue(float16 v, float16 e0)"
        " { return (float16)(epilogue(v.lo, e0.lo), epilogue(v.hi, e0.hi)); }",
    ]
    lines = vt.epilogue_overloads("double", {1, 8}, lambda t: "", "exp(v)")
    assert lines == [
        "inline double __attribute__((overloadable)) epilogue(double v) { return exp(v); }",
        "inline double4 __attribute__((overloadable)) epilogue(double4 v) { return exp(v); }",
        "inline double8 __attribute__((overloadable)) epilogue(double8 v)"
        " { return (double8)(epilogue(v.lo), epilogue(v.hi)); }",
    ]


def test_kernel_calls_its_body_with_its_arguments():
    params = "__global const float *A, const int a_off, const float alpha"
    assert vt.argument_names(params) == "A, a_off, alpha"
    assert vt.kernel_calling_body("k", params, "A, a_off, alpha") == [
        f"__kernel void k({params}) {{ k_body(A, a_off, alpha, get_global_id(0)); }}"]
    assert vt.body_header("k", params, False) == f"static inline void k_body({params}, " \
        "const int item)"
    assert "noinline" in vt.body_header("k", params, True)


@pytest.mark.parametrize("source", [
    lambda attribute: gemm.program_source(np.float32, True, False, True, "exp(v)", 512, 1,
                                          "o0 - s", 1, attribute),
    lambda attribute: backprop_update.program_source(np.float64, 10, "v * e0", 1, "o0 - s", 1,
                                                     512, True, attribute),
    lambda attribute: backprop_update.program_source(np.float32, 30, None, 0, "s", 0, 512,
                                                     False, attribute),
], ids=["gemm", "backprop_update", "update_only"])
def test_attribute_covers_the_bodies_and_not_the_kernels(source):
    plain, marked = source(False), source(True)
    assert "#pragma clang attribute" not in plain and "noinline" not in plain
    lines = marked.splitlines()
    push = lines.index(next(line for line in lines if line.startswith("#pragma clang attribute "
                                                                      "push")))
    pop = lines.index("#pragma clang attribute pop")
    assert f'target("{",".join(vt.AVX512_FEATURES)}")' in lines[push]
    inside, after = lines[push:pop], lines[pop:]
    bodies = [line for line in inside if line.startswith("static __attribute__((noinline))")]
    assert bodies and not any(line.startswith("__kernel") for line in inside)
    assert any("epilogue(" in line for line in inside)
    called = {line.split("{ ")[1].split("(")[0] for line in after
              if line.startswith("__kernel") and "_body(" in line}
    assert called == {line.split()[3].split("(")[0] for line in bodies}
    # the pack kernels (memory-bound) are compiled as the device compiles by default
    packs = [line for line in after if line.startswith("__kernel void pack")]
    assert all("_body(" not in line for line in packs)
    assert bool(packs) == ("pack_" in plain)
