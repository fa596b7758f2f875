"""BrainMetShare: ``<case>/{t1_pre,t1_gd,flair,bravo,seg}.nii.gz``, binary metastasis masks."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from segaudit.dataset.layouts._base import NIFTI_RX, Detection, Layout, list_files, list_subdirs

BRAINMETSHARE_SEQS = ("t1_pre", "t1_gd", "flair", "bravo")

def detect(data_dir: Path, det: Detection) -> bool:
    """Whether ``data_dir`` holds BrainMetShare case folders; fills ``det`` when it does."""
    seqs: Counter = Counter()
    n = 0
    for case_dir in list_subdirs(data_dir):
        names = {m.group("stem") for f in list_files(case_dir) if (m := NIFTI_RX.match(f.name))}
        present = [s for s in BRAINMETSHARE_SEQS if s in names]
        if present and ("seg" in names or len(present) >= 2):
            n += 1
            seqs.update(present)
    if n == 0:
        return False
    name = data_dir.name
    sequences = [s for s in BRAINMETSHARE_SEQS if s in seqs]
    ext = ".nii.gz"
    entry = {"root": os.fspath(data_dir), "images": f"{{root}}/{{case}}/{{sequence}}{ext}",
             "sequences": sequences, "ground_truth": f"{{root}}/{{case}}/seg{ext}",
             "labels": {"metastasis": 1}}
    det.project["datasets"][name] = entry
    det.notes.append(f"{name}: BrainMetShare layout (<case>/{{t1_pre,t1_gd,flair,bravo,seg}}.nii.gz): {n} case(s), "
                     f"sequences {sequences}; binary metastasis masks")
    det.layouts.append("brainmetshare")
    return True


LAYOUT = Layout("brainmetshare", detect, "BrainMetShare <case>/seg.nii.gz")
