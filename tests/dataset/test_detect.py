"""Layout detection on the real sample data, and on nnU-Net / BrainMetShare / BraTS 2023 layouts built from
real files (symlinked under new names in a temporary folder)."""

import json
import os

import pytest

from segaudit.dataset import detect_layout, discover, parse_project
from segaudit.errors import ConfigError

SSA = "brats_audit/BraTS2024_SSA/BraTS2024_SSA_images/BraTS2024_SSA-00230-000/BraTS2024_SSA-00230-000"
SSA_PRED = "brats_audit/BraTS2024_SSA/BraTS2024_SSA_seg/nnUnet/BraTS2024_SSA-00230-000/BraTS2024_SSA-00230-000"
LUMIERE = "brats_audit/LUMIERE/LUMIERE_images"


def files_of(det, root):
    project = parse_project(det.project, root)
    return discover(project).files_frame()


def test_audit_layout(demo_data):
    det = detect_layout(demo_data / "brats_audit")
    assert det.layouts == ["audit"]
    ds = det.project["datasets"]
    assert set(ds) == {"BraTS2020", "BraTS2024_PED", "LUMIERE", "UCSF"}
    assert ds["BraTS2020"]["sequences"] == ["flair", "t1", "t1ce", "t2"]
    assert "predictions" not in ds["BraTS2020"]
    assert ds["BraTS2024_PED"]["label_convention"] == "audit"
    assert "images" not in ds["LUMIERE"]  # masks and predictions only
    files = files_of(det, demo_data)
    assert int(files.exists.sum()) == 9 + 6 + 9 + 4
    assert set(files[files.dataset == "UCSF"].key) == {"", "SegResNet"}


def test_single_audit_dataset_folder(tests_data):
    det = detect_layout(tests_data / "brats_audit/BraTS2024_SSA")
    entry = det.project["datasets"]["BraTS2024_SSA"]
    assert entry["predictions"].endswith("BraTS2024_SSA_seg/{model}/{case}/{case}_pred.nii.gz")
    files = files_of(det, tests_data)
    assert len(files) == 4 + 1 + 2
    assert files.exists.all()


def test_flat2d_fundus_red_predictions(demo_data):
    det = detect_layout(demo_data / "fundus_exudates")
    entry = det.project["datasets"]["fundus_exudates"]
    assert entry["ground_truth"] == "{root}/masks_EX_binary_png/{case}_EX.png"
    assert entry["prediction_encoding"] == {"kind": "binary", "channel": "red", "threshold": 127}
    assert entry["labels"] == {"EX": 1}
    assert entry["metadata"]["id_column"] == "case"
    assert any("suffix '_EX'" in n for n in det.notes)


def test_flat2d_brainmets_green_and_lossy_masks_skipped(demo_data):
    det = detect_layout(demo_data / "brainmets_t2w_slices")
    entry = det.project["datasets"]["brainmets_t2w_slices"]
    assert entry["ground_truth"] == "{root}/masks_binary_png/{case}.png"
    assert entry["prediction_encoding"]["channel"] == "green"
    assert list(entry["predictions"]) == ["unet_jpg"] or list(entry["predictions"]) == ["unet"]
    files = files_of(det, demo_data)
    assert len(files) == 72
    assert files.exists.all()


def test_flat2d_chest_mixed_extensions_and_ignore_masks(tests_data):
    det = detect_layout(tests_data / "chest_xray_lungs")
    entry = det.project["datasets"]["chest_xray_lungs"]
    assert entry["images"] == "{root}/images/{case}.{ext}"
    assert entry["labels"] == {"lung": 1}
    assert any("masks_ignore/: not used" in n for n in det.notes)
    assert entry["metadata"]["id_column"] == "filename"
    files = files_of(det, tests_data)
    assert len(files) == 10
    assert files.exists.all()


def test_flat2d_histology_instances_and_classes(tests_data):
    det = detect_layout(tests_data / "histology_consep")
    entry = det.project["datasets"]["histology_consep"]
    assert entry["instances"] == "{root}/inst_masks/{case}.png"
    assert entry["ground_truth"] == "{root}/class_masks/{case}.png"
    assert entry["labels"] == {"class_1": 1, "class_2": 2, "class_3": 3, "class_4": 4}
    assert any("seg_masks/: not used" in n for n in det.notes)


def _link(src, dst):
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(src, dst)


