"""QC on real masks with injected defects: each defect gives a precise message, the scan goes on for the
other cases, and nothing on disk changes."""

import nibabel as nib
import numpy as np
import pytest

from conftest import tree_digest
from segaudit.dataset import parse_project
from segaudit.pipeline.scan import scan_project

LUM = "LUMIERE"
CASES = ["Patient-002-week-000", "Patient-002-week-003", "Patient-002-week-021"]


def pred_path(root, model, case):
    return root / LUM / f"{LUM}_seg" / model / case / f"{case}_pred.nii.gz"


def gt_path(root, case):
    return root / LUM / f"{LUM}_images" / case / f"{case}_seg.nii.gz"


def project_for(root):
    return parse_project({"datasets": {LUM: {
        "root": str(root / LUM),
        "ground_truth": "{root}/LUMIERE_images/{case}/{case}_seg.nii.gz",
        "predictions": "{root}/LUMIERE_seg/{model}/{case}/{case}_pred.nii.gz",
        "label_convention": "audit"}}}, root)


def findings(result, case=None, check=None):
    q = result.qc
    if case:
        q = q[q.case == case]
    if check:
        q = q[q.check == check]
    return q


def test_clean_real_data_has_only_expected_findings(brats_copy):
    result = scan_project(project_for(brats_copy), progress=False)
    q = result.qc
    assert set(q.severity) == {"info"}
    # LUMIERE week 021 has no enhancing tumour in its ground truth; the predictions are float64.
    empty = findings(result, check="empty_label")
    assert list(empty.case) == ["Patient-002-week-021"]
    assert "label ENH (1)" in empty.message.iloc[0]
    assert len(findings(result, check="float_mask")) == 6


def _save_like(path, data, ref_img, zooms=None):
    img = nib.Nifti1Image(data, ref_img.affine)
    if zooms:
        img.header.set_zooms(zooms)
    nib.save(img, path)


