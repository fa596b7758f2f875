"""The ``slices`` step: export normalised training slices for every case of a project.

A case whose files cannot be used (missing sequence, unreadable file, shape mismatch) is skipped with a
reason naming the file; the others are exported. The data folder is only read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from segaudit.dataset.discover import discover
from segaudit.dataset.project import ProjectConfig
from segaudit.errors import SegauditError
from segaudit.io.masks import read_mask
from segaudit.io.readers import read_image
from segaudit.pipeline.parallel import progress_bar
from segaudit.preprocess.normalize import Method
from segaudit.preprocess.slices import export_slices


@dataclass
class SliceExport:
    """Files written and cases skipped (dataset, case, reason)."""

    written: list[Path] = field(default_factory=list)
    skipped: list[tuple[str, str, str]] = field(default_factory=list)


def export_project_slices(project: ProjectConfig, out_dir: str | Path, axis: int = 2, method: Method | None = "zscore",
                          fmt: str = "npz", nonempty_only: bool = False, progress: bool = True) -> SliceExport:
    """Export slices of every case that has images (see :func:`segaudit.preprocess.export_slices`)."""
    disc = discover(project)
    result = SliceExport()
    jobs = [(ds, c.case) for ds in project.datasets if ds.images for c in disc.cases if c.dataset == ds.name]
    with progress_bar(progress) as bar:
        task = bar.add_task("Exporting slices", total=len(jobs))
        for ds, case in jobs:
            files = disc.for_case(ds.name, case)
            try:
                images = {}
                for f in files:
                    if f.role != "image":
                        continue
                    if not f.exists:
                        raise SegauditError(f"{f.path}: missing sequence {f.key!r}")
                    img = read_image(f.path)
                    if img.is_color:
                        # 2D colour images: one channel per colour, named after the sequence.
                        for c, name in enumerate("rgb"):
                            images[f"{f.key}_{name}"] = img.array[..., c]
                    else:
                        images[f.key] = img.array
                    spacing = ds.spacing or img.spacing
                mask = None
                gt = next((f for f in files if f.role == "ground_truth"), None)
                if gt is not None and gt.exists:
                    mask = read_mask(gt.path, ds.mask_encoding).array  # palette PNGs: their indices
                ndim = next(iter(images.values())).ndim
                if ndim == 2:  # a 2D image is its own single slice: add a slice axis
                    images = {k: v[..., None] for k, v in images.items()}
                    mask = mask[..., None] if mask is not None else None
                    spacing = (*spacing, 1.0)
                result.written += export_slices(images, out_dir, case, ds.name, mask, axis if ndim == 3 else 2,
                                                method, fmt, nonempty_only, spacing)
            except (SegauditError, ValueError) as exc:
                result.skipped.append((ds.name, case, str(exc)))
            bar.advance(task)
    return result
