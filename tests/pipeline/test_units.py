"""Units that are true (issue 12, item 4) on the real chest x-rays of tests/data and the real BraTS masks.

The chest x-rays are journal figures of five different sizes (277×375 to 898×898 pixels) without any physical
pixel size. Predictions are the real lung masks copied, except one case whose prediction is an empty mask of
the same size: its distances must be the one dataset-wide penalty (the largest image diagonal), in px.
Expected values are computed here from the files with PIL/numpy only (image sizes, pixel counts).
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import sys

import duckdb
import numpy as np
import pytest
import yaml
from PIL import Image as PILImage

from segaudit.cli import main
from segaudit.dataset import load_project
from segaudit.metrics import EvaluationOptions
from segaudit.pipeline.evaluate import evaluate_project
from segaudit.report.html import build_report
from segaudit.store import ResultsStore

FAST = EvaluationOptions(lesion_matching="none")
EMPTY_CASE = "thnov10p5641g006-c"  # the smallest figure: 277×375


def _chest_project(tmp_path, tests_data, **ds_extra):
    src = tests_data / "chest_xray_lungs" / "masks_lung"
    pred = tmp_path / "pred"
    pred.mkdir()
    for f in sorted(src.glob("*.png")):
        if f.stem == EMPTY_CASE:
            a = np.asarray(PILImage.open(f))
            PILImage.fromarray(np.zeros_like(a)).save(pred / f.name)
        else:
            shutil.copy(f, pred / f.name)
    extra = ds_extra.pop("project_extra", {})
    data = {"datasets": {"chest": {
        "root": str(tests_data / "chest_xray_lungs"),
        "ground_truth": "{root}/masks_lung/{case}.png",
        "predictions": {"copy": str(pred) + "/{case}.png"},
        "labels": {"lung": 1}, "mask_encoding": {"kind": "binary", "threshold": 127}, **ds_extra}}, **extra}
    path = tmp_path / "segaudit.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _largest_diagonal(folder, scale=1.0) -> float:
    """Largest sqrt(w² + h²) over the PNG masks, from PIL's sizes (independent of segaudit)."""
    return max(math.hypot(*(s * scale for s in PILImage.open(f).size)) for f in folder.glob("*.png"))


def _rows(run, sql):
    con = duckdb.connect(str(run / "segaudit.duckdb"), read_only=True)
    try:
        return con.execute(sql).df()
    finally:
        con.close()


def test_photo_distances_are_px_and_the_penalty_is_dataset_wide(tmp_path, tests_data):
    project = load_project(_chest_project(tmp_path, tests_data))
    run = tmp_path / "run"
    res = evaluate_project(project, run, FAST, progress=False)
    assert res.errors.empty
    rows = _rows(run, "SELECT \"case\", metric, value, unit FROM metrics WHERE region = 'lung'")
    units = rows.groupby("metric").unit.unique()
    assert list(units["hd95"]) == ["px"]
    assert list(units["hd"]) == ["px"]
    assert list(units["gt_volume"]) == ["px2"]
    assert list(units["dice"]) == [""]
    assert list(units["tp"]) == ["voxels"]
    # The empty prediction of the 277×375 figure scores the diagonal of the 898×898 figure, not its own 466 px.
    expected = _largest_diagonal(tests_data / "chest_xray_lungs" / "masks_lung")
    own = math.hypot(277, 375)
    hd95 = rows[(rows.case == EMPTY_CASE) & (rows.metric == "hd95")].value.iloc[0]
    assert hd95 == pytest.approx(expected, rel=1e-9)
    assert abs(hd95 - own) > 500
    grid = res.grids["chest"]
    assert grid.length_unit == "px"
    assert grid.penalty == pytest.approx(expected)
    assert len(grid.sizes) == 5
    # The CLI summary says px; the areas are pixel counts (checked against numpy on the file).
    assert res.summary.hd95_unit.tolist() == ["px"]
    case = "12941_2020_358_Fig1_HTML"
    lung_px = int((np.asarray(PILImage.open(tests_data / "chest_xray_lungs" / "masks_lung" / f"{case}.png")) > 127)
                  .sum())
    assert rows[(rows.case == case) & (rows.metric == "gt_volume")].value.iloc[0] == lung_px
    # The run records the penalty for the report.
    with ResultsStore(run, read_only=True) as store:
        html_path = build_report(run, tmp_path / "r.html")
        assert store.units().query("metric == 'hd95'").unit.tolist() == ["px"]
    text = html_path.read_text()
    assert "HD95 (px)" in text
    assert "HD95 (mm)" not in text
    assert "NSD at 1 px" in text
    assert f"{expected:.1f} px" in text
    assert "the same for every case" in text


