"""The evaluate step on real files: store rows, resumability, per-case failures, Dask, probability maps."""

import shutil

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import tree_digest
from segaudit.dataset import load_project
from segaudit.metrics import EvaluationOptions
from segaudit.pipeline.evaluate import evaluate_project
from segaudit.store import ResultsStore

FAST = EvaluationOptions(lesion_matching="none")


def _project(root, extra=None, **ds_extra):
    data = {"datasets": {"LUMIERE": {
        "root": str(root / "LUMIERE"),
        "ground_truth": "{root}/LUMIERE_images/{case}/{case}_seg.nii.gz",
        "predictions": "{root}/LUMIERE_seg/{model}/{case}/{case}_pred.nii.gz",
        "label_convention": "audit", **ds_extra}}}
    data.update(extra or {})
    path = root.parent / "segaudit.yaml"  # beside the data, never inside it
    path.write_text(yaml.safe_dump(data))
    return load_project(path)


def test_rows_in_store_and_resume(brats_copy, tmp_path):
    before = tree_digest(brats_copy)
    project = _project(brats_copy)
    out = tmp_path / "run"
    res = evaluate_project(project, out, FAST, progress=False)
    assert res.errors.empty
    m = res.metrics
    assert set(m.columns) == {"dataset", "case", "model", "region", "metric", "value"}
    assert m.groupby(["case", "model"]).ngroups == 6
    assert set(m.region) == {"ENH", "NEC", "EDE", "WT", "TC", "ET", "confusion"}
    assert {"dice", "hd95", "nsd@1mm", "gt_empty", "pred_empty", "relative_volume_error"} <= set(m.metric)
    # Week 021 has no enhancing tumour: flagged, and its distances get the diagonal penalty, not a fake 0.
    w21 = m[(m.case == "Patient-002-week-021") & (m.region == "ENH")].set_index(["model", "metric"]).value
    assert (w21.xs("gt_empty", level="metric") == 1.0).all()
    from segaudit.io import read_mask

    gt = read_mask(brats_copy / "LUMIERE" / "LUMIERE_images" / "Patient-002-week-021" /
                   "Patient-002-week-021_seg.nii.gz")
    pen = float(np.sqrt(np.sum((np.array(gt.shape) * np.array(gt.spacing)) ** 2)))  # the image diagonal
    # The stored segmentation error matrix equals a confusion matrix counted directly on the two files.
    pred = read_mask(brats_copy / "LUMIERE" / "LUMIERE_seg" / "nnUnet" / "Patient-002-week-021" /
                     "Patient-002-week-021_pred.nii.gz")
    names = ["background", "ENH", "NEC", "EDE"]
    direct = pd.crosstab(pd.Categorical(gt.array.ravel(), categories=[0, 1, 2, 3]),
                         pd.Categorical(pred.array.ravel(), categories=[0, 1, 2, 3]), dropna=False).to_numpy()
    conf = m[(m.case == "Patient-002-week-021") & (m.model == "nnUnet") & (m.region == "confusion")]
    stored = conf.set_index("metric").value
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            assert stored[f"{a}->{b}"] == direct[i, j], (a, b)
    for model in ("SegResNet", "nnUnet"):
        if w21[(model, "pred_empty")] == 0.0:
            assert w21[(model, "hd95")] == pytest.approx(pen, rel=1e-12)
            assert w21[(model, "dice")] == 0.0
    # A second run skips everything already scored with the same settings.
    again = evaluate_project(project, out, FAST, progress=False)
    assert len(again.skipped) == 6
    with ResultsStore(out, read_only=True) as store:
        runs = store.read("runs")
        assert len(store.read("metrics")) == len(m)  # nothing duplicated
    assert list(runs.step) == ["evaluate", "evaluate"]
    # Other settings are a different evaluation: re-scored.
    vox = evaluate_project(project, out, FAST.with_changes(surface="voxel"), progress=False)
    assert not vox.skipped
    assert tree_digest(brats_copy) == before


