"""Repeated measures in a proposal.

A subject/time-point pattern from the case ids, a subject column in the metadata.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from segaudit.dataset.layouts._base import Detection
from segaudit.dataset.metadata import read_table
from segaudit.dataset.templates import match_template

#: Known case-id patterns of repeated measures: (name, regex with ``subject`` and ``timepoint`` groups).
LONGITUDINAL_PATTERNS = (
    ("-week-NNN", r"(?P<subject>.+)-week-(?P<timepoint>\d+)"),
    ("_NNN", r"(?P<subject>.+)_(?P<timepoint>\d+)"),
)
#: Metadata columns that usually hold a subject (patient) id.
SUBJECT_COLUMNS = ("subject", "subject_id", "patient", "patientid", "patient_id")


def infer_longitudinal(cases: list[str]) -> tuple[str, str] | None:
    """A known subject/time-point pattern that every case id matches, with a subject seen at least twice.

    Patterns tried in order: ``-week-NNN`` (LUMIERE), ``_NNN`` (UCSF; for 2D slice exports the number may be a
    slice index rather than a time point, which the note says). With ``_NNN`` the subject part must itself end
    in a digit (``UCSF_100302_1``), so that numbered cases of one cohort (``BraTS20_Training_001``) are not
    taken for time points of a subject ``BraTS20_Training``. Returns (regex, note) or None.
    """
    if len(cases) < 2:
        return None
    for name, rx in LONGITUDINAL_PATTERNS:
        matches = [m for c in cases if (m := re.fullmatch(rx, c))]
        if len(matches) < len(cases):
            continue
        if name == "_NNN" and not all(m.group("subject")[-1].isdigit() for m in matches):
            continue
        subjects = Counter(m.group("subject") for m in matches)
        if max(subjects.values()) < 2:
            continue
        repeated = sum(1 for v in subjects.values() if v > 1)
        return rx, (f"case ids look like <subject>{name} ({len(subjects)} subject(s), {repeated} with several "
                    f"cases): proposed longitudinal pattern {rx!r}; check that the number is a time point")
    return None


def propose_subjects(data_dir: Path, det: Detection) -> None:
    """Add a longitudinal pattern (and a note on a metadata subject column) to each detected dataset."""
    for name, entry in det.project["datasets"].items():
        try:
            tpl = entry.get("ground_truth") or next(iter((entry.get("images") or {"": None}).values()), None)
            if isinstance(entry.get("images"), str):
                tpl = entry.get("ground_truth") or entry["images"]
            cases = sorted({m.case for m in match_template(tpl, Path(entry["root"]))}) if tpl else []
        except Exception:  # noqa: BLE001 - a proposal is optional; detection itself succeeded
            cases = []
        if "longitudinal" not in entry:
            found = infer_longitudinal(cases)
            if found:
                entry["longitudinal"] = {"pattern": found[0]}
                det.notes.append(f"  {name}: {found[1]}")
        meta = entry.get("metadata")
        if meta:
            try:
                cols = [str(c) for c in read_table(Path(meta["path"])).columns]
            except Exception:  # noqa: BLE001
                cols = []
            subj = [c for c in cols if c.lower() in SUBJECT_COLUMNS]
            if subj:
                det.notes.append(f"  {name}: metadata column {subj[0]!r} looks like a subject id: cases that share "
                                 "it are repeated measures of one subject (not independent)")
