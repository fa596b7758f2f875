"""Agreement without ground truth on the five real glioma predictions, against independent references.

STAPLE against SimpleITK's ``STAPLEImageFilter`` (ITK's implementation of Warfield et al. 2004), majority votes
against a direct numpy count and against the BraTS Toolkit's own majority-vote fusion shipped with the case,
pairwise Dice against a plain numpy Dice and HD95 against DeepMind's ``surface-distance``. SimpleITK and
surface-distance are imported by ``conftest.require_reference`` (required on CI, skipped elsewhere) in the tests
marked ``reference`` only, so the reference-free tests always run.
"""

from itertools import combinations

import nibabel as nib
import numpy as np
import pytest

from conftest import require_reference
from segaudit.dataset.labels import LABEL_CONVENTIONS
from segaudit.metrics.agreement import (
    agreement_rows,
    binary_majority,
    leave_one_out_consensus,
    majority_vote,
    outlier_model,
    pair_name,
    staple,
    structures,
    volume_spread,
)
from segaudit.metrics.surface import bounding_box

BRATS = LABEL_CONVENTIONS["brats2020"]
REGIONS = {"WT": (1, 2, 4), "TC": (1, 4), "ET": (4,), "NCR_NET": (1,), "ED": (2,)}


@pytest.fixture(scope="module")
def case(tests_data):
    """Model -> label map of the five real predictions (read with nibabel, not segaudit's reader)."""
    folder = tests_data / "glioma_5models" / "TCGA-DU-7294"
    maps = {p.name[:-7]: np.asarray(nib.load(p).dataobj).astype(np.uint8)
            for p in sorted((folder / "predictions").glob("*.nii.gz"))}
    fusion = {p.name[:-7]: np.asarray(nib.load(p).dataobj).astype(np.uint8)
              for p in sorted((folder / "fusion").glob("*.nii.gz"))}
    assert len(maps) == 5
    return maps, fusion


@pytest.fixture(scope="module")
def cropped(case):
    """The label maps cropped to the bounding box of all foreground plus 3 voxels: Dice, HD95, votes and the
    leave-one-out consensus are unchanged (only background is cut), and the tests run in seconds."""
    maps, fusion = case
    box = bounding_box(np.logical_or.reduce([m > 0 for m in [*maps.values(), *fusion.values()]]), 3)
    return {k: m[box] for k, m in maps.items()}, {k: m[box] for k, m in fusion.items()}


def _sitk_staple(masks, confidence_weight=1.0):
    sitk = require_reference("SimpleITK")
    images = [sitk.GetImageFromArray(m.astype(np.uint8)) for m in masks]
    f = sitk.STAPLEImageFilter()
    f.SetForegroundValue(1.0)  # our masks are 0/1
    f.SetConfidenceWeight(confidence_weight)  # 1: the prior is the mean vote fraction, as staple(prior=None)
    f.SetMaximumIterations(1000)
    w = sitk.GetArrayFromImage(f.Execute(images))
    return w, np.array(f.GetSensitivity()), np.array(f.GetSpecificity()), f.GetElapsedIterations()


def _crop(masks, margin=8):
    box = bounding_box(np.logical_or.reduce(masks), margin)
    return [m[box] for m in masks]


# Tolerances: both run the same EM from the same start (W = vote fraction, fixed prior, M-step then E-step,
# stop when every p and q moves by <= 1e-7), in double precision; what differs is summation order over
# millions of voxels (ours per vote pattern, ITK per voxel). Measured differences are <= 4e-10; 1e-8 leaves
# room for that and would still catch any difference of convention (those move p by >= 1e-3 here).
TOL = 1e-8


@pytest.mark.reference
@pytest.mark.parametrize("region", ["WT", "ET", "TC"])
def test_staple_matches_simpleitk(case, region):
    maps, _ = case
    masks = _crop([np.isin(m, REGIONS[region]) for m in maps.values()])  # same input to both: a crop, for speed
    ours = staple(masks)
    w, p, q, elapsed = _sitk_staple(masks)
    np.testing.assert_allclose(ours.sensitivity, p, rtol=0, atol=TOL)
    np.testing.assert_allclose(ours.specificity, q, rtol=0, atol=TOL)
    np.testing.assert_allclose(ours.probability, w, rtol=0, atol=TOL)
    assert np.array_equal(ours.consensus, w > 0.5)
    assert ours.converged  # ITK reports the 0-based index of its last iteration
    assert ours.iterations == elapsed + 1
    assert ours.prior == pytest.approx(np.mean([m.mean() for m in masks]), abs=1e-15)


