"""Issue 12 item 6: the error matrix shows false positives, on LUMIERE Patient-002-week-040.

nnUnet labels a ring around the skull as tumour on this case: AUDIT's own table gives it 418,749 predicted
voxels (SIZE summed over the labels) for a 27,937-voxel whole tumour. The row-normalised matrix the report drew
hid it (every true label's row looks fine); the background row and the share of the true volume show it. The
references read the NIfTI files with nibabel and count with numpy.
"""

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import yaml

from segaudit.analysis import matrix_with_background_row, over_segmentation
from segaudit.dataset import load_project
from segaudit.metrics import EvaluationOptions
from segaudit.pipeline.evaluate import evaluate_project
from segaudit.report.html import build_report

CASE = "Patient-002-week-040"
LABELS = {"ENH": 1, "NEC": 2, "EDE": 3}


@pytest.fixture(scope="module")
def week40(tmp_path_factory, tests_data):
    tmp = tmp_path_factory.mktemp("w40")
    root = tests_data / "lumiere_week040" / "LUMIERE"
    data = {"datasets": {"LUMIERE": {
        "root": str(root), "ground_truth": "{root}/LUMIERE_images/{case}/{case}_seg.nii.gz",
        "predictions": {"nnUnet": "{root}/LUMIERE_seg/nnUnet/{case}/{case}_pred.nii.gz"},
        "label_convention": "audit"}}}
    (tmp / "p.yaml").write_text(yaml.safe_dump(data))
    res = evaluate_project(load_project(tmp / "p.yaml"), tmp / "run", EvaluationOptions(lesion_matching="none"),
                           progress=False)
    gt = np.rint(nib.load(root / "LUMIERE_images" / CASE / f"{CASE}_seg.nii.gz").get_fdata()).astype(int)
    pred = np.rint(nib.load(root / "LUMIERE_seg" / "nnUnet" / CASE / f"{CASE}_pred.nii.gz").get_fdata()).astype(int)
    return res.metrics, gt, pred, tmp


def test_foreground_over_segmentation_is_about_14_times_the_true_volume(week40, tests_data):
    metrics, gt, pred, _ = week40
    over = over_segmentation(metrics).set_index("label")
    fg = over.loc["foreground"]
    outside = int(((pred > 0) & (gt == 0)).sum())
    assert fg.gt_volume == (gt > 0).sum() == 27937
    assert fg.pred_volume == (pred > 0).sum()
    assert fg.fp_background == outside
    assert fg.fp_background_share == pytest.approx(outside / 27937)
    assert fg.fp_background_share > 14  # 396,553 voxels outside a 27,937-voxel tumour
    # AUDIT's own table agrees on the predicted volume (its SIZE column, summed over the three labels).
    audit = pd.read_csv(tests_data / "audit_outputs/metrics/extracted_information_LUMIERE.csv")
    size = audit[(audit.ID == CASE) & (audit.model == "nnUnet")].SIZE.sum()
    assert fg.pred_volume == size
    for name, v in LABELS.items():
        row = over.loc[name]
        assert row.gt_volume == (gt == v).sum()
        assert row.pred_volume == (pred == v).sum()
        assert row.fp == ((pred == v) & (gt != v)).sum()
        assert row.fp_background == ((pred == v) & (gt == 0)).sum()
        assert row.fp_share == pytest.approx(row.fp / (gt == v).sum())


def test_matrix_background_row_is_a_share_of_the_true_volume(week40):
    metrics, gt, pred, _ = week40
    mat = matrix_with_background_row(metrics, model="nnUnet")
    bg = mat.loc["background (FP / true volume)"]
    for name, v in LABELS.items():
        assert bg[name] == pytest.approx(((pred == v) & (gt == 0)).sum() / (gt == v).sum())
        assert mat.loc[name, "background"] == pytest.approx(((gt == v) & (pred == 0)).sum() / (gt == v).sum())
    # ENH: 32 true voxels, 200,187 predicted, none of them right.
    assert bg["ENH"] > 6000
    assert mat.loc["ENH", "ENH"] == 0


def test_report_shows_the_over_segmentation(week40):
    _, _, _, tmp = week40
    out = build_report(tmp / "run", tmp / "report.html")
    text = out.read_text()
    assert "labels 396,553 voxels outside the true structure: 14.2× its true volume (27,937 voxels)" in text
    assert "over-segmentation (× true volume)" in text
    assert "n too small for a CI" in text  # one case: a mean, never an interval
