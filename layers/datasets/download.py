"""Checksummed, atomic download of a file from a list of mirrors."""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

from .errors import DatasetError

#: ``progress(file_name, bytes_received, total_bytes_or_None)``, called after each chunk.
Progress = Callable[[str, int, int | None], None]

_CHUNK = 1 << 16


def _describe(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return f"cannot connect ({exc.reason})"
    if isinstance(exc, TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}"


def _fetch(url: str, out: BinaryIO, name: str, timeout: float, progress: Progress | None) -> str:
    """Stream ``url`` into the open binary file ``out``; return the SHA-256 of the bytes."""
    digest = hashlib.sha256()
    with urllib.request.urlopen(url, timeout=timeout) as response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        received = 0
        while chunk := response.read(_CHUNK):
            out.write(chunk)
            digest.update(chunk)
            received += len(chunk)
            if progress is not None:
                progress(name, received, total)
    return digest.hexdigest()


def download_file(
    name: str,
    directory: str | os.PathLike[str],
    *,
    mirrors: Sequence[str],
    sha256: str,
    timeout: float = 30.0,
    progress: Progress | None = None,
) -> Path:
    """Download ``name`` into ``directory`` from the first mirror that serves the right bytes.

    Each mirror URL is a prefix to which ``name`` is appended. The data goes to a temporary
    file in ``directory``, is checked against ``sha256`` and only then renamed to ``name``,
    so a failed or corrupt download never leaves a file under the final name.
    """
    directory = Path(directory)
    target = directory / name
    failures = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + name
        try:
            directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".part")
        except OSError as exc:
            raise DatasetError(f"cannot write to the directory {directory}: {exc}") from exc
        try:
            with os.fdopen(fd, "wb") as out:
                got = _fetch(url, out, name, timeout, progress)
            if got != sha256.lower():
                failures.append(f"{url}: SHA-256 mismatch (got {got}, expected {sha256})")
                continue
            os.replace(tmp, target)
            return target
        except (OSError, http.client.HTTPException, ValueError) as exc:
            failures.append(f"{url}: {_describe(exc)}")
            if isinstance(exc, urllib.error.HTTPError):
                exc.close()
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    tried = "\n".join(f"  {failure}" for failure in failures) or "  (no mirrors configured)"
    raise DatasetError(f"could not download {name}; tried:\n{tried}")
