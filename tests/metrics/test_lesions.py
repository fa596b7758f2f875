"""Lesion-wise metrics: the BraTS rule against a literal re-implementation of the BraTS 2023 evaluation code
(full-volume, cc3d components, surface-distance HD95) on the real BraTS cases; Hungarian matching; instances.

cc3d and surface-distance are imported by ``conftest.require_reference`` (required on CI, skipped elsewhere) in
the one test that needs them, so the reference-free tests always run."""

import numpy as np
import pytest
from scipy import ndimage

from conftest import brats_pairs, require_reference
from segaudit.io import MaskEncoding, read_mask
from segaudit.metrics import EmptyPolicy, EvaluationOptions, evaluate_pair, lesion_metrics

PAIRS = brats_pairs()


def brats_reference(gt: np.ndarray, pred: np.ndarray, spacing, dil: int, thresh: float, penalty: float = 374.0):
    """The BraTS 2023 lesion-wise procedure, step by step on the whole volume (rachitsaluja/BraTS-2023-Metrics)."""
    cc3d = require_reference("cc3d")
    surface_distance = require_reference("surface_distance")
    struct = ndimage.generate_binary_structure(3, 2)
    gt_cc = cc3d.connected_components(gt.astype(np.uint8), connectivity=26)
    pred_cc = cc3d.connected_components(pred.astype(np.uint8), connectivity=26)
    dil_cc = cc3d.connected_components(ndimage.binary_dilation(gt, structure=struct, iterations=dil).astype(np.uint8),
                                       connectivity=26)
    combined = np.zeros_like(dil_cc)
    for comp in range(1, int(dil_cc.max()) + 1):
        tmp = (dil_cc == comp) * gt_cc
        combined[tmp > 0] = comp
    vox = float(np.prod(spacing))
    tp_ids, rows = [], []
    for comp in range(1, int(combined.max()) + 1):
        g = combined == comp
        foot = ndimage.binary_dilation(g, structure=struct, iterations=dil)
        hits = [int(h) for h in np.unique(pred_cc[foot]) if h]
        tp_ids += hits
        p = np.isin(pred_cc, hits)
        dice = 2 * (g & p).sum() / (g.sum() + p.sum())
        if hits:
            sd = surface_distance.compute_surface_distances(g, p, spacing)
            hd = surface_distance.compute_robust_hausdorff(sd, 95)
        else:
            hd = penalty
        rows.append((g.sum() * vox, bool(hits), dice, hd))
    fp = len(set(np.unique(pred_cc[pred_cc > 0]).tolist()) - set(tp_ids))
    kept = [r for r in rows if r[0] > thresh]
    denom = len(kept) + fp
    if denom == 0:
        return {"lesion_dice": 1.0, "lesion_hd95": 0.0, "lesion_tp": 0, "lesion_fp": 0, "lesion_fn": 0}
    return {"lesion_dice": sum(r[2] for r in kept) / denom,
            "lesion_hd95": (sum(r[3] for r in kept) + fp * penalty) / denom,
            "lesion_tp": sum(r[1] for r in kept), "lesion_fp": fp, "lesion_fn": sum(not r[1] for r in kept)}


@pytest.mark.reference
@pytest.mark.parametrize("pair", PAIRS, ids=[p[0] for p in PAIRS])
def test_brats_rule_equals_reference_on_real_cases(pair):
    _, gt_path, pred_path = pair
    gt, pred = read_mask(gt_path), read_mask(pred_path)
    regions = {"WT": (1, 2, 3), "TC": (1, 2), "ET": (1,)}
    opts = EvaluationOptions(min_lesion_volume=50.0, dilation=3, policy=EmptyPolicy(penalty=374.0))
    res = evaluate_pair(gt.array, pred.array, gt.spacing, {"ENH": 1, "NEC": 2, "EDE": 3}, regions, opts)
    for region, vals in regions.items():
        ref = brats_reference(np.isin(gt.array, vals), np.isin(pred.array, vals), gt.spacing, 3, 50.0)
        for metric, value in ref.items():
            assert res.value(region, metric) == pytest.approx(value, rel=1e-6), (region, metric)


