"""Instance (nuclei) metrics on the real CoNSeP tiles, checked against HoVer-Net's published definitions.

The reference functions below re-implement, line for line in spirit, ``get_fast_pq``, ``get_fast_aji``,
``get_fast_aji_plus`` and ``remap_label`` of HoVer-Net's ``metrics/stats_utils.py`` (github.com/vqdang/hover_net,
commit 67e2ce5; Graham et al., Medical Image Analysis 2019): one binary mask per instance, a double loop over
overlapping pairs. The PanNuke per-class rule (PQ of a class is NaN when its ground truth is empty; mPQ is a
nanmean) follows the PanNuke evaluation script. Predictions are derived from the real ground truth by the
errors a nucleus segmenter makes: a one-pixel shift, boundary erosion/dilation, missed nuclei, merged
neighbours, split nuclei, false-positive blobs in the stroma and wrong classes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image
from scipy import ndimage
from scipy.optimize import linear_sum_assignment

from segaudit.dataset import LABEL_CONVENTIONS, load_project
from segaudit.errors import ConfigError
from segaudit.metrics import EvaluationOptions, evaluate_pair
from segaudit.metrics.instance import (
    aggregated_jaccard_index,
    aggregated_jaccard_index_plus,
    instance_classes,
    instance_metrics,
    panoptic_quality,
    per_class_pq,
)
from segaudit.metrics.policy import explain_table
from segaudit.pipeline.evaluate import evaluate_project
from segaudit.store import ResultsStore

CONSEP = Path(__file__).resolve().parents[1] / "data" / "histology_consep"
TILES = sorted(p.stem for p in (CONSEP / "inst_masks").glob("*.png"))


# ------------------------------------------------------------------ HoVer-Net's stats_utils, re-implemented
def ref_remap_label(inst):
    ids = [i for i in np.unique(inst) if i != 0]
    out = np.zeros(inst.shape, np.int32)
    for new, old in enumerate(ids):
        out[inst == old] = new + 1
    return out


def _ref_pairwise(true, pred):
    true_ids, pred_ids = list(np.unique(true)), list(np.unique(pred))
    t_masks = [None] + [np.array(true == t, np.uint8) for t in true_ids[1:]]
    p_masks = [None] + [np.array(pred == p, np.uint8) for p in pred_ids[1:]]
    inter = np.zeros((len(true_ids) - 1, len(pred_ids) - 1), np.float64)
    union = np.zeros_like(inter)
    for t in true_ids[1:]:
        tm = t_masks[t]
        for p in np.unique(pred[tm > 0]):
            if p == 0:
                continue
            pm = p_masks[p]
            total = (tm + pm).sum()
            i = (tm * pm).sum()
            inter[t - 1, p - 1] = i
            union[t - 1, p - 1] = total - i
    return true_ids, pred_ids, t_masks, p_masks, inter, union


def ref_get_fast_pq(true, pred, match_iou=0.5):
    true_ids, pred_ids, _, _, inter, union = _ref_pairwise(true, pred)
    iou = np.zeros_like(inter)
    nz = union > 0
    iou[nz] = inter[nz] / union[nz]
    iou[iou <= match_iou] = 0.0
    paired_true, paired_pred = np.nonzero(iou)
    paired_iou = iou[paired_true, paired_pred]
    paired_true, paired_pred = list(paired_true + 1), list(paired_pred + 1)
    tp = len(paired_true)
    fp = len([p for p in pred_ids[1:] if p not in paired_pred])
    fn = len([t for t in true_ids[1:] if t not in paired_true])
    dq = tp / (tp + 0.5 * fp + 0.5 * fn)
    sq = paired_iou.sum() / (tp + 1.0e-6)
    return (dq, sq, dq * sq), (tp, fp, fn)


def _ref_aji_total(true_ids, pred_ids, t_masks, p_masks, inter, union, paired_true, paired_pred):
    overall_inter = inter[paired_true, paired_pred].sum()
    overall_union = union[paired_true, paired_pred].sum()
    paired_true, paired_pred = list(paired_true + 1), list(paired_pred + 1)
    for t in true_ids[1:]:
        if t not in paired_true:
            overall_union += t_masks[t].sum()
    for p in pred_ids[1:]:
        if p not in paired_pred:
            overall_union += p_masks[p].sum()
    return overall_inter / overall_union


def ref_get_fast_aji(true, pred):
    true_ids, pred_ids, t_masks, p_masks, inter, union = _ref_pairwise(true, pred)
    iou = inter / (union + 1.0e-6)
    paired_pred = np.argmax(iou, axis=1)
    best = np.max(iou, axis=1)
    paired_true = np.nonzero(best > 0.0)[0]
    paired_pred = paired_pred[paired_true]
    return _ref_aji_total(true_ids, pred_ids, t_masks, p_masks, inter, union, paired_true, paired_pred)


def ref_get_fast_aji_plus(true, pred):
    true_ids, pred_ids, t_masks, p_masks, inter, union = _ref_pairwise(true, pred)
    iou = inter / (union + 1.0e-6)
    paired_true, paired_pred = linear_sum_assignment(-iou)
    keep = iou[paired_true, paired_pred] > 0.0
    return _ref_aji_total(true_ids, pred_ids, t_masks, p_masks, inter, union, paired_true[keep],
                          paired_pred[keep])


# ------------------------------------------------------------------ real data and realistic predictions
def load_tile(tile):
    inst = np.array(Image.open(CONSEP / "inst_masks" / f"{tile}.png")).astype(np.int64)
    cls = np.array(Image.open(CONSEP / "class_masks" / f"{tile}.png")).astype(np.int64)
    return inst, cls


def _expand(lab, radius):
    """Grow every instance by ``radius`` px into the background only (nearest instance wins)."""
    if radius <= 0:
        return lab
    d, (ri, ci) = ndimage.distance_transform_edt(lab == 0, return_indices=True)
    return np.where(d <= radius, lab[ri, ci], 0)


def perturb(inst, cls, seed):
    """A plausible nucleus segmentation derived from the ground truth, with its class map.

    Returns the predicted instance map (random, non-contiguous ids up to 60000) and a class map.
    """
    rng = np.random.default_rng(seed)
    ids = [int(i) for i in np.unique(inst) if i != 0]
    gt_class = {i: int(np.bincount(cls[inst == i]).argmax()) for i in ids}
    out = np.zeros_like(inst)
    pclass: dict[int, int] = {}
    dropped = set(rng.choice(ids, size=max(1, len(ids) // 10), replace=False).tolist())
    for i in ids:
        if i in dropped:
            continue
        m = inst == i
        r = rng.choice([-2, -1, 0, 0, 1, 2])
        if r < 0:
            m = ndimage.binary_erosion(m, iterations=-r)
        if m.sum() == 0:
            continue
        out[m & (out == 0)] = i
        pclass[i] = gt_class[i]
    grown = _expand(out, 1)  # under-segmenters stop short, this one spills one pixel into the stroma
    out = np.where(rng.random(out.shape) < 0.5, grown, out)
    # merges: some touching neighbours become one instance
    alive = [i for i in ids if i in pclass]
    for i in rng.choice(alive, size=min(6, len(alive)), replace=False):
        ring = ndimage.binary_dilation(out == i, iterations=2) & (out != i) & (out != 0)
        if ring.any():
            j = int(np.bincount(out[ring]).argmax())
            out[out == j] = i
            pclass.pop(j, None)
    # splits: the largest nuclei cut in two along their longest image axis
    areas = {i: int((out == i).sum()) for i in np.unique(out) if i != 0}
    new_id = int(inst.max()) + 1
    for i in sorted(areas, key=areas.get)[-4:]:
        rr, cc = np.nonzero(out == i)
        axis_vals = rr if np.ptp(rr) >= np.ptp(cc) else cc
        half = axis_vals > np.median(axis_vals)
        out[rr[half], cc[half]] = new_id
        pclass[new_id] = pclass.get(i, 1)
        new_id += 1
    # false-positive blobs in the background
    for _ in range(4):
        y, x = rng.integers(5, inst.shape[0] - 5, size=2)
        yy, xx = np.ogrid[: inst.shape[0], : inst.shape[1]]
        blob = ((yy - y) ** 2 + (xx - x) ** 2 <= rng.integers(4, 16)) & (out == 0) & (inst == 0)
        if blob.any():
            out[blob] = new_id
            pclass[new_id] = int(rng.integers(1, 5))
            new_id += 1
    # a one-pixel registration shift on some tiles
    if seed % 3 == 0:
        out = np.roll(out, 1, axis=1)
    # wrong classes for some nuclei
    for i in list(pclass):
        if rng.random() < 0.15:
            pclass[i] = int(rng.integers(1, 5))
    lut = np.zeros(int(out.max()) + 1, np.int64)
    present = [int(i) for i in np.unique(out) if i != 0]
    lut[present] = rng.choice(np.arange(1, 60000), size=len(present), replace=False)
    cls_lut = np.zeros_like(lut)
    cls_lut[present] = [pclass.get(i, 1) for i in present]
    return lut[out], cls_lut[out]


@pytest.fixture(scope="module")
def pairs():
    out = {}
    for k, tile in enumerate(TILES):
        inst, cls = load_tile(tile)
        pred, pcls = perturb(inst, cls, seed=k)
        out[tile] = (inst, cls, pred, pcls)
    return out


# ------------------------------------------------------------------ against HoVer-Net on the real tiles
def test_pq_aji_equal_hovernet_on_consep_tiles(pairs):
    seen_fp = seen_fn = 0
    for tile, (gt, _, pred, _) in pairs.items():
        t, p = ref_remap_label(gt), ref_remap_label(pred)
        (dq, sq_eps, _), (tp, fp, fn) = ref_get_fast_pq(t, p)
        ours = panoptic_quality(gt, pred)
        assert (ours.tp, ours.fp, ours.fn) == (tp, fp, fn), tile
        assert ours.dq == pytest.approx(dq, abs=1e-9), tile
        sq = sq_eps * (tp + 1e-6) / tp  # HoVer-Net divides by TP + 1e-6; undo its guard
        assert ours.sq == pytest.approx(sq, abs=1e-9), tile
        assert ours.pq == pytest.approx(dq * sq, abs=1e-9), tile
        assert aggregated_jaccard_index(gt, pred) == pytest.approx(ref_get_fast_aji(t, p), abs=1e-9), tile
        assert aggregated_jaccard_index_plus(gt, pred) == pytest.approx(ref_get_fast_aji_plus(t, p), abs=1e-9), tile
        seen_fp, seen_fn = seen_fp + fp, seen_fn + fn
    assert seen_fp > 20  # the perturbations really exercise FP and FN
    assert seen_fn > 20


def test_merges_hurt_aji_more_than_aji_plus(pairs):
    """A merge makes AJI count the merged area twice; AJI+ pairs it once. On every real tile AJI <= AJI+."""
    gaps = []
    for gt, _, pred, _ in pairs.values():
        a, ap = aggregated_jaccard_index(gt, pred), aggregated_jaccard_index_plus(gt, pred)
        assert a <= ap + 1e-12
        gaps.append(ap - a)
    assert max(gaps) > 0.001


def test_per_class_pq_equals_pannuke_rule_on_consep_classes(pairs):
    names = LABEL_CONVENTIONS["consep"].labels
    n_nan = 0
    for tile, (gt, cls, pred, pcls) in pairs.items():
        table = pd.read_csv(CONSEP / "inst_masks_classes" / f"{tile}_classes.csv")
        # instance classes voted from the class mask agree with the dataset's own per-instance table
        assert instance_classes(gt, cls) == dict(zip(table.instance_id, table.class_id, strict=True))
        res = per_class_pq(gt, pred, cls, pcls, names)
        expected = []
        for name, c in names.items():
            t = np.where(np.isin(gt, table.instance_id[table.class_id == c]), gt, 0)
            pc = instance_classes(pred, pcls)
            p = np.where(np.isin(pred, [i for i, k in pc.items() if k == c]), pred, 0)
            if len(np.unique(t)) == 1:  # PanNuke: empty GT class -> nan, skipped by nanmean
                assert np.isnan(res.per_class[name].pq), (tile, name)
                expected.append(np.nan)
                n_nan += 1
                continue
            if not p.any():
                ref = 0.0
            else:
                (dq, sq_eps, _), (tp, _, _) = ref_get_fast_pq(ref_remap_label(t), ref_remap_label(p))
                ref = dq * sq_eps * (tp + 1e-6) / tp if tp else 0.0
            assert res.per_class[name].pq == pytest.approx(ref, abs=1e-9), (tile, name)
            expected.append(ref)
        assert res.mpq == pytest.approx(np.nanmean(expected), abs=1e-9), tile
    assert n_nan > 0  # some tiles lack some classes (tiles.csv: test_8_000 has only epithelial)


def test_class_blind_prediction_loses_per_class_pq(pairs):
    gt, cls, pred, _ = pairs[TILES[0]]
    right = per_class_pq(gt, pred, cls, np.where(pred > 0, cls, 0), LABEL_CONVENTIONS["consep"].labels)
    everything_other = per_class_pq(gt, pred, cls, (pred > 0).astype(int), LABEL_CONVENTIONS["consep"].labels)
    assert everything_other.mpq < right.mpq
    assert everything_other.per_class["epithelial"].pq == 0.0  # test_10_009 has epithelial nuclei, none found
    assert everything_other.per_class["epithelial"].fn > 0


# ------------------------------------------------------------------ edge cases
def test_identical_maps_with_other_ids_score_one():
    gt, _ = load_tile(TILES[0])
    ids = np.unique(gt)[1:]
    lut = np.zeros(gt.max() + 1, np.int64)
    lut[ids] = np.random.default_rng(1).permutation(np.arange(1000, 1000 + ids.size * 37, 37))
    r = instance_metrics(gt, lut[gt])
    assert (r.panoptic.pq, r.panoptic.dq, r.panoptic.sq, r.aji, r.aji_plus) == (1.0, 1.0, 1.0, 1.0, 1.0)
    assert (r.panoptic.tp, r.panoptic.fp, r.panoptic.fn) == (ids.size, 0, 0)


def test_both_empty_follows_policy_and_one_empty_is_zero():
    z = np.zeros((64, 64), np.uint16)
    one = z.copy()
    one[10:20, 10:20] = 5
    one[30:35, 40:50] = 9
    r = instance_metrics(z, z)
    assert (r.panoptic.pq, r.aji, r.aji_plus) == (1.0, 1.0, 1.0)
    r = instance_metrics(z, z, both_empty=float("nan"))
    assert np.isnan([r.panoptic.pq, r.panoptic.dq, r.panoptic.sq, r.aji, r.aji_plus]).all()
    for gt, pred, fp, fn in ((z, one, 2, 0), (one, z, 0, 2)):
        r = instance_metrics(gt, pred)
        assert (r.panoptic.pq, r.panoptic.dq, r.aji, r.aji_plus) == (0.0, 0.0, 0.0, 0.0)
        assert np.isnan(r.panoptic.sq)  # no matched pair: the mean IoU is undefined
        assert (r.panoptic.fp, r.panoptic.fn) == (fp, fn)


def test_pq_threshold_is_strict_and_unique():
    gt = np.zeros((1, 4), int)
    gt[0, :2] = 1
    pred = np.zeros((1, 4), int)
    pred[0, 1:3] = 1  # IoU exactly 1/3
    assert panoptic_quality(gt, pred).tp == 0
    half = np.array([[1, 1, 0, 0]]), np.array([[1, 0, 0, 0]])  # IoU exactly 0.5: not a match (> 0.5)
    assert panoptic_quality(*half).tp == 0
    with pytest.raises(ValueError, match="0.5"):
        panoptic_quality(gt, pred, iou_threshold=0.3)
    with pytest.raises(ValueError, match="shape"):
        panoptic_quality(gt, np.zeros((2, 4), int))
    with pytest.raises(ValueError, match="integers"):
        panoptic_quality(gt.astype(float), pred)


def test_fast_on_1000x1000():
    import time

    tiles = [load_tile(t)[0] for t in TILES]
    big = np.zeros((1024, 1024), np.int64)
    for k in range(16):
        t = tiles[k % len(tiles)]
        r, c = divmod(k, 4)
        big[r * 256:(r + 1) * 256, c * 256:(c + 1) * 256] = np.where(t > 0, t + 2000 * k, 0)
    big = big[:1000, :1000]
    pred = np.roll(big, 2, axis=0)
    t0 = time.perf_counter()
    r = instance_metrics(big, pred)
    assert time.perf_counter() - t0 < 5.0
    assert r.panoptic.tp > 500


# ------------------------------------------------------------------ evaluate_pair, explain, project file
def test_evaluate_pair_adds_instance_and_per_class_rows(pairs):
    gt, cls, pred, pcls = pairs[TILES[1]]
    conv = LABEL_CONVENTIONS["consep"]
    res = evaluate_pair(cls, pcls, (1.0, 1.0), conv.labels, conv.regions, EvaluationOptions(lesion_matching="none"),
                        gt_instances=gt, pred_instances=pred)
    f = res.frame()
    nuclei = f[f.region == "nuclei"].set_index("metric").value
    direct = instance_metrics(gt, pred, cls, pcls, conv.labels)
    for m in ("pq", "dq", "sq", "aji", "aji_plus", "pq_tp", "pq_fp", "pq_fn", "mpq", "pq_epithelial",
              "pq_spindle_shaped"):
        assert nuclei[m] == pytest.approx(direct.rows()[m], nan_ok=True), m
    assert "dice" in nuclei  # the region's semantic metrics are still there
    # without a predicted instance map there is no PQ (connected components are not instances)
    plain = evaluate_pair(cls, pcls, (1.0, 1.0), conv.labels, conv.regions, EvaluationOptions(lesion_matching="none"),
                          gt_instances=gt)
    assert "pq" not in set(plain.frame().metric)


def test_explain_lists_instance_metrics():
    rows = {r["metric"]: r for r in explain_table()}
    for m in ("pq", "dq", "sq", "aji", "aji_plus", "pq_tp", "pq_fp", "pq_fn", "pq_<class>", "mpq"):
        assert m in rows
    assert rows["pq"]["units"] == "1"
    assert rows["sq"]["pred empty"] == "nan"


def _write_predictions(pairs, root):
    for tile, (_, _, pred, _) in pairs.items():
        d = root / "pred" / "seg_v1"
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pred.astype(np.uint16)).save(d / f"{tile}.png")


def _consep_project(tmp_path, **extra):
    data = {"datasets": {"consep": {
        "root": str(CONSEP),
        "ground_truth": "{root}/class_masks/{case}.png",
        "instances": "{root}/inst_masks/{case}.png",
        "predictions": str(tmp_path / "pred" / "{model}" / "{case}.png"),
        "label_convention": "consep",
        "prediction_encoding": {"kind": "instances"}, **extra}}}
    path = tmp_path / "segaudit.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_project(path)


def test_pipeline_instance_predictions_store_pq_per_case(pairs, tmp_path):
    _write_predictions(pairs, tmp_path)
    project = _consep_project(tmp_path)
    res = evaluate_project(project, tmp_path / "run", EvaluationOptions(lesion_matching="none"), progress=False)
    assert res.errors.empty, res.errors
    with ResultsStore(tmp_path / "run") as store:
        pq = store.query("SELECT \"case\", region, value FROM metrics WHERE metric = 'pq' ORDER BY \"case\"")
        dice = store.query("SELECT \"case\", value FROM metrics WHERE metric = 'dice' AND region = 'nuclei'")
    assert sorted(pq["case"]) == TILES  # one row per case
    assert set(pq.region) == {"nuclei"}
    for row in pq.itertuples():
        gt, _, pred, _ = pairs[row.case]
        stored = np.array(Image.open(tmp_path / "pred" / "seg_v1" / f"{row.case}.png")).astype(np.int64)
        (dq, sq_eps, _), (tp, _, _) = ref_get_fast_pq(ref_remap_label(gt), ref_remap_label(stored))
        assert row.value == pytest.approx(dq * sq_eps * (tp + 1e-6) / tp, abs=1e-9), row.case
    # class-agnostic foreground Dice of the union of instances, counted directly
    for row in dice.itertuples():
        gt, _, pred, _ = pairs[row.case]
        a, b = gt > 0, pred > 0
        assert row.value == pytest.approx(2 * (a & b).sum() / (a.sum() + b.sum()), abs=1e-12)


def test_instances_kind_only_for_predictions(tmp_path):
    with pytest.raises(ConfigError, match="predictions only"):
        _consep_project(tmp_path, mask_encoding={"kind": "instances"})


def test_docstring_examples_run():
    import doctest

    from segaudit.metrics import instance

    res = doctest.testmod(instance)
    assert res.attempted >= 15
    assert res.failed == 0


def test_qc_reads_instance_predictions_as_instance_maps(pairs, tmp_path):
    """Instance ids of a prediction are not label values: no unknown_label error, the id range is reported."""
    from segaudit.pipeline.scan import scan_project

    _write_predictions(pairs, tmp_path)
    qc = scan_project(_consep_project(tmp_path), progress=False).qc
    preds = qc[qc.path.astype(str).str.contains("seg_v1")]
    assert "unknown_label" not in set(preds.check)
    assert (preds.check == "noncontiguous_instances").sum() == len(TILES)


def test_pipeline_warns_when_a_case_has_no_ground_truth_instances(pairs, tmp_path):
    import shutil

    _write_predictions(pairs, tmp_path)
    data = tmp_path / "consep"
    shutil.copytree(CONSEP / "class_masks", data / "class_masks")
    shutil.copytree(CONSEP / "inst_masks", data / "inst_masks")
    (data / "inst_masks" / f"{TILES[0]}.png").unlink()
    project = _consep_project(tmp_path, root=str(data))
    res = evaluate_project(project, tmp_path / "run", EvaluationOptions(lesion_matching="none"), progress=False)
    pq_cases = set(res.metrics[res.metrics.metric == "pq"].case)
    assert pq_cases == set(TILES[1:])
    assert list(res.errors.case) == [TILES[0]]
    assert "no ground-truth instance map" in res.errors.message.iloc[0]
    assert res.errors.severity.iloc[0] == "warning"
    # the class-agnostic foreground metrics of that case are still scored
    assert TILES[0] in set(res.metrics[res.metrics.metric == "dice"].case)
