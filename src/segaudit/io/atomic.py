"""Atomic output files: a file appears whole or not at all, never half-written after a crash or an error.

A file is written under a hidden temporary name in its own folder, then renamed onto its target. The temporary
name is ``.segaudit-tmp.<pid>.<name>.<random><suffix>`` (dot-prefixed, so it never looks like a result and
shell globs such as ``*.csv`` skip it; the suffix is kept for writers that infer a format from it). A process
killed mid-write leaves such a file behind: the next write into that folder removes the ones whose writing
process is gone (:func:`clean_stale_temporaries`). The finished file gets the permissions the umask gives any
new file (``0o666 & ~umask``), not the ``0600`` of :func:`tempfile.mkstemp`.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

TEMP_PREFIX = ".segaudit-tmp."
# .segaudit-tmp.<pid>.<target name>.<mkstemp's random part><suffix>: the pid says whose it is.
_TEMP_RE = re.compile(r"^\.segaudit-tmp\.(\d+)\..+$")
#: When this module was imported: a temporary file older than that was not written by this process's writes.
PROCESS_START = time.time()
_cleaned: set[str] = set()


def current_umask() -> int:
    """The process's umask (e.g. ``0o022``).

    Read from ``/proc/self/status`` on Linux (no side effect); elsewhere set and restored at once with
    :func:`os.umask` (the only portable way to read it).
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def default_mode() -> int:
    """Permission bits of a new regular file under the current umask: ``0o666 & ~umask``."""
    return 0o666 & ~current_umask()


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this host (a process we may not signal still exists).

    Signal 0 checks without signalling. On Windows, where :func:`os.kill` would terminate the process, the
    answer is always True (unknown, so nothing is treated as abandoned).
    """
    if pid <= 0:
        return False
    if os.name == "nt":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def is_stale_temporary(path: Path, now_pid: int | None = None, started: float | None = None) -> bool:
    """Whether ``path`` is a temporary file of :func:`atomic_write` left by a writer that is gone.

    True only for our own name pattern (``.segaudit-tmp.<pid>.…``), older than this process
    (:data:`PROCESS_START`), whose writing process no longer exists, or has this process's id (a process
    of an earlier boot or an id reused since). A live writer's file is never touched.
    """
    m = _TEMP_RE.match(path.name)
    if not m:
        return False
    now_pid = os.getpid() if now_pid is None else now_pid
    started = PROCESS_START if started is None else started
    try:
        if path.lstat().st_mtime >= started:
            return False
    except OSError:
        return False
    pid = int(m.group(1))
    return pid == now_pid or not pid_alive(pid)


def clean_stale_temporaries(folder: str | Path) -> list[Path]:
    """Remove the temporary files a killed :func:`atomic_write` left in ``folder``; returns those removed.

    Only plain files matching :func:`is_stale_temporary` are removed; anything else in the folder is left alone.
    """
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(TEMP_PREFIX) or not entry.is_file(follow_symlinks=False):
            continue
        p = Path(entry.path)
        if is_stale_temporary(p):
            try:
                p.unlink()
                removed.append(p)
            except OSError:
                pass
    return removed


def atomic_write(path: str | Path, writer: Callable[[str], object]) -> Path:
    """Call ``writer(tmp)`` on a hidden temporary path in ``path``'s folder, then rename it onto ``path``.

    The temporary name keeps ``path``'s suffix (writers that infer a format from it still work). On any error
    the temporary file is removed and ``path`` is left as it was. The result has mode ``0o666 & ~umask``.
    The first write into a folder in this process removes the temporaries of killed writers there. Returns
    ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    folder = str(path.parent.resolve())
    if folder not in _cleaned:
        clean_stale_temporaries(folder)
        _cleaned.add(folder)
    fd, tmp = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{os.getpid()}.{path.name}.", suffix=path.suffix,
                               dir=path.parent)
    os.close(fd)
    try:
        writer(tmp)
        os.chmod(tmp, default_mode())  # mkstemp makes 0600; the writer may also have replaced the file
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write text to ``path`` through a temporary file in the same folder and an atomic rename."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))
