"""Case-level features on real data: multimodal contrast and correlation, predictions, nuclei, edge cases."""

import numpy as np
import pandas as pd
import pytest

from segaudit.dataset.labels import LABEL_CONVENTIONS
from segaudit.features.case import FeatureOptions, case_features
from segaudit.features.lesion import instance_features
from segaudit.features.multimodal import label_contrast, sequence_correlations
from segaudit.io import read_image, read_mask

CASE = "brats_audit/BraTS2020/BraTS2020_images/BraTS20_Training_001/BraTS20_Training_001_"
SEQS = ("t1", "t1ce", "t2", "flair")


@pytest.fixture(scope="module")
def brats(demo_data):
    imgs = {s: read_image(demo_data / f"{CASE}{s}.nii.gz").array for s in SEQS}
    return imgs, read_mask(demo_data / f"{CASE}seg.nii.gz").array


def test_multimodal_against_numpy(brats):
    imgs, gt = brats
    brain = np.logical_and.reduce([a > 0 for a in imgs.values()])
    r = sequence_correlations(imgs, brain)
    assert len(r) == 6
    assert r[("t1", "t2")] == pytest.approx(np.corrcoef(imgs["t1"][brain], imgs["t2"][brain])[0, 1], rel=1e-9)
    enh = gt == 1
    c = label_contrast(imgs, {"ENH": enh}, brain)["ENH"]
    ref = brain & ~enh
    for s in SEQS:
        z = (imgs[s][enh].mean() - imgs[s][ref].mean()) / imgs[s][ref].std()
        assert c[f"z_{s}"] == pytest.approx(z, rel=1e-9)
    # Enhancing tumour is brighter on T1-contrast than on native T1 (relative to the brain): it enhances.
    assert c["contrast_t1_vs_t1ce"] < -1
    assert c["contrast_t1_vs_t1ce"] == pytest.approx(c["z_t1"] - c["z_t1ce"])


def test_case_rows_and_prediction_volumes(brats):
    imgs, gt = brats
    conv = LABEL_CONVENTIONS["audit"]
    pred = np.where(gt == 3, 0, gt)  # a "model" that misses the oedema
    res = case_features(imgs, (1.0, 1.0, 1.0), gt, dict(conv.labels), dict(conv.regions), {"no_edema": pred},
                        FeatureOptions(groups=("lesion", "intensity")))
    f = pd.DataFrame(res.rows, columns=["model", "source", "group", "feature", "value"])
    get = f.set_index(["model", "source", "group", "feature"]).value
    assert get[("", "WT", "lesion", "volume")] == (gt > 0).sum()
    assert get[("no_edema", "WT", "lesion", "volume")] == (pred > 0).sum()
    assert get[("no_edema", "EDE", "lesion", "volume")] == 0
    assert get[("", "ET", "lesion", "volume")] == get[("", "ENH", "lesion", "volume")]  # region = one label
    assert get[("", "t1ce/ENH", "intensity", "mean")] == pytest.approx(imgs["t1ce"][gt == 1].mean())
    assert not f.duplicated(["model", "source", "group", "feature"]).any()


def test_bad_arrays_give_nan_and_notes_not_crashes(brats):
    imgs, gt = brats
    zero = np.zeros_like(imgs["t1"])
    withnan = imgs["t2"].astype(np.float32)
    withnan[100:110, 100:110, 70:80] = np.nan
    res = case_features({"zero": zero, "nan": withnan}, (1.0, 1.0, 1.0), np.zeros_like(gt), {"ENH": 1}, {})
    f = pd.DataFrame(res.rows, columns=["model", "source", "group", "feature", "value"]).set_index(
        ["source", "group", "feature"]).value
    assert np.isnan(f[("zero", "intensity", "mean")])
    assert f[("zero", "intensity", "count")] == 0
    assert np.isfinite(f[("nan", "intensity", "mean")])
    assert np.isfinite(f[("nan", "texture", "contrast")])
    assert f[("ENH", "lesion", "volume")] == 0
    assert np.isnan(f[("ENH", "lesion", "com_0_mm")])
    notes = " ".join(res.notes)
    assert "sequence zero: no foreground" in notes
    assert "1000 NaN voxels" in notes
    assert "label ENH: empty" in notes
    with pytest.raises(ValueError, match="ground truth shape"):
        case_features({"t1": imgs["t1"]}, (1.0, 1.0, 1.0), gt[:-1])


def test_nuclei_per_class_on_real_tiles(tests_data):
    tile = "test_1_004"
    inst = read_image(tests_data / "histology_consep" / "inst_masks" / f"{tile}.png").array
    cls = read_image(tests_data / "histology_consep" / "class_masks" / f"{tile}.png").array
    table = pd.read_csv(tests_data / "histology_consep" / "inst_masks_classes" / f"{tile}_classes.csv")
    spacing = (0.00025, 0.00025)  # 0.25 µm pixels, in mm
    f = instance_features(inst, spacing, cls, {1: "other", 2: "inflammatory", 3: "epithelial", 4: "spindle"})
    ids, counts = np.unique(inst[inst > 0], return_counts=True)
    assert f["all"]["count"] == len(ids) == len(table)
    assert f["all"]["density"] == pytest.approx(len(ids) / (inst.size * spacing[0] * spacing[1]))
    assert f["all"]["area_median"] == pytest.approx(np.median(counts) * spacing[0] * spacing[1])
    per_class = table.groupby(table.columns[1]).size()
    names = {1: "other", 2: "inflammatory", 3: "epithelial", 4: "spindle"}
    for c, n in per_class.items():
        assert f[names[int(c)]]["count"] == n
