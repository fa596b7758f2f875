"""The five-model glioma predictions bundled in tests/data (no images, no ground truth): agreement data."""

from segaudit.dataset import parse_project
from segaudit.pipeline.scan import scan_project


def test_glioma_predictions_only(tests_data):
    project = parse_project({"datasets": {"glioma": {
        "root": str(tests_data / "glioma_5models"),
        "predictions": ["{root}/{case}/predictions/{model}.nii.gz", "{root}/{case}/fusion/{model}.nii.gz"],
        "label_convention": "brats2020"}}}, tests_data)
    r = scan_project(project, progress=False)
    s = r.summary.iloc[0]
    assert s.cases == 1
    assert s.files == 7
    assert s.errors == 0
    assert s.models == "hnfnetv1-20,isen-20,mav,sanet0-20,scan-20,simple,yixinmpl-20"
    empty = r.qc[r.qc.check == "empty_label"]
    assert sorted(empty.key) == ["isen-20", "mav", "scan-20", "simple", "yixinmpl-20"]
    assert all("label ET (4)" in m for m in empty.message)
