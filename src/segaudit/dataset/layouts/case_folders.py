"""BraTS case folders without an ``_images`` parent: BraTS 2023+ names (``<case>/<case>-t1c.nii.gz`` ...

``<case>-seg.nii.gz``) and plain BraTS 2020 training folders (``<case>/<case>_<seq>.nii.gz``, recorded as the ``audit``
layout without predictions).
"""

from __future__ import annotations

import os
from pathlib import Path

from segaudit.dataset.layouts._base import Detection, Layout, case_folder_layout, convention_for, sniff_values


def detect(data_dir: Path, det: Detection) -> bool:
    """BraTS 2020 training folders (``_``) and BraTS 2023+ (``-``) without an ``_images`` parent."""
    for sep, layout_name, default in (("-", "brats2023", "brats2023"), ("_", "audit", "audit")):
        layout = case_folder_layout(data_dir, sep)
        if layout is None:
            continue
        seqs, has_seg, n_cases = layout
        if not seqs and not has_seg:
            continue
        name = data_dir.name
        entry: dict = {"root": os.fspath(data_dir)}
        if seqs:
            entry["images"] = f"{{root}}/{{case}}/{{case}}{sep}{{sequence}}.nii.gz"
            entry["sequences"] = seqs
        if has_seg:
            entry["ground_truth"] = f"{{root}}/{{case}}/{{case}}{sep}seg.nii.gz"
        conv, why = convention_for(sniff_values(sorted(data_dir.glob(f"*/*{sep}seg.nii*"))), default)
        entry["label_convention"] = conv
        det.project["datasets"][name] = entry
        label = "BraTS 2023+" if sep == "-" else "BraTS 2020"
        det.notes.append(f"{name}: {label} case folders (<case>/<case>{sep}<seq>.nii.gz): {n_cases} case(s), "
                         f"sequences {seqs}; {why}")
        det.layouts.append(layout_name)
        return True
    return False


LAYOUT = Layout("case_folders", detect, "BraTS case folders")