def _blobs():
    g = np.zeros((40, 40, 40), bool)
    p = np.zeros_like(g)
    g[5:10, 5:10, 5:10] = True      # lesion A, found
    p[6:11, 5:10, 5:10] = True
    g[5:8, 25:28, 5:8] = True       # lesion B, missed
    p[30:34, 30:34, 30:34] = True   # a false positive
    g[20:24, 5:9, 20:24] = True     # lesions C1, C2 two voxels apart: merged by the dilation
    g[20:24, 11:15, 20:24] = True
    p[20:24, 5:15, 20:24] = True
    return g, p


def test_brats_rule_counts_merges_and_penalty():
    g, p = _blobs()
    res = lesion_metrics(g, p, (1, 1, 1), rule="brats", dilation=3, penalty=100.0)
    m = res.metrics
    assert (m["lesion_tp"], m["lesion_fn"], m["lesion_fp"]) == (2, 1, 1)  # C1+C2 merged into one lesion
    assert m["lesion_gt_count"] == 3
    gt_rows = [les for les in res.lesions if les.source == "gt"]
    assert sum(les.dice for les in gt_rows) / 4 == pytest.approx(m["lesion_dice"])
    missed = [les for les in gt_rows if not les.matched][0]
    assert missed.dice == 0.0
    assert missed.hd95 == 100.0
    assert m["lesion_hd95"] == pytest.approx((sum(les.hd95 for les in gt_rows) + 100.0) / 4)
    # Without dilation the two close lesions stay apart.
    m0 = lesion_metrics(g, p, (1, 1, 1), rule="brats", dilation=0, penalty=100.0).metrics
    assert m0["lesion_gt_count"] == 4


def test_hungarian_is_one_to_one_with_threshold():
    g, p = _blobs()
    res = lesion_metrics(g, p, (1, 1, 1), rule="hungarian", iou_threshold=0.5, penalty=100.0)
    m = res.metrics
    # A (IoU 4/6) matches; C1, C2 each overlap the merged prediction with IoU < 0.5; B is missed.
    assert m["lesion_tp"] == 1
    assert m["lesion_fn"] == 3
    assert m["lesion_fp"] == 2
    assert m["lesion_precision"] == pytest.approx(1 / 3)
    assert m["lesion_recall"] == pytest.approx(1 / 4)
    loose = lesion_metrics(g, p, (1, 1, 1), rule="hungarian", iou_threshold=0.2).metrics
    assert loose["lesion_tp"] == 2  # C1 or C2, never both: one-to-one


def test_lesion_empty_policy():
    e = np.zeros((10, 10), bool)
    m = lesion_metrics(e, e, (1, 1), rule="brats").metrics
    assert m["lesion_dice"] == 1.0
    assert m["lesion_hd95"] == 0.0
    assert m["lesion_f1"] == 1.0
    m = lesion_metrics(e, e, (1, 1), rule="brats", policy=EmptyPolicy(both_empty=float("nan"))).metrics
    assert np.isnan(m["lesion_dice"])


def test_instances_are_used_as_given_on_real_consep(tests_data):
    """CoNSeP nuclei: touching instances are separate lesions, while components would merge them."""
    root = tests_data / "histology_consep"
    tile = sorted((root / "inst_masks").glob("*"))[0]
    inst = read_mask(tile).array.astype(np.int32)
    fg = inst > 0
    n_inst = len(np.unique(inst)) - 1
    as_given = evaluate_pair(fg, fg, (1, 1), {"nuclei": 1}, options=EvaluationOptions(lesion_matching="hungarian"),
                             gt_instances=inst)
    comps = evaluate_pair(fg, fg, (1, 1), {"nuclei": 1}, options=EvaluationOptions(lesion_matching="hungarian"))
    assert as_given.value("nuclei", "lesion_gt_count") == n_inst
    assert comps.value("nuclei", "lesion_gt_count") < n_inst  # touching nuclei merge into components
    assert comps.value("nuclei", "lesion_f1") == 1.0


def test_2d_lesions_on_real_fundus(demo_data):
    root = demo_data / "fundus_exudates"
    g = read_mask(root / "masks_EX_binary_png" / "IDRiD_02_EX.png", MaskEncoding("binary")).array
    p = read_mask(root / "pred_sarah_antillia_flexunet" / "IDRiD_02.png", MaskEncoding("binary", "red")).array
    res = evaluate_pair(g, p, (1, 1), {"exudate": 1})
    n_g = ndimage.label(g > 0, structure=np.ones((3, 3)))[1]
    assert res.value("exudate", "lesion_tp") + res.value("exudate", "lesion_fn") <= n_g
    assert 0 < res.value("exudate", "lesion_f1") <= 1
