"""The empty-case policy as a contract (issue 14, item 7): what the registry documents is what is stored.

For each of the three empty combinations (ground truth empty only, prediction empty only, both empty) a real
chest x-ray lung mask (tests/data, two lungs = two lesions) is scored against an empty mask, and every metric
``evaluate_pair`` stores for the region is checked against the value ``METRIC_DEFINITIONS`` (what
``segaudit metrics --explain`` prints) documents for that case. Counts, volumes, components and the image
diagonal are computed here with numpy/scipy/math, independently of segaudit.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image as PILImage
from scipy import ndimage

from segaudit.metrics import EmptyPolicy, EvaluationOptions, evaluate_pair, explain_table, image_diagonal
from segaudit.metrics.evaluate import metric_names
from segaudit.metrics.policy import METRIC_DEFINITIONS, definition_of, registry_key

CASE = "thnov10p5641g006-c"  # the smallest figure, 277x375
SPACING = (0.5, 0.8)  # declared pixel size, mm: volumes in mm², distances in mm
CASES = {"gt empty only": 2, "pred empty only": 3, "both empty": 4}  # column of the registry's tuple


@pytest.fixture(scope="module")
def lungs(tests_data) -> np.ndarray:
    return np.asarray(PILImage.open(tests_data / "chest_xray_lungs" / "masks_lung" / f"{CASE}.png")) > 127


def _components(mask: np.ndarray) -> int:
    return int(ndimage.label(mask, structure=np.ones((3, 3)))[1])  # 8-connected, segaudit's 2D default


def _expected(metric: str, text: str, gt: np.ndarray, pred: np.ndarray, policy: EmptyPolicy, penalty: float):
    """The documented value (a registry string) turned into a number, or ``"finite"`` for ``defined``."""
    word = text.split(" (")[0]
    pixel_area = SPACING[0] * SPACING[1]
    counts = {"fp": np.count_nonzero(pred & ~gt), "fn": np.count_nonzero(gt & ~pred),
              "tn": np.count_nonzero(~gt & ~pred), "gt_volume": np.count_nonzero(gt) * pixel_area,
              "pred_volume": np.count_nonzero(pred) * pixel_area, "lesion_fp": _components(pred),
              "lesion_fn": _components(gt), "lesion_gt_count": _components(gt),
              "lesion_pred_count": _components(pred)}
    table = {"0": 0.0, "1": 1.0, "-1": -1.0, "nan": np.nan, "defined": "finite",
             "both_empty": policy.both_empty, "distance_both_empty": policy.distance_both_empty,
             "distance_one_empty": {"penalty": penalty, "nan": np.nan, "inf": np.inf}[policy.distance_one_empty],
             "penalty": penalty, "all voxels": float(gt.size),
             "pred_volume": np.count_nonzero(pred) * pixel_area, "-gt_volume": -np.count_nonzero(gt) * pixel_area}
    if word == "count":
        return float(counts[metric])
    return table[word]


POLICIES = [EmptyPolicy(), EmptyPolicy(both_empty=float("nan"), distance_one_empty="inf"),
            EmptyPolicy(distance_one_empty="nan", distance_both_empty=0.0, penalty=123.0),
            EmptyPolicy(both_empty=0.0, distance_both_empty=5.0, penalty=50.0)]


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("policy", POLICIES, ids=["default", "nan-inf", "nan-distance", "zero-five"])
def test_stored_empty_case_values_are_the_documented_ones(lungs, case, policy):
    empty = np.zeros_like(lungs)
    gt, pred = {"gt empty only": (empty, lungs), "pred empty only": (lungs, empty), "both empty": (empty, empty)}[case]
    options = EvaluationOptions(policy=policy, tolerances=(1.0, 2.0), percentile=90)
    res = evaluate_pair(gt.astype(np.uint8), pred.astype(np.uint8), SPACING, labels={"lung": 1}, options=options)
    stored = {m: v for r, m, v in res.rows if r == "lung"}
    assert list(stored) == list(metric_names(options))
    # The penalty: the policy's, else the diagonal of the grid in mm (math.hypot, not segaudit).
    penalty = policy.penalty if policy.penalty is not None else math.hypot(*(n * s for n, s in
                                                                             zip(lungs.shape, SPACING, strict=True)))
    for metric, value in stored.items():
        text = definition_of(metric)[CASES[case]]
        want = _expected(metric, text, gt, pred, policy, penalty)
        if want == "finite":
            assert math.isfinite(value), (metric, value)
        elif isinstance(want, float) and math.isnan(want):
            assert math.isnan(value), (metric, value, text)
        else:
            assert value == pytest.approx(want, rel=1e-12, abs=1e-12), (metric, value, text)
    # The flags say which case this is, whatever the metrics say.
    assert (stored["gt_empty"], stored["pred_empty"]) == {"gt empty only": (1.0, 0.0), "pred empty only": (0.0, 1.0),
                                                          "both empty": (1.0, 1.0)}[case]


def test_no_epsilon_smoothing_a_total_miss_is_exactly_zero(lungs):
    shifted = np.zeros_like(lungs)
    shifted[:, : lungs.shape[1] // 10] = True  # a band at the image's left edge
    gt = lungs & ~shifted
    res = evaluate_pair(gt, shifted & ~gt, SPACING, labels={"lung": 1}, options=EvaluationOptions(distances=False))
    assert res.value("lung", "dice") == 0.0
    assert res.value("lung", "iou") == 0.0


def test_policy_validation_and_penalty():
    with pytest.raises(ValueError, match="distance_one_empty"):
        EmptyPolicy(distance_one_empty="zero")
    with pytest.raises(ValueError, match="both_empty"):
        EmptyPolicy(both_empty=0.5)
    assert image_diagonal((240, 240, 155), (1.0, 1.0, 1.0)) == pytest.approx(math.sqrt(240**2 + 240**2 + 155**2))
    assert EmptyPolicy().penalty_for((100, 50), (0.5, 2.0)) == pytest.approx(math.hypot(50.0, 100.0))
    assert EmptyPolicy(penalty=374).penalty_for((100, 50), (0.5, 2.0)) == 374.0
    assert math.isinf(EmptyPolicy(distance_one_empty="inf").one_empty_distance((3, 3), (1.0, 1.0)))
    assert EmptyPolicy(both_empty=float("nan")).to_dict()["distance_one_empty"] == "penalty"


def test_explain_table_is_the_registry():
    rows = explain_table()
    assert [r["metric"] for r in rows] == list(METRIC_DEFINITIONS)
    for r in rows:
        assert r["definition"], r
        assert r["units"], r
        assert registry_key(r["metric"]) == r["metric"]
        assert (r["definition"], r["units"], r["gt empty"], r["pred empty"], r["both empty"]) == \
            METRIC_DEFINITIONS[r["metric"]]
    # Templates, not one percentile's names, in the registry.
    assert "hd<p>" in METRIC_DEFINITIONS
    assert "lesion_hd<p>" in METRIC_DEFINITIONS
    assert "hd95" not in METRIC_DEFINITIONS
    assert "lesion_hd95" not in METRIC_DEFINITIONS
