"""The full public sample set (when SEGAUDIT_SAMPLE_DATA points at it): every dataset scans with its real counts."""

import pytest

from segaudit.dataset import parse_project
from segaudit.pipeline.scan import resolve_project, scan_project


def scan_dir(path):
    project, _ = resolve_project(path)
    return scan_project(project, progress=False)


def test_brats_audit_all_five_datasets(sample_data):
    r = scan_dir(sample_data / "brats_audit")
    s = r.summary.set_index("dataset")
    assert s.cases.to_dict() == {"BraTS2020": 2, "BraTS2024_PED": 2, "BraTS2024_SSA": 2, "LUMIERE": 3, "UCSF": 2}
    assert s.models.to_dict() == {"BraTS2020": "", "BraTS2024_PED": "SegResNet,nnUnet",
                                  "BraTS2024_SSA": "SegResNet,nnUnet", "LUMIERE": "SegResNet,nnUnet",
                                  "UCSF": "SegResNet"}
    assert s.files.sum() == 9 + 6 + 14 + 9 + 4
    assert s.missing.sum() == 1
    assert s.errors.sum() == 0
    q = r.qc
    assert q[q.check == "missing_file"].key.tolist() == ["t1"]
    assert len(q[q.check == "direction_mismatch"]) == 2  # both SSA cases: RAS images, LPS masks
    empty = q[q.check == "empty_label"]
    assert len(empty) == 4
    assert (set(empty.case) == {"BraTS2024_PED-00266-000", "BraTS2024_PED-00001-000",
                                                   "Patient-002-week-021"})


@pytest.mark.parametrize(("name", "cases", "files", "warnings", "info"), [
    ("chest_xray_lungs", 16, 32, 2, 0),  # mixed_sizes, mixed_formats: journal figures among 2000×2000 scans
    ("fundus_exudates", 6, 18, 0, 0),
    ("brainmets_t2w_slices", 24, 72, 4, 0),
    ("histology_consep", 10, 30, 0, 26),
])
def test_2d_datasets(sample_data, name, cases, files, warnings, info):
    s = scan_dir(sample_data / name).summary.iloc[0]
    counts = s[["cases", "files", "missing", "errors", "warnings", "info"]].tolist()
    assert counts == [cases, files, 0, 0, warnings, info]


def test_glioma_five_models_with_project_file(sample_data):
    project = parse_project({"datasets": {"glioma": {
        "root": str(sample_data / "glioma_5models"),
        "images": "{root}/{case}/images/{case}_{sequence}_bet.nii.gz",
        "sequences": ["t1", "t1c", "t2", "fla"],
        "predictions": ["{root}/{case}/predictions/{model}.nii.gz", "{root}/{case}/fusion/{model}.nii.gz"],
        "label_convention": "brats2020"}}}, sample_data)
    r = scan_project(project, progress=False)
    s = r.summary.iloc[0]
    assert s.cases == 1
    assert s.files == 4 + 7
    assert s.missing == 0
    assert s.errors == 0
    assert s.models == "hnfnetv1-20,isen-20,mav,sanet0-20,scan-20,simple,yixinmpl-20"
    empty = r.qc[r.qc.check == "empty_label"]
    # three models and both fusions predict no enhancing tumour (label 4) for this low-grade glioma
    assert sorted(empty.key) == ["isen-20", "mav", "scan-20", "simple", "yixinmpl-20"]
