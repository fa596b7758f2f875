"""Shared helpers of the instruct tests: one real multi-dataset project and independent readers of its masks."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import nibabel as nib
import numpy as np
import yaml
from PIL import Image as PILImage

from conftest import DEMO_DATA, TESTS_DATA

BINARY_DATASETS = {"chest", "mets"}
MODALITIES = {"chest": "chest X-ray", "consep": "H&E histology", "mets": "brain MRI", "brats": "brain MRI"}


def write_project(tmp: Path) -> Path:
    """Chest x-rays (lungs), CoNSeP tiles (4 nucleus classes + instances), 8 brain-metastasis slices and one
    BraTS 2024 SSA volume (AUDIT labels), all real files bundled with the repo."""
    mets = DEMO_DATA / "brainmets_t2w_slices"
    data = {"name": "instruct-tests", "datasets": {
        "chest": {"root": str(TESTS_DATA / "chest_xray_lungs"), "images": "{root}/images/{case}.{ext}",
                  "ground_truth": "{root}/masks_lung/{case}.png", "labels": {"lung": 1},
                  "mask_encoding": {"kind": "binary", "threshold": 127}},
        "consep": {"root": str(TESTS_DATA / "histology_consep"), "images": "{root}/images/{case}.jpg",
                   "ground_truth": "{root}/class_masks/{case}.png", "instances": "{root}/inst_masks/{case}.png",
                   "label_convention": "consep"},
        "mets": {"root": str(tmp / "mets"), "images": "{root}/images/{case}.jpg",
                 "ground_truth": "{root}/masks/{case}.png", "labels": {"metastasis": 1},
                 "mask_encoding": {"kind": "binary", "threshold": 127}},
        "brats": {"root": str(TESTS_DATA / "brats_audit" / "BraTS2024_SSA"),
                  "images": "{root}/BraTS2024_SSA_images/{case}/{case}_{sequence}.nii.gz",
                  "sequences": ["flair", "t1", "t1ce", "t2"],
                  "ground_truth": "{root}/BraTS2024_SSA_images/{case}/{case}_seg.nii.gz", "label_convention": "audit"},
    }}
    for sub, src in (("images", "images"), ("masks", "masks_binary_png")):
        (tmp / "mets" / sub).mkdir(parents=True, exist_ok=True)
        for f in sorted((mets / src).iterdir())[:8]:
            (tmp / "mets" / sub / f.name).write_bytes(f.read_bytes())
    path = tmp / "project.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def source_labels(rec: dict) -> np.ndarray:
    """The record's 2D label array read independently (PIL / nibabel), thresholded like the project says."""
    p = rec["provenance"]
    return _source(p["mask_file"], p["slice"], p["axis"], p["dataset"])


@lru_cache(maxsize=256)
def _volume(path: str) -> np.ndarray:
    return np.rint(np.asarray(nib.load(path).dataobj)).astype(np.int64)


@lru_cache(maxsize=512)
def _source(path: str, slice_: int | None, axis: int | None, dataset: str) -> np.ndarray:
    if path.endswith(".nii.gz"):
        return np.take(_volume(path), slice_, axis=axis)
    arr = np.asarray(PILImage.open(path)).astype(np.int64)
    if arr.ndim == 3:
        arr = arr[..., 0]
    return (arr > 127).astype(np.int64) if dataset in BINARY_DATASETS else arr


def source_spacing(rec: dict) -> tuple[float, float] | None:
    """In-slice voxel size (mm) of a NIfTI record from its header, None for raster images (pixels)."""
    p = rec["provenance"]
    if not p["mask_file"].endswith(".nii.gz"):
        return None
    zooms = nib.load(p["mask_file"]).header.get_zooms()[:3]
    return tuple(float(z) for a, z in enumerate(zooms) if a != p["axis"])


def small_project(tmp: Path, keep: tuple[str, ...] = ("chest", "mets")):
    """The test project restricted to some of its 2D datasets (fast: small raster files only)."""
    from segaudit.dataset import load_project

    project = load_project(write_project(tmp))
    project.datasets = [d for d in project.datasets if d.name in keep]
    return project
