"""Prompt simulation from a ground truth: property tests on synthetic masks against brute-force references."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import ndimage

from segaudit.base import overlap_dice
from segaudit.models.prompts import (
    case_rng,
    center_point,
    component_prompt_boxes,
    expand_box,
    interior_points,
    jitter_box,
    mask_box,
    negative_ring_points,
    next_click,
    refinement_clicks,
    simulate,
)

masks = arrays(bool, st.tuples(st.integers(1, 24), st.integers(1, 24)))


def brute_distance_to(points_from: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Euclidean distance from every pixel to the nearest pixel of ``target`` (brute force; inf if none)."""
    ty, tx = np.nonzero(target)
    yy, xx = np.indices(target.shape)
    if ty.size == 0:
        return np.full(target.shape, np.inf)
    d2 = (yy[..., None] - ty) ** 2 + (xx[..., None] - tx) ** 2
    return np.sqrt(d2.min(axis=-1))


def brute_inside_distance(mask: np.ndarray) -> np.ndarray:
    """Distance of each mask pixel to the nearest background pixel, the border of the image counting as
    background (pad by one pixel), 0 outside the mask."""
    padded = np.pad(mask, 1)
    d = brute_distance_to(padded, ~padded)[1:-1, 1:-1]
    return np.where(mask, d, 0.0)


@settings(max_examples=60, deadline=None)
@given(masks)
def test_component_boxes_are_the_tight_boxes_of_each_8_connected_component(m):
    labels, n = ndimage.label(m, structure=np.ones((3, 3)))
    boxes = dict(component_prompt_boxes(m))
    assert sorted(boxes) == list(range(1, n + 1))
    for comp, (x0, y0, x1, y1) in boxes.items():
        ys, xs = np.nonzero(labels == comp)
        assert (x0, y0, x1, y1) == (xs.min(), ys.min(), xs.max(), ys.max())
    ub = mask_box(m)
    if m.any():
        ys, xs = np.nonzero(m)
        assert ub == (xs.min(), ys.min(), xs.max(), ys.max())
    else:
        assert ub is None
        assert boxes == {}


def test_component_boxes_min_size_keeps_scipy_ids():
    m = np.zeros((10, 10), bool)
    m[0, 0] = True          # component 1, one pixel
    m[5:8, 5:8] = True      # component 2, nine pixels
    assert [c for c, _ in component_prompt_boxes(m, min_size=2)] == [2]
    # 4-connectivity splits a diagonal pair that 8-connectivity joins
    d = np.eye(3, dtype=bool)
    assert len(component_prompt_boxes(d, connectivity=1)) == 3
    assert len(component_prompt_boxes(d, connectivity=2)) == 1


@settings(max_examples=80, deadline=None)
@given(st.integers(0, 40), st.integers(0, 40), st.integers(0, 20), st.integers(0, 20), st.integers(0, 15),
       st.integers(0, 2**32 - 1))
def test_jitter_box_moves_each_side_outwards_by_at_most_the_shift_and_stays_in_the_image(x0, y0, w, h, shift, seed):
    shape = (50, 60)
    box = (float(min(x0, 59)), float(min(y0, 49)), float(min(x0 + w, 59)), float(min(y0 + h, 49)))
    out = jitter_box(box, shape, np.random.default_rng(seed), shift_px=shift)
    assert out[0] <= box[0]
    assert out[1] <= box[1]
    assert out[2] >= box[2]
    assert out[3] >= box[3]
    assert all(abs(a - b) <= shift for a, b in zip(out, box, strict=True))
    assert out[0] >= 0
    assert out[1] >= 0
    assert out[2] <= 59
    assert out[3] <= 49
    assert all(float(v).is_integer() for v in out)
    assert out == jitter_box(box, shape, np.random.default_rng(seed), shift_px=shift)  # seeded


