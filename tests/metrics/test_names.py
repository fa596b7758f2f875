"""Metric names come from one registry and follow the options (issue 14, item 5).

Bug before: ``--percentile 90`` stored ``hd90`` next to a ``lesion_hd95`` that was really the 90th percentile,
and the evaluate summary (``EvaluateResult.summary`` and the run's summary in the store) had ``hd95_mean = nan``
because it looked for ``hd95``. Checked here on the real chest x-ray lung masks of tests/data (2D, no physical
spacing, two lungs = two lesions each) and a real CoNSeP tile, through a real DuckDB store.
"""

from __future__ import annotations

import json
import math

import duckdb
import numpy as np
import pytest
import yaml
from PIL import Image as PILImage
from scipy import ndimage

from segaudit.dataset import load_project
from segaudit.metrics import EvaluationOptions, evaluate_pair
from segaudit.metrics.evaluate import instance_region, metric_names
from segaudit.metrics.policy import METRIC_DEFINITIONS, definition_of, registry_key
from segaudit.metrics.units import metric_unit
from segaudit.pipeline.evaluate import evaluate_project

CHEST_CASES = ("thnov10p5641g006-c", "40779_2020_233_Fig2_HTML-a")  # the two smallest lung masks


def _lungs(tests_data, case: str) -> np.ndarray:
    return np.asarray(PILImage.open(tests_data / "chest_xray_lungs" / "masks_lung" / f"{case}.png")) > 127


def _chest_project(tmp_path, tests_data):
    """The real lung masks as ground truth; predictions = each mask eroded by 2 px (PIL/scipy, not segaudit)."""
    pred = tmp_path / "pred"
    pred.mkdir()
    for case in CHEST_CASES:
        eroded = ndimage.binary_erosion(_lungs(tests_data, case), iterations=2)
        PILImage.fromarray((eroded * 255).astype(np.uint8)).save(pred / f"{case}.png")
    data = {"datasets": {"chest": {
        "root": str(tests_data / "chest_xray_lungs"),
        "ground_truth": "{root}/masks_lung/{case}.png",
        "predictions": {"eroded": str(pred) + "/{case}.png"},
        "labels": {"lung": 1}, "mask_encoding": {"kind": "binary", "threshold": 127}}}}
    path = tmp_path / "segaudit.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_project(path)


def test_percentile_90_stores_hd90_and_lesion_hd90_and_a_summary_without_nan(tmp_path, tests_data):
    project = _chest_project(tmp_path, tests_data)
    run = tmp_path / "run"
    res = evaluate_project(project, run, EvaluationOptions(percentile=90), progress=False, workers=1)
    con = duckdb.connect(str(run / "segaudit.duckdb"), read_only=True)
    try:
        stored = {m for (m,) in con.execute("SELECT DISTINCT metric FROM metrics WHERE region <> 'confusion'")
                  .fetchall()}
        units = dict(con.execute("SELECT DISTINCT metric, unit FROM metrics WHERE metric LIKE '%hd%'").fetchall())
        run_summary = json.loads(con.execute("SELECT summary FROM runs WHERE step = 'evaluate'").fetchone()[0])
    finally:
        con.close()
    assert {"hd90", "lesion_hd90"} <= stored
    assert not [m for m in stored if "95" in m]  # no hd95, no lesion_hd95 anywhere
    assert stored == set(metric_names(EvaluationOptions(percentile=90)))
    # Both lengths in the grid's unit (photos: px); before, lesion_hd90 would have been unitless.
    assert units == {"hd": "px", "hd90": "px", "lesion_hd90": "px"}

    summary = res.summary
    assert "hd90_mean" in summary.columns
    assert "hd90_unit" in summary.columns
    assert not [c for c in summary.columns if "hd95" in c]
    assert summary["hd90_mean"].notna().all()
    assert (summary["hd90_mean"] > 0).all()
    assert summary["hd90_unit"].tolist() == ["px"]
    # The run's summary in the store says the same.
    row = run_summary["summary"][0]
    assert math.isfinite(row["hd90_mean"])
    assert "hd95_mean" not in row
    # An erosion by 2 px moves every boundary pixel by at most 2 px (8-connected erosion: sqrt(2) * 2 max).
    assert 0 < row["hd90_mean"] <= 2 * math.sqrt(2) + 1e-9


