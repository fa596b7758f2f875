"""The features step on real files: bad input per file, resumability, Dask, predictions, RGB, metadata."""

import gzip
import shutil

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import tree_digest
from segaudit.cli import main
from segaudit.dataset import load_project
from segaudit.features.case import FeatureOptions
from segaudit.pipeline.demo import demo_project_path
from segaudit.pipeline.features import extract_project, features_table
from segaudit.store import ResultsStore

SRC = "brats_audit/BraTS2020/BraTS2020_images"
QUICK = FeatureOptions(groups=("spatial", "intensity", "lesion", "multimodal"), shape=False)


@pytest.fixture(scope="module")
def bad_project(tmp_path_factory, demo_data):
    """Cases 001 and 369 (no T1) copied, plus BAD: all-zero T1, NaN voxels in T2, truncated FLAIR, cropped seg."""
    root = tmp_path_factory.mktemp("features_data") / "BraTS2020"
    images = root / "BraTS2020_images"
    for case in ("BraTS20_Training_001", "BraTS20_Training_369"):
        shutil.copytree(demo_data / SRC / case, images / case)
    src = images / "BraTS20_Training_001"
    bad = images / "BAD"
    bad.mkdir()
    ref = nib.load(src / "BraTS20_Training_001_t1.nii.gz")
    nib.save(nib.Nifti1Image(np.zeros(ref.shape, np.int16), ref.affine), bad / "BAD_t1.nii.gz")
    t2 = nib.load(src / "BraTS20_Training_001_t2.nii.gz").get_fdata().astype(np.float32)
    t2[100:110, 100:110, 70:80] = np.nan
    nib.save(nib.Nifti1Image(t2, ref.affine), bad / "BAD_t2.nii.gz")
    shutil.copy(src / "BraTS20_Training_001_t1ce.nii.gz", bad / "BAD_t1ce.nii.gz")
    (bad / "BAD_flair.nii.gz").write_bytes((src / "BraTS20_Training_001_flair.nii.gz").read_bytes()[:5000])
    seg = np.asarray(nib.load(src / "BraTS20_Training_001_seg.nii.gz").dataobj)[:200]
    nib.save(nib.Nifti1Image(seg, ref.affine), bad / "BAD_seg.nii.gz")
    data = {"datasets": {"BraTS2020": {
        "root": str(root), "images": "{root}/BraTS2020_images/{case}/{case}_{sequence}.nii.gz",
        "sequences": ["t1", "t1ce", "t2", "flair"],
        "ground_truth": "{root}/BraTS2020_images/{case}/{case}_seg.nii.gz", "label_convention": "audit",
        # AUDIT's BraTS2020 ground truths are written at origin 0, the images at (0, 239, 0): same voxels.
        "geometry": "ignore_affine"}}}
    path = root.parent / "segaudit.yaml"
    path.write_text(yaml.safe_dump(data))
    assert gzip.decompress((src / "BraTS20_Training_001_seg.nii.gz").read_bytes())  # the copy is sound
    return load_project(path), root


def test_bad_input_is_recorded_per_file_and_the_run_goes_on(bad_project, tmp_path):
    project, root = bad_project
    before = tree_digest(root)
    res = extract_project(project, tmp_path / "run", QUICK, progress=False)
    assert tree_digest(root) == before  # inputs never modified
    f, e = res.features, res.errors
    assert set(f.case) == {"BAD", "BraTS20_Training_001", "BraTS20_Training_369"}
    msgs = {(r.case, r.severity): [] for r in e.itertuples()}
    for r in e.itertuples():
        msgs[(r.case, r.severity)].append(r.message)
    bad_err = " | ".join(msgs[("BAD", "error")])
    assert "BAD_flair.nii.gz: sequence flair unreadable" in bad_err
    assert "BAD_seg.nii.gz: ground truth shape (200, 240, 155) differs" in bad_err
    bad_warn = " | ".join(msgs[("BAD", "warning")])
    assert "sequence t1: no foreground" in bad_warn
    assert "sequence t2: 1000 NaN voxels" in bad_warn
    assert "BraTS20_Training_369_t1.nii.gz: sequence t1 not found" in " ".join(msgs[("BraTS20_Training_369",
                                                                                    "warning")])
    sources = set(f[f.case == "BraTS20_Training_369"].source)
    assert {"t1ce", "t2", "flair", "WT", "t1ce~t2"} <= sources
    assert "t1" not in sources
    bad = f[f.case == "BAD"]
    assert "t1ce" in set(bad.source)
    assert "flair" not in set(bad.source)
    assert not (bad.group == "lesion").any()
    assert bad[(bad.source == "t1") & (bad.feature == "count")].value.iloc[0] == 0
    # Recorded in the store too, with the failing file's path.
    with ResultsStore(tmp_path / "run", read_only=True) as store:
        stored = store.query("SELECT path, severity FROM errors WHERE step = 'features' AND \"case\" = 'BAD'")
    assert stored.path.str.endswith("BAD_flair.nii.gz").any()


