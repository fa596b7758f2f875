"""AUDIT / BraTS 2020 folders.

``<DS>/<DS>_images/<case>/<case>_<seq>.nii.gz`` with ``<case>_seg``, and predictions
``<DS>/<DS>_seg/<model>/<case>/<case>_pred.nii.gz`` (at the top or one folder down).

The label convention is read from the masks: values {1, 2, 4} are BraTS 2020's, {1, 2, 3} AUDIT's.
"""

from __future__ import annotations

import os
from pathlib import Path

from segaudit.dataset.layouts._base import (
    Detection,
    Layout,
    case_folder_layout,
    convention_for,
    list_subdirs,
    sniff_values,
)


def detect(data_dir: Path, det: Detection) -> bool:
    """Whether ``data_dir`` holds AUDIT / BraTS 2020 folders; fills ``det`` when it does."""
    level1 = list_subdirs(data_dir)
    level2 = [sub for d in level1 for sub in list_subdirs(d)]
    image_dirs = sorted({d for d in level1 + level2 if d.name.endswith("_images")})
    found = False
    for img_dir in image_dirs:
        name = img_dir.name[: -len("_images")]
        layout = case_folder_layout(img_dir, "_")
        if layout is None:
            continue
        seqs, has_seg, n_cases = layout
        ds_root = img_dir.parent
        ext = ".nii.gz"
        entry: dict = {"root": os.fspath(ds_root)}
        if seqs:
            entry["images"] = f"{{root}}/{img_dir.name}/{{case}}/{{case}}_{{sequence}}{ext}"
            entry["sequences"] = seqs
        if has_seg:
            entry["ground_truth"] = f"{{root}}/{img_dir.name}/{{case}}/{{case}}_seg{ext}"
        seg_dir = ds_root / f"{name}_seg"
        models = [m.name for m in list_subdirs(seg_dir)] if seg_dir.is_dir() else []
        if models:
            entry["predictions"] = f"{{root}}/{name}_seg/{{model}}/{{case}}/{{case}}_pred{ext}"
        segs = sorted(img_dir.glob("*/*_seg.nii*"))
        conv, why = convention_for(sniff_values(segs), "audit")
        entry["label_convention"] = conv
        det.project["datasets"][name] = entry
        det.notes.append(
            f"{name}: AUDIT layout ({img_dir.name}/<case>/<case>_<seq>.nii.gz): {n_cases} case folder(s), "
            f"sequences {seqs or 'none (masks only)'}, models {models or 'none'}; {why}")
        found = True
    if found:
        det.layouts.append("audit")
    return found


LAYOUT = Layout("audit", detect, "AUDIT <DS>_images/")