def test_broken_and_missing_predictions_fail_only_their_rows(brats_copy, tmp_path):
    seg = brats_copy / "LUMIERE" / "LUMIERE_seg"
    broken = seg / "nnUnet" / "Patient-002-week-000" / "Patient-002-week-000_pred.nii.gz"
    broken.write_bytes(broken.read_bytes()[:300])  # truncated
    missing = seg / "SegResNet" / "Patient-002-week-003" / "Patient-002-week-003_pred.nii.gz"
    missing.unlink()
    import nibabel as nib

    other = seg / "nnUnet" / "Patient-002-week-021" / "Patient-002-week-021_pred.nii.gz"
    img = nib.load(other)
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj)[:, :, ::2], img.affine), other)  # another grid
    project = _project(brats_copy)
    res = evaluate_project(project, tmp_path / "run", FAST, progress=False)
    errs = res.errors.set_index(["case", "model"])
    assert "truncated" in errs.loc[("Patient-002-week-000", "nnUnet"), "message"]
    assert str(broken) in errs.loc[("Patient-002-week-000", "nnUnet"), "message"]
    assert "not found" in errs.loc[("Patient-002-week-003", "SegResNet"), "message"]
    assert "grid differs" in errs.loc[("Patient-002-week-021", "nnUnet"), "message"]
    assert res.metrics.groupby(["case", "model"]).ngroups == 3  # the other three case-models are scored
    # Opting in: the missing file scores as empty, the other grid is resampled; both leave a warning.
    res2 = evaluate_project(project, tmp_path / "run2", FAST, progress=False, missing_as_empty=True, resample=True)
    assert res2.metrics.groupby(["case", "model"]).ngroups == 5
    w = res2.errors[res2.errors.severity == "warning"]
    assert {"Patient-002-week-003", "Patient-002-week-021"} <= set(w.case)
    empty = res2.metrics[(res2.metrics.case == "Patient-002-week-003") & (res2.metrics.model == "SegResNet")]
    assert (empty[empty.metric == "pred_empty"].value == 1.0).all()


def test_dask_local_cluster_gives_identical_results(brats_copy, tmp_path):
    pytest.importorskip("distributed")
    project = _project(brats_copy)
    opts = EvaluationOptions()
    seq = evaluate_project(project, tmp_path / "seq", opts, progress=False)
    par = evaluate_project(project, tmp_path / "dask", opts, workers=2, executor="dask", progress=False)
    pd.testing.assert_frame_equal(seq.metrics.reset_index(drop=True), par.metrics.reset_index(drop=True))
    pd.testing.assert_frame_equal(seq.lesions.reset_index(drop=True), par.lesions.reset_index(drop=True))


def test_external_scheduler(brats_copy, tmp_path):
    distributed = pytest.importorskip("distributed")
    project = _project(brats_copy)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster:
        res = evaluate_project(project, tmp_path / "ext", FAST, scheduler=cluster.scheduler_address, progress=False)
    seq = evaluate_project(project, tmp_path / "seq", FAST, progress=False)
    pd.testing.assert_frame_equal(seq.metrics.reset_index(drop=True), res.metrics.reset_index(drop=True))


def test_probability_predictions(tmp_path, demo_data):
    """A model declared as probability maps: thresholded for overlap metrics, soft metrics added."""
    from PIL import Image as PILImage
    from scipy import ndimage

    src = demo_data / "fundus_exudates"
    root = tmp_path / "fundus"
    shutil.copytree(src / "masks_EX_binary_png", root / "gt")
    (root / "prob").mkdir()
    cases = ["IDRiD_01", "IDRiD_02"]
    for c in cases:
        red = np.asarray(PILImage.open(src / "pred_sarah_antillia_flexunet" / f"{c}.png"))[..., 0] > 127
        np.save(root / "prob" / f"{c}.npy", np.clip(ndimage.gaussian_filter(red.astype(np.float32), 2), 0, 1))
    (root / "prob" / "IDRiD_03.npy").write_bytes(b"not an array")
    data = {"datasets": {"fundus": {
        "root": str(root), "ground_truth": "{root}/gt/{case}_EX.png",
        "predictions": {"soft": "{root}/prob/{case}.npy"}, "labels": {"exudate": 1},
        "mask_encoding": {"kind": "binary"}, "prediction_encoding": {"soft": {"kind": "probability"}}}},
        "evaluate": {"lesion_matching": "none", "tolerances": [1, 2]}}
    (root / "p.yaml").write_text(yaml.safe_dump(data))
    res = evaluate_project(load_project(root / "p.yaml"), tmp_path / "run", progress=False)
    m = res.metrics.set_index(["case", "metric"]).value
    for c in cases:
        assert 0.5 < m[(c, "roc_auc")] <= 1
        assert 0 < m[(c, "average_precision")] <= 1
        assert 0 <= m[(c, "brier")] < 0.1
        assert 0 < m[(c, "pearson")] <= 1
        assert 0 < m[(c, "dice")] <= 1
        assert (c, "nsd@2mm") in m.index
    assert "IDRiD_03" in set(res.errors.case)
    assert "IDRiD_03.npy" in res.errors.set_index("case").loc["IDRiD_03", "message"]