@pytest.mark.parametrize("options", [
    EvaluationOptions(),
    EvaluationOptions(percentile=90, tolerances=(0.5, 2.0)),
    EvaluationOptions(percentile=99.5, lesion_matching="hungarian"),
    EvaluationOptions(lesion_matching="none"),
    EvaluationOptions(distances=False),
    EvaluationOptions(percentile=100),
], ids=["default", "p90-two-tolerances", "p99.5-hungarian", "no-lesions", "no-distances", "p100"])
def test_metric_names_are_exactly_what_evaluate_pair_stores(tests_data, options):
    gt = _lungs(tests_data, CHEST_CASES[0])
    pred = ndimage.binary_erosion(gt, iterations=2)
    prob = ndimage.gaussian_filter(gt.astype(float), 3)  # a soft map in [0, 1]
    res = evaluate_pair(gt, pred, (1.0, 1.0), labels={"lung": 1}, options=options, probability=prob)
    frame = res.frame()
    per_region = frame[frame.region == "lung"].metric.tolist()
    assert per_region == list(metric_names(options, probability=True))
    for m in per_region:
        assert registry_key(m) in METRIC_DEFINITIONS, m


def test_instance_metric_names_on_a_real_consep_tile(tests_data):
    root = tests_data / "histology_consep"
    inst = np.asarray(PILImage.open(root / "inst_masks" / "test_12_012.png")).astype(np.int32)
    cls = np.asarray(PILImage.open(root / "class_masks" / "test_12_012.png")).astype(np.int32)
    pred_inst = np.roll(inst, 1, axis=0)  # a one-pixel shift, as a segmenter's error
    pred_cls = np.roll(cls, 1, axis=0)
    labels = {"other": 1, "inflammatory": 2, "epithelial": 3, "spindle": 4}
    regions = {"nuclei": (1, 2, 3, 4)}
    opts = EvaluationOptions(lesion_matching="none", distances=False)
    res = evaluate_pair(cls, pred_cls, (1.0, 1.0), labels, regions, opts, gt_instances=inst, pred_instances=pred_inst)
    frame = res.frame()
    region = instance_region(labels, regions)
    assert region == "nuclei"
    stored = frame[frame.region == region].metric.tolist()
    assert stored == list(metric_names(opts, instances=True, classes=tuple(labels)))
    assert all(registry_key(m) is not None for m in stored)


def test_registry_resolves_names_set_by_the_options():
    assert registry_key("hd90") == registry_key("hd99.5") == "hd<p>"
    assert registry_key("lesion_hd90") == "lesion_hd<p>"
    assert registry_key("nsd@0.5mm") == "nsd@<tau>mm"
    assert registry_key("hd_audit") is None
    assert registry_key("hd") == "hd"
    assert definition_of("lesion_hd90") == METRIC_DEFINITIONS["lesion_hd<p>"]
    with pytest.raises(KeyError):
        definition_of("hausdorff95")
    # Units follow the registry: every length at any percentile is in the grid's length unit.
    for m in ("hd", "hd90", "hd99.5", "lesion_hd90", "lesion_hd95", "assd", "masd"):
        assert metric_unit(m, "px", 2) == "px", m
    assert metric_unit("nsd@2mm", "mm", 3) == ""
    assert metric_unit("dice", "mm", 3) == ""


def test_lesion_options_record_names_the_lesion_distance(tests_data):
    import dataclasses

    from segaudit.metrics.lesions import LesionOptions, lesion_metrics

    gt = _lungs(tests_data, CHEST_CASES[0])
    pred = ndimage.binary_erosion(gt, iterations=2)
    opts = LesionOptions(percentile=90, penalty=50.0)
    assert opts.hd_name == "lesion_hd90"
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.percentile = 95  # type: ignore[misc]
    m90 = lesion_metrics(gt, pred, (1.0, 1.0), percentile=90, penalty=50.0).metrics
    m95 = lesion_metrics(gt, pred, (1.0, 1.0), percentile=95, penalty=50.0).metrics
    assert "lesion_hd90" in m90
    assert "lesion_hd95" not in m90
    assert "lesion_hd95" in m95
    # Same matching, another percentile: every other lesion metric is the same.
    assert {k: v for k, v in m90.items() if k != "lesion_hd90"} == {k: v for k, v in m95.items() if k != "lesion_hd95"}