@pytest.mark.reference
def test_staple_matches_simpleitk_whole_image(case):
    """The whole 240x240x155 grid: the background enters the prior and the specificities exactly as in ITK."""
    maps, _ = case
    masks = [np.isin(m, REGIONS["WT"]) for m in maps.values()]
    ours = staple(masks)
    w, p, q, _ = _sitk_staple(masks)
    np.testing.assert_allclose(ours.sensitivity, p, rtol=0, atol=TOL)
    np.testing.assert_allclose(ours.specificity, q, rtol=0, atol=TOL)
    np.testing.assert_allclose(ours.probability, w, rtol=0, atol=TOL)
    # A crop with the cut-away background counted (as agreement_rows calls it) estimates the same p, q and prior.
    box = bounding_box(np.logical_or.reduce(masks), 1)
    crop = staple([m[box] for m in masks], background_voxels=masks[0].size - masks[0][box].size)
    np.testing.assert_allclose(crop.sensitivity, p, rtol=0, atol=TOL)
    np.testing.assert_allclose(crop.specificity, q, rtol=0, atol=TOL)
    assert crop.prior == pytest.approx(ours.prior, rel=1e-12)
    assert np.array_equal(crop.consensus, (w > 0.5)[box])


@pytest.mark.reference
def test_staple_prior_matches_confidence_weight(case):
    """ITK scales its estimated prior by ConfidenceWeight; the same prior given explicitly gives the same answer."""
    maps, _ = case
    masks = _crop([np.isin(m, REGIONS["WT"]) for m in maps.values()])
    g = float(np.mean([m.mean() for m in masks]))
    ours = staple(masks, prior=0.5 * g)
    w, p, q, _ = _sitk_staple(masks, confidence_weight=0.5)
    np.testing.assert_allclose(ours.sensitivity, p, rtol=0, atol=TOL)
    np.testing.assert_allclose(ours.probability, w, rtol=0, atol=TOL)
    assert not np.allclose(ours.sensitivity, staple(masks).sensitivity, atol=1e-4)  # the prior matters


def test_staple_edge_cases():
    empty = [np.zeros((4, 5, 6), bool)] * 3
    r = staple(empty)
    assert not r.probability.any()
    assert np.isnan(r.sensitivity).all()
    assert (r.specificity == 1).all()
    one = np.zeros((4, 5, 6), bool)
    one[1:3, 2:4, 1:5] = True
    r = staple([one])
    assert np.array_equal(r.consensus, one)
    assert r.sensitivity[0] == 1
    assert r.specificity[0] == 1
    with pytest.raises(ValueError, match="at least one rater"):
        staple([])
    with pytest.raises(ValueError, match="raters differ in shape"):
        staple([one, one[:2]])


def test_majority_vote_against_numpy_count(cropped):
    maps, fusion = cropped
    stack = np.stack(list(maps.values()))
    values = np.array([0, 1, 2, 4])
    counts = (stack[None] == values[:, None, None, None, None]).sum(axis=1)  # (value, x, y, z)
    direct = values[np.argmax(counts, axis=0)]  # argmax takes the first maximum: the smallest tied value
    assert np.array_equal(majority_vote(list(maps.values())), direct)
    # Per label, the strict majority equals the BraTS Toolkit's majority-vote fusion shipped with the case.
    for value in (1, 2):
        assert np.array_equal(binary_majority([m == value for m in maps.values()]), fusion["mav"] == value)


def test_majority_vote_ties():
    a, b = np.array([[0, 1, 2]]), np.array([[1, 0, 4]])
    # two raters: every voxel a tie; the smallest value wins (background over a label, 2 over 4)
    assert majority_vote([a, b]).tolist() == [[0, 0, 2]]
    assert majority_vote([a]).tolist() == a.tolist()
    assert binary_majority([a > 0, b > 0]).tolist() == [[False, False, True]]  # 1 of 2 is no majority
    assert binary_majority([a > 0, b > 0, b > 0]).tolist() == [[True, False, True]]
    assert majority_vote([np.array([[7, 0]]), np.array([[7, 0]])], values=[1]).tolist() == [[0, 0]]  # unlisted