def test_nnunet_raw_layout(tmp_path, tests_data, demo_data):
    root = tmp_path / "Dataset001_BraTS"
    seqs = ["t1", "t1ce", "t2", "flair"]
    _link(tests_data / f"{SSA}_seg.nii.gz", root / "labelsTr/SSA_00230.nii.gz")
    for i, s in enumerate(seqs):
        _link(tests_data / f"{SSA}_{s}.nii.gz", root / f"imagesTr/SSA_00230_{i:04d}.nii.gz")
    _link(tests_data / f"{SSA_PRED}_pred.nii.gz", root / "predictions_fold0/SSA_00230.nii.gz")
    (root / "dataset.json").write_text(json.dumps({
        "channel_names": {str(i): s for i, s in enumerate(seqs)},
        "labels": {"background": 0, "ENH": 1, "NEC": 2, "EDE": 3},
        "numTraining": 1, "file_ending": ".nii.gz"}))
    det = detect_layout(tmp_path)
    assert det.layouts == ["nnunet"]
    entry = det.project["datasets"]["Dataset001_BraTS"]
    assert entry["images"]["t1ce"] == "{root}/imagesTr/{case}_0001.nii.gz"
    assert entry["labels"] == {"ENH": 1, "NEC": 2, "EDE": 3}
    files = files_of(det, tmp_path)
    assert set(files.case) == {"SSA_00230"}
    assert len(files) == 6
    assert files.exists.all()


def test_nnunet_v1_dataset_json(tmp_path, tests_data):
    root = tmp_path / "Task01"
    _link(tests_data / f"{SSA}_seg.nii.gz", root / "labelsTr/c1.nii.gz")
    _link(tests_data / f"{SSA}_t1.nii.gz", root / "imagesTr/c1_0000.nii.gz")
    (root / "dataset.json").write_text(json.dumps({"modality": {"0": "T1"},
                                                   "labels": {"0": "background", "1": "tumour"}}))
    entry = detect_layout(root).project["datasets"]["Task01"]
    assert entry["labels"] == {"tumour": 1}
    assert entry["sequences"] == ["T1"]


def test_brainmetshare_layout(tmp_path, demo_data):
    root = tmp_path / "stanford_release"
    for case in ("BraTS20_Training_001",):
        base = demo_data / f"brats_audit/BraTS2020/BraTS2020_images/{case}/{case}"
        for src, dst in (("t1", "t1_pre"), ("t1ce", "t1_gd"), ("flair", "flair"), ("seg", "seg")):
            _link(f"{base}_{src}.nii.gz", root / f"Mets_{case[-3:]}/{dst}.nii.gz")
    det = detect_layout(root)
    assert det.layouts == ["brainmetshare"]
    entry = det.project["datasets"]["stanford_release"]
    assert entry["sequences"] == ["t1_pre", "t1_gd", "flair"]
    files = files_of(det, tmp_path)
    assert len(files) == 4
    assert files.exists.all()


def test_brats2023_names(tmp_path, tests_data):
    case = "BraTS-SSA-00230-000"
    for s, dst in (("t1", "t1n"), ("t1ce", "t1c"), ("t2", "t2w"), ("flair", "t2f"), ("seg", "seg")):
        _link(tests_data / f"{SSA}_{s}.nii.gz", tmp_path / "train" / case / f"{case}-{dst}.nii.gz")
    det = detect_layout(tmp_path / "train")
    entry = det.project["datasets"]["train"]
    assert det.layouts == ["brats2023"]
    assert entry["sequences"] == ["t1c", "t1n", "t2f", "t2w"]
    assert entry["ground_truth"] == "{root}/{case}/{case}-seg.nii.gz"
    files = files_of(det, tmp_path)
    assert set(files.case) == {case}
    assert files.exists.all()


def test_brats2020_values_detected(tmp_path, demo_data):
    """A BraTS 2020-style folder whose masks use label 4 gets the brats2020 convention."""
    import nibabel as nib
    import numpy as np

    src = demo_data / "brats_audit/LUMIERE/LUMIERE_images/Patient-002-week-000/Patient-002-week-000_seg.nii.gz"
    img = nib.load(src)
    data = np.asanyarray(img.dataobj).copy()
    data[data == 1] = 4  # move to BraTS 2020 values (1 NCR, 2 ED, 4 ET)
    data[data == 3] = 1
    case_dir = tmp_path / "MICCAI" / "BraTS20_Training_900"
    case_dir.mkdir(parents=True)
    nib.save(nib.Nifti1Image(data, img.affine), case_dir / "BraTS20_Training_900_seg.nii.gz")
    entry = detect_layout(tmp_path / "MICCAI").project["datasets"]["MICCAI"]
    assert entry["label_convention"] == "brats2020"


def test_unknown_layout(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ConfigError, match="no known layout"):
        detect_layout(tmp_path)
    with pytest.raises(ConfigError, match="not a folder"):
        detect_layout(tmp_path / "nope")