def test_jitter_box_offsets_are_uniform_on_0_to_shift_per_side():
    """MedSAM's rule: an independent randint(0, shift) per side; all values occur about equally often."""
    rng = np.random.default_rng(0)
    box = (100.0, 100.0, 150.0, 150.0)
    offs = np.array([np.abs(np.subtract(jitter_box(box, (400, 400), rng, shift_px=4), box)) for _ in range(5000)])
    for side in range(4):
        counts = np.bincount(offs[:, side].astype(int), minlength=5)
        assert counts.size == 5, counts
        assert np.all(np.abs(counts / 5000 - 0.2) < 0.03), counts
    # independent sides: correlation near zero
    assert abs(np.corrcoef(offs[:, 0], offs[:, 2])[0, 1]) < 0.05


def test_jitter_box_fraction_scales_with_the_box_side():
    rng = np.random.default_rng(1)
    box = (100.0, 100.0, 199.0, 119.0)  # 100 wide, 20 high
    offs = np.array([np.abs(np.subtract(jitter_box(box, (1000, 1000), rng, shift_frac=0.1), box))
                     for _ in range(2000)])
    assert offs[:, [0, 2]].max() == 10
    assert offs[:, [1, 3]].max() == 2
    with pytest.raises(ValueError):
        jitter_box(box, (1000, 1000), rng)
    with pytest.raises(ValueError):
        jitter_box(box, (1000, 1000), rng, shift_px=3, shift_frac=0.1)


def test_expand_box_adds_the_margin_and_clips():
    assert expand_box((10.0, 20.0, 29.0, 39.0), (100, 100), px=5) == (5.0, 15.0, 34.0, 44.0)
    assert expand_box((10.0, 20.0, 29.0, 39.0), (100, 100), frac=0.5) == (0.0, 10.0, 39.0, 49.0)
    assert expand_box((2.0, 2.0, 97.0, 97.0), (100, 100), px=5) == (0.0, 0.0, 99.0, 99.0)


@settings(max_examples=60, deadline=None)
@given(masks)
def test_center_point_is_a_maximum_of_the_brute_force_inside_distance(m):
    p = center_point(m)
    if not m.any():
        assert p is None
        return
    d = brute_inside_distance(m)
    x, y = int(p[0]), int(p[1])
    assert m[y, x]
    assert d[y, x] == pytest.approx(d.max())
    # first maximum in row-major order
    assert (y, x) == tuple(np.argwhere(np.isclose(d, d.max()))[0])


def test_center_point_of_a_disc_is_its_centre():
    yy, xx = np.indices((61, 81))
    disc = (yy - 30) ** 2 + (xx - 47) ** 2 <= 15 ** 2
    assert center_point(disc) == (47.0, 30.0)


@settings(max_examples=40, deadline=None)
@given(masks, st.integers(0, 10), st.integers(0, 2**32 - 1))
def test_interior_and_ring_points_lie_where_they_should(m, n, seed):
    pts = interior_points(m, n, np.random.default_rng(seed))
    assert len(pts) == min(n, int(m.sum()))
    assert len(set(pts)) == len(pts)
    assert all(m[int(y), int(x)] for x, y in pts)
    assert pts == interior_points(m, n, np.random.default_rng(seed))
    neg = negative_ring_points(m, n, np.random.default_rng(seed), inner=1.0, outer=3.0)
    d = brute_distance_to(m, m)
    assert all(1.0 < d[int(y), int(x)] <= 3.0 for x, y in neg)
    assert len(neg) == min(n, int(((d > 1.0) & (d <= 3.0)).sum())) if m.any() else neg == []


def test_next_click_goes_to_the_larger_error_at_its_deepest_pixel():
    gt = np.zeros((40, 40), bool)
    gt[5:25, 5:25] = True
    pred = gt.copy()
    pred[5:25, 5:12] = False         # a 20x7 false negative strip
    pred[30:40, 30:40] = True        # a 10x10 false positive square: deeper (distance 5 against 4)
    (x, y), label = next_click(gt, pred)
    assert label == 0
    assert 30 <= x < 40
    assert 30 <= y < 40
    d = brute_inside_distance(pred & ~gt)
    assert d[int(y), int(x)] == pytest.approx(d.max())
    assert next_click(gt, gt) is None