def test_resume_force_and_dask(bad_project, tmp_path):
    pytest.importorskip("distributed")
    project, _ = bad_project
    opts = FeatureOptions(groups=("intensity", "lesion"), shape=False)
    first = extract_project(project, tmp_path / "run", opts, progress=False)
    again = extract_project(project, tmp_path / "run", opts, progress=False)
    assert len(again.skipped) == 3
    pd.testing.assert_frame_equal(first.features, again.features)
    forced = extract_project(project, tmp_path / "run", opts, force=True, progress=False)
    assert not forced.skipped
    assert len(forced.features) == len(first.features)
    par = extract_project(project, tmp_path / "dask", opts, workers=2, executor="dask", progress=False)
    pd.testing.assert_frame_equal(first.features, par.features)
    other = extract_project(project, tmp_path / "run", opts.with_changes(histogram_bins=32), progress=False)
    assert not other.skipped  # other settings: extracted again


def _lumiere_and_two_fundus_photos(tmp_path):
    """The demo's LUMIERE (3 time points, 2 models) and 2 of its 6 fundus photos (each ~3 s of features)."""
    demo = demo_project_path().parent
    spec = yaml.safe_load(demo_project_path().read_text())
    lumiere, fundus = spec["datasets"]["LUMIERE"], spec["datasets"]["fundus_exudates"]
    lumiere["root"] = str(demo / lumiere["root"])
    src, dst = demo / fundus["root"], tmp_path / "fundus_exudates"
    for sub, name in (("images", "{}.jpg"), ("masks_EX_binary_png", "{}_EX.png"),
                      ("pred_sarah_antillia_flexunet", "{}.png")):
        (dst / sub).mkdir(parents=True)
        for case in ("IDRiD_01", "IDRiD_02"):
            shutil.copyfile(src / sub / name.format(case), dst / sub / name.format(case))
    shutil.copyfile(src / "cases.csv", dst / "cases.csv")
    fundus["root"] = str(dst)
    fundus["metadata"]["path"] = str(dst / "cases.csv")
    path = tmp_path / "segaudit.yaml"
    path.write_text(yaml.safe_dump({"name": spec["name"], "datasets": {"LUMIERE": lumiere,
                                                                       "fundus_exudates": fundus}}))
    return load_project(path)


def test_prediction_volumes_rgb_channels_and_metadata(tmp_path):
    project = _lumiere_and_two_fundus_photos(tmp_path)
    extract_project(project, tmp_path / "run", FeatureOptions(groups=("lesion", "intensity"), shape=False),
                    progress=False)
    f = features_table(tmp_path / "run")
    lum = f[(f.dataset == "LUMIERE") & (f.source == "WT") & (f.feature == "volume")]
    assert {"", "nnUnet", "SegResNet"} <= set(lum.model)
    root = demo_project_path().parent / "brats_audit" / "LUMIERE"
    for r in lum[lum.model != ""].itertuples():
        pred = nib.load(root / "LUMIERE_seg" / r.model / r.case / f"{r.case}_pred.nii.gz")
        vox = float(np.prod(pred.header.get_zooms()[:3]))
        assert r.value == pytest.approx((np.asarray(pred.dataobj) > 0).sum() * vox)
    assert lum.timepoint.notna().all()  # metadata joined beside
    assert lum.subject.eq("Patient-002").all()
    fundus = f[f.dataset == "fundus_exudates"]
    assert {"image.red", "image.green", "image.blue"} <= set(fundus.source)
    wide = features_table(tmp_path / "run", wide=True)
    assert "intensity:image.green:mean" in wide.columns
    assert wide.set_index(["dataset", "case"]).index.is_unique


def test_cli_features(tmp_path, capsys):
    rc = main(["features", str(demo_project_path()), "--out", str(tmp_path / "run"), "--dataset",
               "brainmets_t2w_slices", "--groups", "intensity", "texture", "lesion", "--no-progress"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "brainmets_t2w_slices" in out
    assert "texture" in out
    with ResultsStore(tmp_path / "run", read_only=True) as store:
        n = store.query("SELECT count(DISTINCT \"case\") AS n FROM features").n.iloc[0]
    assert n == 24
    with pytest.raises(SystemExit) as exc:
        main(["features", str(demo_project_path()), "--out", str(tmp_path / "x"), "--groups", "bogus"])
    assert exc.value.code == 2
    assert "invalid choice: 'bogus'" in capsys.readouterr().err
