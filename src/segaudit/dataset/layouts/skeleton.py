"""A skeleton project for a folder no known layout fits: templates inferred from the case folders' files."""

from __future__ import annotations

import os
from pathlib import Path

from segaudit.dataset.layouts._base import Detection, convention_for, list_files, list_subdirs, sniff_values
from segaudit.dataset.layouts.longitudinal import infer_longitudinal
from segaudit.io.readers import RASTER_SUFFIXES

_SEP = "_-."
_PRED_WORDS = ("pred", "output", "result", "fusion", "model", "infer")
_GT_WORDS = ("label", "mask", "seg", "gt", "truth", "annotation", "manual")


def _common_affixes(names: list[str]) -> tuple[str, str]:
    """Common prefix and suffix of names, cut at a separator (``_``, ``-``, ``.``) so no token is split."""
    if len(names) == 1:
        return names[0], ""
    pre = os.path.commonprefix(names)
    suf = os.path.commonprefix([n[::-1] for n in names])[::-1]
    shortest = min(len(n) for n in names)
    while pre and pre[-1] not in _SEP and not pre.endswith("}"):
        pre = pre[:-1]
    while suf and suf[0] not in _SEP:
        suf = suf[1:]
    if len(pre) + len(suf) > shortest:
        suf = suf[len(pre) + len(suf) - shortest:]
    return pre, suf


def _role_of(folder: str, name: str) -> str:
    word = (folder or name).lower()
    if any(w in word for w in _PRED_WORDS):
        return "prediction"
    if any(w in word for w in _GT_WORDS):
        return "ground_truth"
    return "image"


def _image_like(p: Path) -> bool:
    n = p.name.lower()
    return n.endswith((".nii", ".nii.gz", ".npy", ".npz")) or n.endswith(RASTER_SUFFIXES)


def propose_skeleton(data_dir: str | Path, max_cases: int = 50) -> Detection:
    """A skeleton project for an unknown layout: templates inferred from the case folders' files.

    Each sub-folder of ``data_dir`` is taken as a case. Inside it, files are grouped by their folder (relative
    to the case); the case id in names becomes ``{case}``; the part that varies between the names of a group
    becomes ``{model}`` (folders named like pred/output/fusion), ``{sequence}`` (images) or nothing (one file
    per case: a ground truth when named like seg/mask/label). ``notes`` lists what was found, one line per
    folder, and what is missing (no ground truth: nothing for ``evaluate`` to score).
    """
    data_dir = Path(data_dir).expanduser().resolve()
    cases = [d for d in list_subdirs(data_dir)][:max_cases]
    det = Detection(project={"datasets": {}}, layouts=["skeleton"])
    groups: dict[str, dict[str, set[str]]] = {}  # folder -> generalised name -> cases
    for case in cases:
        for f in sorted(case.rglob("*")):
            if not f.is_file() or not _image_like(f) or any(p.startswith(".") for p in f.relative_to(case).parts):
                continue
            rel = f.relative_to(case)
            folder = rel.parent.as_posix() if rel.parent != Path(".") else ""
            groups.setdefault(folder, {}).setdefault(rel.name.replace(case.name, "{case}"), set()).add(case.name)
    if not cases or not groups:
        loose = [f.name for f in list_files(data_dir) if _image_like(f)]
        n_sub = len(list_subdirs(data_dir))
        det.notes.append(f"{data_dir}: {n_sub} sub-folder(s), {len(loose)} image file(s) at the top"
                         + (f" (e.g. {', '.join(loose[:3])})" if loose else "") + "; no case folders with images")
        if loose:
            pre, suf = _common_affixes(loose)
            det.project["datasets"][data_dir.name] = {"root": str(data_dir), "images": f"{{root}}/{pre}{{case}}{suf}"}
        return det
    entry: dict = {"root": str(data_dir)}
    preds: list[str] = []
    roles: dict[str, str] = {}
    det.notes.append(f"{data_dir.name}: {len(cases)} case folder(s) (e.g. {cases[0].name}); templates inferred from "
                     "their files, check each one")
    for folder, names in sorted(groups.items()):
        base = f"{{root}}/{{case}}/{folder + '/' if folder else ''}"
        generic = sorted(names)
        pre, suf = _common_affixes(generic)
        varying = sorted({n[len(pre):len(n) - len(suf) if suf else None] for n in generic}) if len(generic) > 1 else []
        role = _role_of(folder, generic[0])
        roles[folder] = role
        where = f"{folder or '.'}"
        if role == "prediction":
            tpl = base + (f"{pre}{{model}}{suf}" if varying else generic[0])
            preds.append(tpl)
            det.notes.append(f"  {where}: predictions of {len(varying) or 1} model(s) "
                             f"({', '.join(varying) or generic[0]}): {tpl}")
        elif role == "ground_truth" and not varying:
            entry["ground_truth"] = base + generic[0]
            det.notes.append(f"  {where}: ground truth (one file per case): {entry['ground_truth']}")
        elif varying:
            entry["images"] = base + f"{pre}{{sequence}}{suf}"
            entry["sequences"] = varying
            det.notes.append(f"  {where}: images, {len(varying)} sequence(s) ({', '.join(varying)}): {entry['images']}")
        else:
            entry["images"] = base + generic[0]
            det.notes.append(f"  {where}: one image per case: {entry['images']}")
    if preds:
        entry["predictions"] = preds if len(preds) > 1 else preds[0]
    if "ground_truth" not in entry:
        det.notes.append("  no ground truth found: `segaudit evaluate` will have nothing to score; compare the "
                         "models with each other instead (segaudit agree), or add ground_truth: <template>")
    if not preds:
        det.notes.append("  no predictions found: add predictions: <template with {model}> to evaluate models")
    mask_folders = [f for f, r in roles.items() if r in ("ground_truth", "prediction")]
    values: set[int] = set()
    for folder in mask_folders:  # a few masks of each folder: one file may lack a label
        values |= sniff_values([f for f in list_files(cases[0] / folder if folder else cases[0]) if _image_like(f)], 3)
    if 4 in values:
        conv, why = convention_for(values, "brats2020")
        entry["label_convention"] = conv
        det.notes.append(f"  masks: {why}")
    elif values:
        det.notes.append(f"  masks: values {sorted(values)}; declare labels or label_convention (audit: 1 ENH, "
                         "2 NEC, 3 EDE; brats2023: 1 NETC, 2 SNFH, 3 ET)")
    found = infer_longitudinal([c.name for c in cases])
    if found:
        entry["longitudinal"] = {"pattern": found[0]}
        det.notes.append(f"  {found[1]}")
    det.project["datasets"][data_dir.name] = entry
    return det
