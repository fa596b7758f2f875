"""``evaluate_pair`` and ``EvaluationOptions`` (segaudit.metrics.evaluate) against hand definitions on real masks.

Data: the CoNSeP class maps of tests/data (256x256, four nucleus classes: a real multi-label map) with a
prediction made by a one-pixel shift and a class swap, and the smallest chest x-ray lung mask. Every expected
value is computed here with numpy/scipy from the arrays (counts, Dice, volumes, distances between border pixels
by a brute-force pairwise distance), never by segaudit.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image as PILImage
from scipy import ndimage
from scipy.spatial.distance import cdist

from segaudit.metrics import EmptyPolicy, EvaluationOptions, evaluate_pair
from segaudit.metrics.evaluate import metric_names

TILE = "test_5_014"  # the one tile with all four classes
CLASSES = {"other": 1, "inflammatory": 2, "epithelial": 3, "spindle": 4}
SPACING = (0.25, 0.25)  # CoNSeP: 0.25 um/px at 40x; any positive pixel size works for the definitions


@pytest.fixture(scope="module")
def consep(tests_data):
    cls = np.asarray(PILImage.open(tests_data / "histology_consep" / "class_masks" / f"{TILE}.png")).astype(np.uint8)
    pred = np.roll(cls, 1, axis=1)  # a one-pixel shift ...
    pred = np.where(pred == 1, 3, np.where(pred == 3, 1, pred)).astype(np.uint8)  # ... and "other" <-> epithelial
    return cls, pred


@pytest.fixture(scope="module")
def lung(tests_data):
    return np.asarray(PILImage.open(tests_data / "chest_xray_lungs" / "masks_lung" / "thnov10p5641g006-c.png")) > 127


def _dice(g, p):
    s = np.count_nonzero(g) + np.count_nonzero(p)
    return 2 * np.count_nonzero(g & p) / s if s else 1.0


def test_overlap_confusion_and_volumes_equal_numpy_on_a_real_multilabel_map(consep):
    gt, pred = consep
    regions = {"nuclei": (1, 2, 3, 4), "immune_or_other": (1, 2)}
    res = evaluate_pair(gt, pred, SPACING, CLASSES, regions, EvaluationOptions(lesion_matching="none",
                                                                              distances=False))
    pixel = SPACING[0] * SPACING[1]
    for name, vals in {**{k: (v,) for k, v in CLASSES.items()}, **regions}.items():
        g, p = np.isin(gt, vals), np.isin(pred, vals)
        tp, fp, fn = (np.count_nonzero(g & p), np.count_nonzero(~g & p), np.count_nonzero(g & ~p))
        tn = g.size - tp - fp - fn
        assert [res.value(name, m) for m in ("tp", "fp", "fn", "tn")] == [tp, fp, fn, tn], name
        assert res.value(name, "dice") == pytest.approx(_dice(g, p), rel=1e-12)
        assert res.value(name, "iou") == pytest.approx(tp / (tp + fp + fn), rel=1e-12)
        assert res.value(name, "precision") == pytest.approx(tp / (tp + fp), rel=1e-12)
        assert res.value(name, "sensitivity") == pytest.approx(tp / (tp + fn), rel=1e-12)
        assert res.value(name, "specificity") == pytest.approx(tn / (tn + fp), rel=1e-12)
        assert res.value(name, "accuracy") == pytest.approx((tp + tn) / g.size, rel=1e-12)
        assert res.value(name, "gt_volume") == pytest.approx(np.count_nonzero(g) * pixel, rel=1e-12)
        assert res.value(name, "relative_volume_error") == pytest.approx(
            (np.count_nonzero(p) - np.count_nonzero(g)) / np.count_nonzero(g), rel=1e-12)
    # The error matrix: every (gt label, pred label) pixel count, over the whole image.
    names = ["background", *CLASSES]
    values = [0, *CLASSES.values()]
    total = 0
    for a, va in zip(names, values, strict=True):
        for b, vb in zip(names, values, strict=True):
            n = res.value("confusion", f"{a}->{b}")
            assert n == np.count_nonzero((gt == va) & (pred == vb)), (a, b)
            total += n
    assert total == gt.size
    # The class swap shows where it should: other pixels predicted epithelial.
    assert res.value("confusion", "other->epithelial") > 0.5 * np.count_nonzero(gt == 1)


def _border(mask):
    """Voxel-surface points: foreground pixels with a background 4-neighbour (the image edge is background)."""
    return mask & ~ndimage.binary_erosion(np.pad(mask, 1))[1:-1, 1:-1]


def test_voxel_distances_equal_brute_force_on_a_real_lung_mask(lung):
    """hd, hd90, assd, masd and NSD under ``voxel`` surfaces from all pairwise distances between border pixels."""
    # Crop for a tractable brute force (cdist over every border pixel pair); the crop keeps both lungs whole.
    box = ndimage.find_objects(lung.astype(int))[0]
    gt = lung[box]
    pred = ndimage.binary_erosion(gt, iterations=2) | ndimage.shift(gt, (0, 3), order=0)
    spacing = (0.7, 1.1)
    options = EvaluationOptions(surface="voxel", percentile=90, tolerances=(1.0, 2.5), lesion_matching="none")
    res = evaluate_pair(gt, pred, spacing, {"lung": 1}, options=options)
    pg = np.argwhere(_border(gt)) * spacing
    pp = np.argwhere(_border(pred)) * spacing
    d = cdist(pg, pp)
    d_gp, d_pg = d.min(axis=1), d.min(axis=0)
    assert res.value("lung", "hd") == pytest.approx(max(d_gp.max(), d_pg.max()), rel=1e-9)
    assert res.value("lung", "hd90") == pytest.approx(max(np.percentile(d_gp, 90), np.percentile(d_pg, 90)),
                                                      rel=1e-9)
    assert res.value("lung", "assd") == pytest.approx((d_gp.sum() + d_pg.sum()) / (d_gp.size + d_pg.size),
                                                      rel=1e-9)
    assert res.value("lung", "masd") == pytest.approx((d_gp.mean() + d_pg.mean()) / 2, rel=1e-9)
    for tau in (1.0, 2.5):
        want = (np.count_nonzero(d_gp <= tau) + np.count_nonzero(d_pg <= tau)) / (d_gp.size + d_pg.size)
        assert res.value("lung", f"nsd@{tau:g}mm") == pytest.approx(want, rel=1e-12)
    assert "hd95" not in set(res.frame().metric)


def test_cropping_to_the_foreground_changes_no_value(lung):
    """The pair is cropped to its foreground internally: padding the image with background changes only the
    whole-image counts (tn, specificity, accuracy) and nothing else, with the penalty fixed."""
    pred = ndimage.binary_dilation(lung, iterations=3)
    opts = EvaluationOptions(policy=EmptyPolicy(penalty=100.0))
    a = evaluate_pair(lung, pred, (1.0, 1.0), {"lung": 1}, options=opts)
    b = evaluate_pair(np.pad(lung, 40), np.pad(pred, 40), (1.0, 1.0), {"lung": 1}, options=opts)
    whole = {"tn", "specificity", "accuracy"}
    fa = {m: v for r, m, v in a.rows if r == "lung" and m not in whole}
    fb = {m: v for r, m, v in b.rows if r == "lung" and m not in whole}
    assert fa == pytest.approx(fb, rel=1e-12)
    assert b.value("lung", "tn") - a.value("lung", "tn") == np.pad(lung, 40).size - lung.size
    # Lesions keep their own coordinates: shifted by the padding.
    ca = a.lesion_frame().centroid.tolist()
    cb = b.lesion_frame().centroid.tolist()
    assert [tuple(x + 40 for x in c) for c in ca] == pytest.approx(cb)


def test_label_defaults_regions_and_unknown_labels(consep):
    gt, pred = consep
    opts = EvaluationOptions(lesion_matching="none", distances=False)
    res = evaluate_pair(gt, pred, SPACING, options=opts)  # labels=None: every value present, label_<v>
    assert sorted({r for r, _, _ in res.rows} - {"confusion"}) == ["label_1", "label_2", "label_3", "label_4"]
    # A region equal to a label is that label: same values under both names.
    res = evaluate_pair(gt, pred, SPACING, {"epithelial": 3}, {"epi": (3,)}, opts)
    assert res.frame().query("region == 'epi'").value.tolist() == res.frame().query(
        "region == 'epithelial'").value.tolist()
    # Values outside the label map: background with a note, or an error.
    res = evaluate_pair(gt, pred, SPACING, {"epithelial": 3}, options=opts)
    assert any("not in the label map" in n for n in res.notes)
    assert res.value("epithelial", "dice") == pytest.approx(_dice(gt == 3, pred == 3), rel=1e-12)
    with pytest.raises(ValueError, match="not in the label map"):
        evaluate_pair(gt, pred, SPACING, {"epithelial": 3}, options=opts.with_changes(unknown_labels="error"))


def test_probability_rows_against_a_rank_definition(lung):
    prob = ndimage.gaussian_filter(lung.astype(float), 4)
    res = evaluate_pair(lung, prob > 0.5, (1.0, 1.0), {"lung": 1}, probability=prob,
                        options=EvaluationOptions(lesion_matching="none", distances=False))
    # ROC AUC = P(score of a positive > score of a negative) + 1/2 P(tie), from the ranks (Mann-Whitney U).
    from scipy.stats import rankdata

    ranks = rankdata(prob.ravel())
    y = lung.ravel()
    n_pos, n_neg = np.count_nonzero(y), np.count_nonzero(~y)
    auc = (ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    assert res.value("lung", "roc_auc") == pytest.approx(auc, rel=1e-9)
    assert res.value("lung", "brier") == pytest.approx(np.mean((prob - lung) ** 2), rel=1e-12)
    assert [m for r, m, _ in res.rows if r == "lung"] == list(metric_names(
        EvaluationOptions(lesion_matching="none", distances=False), probability=True))


def test_options_validation_and_round_trip():
    for bad in ({"surface": "mesh"}, {"percentile": 0}, {"percentile": 101}, {"tolerances": (-1.0,)},
                {"lesion_matching": "greedy"}, {"unknown_labels": "ignore"}):
        with pytest.raises(ValueError, match=next(iter(bad))):  # the message names the option
            EvaluationOptions(**bad)
    with pytest.raises(ValueError, match=r"evaluate: unknown key\(s\) 'surfce'"):
        EvaluationOptions.from_dict({"surfce": "voxel"})
    opts = EvaluationOptions.from_dict({"percentile": 90, "tolerances": 2, "both_empty": "nan",
                                        "distance_one_empty": "inf", "lesion_matching": "hungarian"})
    assert opts.tolerances == (2.0,)
    assert math.isnan(opts.policy.both_empty)
    assert opts.policy.distance_one_empty == "inf"
    assert opts.hd_name == "hd90"
    assert opts.lesion_hd_name == "lesion_hd90"
    back = EvaluationOptions.from_dict(opts.to_dict())
    assert back.to_dict().keys() == opts.to_dict().keys()
    assert back.hd_name == opts.hd_name
    assert back.tolerances == opts.tolerances
    assert back.policy.distance_one_empty == "inf"
    assert math.isnan(back.policy.both_empty)


def test_input_validation(lung):
    with pytest.raises(ValueError, match="differ in shape"):
        evaluate_pair(lung, lung[:-1], (1.0, 1.0))
    with pytest.raises(ValueError, match="2D or 3D"):
        evaluate_pair(lung[None, None], lung[None, None], (1.0,) * 4)
    with pytest.raises(ValueError, match="spacing"):
        evaluate_pair(lung, lung, (1.0, 0.0))
    with pytest.raises(ValueError, match="spacing"):
        evaluate_pair(lung, lung, (1.0, 1.0, 1.0))
