"""Output paths built from data.

Every name that comes from a file (dataset, case, sequence, model) goes through :func:`safe_component` before it becomes
part of a path, and every such path is checked with :func:`inside` to stay under its output folder.

Names in project files, nnU-Net ``dataset.json`` files and AUDIT tables are written by whoever made the data;
``../../x``, ``/etc/x`` or ``a/b`` must never let them choose where segaudit writes.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from segaudit.errors import SegauditError

# Characters kept as they are; everything else (separators, NUL, newlines, spaces, quotes, ...) becomes "_".
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]")
# Device names Windows refuses as file names, with or without an extension.
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}
_MAX_LEN = 120


def safe_component(name: object) -> str:
    """A single file-name component made from a name that came from data.

    Definition: characters outside ``A-Z a-z 0-9 . _ + -`` become ``_``; leading and trailing dots are removed
    (no ``.``/``..``, no hidden files); an empty result becomes ``_``; Windows device names (``con``, ``nul``,
    ``com1`` ...) get a leading ``_``; the result is at most 120 characters. Whenever the name had to change,
    ``-`` and the first 8 hex digits of the SHA-256 of the original name are appended, so two different names
    never map to the same component (``a/b`` -> ``a_b-<hash>``, while ``a_b`` stays ``a_b``).

    Parameters
    ----------
    name:
        Any value; converted with ``str``.

    Returns
    -------
    str
        A non-empty name without path separators that is not ``.``, ``..`` or absolute; names that are
        already safe are returned unchanged.
    """
    text = str(name)
    out = _UNSAFE.sub("_", text).strip(".")
    if not out:
        out = "_"
    if out.split(".", 1)[0].lower() in _RESERVED:
        out = "_" + out
    out = out[:_MAX_LEN]
    if out != text:
        out = f"{out}-{hashlib.sha256(text.encode('utf-8', 'surrogatepass')).hexdigest()[:8]}"
    return out


def inside(out_dir: str | Path, path: str | Path) -> Path:
    """``path`` if it stays under ``out_dir`` once both are resolved (symbolic links followed), else an error.

    Raises
    ------
    SegauditError
        Naming both the path and the output folder.
    """
    root = Path(out_dir).resolve()
    target = Path(path)
    resolved = (target if target.is_absolute() else Path.cwd() / target).resolve()
    if resolved != root and root not in resolved.parents:
        raise SegauditError(f"{path}: refusing to write outside the output folder {out_dir} (resolves to "
                            f"{resolved})")
    return target


def output_path(out_dir: str | Path, *names: object, suffix: str = "") -> Path:
    """``out_dir / safe(name1) / ... / safe(nameN)+suffix``, checked to stay under ``out_dir``.

    ``suffix`` (e.g. ``".csv"``) is a fixed string of the caller's, appended to the last component unchanged.
    """
    parts = [safe_component(n) for n in names]
    if suffix and parts:
        parts[-1] += suffix
    return inside(out_dir, Path(out_dir).joinpath(*parts))
