"""Region masks (issue 12, item 10): a ground truth or prediction that is a binary mask of one region.

Real data: the LUMIERE masks and nnUnet/SegResNet predictions bundled with the package (AUDIT labels 1, 2, 3;
WT = {1, 2, 3}). The whole-tumour masks are derived here from the real label maps with numpy and saved with
the original header; Dice is recomputed here with numpy on the files.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import yaml

from segaudit.dataset import load_project
from segaudit.errors import ConfigError
from segaudit.metrics import EvaluationOptions
from segaudit.pipeline.evaluate import evaluate_project

FAST = EvaluationOptions(lesion_matching="none", distances=False)
CASE = "Patient-002-week-003"


def _binary_copy(src, dst):
    img = nib.load(str(src))
    wt = (np.asarray(img.dataobj) > 0).astype(np.uint8)
    dst.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(wt, img.affine), str(dst))
    return wt


def _dice(a, b):
    return 2 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


def _project(tmp_path, root, **extra):
    data = {"datasets": {"LUMIERE": {"root": str(root), "label_convention": "audit", **extra}}}
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_project(path)


def test_ground_truth_region_mask_scores_only_that_region(tmp_path, brats_copy):
    root = brats_copy / "LUMIERE"
    gt_src = root / "LUMIERE_images" / CASE / f"{CASE}_seg.nii.gz"
    wt = _binary_copy(gt_src, tmp_path / "wt" / f"{CASE}_wt.nii.gz")
    project = _project(tmp_path, root, ground_truth=str(tmp_path / "wt") + "/{case}_wt.nii.gz",
                       ground_truth_region="WT",
                       predictions="{root}/LUMIERE_seg/{model}/{case}/{case}_pred.nii.gz")
    res = evaluate_project(project, tmp_path / "run", FAST, progress=False)
    m = res.metrics[res.metrics.case == CASE]
    assert set(m.region) == {"WT", "confusion"}
    for model in ("nnUnet", "SegResNet"):
        pred = np.asarray(nib.load(str(root / "LUMIERE_seg" / model / CASE / f"{CASE}_pred.nii.gz")).dataobj) > 0
        got = m[(m.model == model) & (m.region == "WT") & (m.metric == "dice")].value.iloc[0]
        assert got == pytest.approx(_dice(wt > 0, pred), abs=1e-12)


def test_prediction_region_mask(tmp_path, brats_copy):
    root = brats_copy / "LUMIERE"
    pred_src = root / "LUMIERE_seg" / "nnUnet" / CASE / f"{CASE}_pred.nii.gz"
    wt_pred = _binary_copy(pred_src, tmp_path / "wtpred" / "nnUnet_wt" / f"{CASE}.nii.gz")
    project = _project(tmp_path, root, ground_truth="{root}/LUMIERE_images/{case}/{case}_seg.nii.gz",
                       predictions={"nnUnet_wt": str(tmp_path / "wtpred" / "nnUnet_wt") + "/{case}.nii.gz"},
                       prediction_region={"nnUnet_wt": "WT"})
    res = evaluate_project(project, tmp_path / "run", FAST, progress=False)
    m = res.metrics[res.metrics.case == CASE]
    assert set(m.region) == {"WT", "confusion"}
    gt = np.asarray(nib.load(str(root / "LUMIERE_images" / CASE / f"{CASE}_seg.nii.gz")).dataobj)
    got = m[(m.region == "WT") & (m.metric == "dice")].value.iloc[0]
    assert got == pytest.approx(_dice(np.isin(gt, [1, 2, 3]), wt_pred > 0), abs=1e-12)


def test_unknown_region_is_an_error(tmp_path, brats_copy):
    with pytest.raises(ConfigError, match="ground_truth_region 'XX'"):
        _project(tmp_path, brats_copy / "LUMIERE", ground_truth="{root}/{case}.nii.gz",
                 ground_truth_region="XX")
