"""Discovery on real files: every declared file is a row, found or not; cases ordered per subject by timepoint."""

import shutil

from segaudit.dataset import discover, parse_project

SEG = "LUMIERE/LUMIERE_images/Patient-002-week-040/Patient-002-week-040_seg.nii.gz"
PRED = "LUMIERE/LUMIERE_seg/{model}/Patient-002-week-040/Patient-002-week-040_pred.nii.gz"


def _layout(tmp_path, tests_data):
    """Real LUMIERE masks copied under several case names; model B lacks one case, one case has no image."""
    src = tests_data / "lumiere_week040"
    root = tmp_path / "data"
    cases = ["P1-week-10", "P1-week-2", "P2-week-1"]
    for case in cases:
        (root / "gt").mkdir(parents=True, exist_ok=True)
        shutil.copy(src / SEG, root / "gt" / f"{case}.nii.gz")
        for model, real in (("A", "nnUnet"), ("B", "SegResNet")):
            if model == "B" and case == "P2-week-1":
                continue
            (root / "pred" / model).mkdir(parents=True, exist_ok=True)
            shutil.copy(src / PRED.format(model=real), root / "pred" / model / f"{case}.nii.gz")
    (root / "img").mkdir()
    for case in cases[:2]:
        shutil.copy(src / SEG, root / "img" / f"{case}_t1.nii.gz")
    (root / "meta.csv").write_text("id,site\nP1-week-2,north\nP1-week-10,north\nP2-week-1,south\n")
    data = {"datasets": {"L": {
        "root": str(root),
        "images": {"t1": "{root}/img/{case}_t1.nii.gz"},
        "ground_truth": "{root}/gt/{case}.nii.gz",
        "predictions": "{root}/pred/{model}/{case}.nii.gz",
        "longitudinal": {"pattern": r"(?P<subject>P\d+)-week-(?P<timepoint>\d+)"},
        "metadata": {"path": str(root / "meta.csv"), "id_column": "id"},
    }}}
    return parse_project(data, tmp_path), root


def test_missing_files_are_rows_with_their_expected_path(tmp_path, tests_data):
    project, root = _layout(tmp_path, tests_data)
    files = discover(project).files_frame()
    # 3 cases x (1 image + 1 ground truth + 2 models): every declared file is a row, found or not.
    assert len(files) == 12
    missing = files[~files.exists].sort_values(["role", "case"])
    assert list(zip(missing.case, missing.role, missing.key, strict=True)) == [
        ("P2-week-1", "image", "t1"), ("P2-week-1", "prediction", "B")]
    # The path of a missing file is the template filled in, so QC can name what it looked for.
    expected = {str(root / "img" / "P2-week-1_t1.nii.gz"), str(root / "pred" / "B" / "P2-week-1.nii.gz")}
    assert set(missing.path) == expected
    assert set(files[files.role == "prediction"].key) == {"A", "B"}


def test_cases_sorted_by_subject_then_numeric_timepoint_with_metadata(tmp_path, tests_data):
    project, _ = _layout(tmp_path, tests_data)
    disc = discover(project)
    # Week 2 before week 10: timepoints sort as numbers, not as text.
    assert [(c.subject, c.timepoint) for c in disc.cases] == [("P1", "2"), ("P1", "10"), ("P2", "1")]
    assert [c.metadata["site"] for c in disc.cases] == ["north", "north", "south"]
    assert disc.issues == []
    assert {f.case for f in disc.for_case("L", "P1-week-2")} == {"P1-week-2"}
    assert len(disc.for_case("L", "P1-week-2")) == 4


def test_empty_folder_discovers_nothing(tmp_path):
    (tmp_path / "empty").mkdir()
    project = parse_project({"datasets": {"E": {"root": str(tmp_path / "empty"),
                                                "ground_truth": "{root}/{case}.nii.gz"}}}, tmp_path)
    disc = discover(project)
    assert disc.cases == []
    assert disc.files == []
    assert list(disc.files_frame().columns) == ["dataset", "case", "subject", "timepoint", "role", "key", "path",
                                                "exists"]
