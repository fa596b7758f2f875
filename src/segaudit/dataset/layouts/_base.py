"""What every layout detector shares: the proposal record, the layout record, folder listing, label sniffing.

A layout detector is a function ``detect(data_dir, det) -> bool`` that adds one or more datasets to
``det.project["datasets"]``, one note per rule that fired, and its name to ``det.layouts``; it returns whether
it recognised anything. Each detector lives in its own module of :mod:`segaudit.dataset.layouts` and is
listed, in the order detection tries them, in :data:`segaudit.dataset.layouts.registry.LAYOUTS`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from segaudit.dataset.labels import LABEL_CONVENTIONS
from segaudit.dataset.sniff import sniff_label_values
from segaudit.errors import ConfigError

NIFTI_RX = re.compile(r"^(?P<stem>.+?)\.nii(\.gz)?$")


class UnknownLayoutError(ConfigError):
    """No known layout fits a folder; ``skeleton`` is the :class:`Detection` inferred from what was found."""

    def __init__(self, message: str, skeleton: Detection):
        super().__init__(message)
        self.skeleton = skeleton


@dataclass
class Detection:
    """A proposed project: the YAML mapping and the reasons, one line each."""

    project: dict
    notes: list[str] = field(default_factory=list)
    layouts: list[str] = field(default_factory=list)
    #: Proposals the user must check before running (e.g. an encoding that reads most sampled masks as empty).
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Layout:
    """One known on-disk layout: its ``name``, its detector and what it looks for (for the error message).

    ``detect(data_dir, det)`` adds what it recognises to ``det`` and returns True, or leaves ``det`` alone and
    returns False; ``looks_for`` names the tell-tale files in a few words (``"nnU-Net imagesTr/ +
    dataset.json"``), listed when no layout fits.
    """

    name: str
    detect: Callable[[Path, Detection], bool]
    looks_for: str


def list_subdirs(p: Path) -> list[Path]:
    """Sorted sub-folders of ``p``, hidden ones (``.name``) left out; ``[]`` when ``p`` cannot be listed."""
    try:
        return sorted(d for d in p.iterdir() if d.is_dir() and not d.name.startswith("."))
    except OSError:
        return []


def list_files(p: Path) -> list[Path]:
    """Sorted files directly in ``p``, hidden ones left out; ``[]`` when ``p`` cannot be listed."""
    try:
        return sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith("."))
    except OSError:
        return []


def sniff_values(paths: list[Path], limit: int = 6) -> set[int]:
    """Union of the integer values of a seeded sample of at most ``limit`` masks spread over ``paths``."""
    return sniff_label_values(paths, k=limit)


def convention_for(values: set[int], default: str) -> tuple[str, str]:
    """Label convention for the mask ``values`` found, and why.

    4 without 3 is BraTS 2020, 3 and 4 BraTS 2023+, anything else the layout's ``default``.
    """
    if 4 in values and 3 not in values:
        return "brats2020", f"mask values {sorted(values)} contain 4 but not 3: BraTS 2020 labels (1, 2, 4)"
    if 4 in values and 3 in values:
        return "brats2023", f"mask values {sorted(values)} include 3 and 4: BraTS 2023+ labels (1-4)"
    return default, f"mask values {sorted(values)}: {LABEL_CONVENTIONS[default].description}"


def case_folder_layout(parent: Path, sep: str) -> tuple[list[str], bool, int] | None:
    """For folders ``<case>/<case><sep><seq>.nii.gz``: (sequences, has_seg, n_cases), else None."""
    seqs: Counter = Counter()
    n_cases = 0
    has_seg = False
    for case_dir in list_subdirs(parent):
        hit = False
        for f in list_files(case_dir):
            m = NIFTI_RX.match(f.name)
            if not m or not m.group("stem").startswith(case_dir.name + sep):
                continue
            suffix = m.group("stem")[len(case_dir.name) + len(sep):]
            if not suffix or sep in suffix and sep == "-":
                continue
            hit = True
            if suffix == "seg":
                has_seg = True
            else:
                seqs[suffix] += 1
        n_cases += hit
    if n_cases == 0:
        return None
    return [s for s, _ in sorted(seqs.items())], has_seg, n_cases
