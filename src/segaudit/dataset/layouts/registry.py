"""The known layouts, in the order detection tries them, and the entry point that tries them.

The first layout whose detector recognises the folder wins; the order matters where two could match (an
nnU-Net folder also holds ``imagesTr/<case>_0000.nii.gz`` case files, a 2D ``images/`` folder may sit beside
3D case folders). A new layout is one new module in this package with a ``LAYOUT`` record, listed here.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from segaudit.dataset.layouts import audit, brainmetshare, case_folders, flat2d, nnunet
from segaudit.dataset.layouts._base import Detection, Layout, UnknownLayoutError
from segaudit.dataset.layouts.longitudinal import propose_subjects
from segaudit.dataset.layouts.skeleton import propose_skeleton
from segaudit.errors import ConfigError

#: Every known layout, in detection order.
LAYOUTS: tuple[Layout, ...] = (nnunet.LAYOUT, audit.LAYOUT, brainmetshare.LAYOUT, flat2d.LAYOUT,
                               case_folders.LAYOUT)



def detect_layout(data_dir: str | Path, layouts: Sequence[Layout] = LAYOUTS) -> Detection:
    """Propose a project for ``data_dir`` with the first of ``layouts`` that recognises it.

    Parameters
    ----------
    data_dir:
        The data folder, as it lies on disk (never written).
    layouts:
        Layouts to try, in order (default :data:`LAYOUTS`); the first whose detector returns True wins.

    Returns
    -------
    Detection
        The proposal; paths in it are absolute (:func:`relativize` makes them
        relative to where the file is written).

    Raises
    ------
    ConfigError
        ``data_dir`` is not a folder.
    UnknownLayoutError
        No layout fits; the error carries a skeleton proposal inferred from the files found.
    """
    data_dir = Path(data_dir).expanduser().resolve()
    if not data_dir.is_dir():
        raise ConfigError(f"{data_dir}: not a folder")
    det = Detection(project={"datasets": {}})
    found = any(layout.detect(data_dir, det) for layout in layouts)  # any() stops at the first that fits
    if not found:
        skeleton = propose_skeleton(data_dir)
        looked = [layout.looks_for for layout in layouts]
        listed = ", ".join(looked[:-1]) + ", and " + looked[-1] if len(looked) > 1 else "".join(looked)
        raise UnknownLayoutError(
            f"{data_dir}: no known layout found (looked for {listed}); found: "
            + "; ".join(n.strip() for n in skeleton.notes[:6])
            + ". `segaudit init` writes a skeleton project file with templates inferred from these files",
            skeleton)
    for entry in det.project["datasets"].values():
        meta = entry.get("metadata")
        if meta and not os.path.isabs(meta["path"]):
            meta["path"] = os.path.join(entry["root"], meta["path"])
    propose_subjects(data_dir, det)
    return det


def relativize(project: dict, base_dir: str | Path) -> dict:
    """Copy of a detected project with roots and metadata paths relative to ``base_dir`` where possible."""
    base = os.fspath(Path(base_dir).resolve())
    out: dict[str, dict] = {"datasets": {}}
    for name, entry in project["datasets"].items():
        e = dict(entry)
        for key in ("root",):
            e[key] = _rel(e[key], base)
        if "metadata" in e:
            e["metadata"] = dict(e["metadata"], path=_rel(e["metadata"]["path"], base))
        out["datasets"][name] = e
    return out


def _rel(path: str, base: str) -> str:
    try:
        rel = os.path.relpath(path, base)
    except ValueError:  # another drive on Windows
        return path
    return path if rel.startswith(".." + os.sep + "..") else rel
