"""Build each OpenCL program once per process and hand out fresh kernel objects.

Programs are cached in memory per context, keyed by ``(source, options)``. PoCL additionally
caches compiled kernels on disk in ``POCL_CACHE_DIR`` (else ``$XDG_CACHE_HOME/pocl/kcache``, else
``~/.cache/pocl``); tinygraph does not override that variable, but its tests and CI set it.

Compiler warnings are hidden unless ``PYOPENCL_COMPILER_OUTPUT=1``; a failed build raises
:class:`KernelBuildError` with the build log and the source lines around the first error.
"""

from __future__ import annotations

import os
import re
import warnings

try:
    import pyopencl as cl
except ImportError:  # device.select_device reports the missing package with an install hint
    cl = None

_ERROR_LOCATION = re.compile(r":(\d+):\d+:")
_CONTEXT_LINES = 3
_HEAD_LINES = 12


class KernelBuildError(RuntimeError):
    """An OpenCL program failed to build; the message holds the log and the offending source."""

    def __init__(self, log: str, source: str, options: str) -> None:
        self.log = log
        self.source = source
        self.options = options
        with_options = f" with options {options!r}" if options else ""
        super().__init__(
            f"OpenCL program failed to build{with_options}:\n{log.rstrip()}\n"
            f"{_source_excerpt(source, log)}"
        )


def _source_excerpt(source: str, log: str) -> str:
    """The numbered source lines around the first error the log locates, else the first lines."""
    lines = source.splitlines()
    error_lines = [line for line in log.splitlines() if "error" in line]
    match = next(filter(None, map(_ERROR_LOCATION.search, error_lines)), None)
    if match is None or not 1 <= int(match.group(1)) <= len(lines):
        first, last, mark = 1, min(len(lines), _HEAD_LINES), 0
        title = f"source (first {last} lines):"
    else:
        mark = int(match.group(1))
        first, last = max(1, mark - _CONTEXT_LINES), min(len(lines), mark + _CONTEXT_LINES)
        title = f"source around line {mark}:"
    body = [
        f"{'>' if n == mark else ' '} {n:4d} | {lines[n - 1]}" for n in range(first, last + 1)
    ]
    return "\n".join([title, *body])


def _show_compiler_output() -> bool:
    value = os.environ.get("PYOPENCL_COMPILER_OUTPUT", "")
    return value.strip().lower() in {"1", "true", "yes", "on", "y", "t"}


class ProgramCache:
    """Programs built for one context, keyed by ``(source, options)``; ``builds`` counts builds."""

    def __init__(self, context: cl.Context) -> None:
        self.context = context
        self.builds = 0
        self._programs: dict[tuple[str, str], cl.Program] = {}

    def __len__(self) -> int:
        return len(self._programs)

    def build(self, context: cl.Context, source: str, options: str = "") -> cl.Program:
        """The program for ``source`` built with ``options``, built on first request only."""
        if context != self.context:
            raise ValueError("ProgramCache.build: this cache belongs to a different cl.Context")
        key = (source, options)
        program = self._programs.get(key)
        if program is None:
            program = self._build(source, options)
            self._programs[key] = program
            self.builds += 1
        return program

    def kernel(self, source: str, name: str, options: str = "") -> cl.Kernel:
        """A new ``cl.Kernel`` for ``name`` from the cached program (kernels carry their args)."""
        program = self.build(self.context, source, options)
        try:
            return cl.Kernel(program, name)
        except cl.LogicError as exc:
            names = ", ".join(sorted(program.kernel_names.split(";")))
            raise ValueError(f"no kernel {name!r} in the program; it defines: {names}") from exc

    def clear(self) -> None:
        """Drop every cached program (the count of builds is kept)."""
        self._programs.clear()

    def _build(self, source: str, options: str) -> cl.Program:
        program = cl.Program(self.context, source)
        with warnings.catch_warnings():
            if not _show_compiler_output():
                warnings.simplefilter("ignore", cl.CompilerWarning)
            try:
                return program.build(options)
            except cl.RuntimeError as exc:
                log = "\n".join(
                    program.get_build_info(device, cl.program_build_info.LOG).strip()
                    for device in self.context.devices
                )
                raise KernelBuildError(log.strip() or str(exc), source, options) from exc
