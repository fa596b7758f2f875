"""Overlap metrics: the confusion-matrix path equals a plain count implementation, on real cases."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from conftest import AUDIT_REGIONS, brats_pairs
from segaudit.io import read_mask
from segaudit.metrics import EvaluationOptions, evaluate_pair
from segaudit.metrics.overlap import counts, dice, iou, precision, sensitivity

PAIRS = brats_pairs()


def plain(g: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """An independent count implementation, straight from the definitions."""
    g, p = g.astype(bool).ravel(), p.astype(bool).ravel()
    tp = float(np.sum(g & p))
    fp = float(np.sum(~g & p))
    fn = float(np.sum(g & ~p))
    tn = float(np.sum(~g & ~p))
    out = {"tp": tp, "fp": fp, "fn": fn, "tn": tn, "accuracy": (tp + tn) / g.size, "specificity": tn / (tn + fp)}
    if tp + fp + fn:
        out["dice"] = 2 * tp / (2 * tp + fp + fn)
        out["iou"] = tp / (tp + fp + fn)
    if tp + fp:
        out["precision"] = tp / (tp + fp)
    if tp + fn:
        out["sensitivity"] = tp / (tp + fn)
    return out


@pytest.mark.parametrize("pair", PAIRS, ids=[p[0] for p in PAIRS])
def test_dice_family_equals_plain_counts_on_real_cases(pair):
    _, gt_path, pred_path = pair
    gt, pred = read_mask(gt_path), read_mask(pred_path)
    opts = EvaluationOptions(distances=False, lesion_matching="none")
    res = evaluate_pair(gt.array, pred.array, gt.spacing, {"ENH": 1, "NEC": 2, "EDE": 3},
                        {"WT": (1, 2, 3), "TC": (1, 2)}, opts)
    vox = float(np.prod(gt.spacing))
    for region, vals in AUDIT_REGIONS.items():
        ref = plain(np.isin(gt.array, vals), np.isin(pred.array, vals))
        for metric, value in ref.items():
            assert res.value(region, metric) == pytest.approx(value, rel=1e-12, abs=1e-12), (region, metric)
        assert res.value(region, "gt_volume") == pytest.approx((ref["tp"] + ref["fn"]) * vox, rel=1e-12)
        assert res.value(region, "pred_volume") == pytest.approx((ref["tp"] + ref["fp"]) * vox, rel=1e-12)


def test_empty_cases_follow_the_policy_without_smoothing():
    e = np.zeros((6, 6), bool)
    m = e.copy()
    m[1:3, 1:3] = True
    c_miss = counts(m, e)
    assert dice(c_miss) == 0.0  # a total miss is exactly 0, never 2.5e-10
    assert iou(c_miss) == 0.0
    assert sensitivity(c_miss) == 0.0
    assert np.isnan(precision(c_miss))
    c_both = counts(e, e)
    assert dice(c_both) == 1.0
    assert np.isnan(dice(c_both, both_empty=np.nan))
    c_fp = counts(e, m)
    assert dice(c_fp) == 0.0
    assert precision(c_fp) == 0.0
    assert np.isnan(sensitivity(c_fp))


masks = arrays(bool, st.tuples(st.integers(2, 9), st.integers(2, 9), st.integers(2, 9)))


@settings(max_examples=60, deadline=None)
@given(masks, st.data())
def test_properties_of_overlap_and_volume(g, data):
    p = data.draw(arrays(bool, g.shape))
    spacing = data.draw(st.tuples(*[st.floats(0.2, 4.0)] * 3))
    opts = EvaluationOptions(distances=False, lesion_matching="none")
    a = evaluate_pair(g, p, spacing, {"fg": 1}, options=opts)
    b = evaluate_pair(p, g, spacing, {"fg": 1}, options=opts)
    for m in ("dice", "iou", "accuracy"):
        assert a.value("fg", m) == pytest.approx(b.value("fg", m))  # symmetric
        assert 0.0 <= a.value("fg", m) <= 1.0
    assert a.value("fg", "precision") == pytest.approx(b.value("fg", "sensitivity"), nan_ok=True)
    d, j = a.value("fg", "dice"), a.value("fg", "iou")
    assert d == pytest.approx(2 * j / (1 + j))  # Dice and IoU are tied
    assert a.value("fg", "gt_volume") == pytest.approx(g.sum() * np.prod(spacing))
    assert a.value("fg", "gt_empty") == float(not g.any())