def test_declared_spacing_makes_mm_true(tmp_path, tests_data):
    project = load_project(_chest_project(tmp_path, tests_data, spacing=[0.2, 0.2]))
    run = tmp_path / "run"
    evaluate_project(project, run, FAST, progress=False)
    rows = _rows(run, "SELECT \"case\", metric, value, unit FROM metrics WHERE region = 'lung'")
    assert set(rows[rows.metric == "hd95"].unit) == {"mm"}
    assert set(rows[rows.metric == "gt_volume"].unit) == {"mm2"}
    expected = _largest_diagonal(tests_data / "chest_xray_lungs" / "masks_lung", 0.2)
    hd95 = rows[(rows.case == EMPTY_CASE) & (rows.metric == "hd95")].value.iloc[0]
    assert hd95 == pytest.approx(expected, rel=1e-9)


def test_declared_penalty_is_used_for_every_case(tmp_path, tests_data):
    path = _chest_project(tmp_path, tests_data, project_extra={"evaluate": {"penalty": 374,
                                                                               "lesion_matching": "none"}})
    run = tmp_path / "run"
    res = evaluate_project(load_project(path), run, progress=False)  # options from the project's evaluate:
    rows = _rows(run, f"SELECT metric, value FROM metrics WHERE region = 'lung' AND \"case\" = '{EMPTY_CASE}'")
    assert rows.set_index("metric").value["hd95"] == 374.0
    assert "declared" in res.grids["chest"].source


def test_nifti_distances_are_mm(tmp_path, brats_copy):
    data = {"datasets": {"UCSF": {"root": str(brats_copy / "UCSF"),
                                  "ground_truth": "{root}/UCSF_images/{case}/{case}_seg.nii.gz",
                                  "predictions": "{root}/UCSF_seg/{model}/{case}/{case}_pred.nii.gz",
                                  "label_convention": "audit"}}}
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data))
    run = tmp_path / "run"
    evaluate_project(load_project(path), run, FAST, progress=False)
    rows = _rows(run, "SELECT DISTINCT metric, unit FROM metrics WHERE region = 'WT'").set_index("metric").unit
    assert rows["hd95"] == "mm"
    assert rows["gt_volume"] == "mm3"
    assert rows["dice"] == ""


def test_old_store_gains_the_unit_column(tmp_path):
    run = tmp_path / "old"
    run.mkdir()
    con = duckdb.connect(str(run / "segaudit.duckdb"))
    con.execute("CREATE TABLE metrics (dataset VARCHAR, \"case\" VARCHAR, model VARCHAR, region VARCHAR, "
                "metric VARCHAR, value DOUBLE, run_id VARCHAR)")
    con.execute("INSERT INTO metrics VALUES ('d', 'c', 'm', 'r', 'hd95', 3.0, 'x')")
    con.close()
    with ResultsStore(run) as store:
        m = store.read("metrics")
        assert "unit" in m.columns
        assert m.unit.isna().all()
        assert store.units().empty


def test_cli_prints_units_and_penalty(tmp_path, tests_data, capsys):
    path = _chest_project(tmp_path, tests_data)
    run = tmp_path / "run"
    assert main(["evaluate", str(path), "--out", str(run), "--no-progress", "--lesion-matching", "none"]) == 0
    out = capsys.readouterr().out
    assert "hd95 unit" in out
    assert re.search(r"│ chest .*│\s*px\s*│", out)
    expected = _largest_diagonal(tests_data / "chest_xray_lungs" / "masks_lung")
    assert f"scores {expected:.1f} px" in out
    assert main(["metrics", "--explain", "--results", str(run)]) == 0
    out = capsys.readouterr().out
    assert "Units stored in" in out
    assert "px2" in out


def test_module_cli_explain_states_px(tmp_path):
    out = subprocess.run([sys.executable, "-m", "segaudit", "metrics", "--explain"], capture_output=True,
                         text=True, check=True).stdout
    assert "px without physical spacing" in out
