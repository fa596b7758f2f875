"""Atomic output files: a file appears whole or not at all, never half-written after a crash or an error."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: str | Path, writer: Callable[[str], object]) -> Path:
    """Call ``writer(tmp)`` on a temporary path in ``path``'s folder, then rename it onto ``path``.

    The temporary name keeps ``path``'s suffix (writers that infer a format from it still work). On any error
    the temporary file is removed and ``path`` is left as it was. Returns ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        writer(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write text to ``path`` through a temporary file in the same folder and an atomic rename."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))
