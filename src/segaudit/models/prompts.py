"""Prompts simulated from a ground-truth mask, seeded and reproducible (numpy and scipy only, no torch).

Boxes are ``(x_min, y_min, x_max, y_max)`` in inclusive pixel indices (x = column, y = row); points are
``(x, y)``. Every random function takes a ``numpy.random.Generator``; :func:`case_rng` derives one from a run seed
and a case id (stable across processes, unlike Python's salted ``hash``).

Simulators, after the field's evaluation protocols:

* :func:`component_prompt_boxes` / :func:`union_box`: tight boxes per connected component / around all of them;
* :func:`jitter_box`: MedSAM's ``bbox_shift`` rule (each side moved outwards by an independent uniform integer in
  [0, shift], clipped to the image), the shift in pixels or as a fraction of the box side;
* :func:`expand_box`: a fixed margin;
* :func:`center_point`: the mask pixel farthest from the background (maximum of the distance transform);
* :func:`interior_points`, :func:`negative_ring_points`: random positive points inside, negative points in a ring
  outside the object;
* :func:`refinement_clicks`: the RITM / SimpleClick protocol (next click at the maximum of the distance
  transform of the larger error region, positive in a false negative, negative in a false positive), with Dice
  after each click and the number of clicks to reach a Dice target.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from segaudit.base.masks import bounding_box, overlap_dice
from segaudit.base.masks import component_boxes as label_component_boxes
from segaudit.models.base import Box, Prompt

__all__ = ["ClickTrace", "case_rng", "center_point", "component_prompt_boxes", "expand_box", "interior_points",
           "jitter_box", "mask_box", "negative_ring_points", "next_click", "refinement_clicks", "simulate",
           "union_box", "PROMPT_KINDS"]


def case_rng(seed: int, *keys: str | int) -> np.random.Generator:
    """A generator determined by the run ``seed`` and the given keys (case id, component, prompt kind).

    The keys are hashed with SHA-256, so the stream is the same in every process and on every machine.
    """
    words = [int(seed)]
    for key in keys:
        words.append(int.from_bytes(hashlib.sha256(str(key).encode()).digest()[:8], "little"))
    return np.random.default_rng(np.random.SeedSequence(words))


def mask_box(mask: np.ndarray) -> Box | None:
    """The tight box ``(x_min, y_min, x_max, y_max)`` (inclusive) of a 2D mask; None when it is empty."""
    m = np.asarray(mask, bool)
    if m.ndim != 2:
        raise ValueError(f"expected a 2D mask, got shape {m.shape}")
    box = bounding_box(m)
    if box is None:
        return None
    ys, xs = box
    return float(xs.start), float(ys.start), float(xs.stop - 1), float(ys.stop - 1)


def union_box(mask: np.ndarray) -> Box | None:
    """One box around all foreground pixels (all components); None when the mask is empty."""
    return mask_box(mask)


def component_prompt_boxes(mask: np.ndarray, connectivity: int = 2, min_size: int = 1) -> list[tuple[int, Box]]:
    """(component id, tight box) per connected component, ids 1..n in scan order (``scipy.ndimage.label``).

    ``connectivity`` 1 is 4-connectivity, 2 is 8-connectivity (default). Components smaller than ``min_size``
    pixels are skipped (their id is still consumed, so ids match :func:`scipy.ndimage.label`). Boxes are
    inclusive, as prompts take them (:func:`segaudit.base.component_boxes` gives exclusive ends).
    """
    labels, _ = ndimage.label(np.asarray(mask, bool), structure=ndimage.generate_binary_structure(2, connectivity))
    return [(i, (float(x0), float(y0), float(x1 - 1), float(y1 - 1)))
            for i, (x0, y0, x1, y1) in label_component_boxes(labels, min_size=min_size)]


def _clip_box(box: Sequence[float], shape: tuple[int, int]) -> Box:
    h, w = shape[:2]
    x0, y0, x1, y1 = box
    return float(max(0, x0)), float(max(0, y0)), float(min(w - 1, x1)), float(min(h - 1, y1))


def jitter_box(box: Box, shape: tuple[int, int], rng: np.random.Generator, shift_px: int | None = None,
               shift_frac: float | None = None) -> Box:
    """MedSAM's ``bbox_shift`` perturbation.

    Each side moves OUTWARDS by an independent integer drawn uniformly from [0, shift] (MedSAM trains with a 20-pixel
    shift on 1024×1024 inputs), then the box is clipped to the image (to index W-1 / H-1, since boxes are inclusive
    indices; MedSAM clips to W / H).

    Give exactly one of ``shift_px`` (pixels, all sides) or ``shift_frac`` (a fraction of the box's width for
    x and of its height for y, rounded to whole pixels).
    """
    if (shift_px is None) == (shift_frac is None):
        raise ValueError("give exactly one of shift_px or shift_frac")
    x0, y0, x1, y1 = box
    if shift_px is not None:
        if shift_px < 0:
            raise ValueError(f"shift_px must be >= 0, got {shift_px}")
        sx = sy = int(shift_px)
    else:
        assert shift_frac is not None  # exactly one of the two is given (checked above)
        if shift_frac < 0:
            raise ValueError(f"shift_frac must be >= 0, got {shift_frac}")
        sx, sy = int(round(shift_frac * (x1 - x0 + 1))), int(round(shift_frac * (y1 - y0 + 1)))
    d = rng.integers(0, [sx + 1, sy + 1, sx + 1, sy + 1])
    return _clip_box((x0 - d[0], y0 - d[1], x1 + d[2], y1 + d[3]), shape)


def expand_box(box: Box, shape: tuple[int, int], px: float = 0.0, frac: float = 0.0) -> Box:
    """The box grown by ``px`` pixels plus ``frac`` of its side on every side, clipped to the image."""
    x0, y0, x1, y1 = box
    mx, my = px + frac * (x1 - x0 + 1), px + frac * (y1 - y0 + 1)
    return _clip_box((x0 - mx, y0 - my, x1 + mx, y1 + my), shape)


def _inside_distance(mask: np.ndarray) -> np.ndarray:
    # The image border counts as background (padding), as RITM does: a click is never placed on the edge of an
    # object that leaves the image.
    padded = np.pad(np.asarray(mask, bool), 1)
    return ndimage.distance_transform_edt(padded)[1:-1, 1:-1]


def center_point(mask: np.ndarray) -> tuple[float, float] | None:
    """The ``(x, y)`` of the mask pixel with the largest Euclidean distance to the background (first in row-major
    order on ties); None for an empty mask.
    """
    dt = _inside_distance(mask)
    if dt.max() <= 0:
        return None
    y, x = np.unravel_index(int(np.argmax(dt)), dt.shape)
    return float(x), float(y)


def interior_points(mask: np.ndarray, n: int, rng: np.random.Generator,
                    margin: float = 0.0) -> list[tuple[float, float]]:
    """``n`` distinct mask pixels drawn uniformly (without replacement) among those at a distance > ``margin``
    from the background (fewer when fewer exist).
    """
    ys, xs = np.nonzero(_inside_distance(mask) > margin)
    if ys.size == 0 or n <= 0:
        return []
    pick = rng.choice(ys.size, size=min(n, ys.size), replace=False)
    return [(float(xs[i]), float(ys[i])) for i in np.sort(pick)]


def negative_ring_points(mask: np.ndarray, n: int, rng: np.random.Generator, inner: float = 5.0,
                         outer: float = 20.0) -> list[tuple[float, float]]:
    """``n`` distinct background pixels drawn uniformly from the ring inner < d <= outer, d the Euclidean
    distance (pixels) to the nearest mask pixel; inside the image only. Empty for an empty mask.
    """
    m = np.asarray(mask, bool)
    if not m.any() or n <= 0:
        return []
    d = ndimage.distance_transform_edt(~m)
    ys, xs = np.nonzero((d > inner) & (d <= outer))
    if ys.size == 0:
        return []
    pick = rng.choice(ys.size, size=min(n, ys.size), replace=False)
    return [(float(xs[i]), float(ys[i])) for i in np.sort(pick)]


def next_click(gt: np.ndarray, pred: np.ndarray) -> tuple[tuple[float, float], int] | None:
    """The next corrective click (RITM's ``get_next_points``).

    In the false-negative region (label 1) or the false-positive region (label 0), whichever has the larger
    distance-transform maximum (ties go to the false negatives), at that maximum (first in row-major order). None when
    the prediction is perfect.
    """
    g, p = np.asarray(gt, bool), np.asarray(pred, bool)
    fn_dt, fp_dt = _inside_distance(g & ~p), _inside_distance(p & ~g)
    fn_max, fp_max = fn_dt.max(), fp_dt.max()
    if fn_max <= 0 and fp_max <= 0:
        return None
    positive = fn_max >= fp_max
    dt = fn_dt if positive else fp_dt
    y, x = np.unravel_index(int(np.argmax(dt)), dt.shape)
    return (float(x), float(y)), int(positive)


@dataclass
class ClickTrace:
    """Points, labels and Dice after each click of an interactive-refinement simulation."""

    points: list[tuple[float, float]] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    dice: list[float] = field(default_factory=list)

    def clicks_to(self, target: float) -> int | None:
        """The number of clicks after which Dice first reached ``target`` (NoC@target); None when it never did
        within the clicks simulated (RITM then counts the maximum number of clicks).
        """
        for k, d in enumerate(self.dice, start=1):
            if d >= target:
                return k
        return None


def refinement_clicks(gt: np.ndarray, predict: Callable[[list[tuple[float, float]], list[int]], np.ndarray],
                      max_clicks: int = 10, stop_at: float | None = None) -> ClickTrace:
    """Simulate interactive refinement: click, predict with all clicks so far, place the next click on the error.

    ``predict(points, labels)`` returns a boolean mask for the clicks so far (the model, its memory of the previous
    mask, if any, is the caller's concern). The first click is :func:`next_click` against an empty prediction,
    i.e. the centre point of the ground truth. Stops after ``max_clicks``, when the prediction is perfect, or when
    Dice reaches ``stop_at``. An empty ground truth gets no click (empty trace).
    """
    g = np.asarray(gt, bool)
    trace = ClickTrace()
    pred = np.zeros_like(g)
    for _ in range(max_clicks):
        click = next_click(g, pred)
        if click is None:
            break
        trace.points.append(click[0])
        trace.labels.append(click[1])
        pred = np.asarray(predict(list(trace.points), list(trace.labels)), bool)
        trace.dice.append(overlap_dice(pred, g))
        if stop_at is not None and trace.dice[-1] >= stop_at:
            break
    return trace


#: Prompt kinds :func:`simulate` knows.
PROMPT_KINDS = ("box", "box-all", "box-jitter", "box-jitter-frac", "box-expand", "point", "points",
                "point-neg")


def simulate(gt: np.ndarray, kind: str, rng: np.random.Generator, *, shift_px: int = 20, shift_frac: float = 0.1,
             expand_px: float = 10.0, n_points: int = 3, n_negative: int = 2, ring: tuple[float, float] = (5.0, 20.0),
             min_size: int = 1) -> list[Prompt]:
    """The prompts of one kind for a 2D ground-truth mask: one per connected component (``box-all``: one in all).

    ``box`` tight box; ``box-all`` one box around everything; ``box-jitter`` / ``box-jitter-frac``
    :func:`jitter_box` by ``shift_px`` pixels / ``shift_frac`` of the box; ``box-expand`` ``expand_px`` margin;
    ``point`` the centre point; ``points`` the centre plus ``n_points - 1`` random interior points; ``point-neg``
    the centre point plus ``n_negative`` negative points in the ``ring`` around the component.
    """
    if kind not in PROMPT_KINDS:
        raise ValueError(f"unknown prompt kind {kind!r}; known: {', '.join(PROMPT_KINDS)}")
    g = np.asarray(gt, bool)
    if kind == "box-all":
        box = union_box(g)
        return [] if box is None else [Prompt(box=box, kind=kind, component=0)]
    labels, _ = ndimage.label(g, structure=ndimage.generate_binary_structure(2, 2))
    out = []
    for comp, box in component_prompt_boxes(g, min_size=min_size):
        region = labels == comp
        if kind == "box":
            out.append(Prompt(box=box, kind=kind, component=comp))
        elif kind == "box-jitter":
            out.append(Prompt(box=jitter_box(box, g.shape, rng, shift_px=shift_px), kind=kind, component=comp))
        elif kind == "box-jitter-frac":
            out.append(Prompt(box=jitter_box(box, g.shape, rng, shift_frac=shift_frac), kind=kind, component=comp))
        elif kind == "box-expand":
            out.append(Prompt(box=expand_box(box, g.shape, px=expand_px), kind=kind, component=comp))
        else:
            centre = center_point(region)
            assert centre is not None  # a labelled component has at least one pixel
            pts, labs = [centre], [1]
            if kind == "points":
                extra = [p for p in interior_points(region, n_points, rng) if p != centre][:n_points - 1]
                pts, labs = pts + extra, labs + [1] * len(extra)
            elif kind == "point-neg":
                neg = negative_ring_points(region, n_negative, rng, inner=ring[0], outer=ring[1])
                pts, labs = pts + neg, labs + [0] * len(neg)
            out.append(Prompt(points=tuple(pts), labels=tuple(labs), kind=kind, component=comp))
    return out