def test_refinement_clicks_follow_the_protocol_and_count_clicks_to_target():
    """Two blobs; a predictor that segments exactly the GT components hit by positive clicks, plus a spurious
    blob until a negative click lands in it. Dice after each click is checked against its closed form."""
    gt = np.zeros((60, 60), bool)
    gt[5:35, 5:35] = True            # A: 900 px (deeper, clicked first)
    gt[40:50, 40:50] = True          # B: 100 px
    spur = np.zeros_like(gt)
    spur[5:25, 40:58] = True         # 360 px false positive, deeper than B's error
    labels, _ = ndimage.label(gt)

    def predict(points, labs):
        hit = {labels[int(y), int(x)] for (x, y), lab in zip(points, labs, strict=True) if lab == 1}
        out = np.isin(labels, [h for h in hit if h])
        if not any(lab == 0 and spur[int(y), int(x)] for (x, y), lab in zip(points, labs, strict=True)):
            out |= spur
        return out

    trace = refinement_clicks(gt, predict, max_clicks=5)
    assert trace.labels == [1, 0, 1]
    assert trace.points[0] == center_point(gt[:, :37])  # the first click: centre of the deepest component
    assert trace.dice == pytest.approx([2 * 900 / (1260 + 1000), 2 * 900 / (900 + 1000), 1.0])
    assert trace.clicks_to(0.85) == 2
    assert trace.clicks_to(0.95) == 3
    assert trace.clicks_to(1.01) is None
    assert refinement_clicks(gt, predict, max_clicks=5, stop_at=0.85).dice == pytest.approx(trace.dice[:2])
    assert refinement_clicks(np.zeros((5, 5), bool), predict).dice == []


def test_dice_definition():
    a = np.array([[1, 1, 0, 0]], bool)
    b = np.array([[0, 1, 1, 1]], bool)
    assert overlap_dice(a, b) == pytest.approx(2 * 1 / 5)
    assert overlap_dice(np.zeros(3, bool), np.zeros(3, bool)) == 1.0


def test_simulate_one_prompt_per_component_reproducibly():
    gt = np.zeros((80, 80), bool)
    gt[10:30, 10:30] = True
    gt[50:70, 40:75] = True
    for kind in ("box", "box-jitter", "box-jitter-frac", "box-expand", "point", "points", "point-neg"):
        a = simulate(gt, kind, case_rng(7, "case-1", kind))
        b = simulate(gt, kind, case_rng(7, "case-1", kind))
        assert [p.record() for p in a] == [p.record() for p in b]
        assert [p.component for p in a] == [1, 2]
        assert all(p.kind == kind for p in a)
    assert simulate(gt, "box-all", case_rng(7, "c"))[0].box == (10.0, 10.0, 74.0, 69.0)
    neg = simulate(gt, "point-neg", case_rng(7, "c"), n_negative=3)[0]
    assert neg.labels == (1, 0, 0, 0)
    pts = simulate(gt, "points", case_rng(7, "c"), n_points=4)[1]
    assert pts.labels == (1, 1, 1, 1)
    assert all(gt[int(y), int(x)] for x, y in pts.points)
    jit = [simulate(gt, "box-jitter", case_rng(s, "c"))[0].box for s in range(20)]
    assert len(set(jit)) > 1
    with pytest.raises(ValueError):
        simulate(gt, "scribble", case_rng(0, "c"))


def test_case_rng_is_the_same_in_a_fresh_process():
    here = case_rng(42, "BraTS-001", 3).integers(0, 2**31, size=4).tolist()
    code = ("from segaudit.models.prompts import case_rng;"
            "print(case_rng(42, 'BraTS-001', 3).integers(0, 2**31, size=4).tolist())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONHASHSEED": "123", "PYTHONPATH": ":".join(sys.path)})
    assert out.stdout.strip() == str(here)
    assert case_rng(42, "BraTS-001", 3).integers(0, 2**31) != case_rng(42, "BraTS-002", 3).integers(0, 2**31)
