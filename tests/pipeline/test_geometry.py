"""Predictions and masks on another grid of the same shape (issue 13, severe 3), on real LUMIERE and BraTS files.

A real nnU-Net prediction rewritten (a) with a flipped axis, data and affine both (physically identical) and
(b) shifted 30 mm in its header only, plus the ground truth itself rewritten the same two ways. Before the fix
both were scored voxel by voxel without a word (flip: Dice 0, shift: the unshifted Dice) and
``--resample-nearest`` changed nothing.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
import yaml

from segaudit.cli import main
from segaudit.dataset import load_project
from segaudit.features.case import FeatureOptions
from segaudit.io.geometry import resample_nearest
from segaudit.io.readers import read_image
from segaudit.metrics.evaluate import EvaluationOptions
from segaudit.pipeline.evaluate import evaluate_project
from segaudit.pipeline.features import extract_project, features_table
from segaudit.store import ResultsStore

CASE = "Patient-002-week-000"
FAST = EvaluationOptions(lesion_matching="none", distances=False)
SHIFT = 30.0


def _flipped(img: nib.Nifti1Image, axis: int = 0) -> nib.Nifti1Image:
    """The same voxels in the same physical places, stored with array axis ``axis`` reversed."""
    a = np.asarray(img.dataobj)
    flip = np.eye(4)
    flip[axis, axis] = -1
    flip[axis, 3] = a.shape[axis] - 1
    return nib.Nifti1Image(np.flip(a, axis).copy(), img.affine @ flip)


def _shifted(img: nib.Nifti1Image, mm: float = SHIFT) -> nib.Nifti1Image:
    """The same array, its header moved ``mm`` along the first world axis."""
    aff = img.affine.copy()
    aff[0, 3] += mm
    return nib.Nifti1Image(np.asarray(img.dataobj), aff)


@pytest.fixture(scope="module")
def grids(tmp_path_factory, demo_data) -> Path:
    """One LUMIERE case, its nnU-Net prediction as stored and rewritten, and the ground truth rewritten."""
    root = tmp_path_factory.mktemp("grids")
    src = demo_data / "brats_audit" / "LUMIERE"
    gt_src = src / "LUMIERE_images" / CASE / f"{CASE}_seg.nii.gz"
    pred = nib.load(src / "LUMIERE_seg" / "nnUnet" / CASE / f"{CASE}_pred.nii.gz")
    gt = nib.load(gt_src)
    (root / "gt").mkdir()
    shutil.copy(gt_src, root / "gt" / f"{CASE}_seg.nii.gz")
    for model, img in {"orig": nib.Nifti1Image(np.asarray(pred.dataobj), pred.affine), "flip": _flipped(pred),
                       "shift": _shifted(pred), "gt_flip": _flipped(gt, 1), "gt_shift": _shifted(gt)}.items():
        (root / model).mkdir()
        nib.save(img, root / model / f"{CASE}_pred.nii.gz")
    (root / "p.yaml").write_text(yaml.safe_dump({"datasets": {"LUMIERE": {
        "root": str(root), "ground_truth": "{root}/gt/{case}_seg.nii.gz",
        "predictions": "{root}/{model}/{case}_pred.nii.gz", "label_convention": "audit"}}}))
    return root


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice of two boolean masks, literally 2|A∩B| / (|A| + |B|)."""
    return 2 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


def _metrics(res, metric="dice"):
    m = res.metrics
    return m[m.metric == metric].set_index(["model", "region"]).value


def test_other_grid_is_an_error_row_naming_both_geometries(grids, tmp_path):
    res = evaluate_project(load_project(grids / "p.yaml"), tmp_path / "run", FAST, progress=False)
    assert set(res.metrics.model) == {"orig"}  # nothing else is scored voxel by voxel
    errs = res.errors.set_index("model")
    assert set(errs.index) == {"flip", "shift", "gt_flip", "gt_shift"}
    assert set(errs.severity) == {"error"}
    flip = errs.loc["flip", "message"]
    assert "direction differs" in flip
    assert "orientation RPS" in flip
    assert "orientation LPS" in flip
    shift = errs.loc["shift", "message"]
    assert f"origin ({SHIFT:g}, 0, 0)" in shift
    assert "origin (0, 0, 0)" in shift
    assert str(grids / "gt" / f"{CASE}_seg.nii.gz") in shift
    assert "--resample-nearest" in shift


def test_resample_nearest_goes_through_the_affines(grids, tmp_path):
    res = evaluate_project(load_project(grids / "p.yaml"), tmp_path / "run", FAST, progress=False, resample=True)
    d = _metrics(res)
    regions = sorted(set(res.metrics.region) - {"confusion"})
    # Physically identical files score what the stored ones score: the prediction its own Dice, the GT 1.
    for metric in ("dice", "iou", "sensitivity", "precision"):
        m = _metrics(res, metric)
        assert all(m[("flip", r)] == pytest.approx(m[("orig", r)], nan_ok=True) for r in regions)
    assert all(d[("gt_flip", r)] == 1 for r in regions)
    # Shifted 30 mm in the header: resampled, the masks overlap only where the shift leaves them (independent
    # reference: world x = -i + origin, so GT voxel i takes prediction voxel i + 30, zeros past the end).
    gt = np.asarray(nib.load(grids / "gt" / f"{CASE}_seg.nii.gz").dataobj) > 0
    pred = np.asarray(nib.load(grids / "orig" / f"{CASE}_pred.nii.gz").dataobj) > 0
    moved = np.zeros_like(pred)
    moved[: -int(SHIFT)] = pred[int(SHIFT):]
    assert d[("shift", "WT")] == pytest.approx(_dice(gt, moved), abs=1e-9)
    assert d[("gt_shift", "WT")] == pytest.approx(_dice(gt, np.pad(gt[int(SHIFT):], ((0, int(SHIFT)), (0, 0), (0, 0)))))
    assert d[("shift", "WT")] < d[("orig", "WT")] - 0.5
    w = res.errors.set_index("model")
    assert set(w.severity) == {"warning"}
    assert "resampled into the physical space" in w.loc["flip", "message"]