@pytest.fixture
def broken(brats_copy):
    """LUMIERE with one defect per (case, model) and a fresh ground truth defect."""
    root = brats_copy
    c0, c1, c2 = CASES
    ref = nib.load(gt_path(root, c0))
    data = np.asanyarray(nib.load(pred_path(root, "nnUnet", c0)).dataobj)
    # case 0: nnUnet truncated, SegResNet zero bytes
    p = pred_path(root, "nnUnet", c0)
    raw = p.read_bytes()
    p.write_bytes(raw[: len(raw) // 3])
    pred_path(root, "SegResNet", c0).write_bytes(b"")
    # case 1: nnUnet is text, SegResNet has another shape
    pred_path(root, "nnUnet", c1).write_text("not an image")
    _save_like(pred_path(root, "SegResNet", c1), data[:-1], ref)
    # case 2: nnUnet other spacing + label 7, SegResNet float with 0.5; ground truth left intact
    bad = data.copy()
    bad[bad == 3] = 7
    _save_like(pred_path(root, "nnUnet", c2), bad, ref, zooms=(1.0, 1.0, 5.0))
    soft = data.astype(np.float32)
    soft[soft == 2] = 0.5
    _save_like(pred_path(root, "SegResNet", c2), soft, ref)
    return root


def test_each_defect_is_reported_precisely(broken):
    before = tree_digest(broken)
    result = scan_project(project_for(broken), progress=False)
    assert tree_digest(broken) == before  # inputs never modified
    c0, c1, c2 = CASES

    def one(case, model, check):
        q = result.qc
        rows = q[(q.case == case) & (q.key == model) & (q.check == check)]
        assert len(rows) == 1, (case, model, check, q[(q.case == case)][["key", "check", "message"]])
        row = rows.iloc[0]
        assert str(pred_path(broken, model, case)) in row.message
        return row

    assert "truncated" in one(c0, "nnUnet", "unreadable").message
    assert "empty file (0 bytes)" in one(c0, "SegResNet", "unreadable").message
    assert "not a gzip file" in one(c1, "nnUnet", "unreadable").message
    row = one(c1, "SegResNet", "shape_mismatch")
    assert row.severity == "error"
    assert "(181, 218, 182) here vs (182, 218, 182)" in row.message
    row = one(c2, "nnUnet", "spacing_mismatch")
    assert "(1, 1, 5) here vs (1, 1, 1)" in row.message
    row = one(c2, "nnUnet", "unknown_label")
    assert "value(s) 7" in row.message
    assert "ENH=1, NEC=2, EDE=3" in row.message
    row = one(c2, "SegResNet", "nonintegral_mask")
    assert "non-integral" in row.message
    assert "0.5" in row.message
    # the ground truths were all read and checked despite the broken predictions
    files = result.files
    gts = files[files.role == "ground_truth"]
    assert gts.readable.all()
    assert len(gts) == 3
    assert result.summary.iloc[0]["errors"] == 7


def test_missing_prediction_and_ground_truth(brats_copy):
    c0, c1, _ = CASES
    pred_path(brats_copy, "SegResNet", c1).unlink()
    gt_path(brats_copy, c0).unlink()
    result = scan_project(project_for(brats_copy), progress=False)
    q = result.qc[result.qc.check == "missing_file"]
    assert len(q) == 2
    gt = q[q.role == "ground_truth"].iloc[0]
    assert gt.severity == "error"
    assert gt.case == c0
    assert "missing ground truth" in gt.message
    pr = q[q.role == "prediction"].iloc[0]
    assert pr.severity == "warning"
    assert "missing prediction of model 'SegResNet'" in pr.message


def test_image_checks_nan_and_all_zero(tmp_path, demo_data):
    case = "BraTS20_Training_001"
    src = demo_data / f"brats_audit/BraTS2020/BraTS2020_images/{case}/{case}"
    dst = tmp_path / "ds" / case
    dst.mkdir(parents=True)
    t1 = nib.load(f"{src}_t1.nii.gz")
    a = np.asanyarray(t1.dataobj).astype(np.float32)
    a[100, 100, 70] = np.nan
    a[0, 0, 0] = np.inf
    nib.save(nib.Nifti1Image(a, t1.affine), dst / f"{case}_t1.nii.gz")
    nib.save(nib.Nifti1Image(np.zeros(a.shape, np.int16), t1.affine), dst / f"{case}_t2.nii.gz")
    project = parse_project({"datasets": {"d": {
        "root": str(tmp_path / "ds"), "images": "{root}/{case}/{case}_{sequence}.nii.gz",
        "sequences": ["t1", "t2"]}}}, tmp_path)
    q = scan_project(project, progress=False).qc
    nan = q[q.check == "nonfinite_image"].iloc[0]
    assert nan.key == "t1"
    assert "2 NaN/inf voxel(s)" in nan.message
    zero = q[q.check == "all_zero_image"].iloc[0]
    assert zero.key == "t2"
    assert "every voxel is 0" in zero.message


def test_direction_and_origin_mismatch_on_real_ssa(tests_data):
    """BraTS2024_SSA images are stored RAS while their ground truth is LPS: a real header disagreement."""
    project = parse_project({"datasets": {"SSA": {
        "root": str(tests_data / "brats_audit/BraTS2024_SSA"),
        "images": "{root}/BraTS2024_SSA_images/{case}/{case}_{sequence}.nii.gz",
        "sequences": ["t1", "t1ce", "t2", "flair"],
        "ground_truth": "{root}/BraTS2024_SSA_images/{case}/{case}_seg.nii.gz",
        "predictions": "{root}/BraTS2024_SSA_seg/{model}/{case}/{case}_pred.nii.gz",
        "label_convention": "audit"}}}, tests_data)
    result = scan_project(project, progress=False)
    q = result.qc
    d = q[q.check == "direction_mismatch"]
    assert len(d) == 1
    assert d.iloc[0].role == "ground_truth"
    assert "LPS here vs RAS" in d.iloc[0].message
    assert d.iloc[0].severity == "warning"
    assert len(q[q.check == "origin_mismatch"]) == 1
    assert len(q[q.check == "float_mask"]) == 3  # float32 ground truth and two float64 predictions
    f = result.files
    assert set(f[f.role == "image"].orientation) == {"RAS"}
    assert set(f[f.role != "image"].orientation) == {"LPS"}