def _dice(x, y):
    s = x.sum() + y.sum()
    return 1.0 if s == 0 else 2.0 * np.logical_and(x, y).sum() / s


@pytest.mark.reference
def test_pairwise_and_leave_one_out_against_numpy(cropped):
    surface_distance = require_reference("surface_distance")

    maps, _ = cropped
    res = agreement_rows(maps, (1.0, 1.0, 1.0), BRATS.labels, BRATS.regions)
    names = sorted(maps)
    structs = structures(BRATS.labels, BRATS.regions)
    masks = {m: {s: np.isin(maps[m], v) for s, v in structs.items()} for m in names}
    assert list(structs) == ["NCR_NET", "ED", "ET", "WT", "TC"]  # the ET region is the ET label: once
    keys = [(m, r, me) for m, r, me, _ in res.rows]
    assert len(keys) == len(set(keys))
    assert sum(me == "agree_dice" for _, _, me in keys) == 10 * 5
    for a, b in combinations(names, 2):
        for s in structs:
            assert res.value(pair_name(a, b), s, "agree_dice") == pytest.approx(
                _dice(masks[a][s], masks[b][s]), abs=1e-12)
        d = surface_distance.compute_surface_distances(masks[a]["WT"], masks[b]["WT"], (1.0, 1.0, 1.0))
        assert res.value(pair_name(a, b), "WT", "agree_hd95") == pytest.approx(
            surface_distance.compute_robust_hausdorff(d, 95), abs=1e-9)
    for m in names:
        for s in structs:
            own = masks[m][s]
            others = np.stack([masks[o][s] for o in names if o != m])
            consensus = others.sum(axis=0) >= 3  # strict majority of the four others
            assert res.value(m, s, "agree_loo_dice") == pytest.approx(_dice(own, consensus), abs=1e-12)
            assert res.value(m, s, "agree_volume") == float(own.sum())
    # ET: only two models predict it, so the others' majority is empty for everyone; both-empty pairs score 1.
    assert res.value(pair_name("isen-20", "scan-20"), "ET", "agree_dice") == 1.0
    assert res.value("hnfnetv1-20", "ET", "agree_loo_dice") == 0.0


def test_leave_one_out_never_includes_the_model():
    a = np.array([[1, 1, 0, 0]], bool)
    b = np.array([[0, 0, 1, 1]], bool)
    cons = leave_one_out_consensus({"a": a, "b": b})
    assert np.array_equal(cons["a"], b)  # two models: the other one
    assert np.array_equal(cons["b"], a)
    cons = leave_one_out_consensus({"a": a, "b": b, "c": b}, method="staple")
    assert np.array_equal(cons["a"], b)  # b and c agree; a's own vote is not in its consensus
    with pytest.raises(ValueError, match="at least two models"):
        leave_one_out_consensus({"a": a})
    with pytest.raises(ValueError, match="at least two models"):
        agreement_rows({"a": a.astype(np.uint8)}, (1, 1), {"x": 1})
    with pytest.raises(ValueError, match="may not contain '~'"):
        agreement_rows({"a~b": a.astype(np.uint8), "c": b.astype(np.uint8)}, (1, 1), {"x": 1})


def test_volume_spread_and_outlier_rule():
    s = volume_spread([100.0, 200.0, 300.0, np.nan])
    assert (s.n, s.min, s.max, s.median) == (3, 100.0, 300.0, 200.0)
    assert s.std == pytest.approx(100.0)
    assert s.cv == pytest.approx(0.5)
    one = volume_spread([5.0])
    assert one.n == 1
    assert np.isnan(one.std)
    assert np.isnan(one.cv)
    assert np.isnan(volume_spread([0.0, 0.0]).cv)
    assert volume_spread([]).n == 0
    assert outlier_model({"a": 0.9, "b": 0.91, "c": 0.7}) == "c"
    assert outlier_model({"a": 0.9, "b": 0.91, "c": 0.88}) is None  # within the margin
    assert outlier_model({"a": 0.9, "b": 0.5}) is None  # two models: symmetric, nobody to single out
    assert outlier_model({"a": 0.9, "b": 0.5, "c": 0.5}) is None  # a tie for the lowest