def test_ignore_affine_scores_voxel_by_voxel_with_a_warning(grids, tmp_path):
    rc = main(["evaluate", str(grids / "p.yaml"), "--out", str(tmp_path / "run"), "--no-progress",
               "--ignore-affine", "--no-distances", "--lesion-matching", "none"])
    assert rc == 0
    with ResultsStore(tmp_path / "run", read_only=True) as store:
        m = store.query("SELECT model, region, value FROM metrics WHERE metric = 'dice'")
        e = store.query("SELECT model, severity, message FROM errors WHERE step = 'evaluate'")
    d = m.set_index(["model", "region"]).value
    gt = np.asarray(nib.load(grids / "gt" / f"{CASE}_seg.nii.gz").dataobj) > 0
    pred = np.asarray(nib.load(grids / "orig" / f"{CASE}_pred.nii.gz").dataobj) > 0
    assert d[("shift", "WT")] == d[("orig", "WT")]  # the header is ignored
    assert d[("gt_shift", "WT")] == 1
    assert d[("flip", "WT")] == pytest.approx(_dice(gt, pred[::-1]))
    assert set(e.model) == {"flip", "shift", "gt_flip", "gt_shift"}
    assert set(e.severity) == {"warning"}
    assert e.message.str.contains("ignore_affine").all()
    assert main(["evaluate", str(grids / "p.yaml"), "--out", str(tmp_path / "x"), "--ignore-affine",
                 "--resample-nearest"]) != 0


def test_resample_nearest_matches_simpleitk(grids):
    """The resampler against SimpleITK's (an independent implementation, LPS world), flipped and shifted."""
    gt_path = grids / "gt" / f"{CASE}_seg.nii.gz"
    ref = sitk.ReadImage(str(gt_path))
    for model in ("flip", "shift", "gt_flip"):
        path = grids / model / f"{CASE}_pred.nii.gz"
        expected = sitk.GetArrayFromImage(sitk.Resample(sitk.ReadImage(str(path)), ref, sitk.Transform(),
                                                        sitk.sitkNearestNeighbor, 0.0)).transpose(2, 1, 0)
        got = resample_nearest(read_image(path), read_image(gt_path))
        assert np.array_equal(got, expected), model


def test_features_refuse_a_ground_truth_on_another_grid_unless_told(tmp_path, demo_data):
    """BraTS2020 as AUDIT ships it: images at origin (0, 239, 0), the ground truth at 0 (a wrong header)."""
    src = demo_data / "brats_audit" / "BraTS2020" / "BraTS2020_images"
    case = "BraTS20_Training_001"
    entry = {"root": str(src), "images": {"t1ce": "{root}/{case}/{case}_t1ce.nii.gz"},
             "ground_truth": "{root}/{case}/{case}_seg.nii.gz", "label_convention": "audit"}
    opts = FeatureOptions(groups=("lesion",), shape=False)
    runs = {}
    for mode in ("strict", "ignore_affine"):
        proj = tmp_path / f"{mode}.yaml"
        proj.write_text(yaml.safe_dump({"datasets": {"B": {**entry, "geometry": mode}}}))
        runs[mode] = extract_project(load_project(proj), tmp_path / mode, opts, progress=False)
    strict, ignored = runs["strict"], runs["ignore_affine"]
    s = strict.features[strict.features.case == case]
    assert not (s.group == "lesion").any()  # refused: no lesion feature from a mask 239 mm away
    err = strict.errors[strict.errors.severity == "error"].message.str.cat(sep=" | ")
    assert "origin (0, 0, 0)" in err
    assert "origin (0, 239, 0)" in err
    assert "lesion and per-label" in err
    i = ignored.features[ignored.features.case == case]
    assert (i.group == "lesion").any()
    assert ignored.errors[ignored.errors.severity == "warning"].message.str.contains("ignore_affine").any()
    # The same choice from the command line.
    proj = tmp_path / "strict.yaml"
    assert main(["features", str(proj), "--out", str(tmp_path / "cli"), "--groups", "lesion", "--no-shape",
                 "--no-progress", "--ignore-affine"]) == 0
    assert (features_table(tmp_path / "cli", metadata=False).group == "lesion").any()


def test_geometry_key_and_tolerances_are_validated(grids, tmp_path):
    from segaudit.errors import ConfigError
    from segaudit.io.geometry import GridTolerance

    data = yaml.safe_load((grids / "p.yaml").read_text())
    data["datasets"]["LUMIERE"]["geometry"] = "resample"  # a typo never silently picks a policy
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="geometry must be one of strict, resample_nearest, ignore_affine"):
        load_project(tmp_path / "bad.yaml")
    with pytest.raises(ConfigError, match="tolerances must be numbers"):
        GridTolerance.from_qc({"origin_tol": "abc"})
    # A looser origin tolerance (qc: origin_tol) lets the 30 mm header shift through, as in QC.
    data["datasets"]["LUMIERE"]["geometry"] = "strict"
    data["qc"] = {"origin_tol": 31}
    (tmp_path / "loose.yaml").write_text(yaml.safe_dump(data))
    res = evaluate_project(load_project(tmp_path / "loose.yaml"), tmp_path / "run", FAST, progress=False)
    assert {"orig", "shift", "gt_shift"} == set(res.metrics.model)
    assert set(res.errors.model) == {"flip", "gt_flip"}
