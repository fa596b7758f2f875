"""`init` and the project file help the user (issue 12, item 10), on the real sample folders.

glioma_5models is a layout no preset knows (``TCGA-DU-7294/{predictions,fusion}/``, five models and two
fusions, no ground truth); LUMIERE's and UCSF's case ids carry time points; BraTS 2020's numbered cases do not.
"""

from __future__ import annotations

import re
import shutil

import pytest
import yaml

from segaudit.cli import main
from segaudit.dataset import discover, load_project
from segaudit.dataset.layouts import UnknownLayoutError, detect_layout, infer_longitudinal


def test_init_writes_a_skeleton_for_an_unknown_layout(tmp_path, tests_data, capsys):
    src = tests_data / "glioma_5models"
    out = tmp_path / "glioma.yaml"
    assert main(["init", str(src), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "No known layout" in printed
    assert "no ground truth found" in printed
    text = out.read_text()
    assert text.startswith("# segaudit project proposed")
    assert "# SKELETON" in text
    entry = yaml.safe_load(text)["datasets"]["glioma_5models"]
    assert "{model}-20.nii.gz" in " ".join(entry["predictions"])
    assert entry["label_convention"] == "brats2020"  # values {1, 2, 4} read from the real predictions
    project = load_project(out)
    files = discover(project).files_frame()
    names = {p.stem.split(".")[0].removesuffix("-20") for p in (src / "TCGA-DU-7294").glob("*/*.nii.gz")}
    assert set(files[files.role == "prediction"].key) == names
    assert files.exists.all()
    # evaluate has nothing to score and says why
    assert main(["evaluate", str(out), "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "nothing to evaluate" in printed
    assert "no ground truth" in printed


def test_scan_of_unknown_folder_names_what_it_found(tests_data):
    with pytest.raises(UnknownLayoutError, match="predictions of 5 model"):
        detect_layout(tests_data / "glioma_5models")


def test_longitudinal_patterns_from_real_case_ids(demo_data):
    lumiere = sorted(p.name for p in (demo_data / "brats_audit" / "LUMIERE" / "LUMIERE_images").iterdir())
    rx, _ = infer_longitudinal(lumiere)
    assert all(re.fullmatch(rx, c).group("subject") == "Patient-002" for c in lumiere)
    ucsf = sorted(p.name for p in (demo_data / "brats_audit" / "UCSF" / "UCSF_images").iterdir())
    rx, _ = infer_longitudinal(ucsf)
    assert sorted(re.fullmatch(rx, c).group("timepoint") for c in ucsf) == ["1", "2"]
    brats = sorted(p.name for p in (demo_data / "brats_audit" / "BraTS2020" / "BraTS2020_images").iterdir())
    assert infer_longitudinal(brats) is None  # BraTS20_Training_001 / _369 are two patients
    det = detect_layout(demo_data / "brats_audit")
    assert "longitudinal" in det.project["datasets"]["LUMIERE"]
    assert "longitudinal" not in det.project["datasets"]["BraTS2020"]


def test_scan_show_all_prints_info_findings(tests_data, capsys):
    assert main(["scan", str(tests_data / "chest_xray_lungs"), "--no-progress"]) == 0
    short = capsys.readouterr().out
    assert main(["scan", str(tests_data / "chest_xray_lungs"), "--no-progress", "--show-all"]) == 0
    full = capsys.readouterr().out
    assert " info " not in short.split("QC findings")[-1]
    assert re.search(r"\binfo\s+chest_xray_lungs/", full)


def test_counts_print_as_integers_and_no_nan_ci(tmp_path, brats_copy, capsys):
    root = brats_copy / "LUMIERE"
    for case in ("Patient-002-week-003", "Patient-002-week-021"):  # one case left: no CI is possible
        shutil.rmtree(root / "LUMIERE_images" / case)
    data = {"datasets": {"LUMIERE": {"root": str(root), "label_convention": "audit",
                                     "ground_truth": "{root}/LUMIERE_images/{case}/{case}_seg.nii.gz",
                                     "predictions": "{root}/LUMIERE_seg/{model}/{case}/{case}_pred.nii.gz"}}}
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data))
    run = tmp_path / "run"
    assert main(["evaluate", str(path), "--out", str(run), "--no-progress", "--lesion-matching", "none"]) == 0
    out = capsys.readouterr().out
    rows = [line.split("│")[4:10] for line in out.splitlines() if line.startswith("│ LUMIERE")]
    assert rows  # expected ... both empty: integers
    assert all(c.strip().isdigit() for r in rows for c in r)
    assert main(["compare", str(run), "--baseline", "nnUnet", "--candidate", "SegResNet", "--region", "WT"]) == 0
    out = capsys.readouterr().out
    assert "nan" not in out.split("difference")[1].split("\n")[0]
