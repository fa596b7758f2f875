"""Overlap and volume metrics from the confusion counts of two binary masks.

All functions take :class:`Counts` (voxel counts over the whole image) and are exact ratios of integers: no
epsilon smoothing. Each docstring states the value in the empty cases; ``both_empty`` is the value chosen by the
:class:`~segaudit.metrics.policy.EmptyPolicy` for two empty masks (1.0 by default, or NaN).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from segaudit.base.masks import values_mask  # noqa: F401 - re-exported (moved to segaudit.base)


@dataclass(frozen=True)
class Counts:
    """Confusion counts of one region over the whole image (voxels)."""

    tp: int
    fp: int
    fn: int
    tn: int

    @property
    def gt(self) -> int:
        """Number of ground-truth voxels (TP + FN)."""
        return self.tp + self.fn

    @property
    def pred(self) -> int:
        """Number of predicted voxels (TP + FP)."""
        return self.tp + self.fp

    @property
    def total(self) -> int:
        """Number of voxels of the grid (TP + FP + FN + TN)."""
        return self.tp + self.fp + self.fn + self.tn


def counts(gt: np.ndarray, pred: np.ndarray) -> Counts:
    """Confusion counts of two boolean masks of the same shape (a plain, independent count).

    Examples
    --------
    >>> import numpy as np
    >>> gt = np.array([[1, 1, 1, 0, 0]], dtype=bool)
    >>> pred = np.array([[0, 1, 1, 1, 0]], dtype=bool)
    >>> counts(gt, pred)
    Counts(tp=2, fp=1, fn=1, tn=1)
    """
    gt = np.asarray(gt, dtype=bool)
    pred = np.asarray(pred, dtype=bool)
    tp = int(np.count_nonzero(gt & pred))
    g, p = int(np.count_nonzero(gt)), int(np.count_nonzero(pred))
    return Counts(tp, p - tp, g - tp, gt.size - g - p + tp)


def label_confusion(gt: np.ndarray, pred: np.ndarray, values: list[int]) -> np.ndarray:
    """Confusion matrix between label maps: ``m[i, j]`` voxels with gt == values[i] and pred == values[j].

    Index 0 of ``values`` must be the background (0); voxels whose value is not listed are counted under 0.
    One pass over the arrays (a bincount), so every label and region is scored from the same matrix.
    """
    lut_size = int(max(values + [int(gt.max(initial=0)), int(pred.max(initial=0))])) + 1
    lut = np.zeros(lut_size, dtype=np.intp)
    for i, v in enumerate(values):
        lut[v] = i
    k = len(values)
    flat = lut[gt.ravel()] * k + lut[pred.ravel()]
    return np.bincount(flat, minlength=k * k).reshape(k, k)


def region_counts(confusion: np.ndarray, members: list[int], total: int) -> Counts:
    """Counts of a region (a set of row/column indices of ``confusion``) over an image of ``total`` voxels.

    ``confusion`` may cover only a crop of the image: voxels outside it are background in both masks and are
    added to ``tn`` through ``total``.
    """
    idx = np.asarray(members, dtype=np.intp)
    gt = int(confusion[idx, :].sum())
    pred = int(confusion[:, idx].sum())
    tp = int(confusion[np.ix_(idx, idx)].sum())
    return Counts(tp, pred - tp, gt - tp, total - gt - pred + tp)


def _ratio(num: float, den: float, undefined: float) -> float:
    return float(num / den) if den else undefined


def dice(c: Counts, both_empty: float = 1.0) -> float:
    """Sørensen-Dice coefficient ``2TP / (2TP + FP + FN)`` in [0, 1].

    One mask empty: 0. Both empty: ``both_empty``.

    Examples
    --------
    >>> dice(Counts(tp=2, fp=1, fn=1, tn=1))  # 2*2 / (2*2 + 1 + 1)
    0.6666666666666666
    >>> dice(Counts(tp=0, fp=0, fn=3, tn=5))  # prediction empty: a total miss is exactly 0
    0.0
    >>> dice(Counts(0, 0, 0, 8)), dice(Counts(0, 0, 0, 8), both_empty=float("nan"))
    (1.0, nan)
    """
    return _ratio(2 * c.tp, 2 * c.tp + c.fp + c.fn, both_empty)


def iou(c: Counts, both_empty: float = 1.0) -> float:
    """Intersection over union (Jaccard index) ``TP / (TP + FP + FN)`` in [0, 1].

    One mask empty: 0. Both empty: ``both_empty``.

    Examples
    --------
    >>> iou(Counts(tp=2, fp=1, fn=1, tn=1))  # 2 / (2 + 1 + 1)
    0.5
    """
    return _ratio(c.tp, c.tp + c.fp + c.fn, both_empty)


def precision(c: Counts, both_empty: float = 1.0) -> float:
    """Positive predictive value ``TP / (TP + FP)``.

    Prediction empty, ground truth not: NaN (nothing predicted, so no precision). Ground truth empty,
    prediction not: 0. Both empty: ``both_empty``.

    Examples
    --------
    >>> precision(Counts(tp=3, fp=1, fn=0, tn=4)), precision(Counts(tp=0, fp=0, fn=2, tn=6))
    (0.75, nan)
    """
    if c.pred == 0:
        return both_empty if c.gt == 0 else np.nan
    return c.tp / c.pred


def sensitivity(c: Counts, both_empty: float = 1.0) -> float:
    """Sensitivity (recall, true positive rate) ``TP / (TP + FN)``.

    Ground truth empty, prediction not: NaN (nothing to find). Prediction empty, ground truth not: 0. Both
    empty: ``both_empty``.

    Examples
    --------
    >>> sensitivity(Counts(tp=3, fp=0, fn=1, tn=4)), sensitivity(Counts(tp=0, fp=2, fn=0, tn=6))
    (0.75, nan)
    """
    if c.gt == 0:
        return both_empty if c.pred == 0 else np.nan
    return c.tp / c.gt


def specificity(c: Counts) -> float:
    """Specificity (true negative rate) ``TN / (TN + FP)``; NaN only when the ground truth fills the image.

    Examples
    --------
    >>> specificity(Counts(tp=2, fp=1, fn=1, tn=3))  # 3 / (3 + 1)
    0.75
    """
    return _ratio(c.tn, c.tn + c.fp, np.nan)


def accuracy(c: Counts) -> float:
    """Voxel accuracy ``(TP + TN) / N`` over all N voxels of the image; defined whenever N > 0.

    Examples
    --------
    >>> accuracy(Counts(tp=2, fp=1, fn=1, tn=4))  # (2 + 4) / 8
    0.75
    """
    return _ratio(c.tp + c.tn, c.total, np.nan)


def volumes(c: Counts, voxel_volume: float) -> dict[str, float]:
    """Volumes in mm³ (mm² for 2D images).

    ``gt_volume``, ``pred_volume``, ``volume_difference`` (pred - gt) and ``relative_volume_error`` ((pred - gt) / gt;
    NaN when only the ground truth is empty, 0 when both are).

    Examples
    --------
    >>> volumes(Counts(tp=2, fp=2, fn=0, tn=4), voxel_volume=0.5)  # 2 gt and 4 predicted voxels of 0.5 mm³
    {'gt_volume': 1.0, 'pred_volume': 2.0, 'volume_difference': 1.0, 'relative_volume_error': 1.0}
    """
    g, p = c.gt * voxel_volume, c.pred * voxel_volume
    if c.gt:
        rve = (p - g) / g
    else:
        rve = 0.0 if c.pred == 0 else np.nan
    return {"gt_volume": g, "pred_volume": p, "volume_difference": p - g, "relative_volume_error": rve}


def overlap_metrics(c: Counts, voxel_volume: float, both_empty: float = 1.0) -> dict[str, float]:
    """Every overlap and volume metric of one region, plus its counts and the ``gt_empty``/``pred_empty`` flags.

    Examples
    --------
    >>> m = overlap_metrics(Counts(tp=2, fp=1, fn=1, tn=4), voxel_volume=1.0)
    >>> m["dice"], m["iou"], m["gt_empty"], m["gt_volume"]
    (0.6666666666666666, 0.5, 0.0, 3.0)
    """
    out = {
        "tp": float(c.tp), "fp": float(c.fp), "fn": float(c.fn), "tn": float(c.tn),
        "dice": dice(c, both_empty), "iou": iou(c, both_empty), "precision": precision(c, both_empty),
        "sensitivity": sensitivity(c, both_empty), "specificity": specificity(c), "accuracy": accuracy(c),
        "gt_empty": float(c.gt == 0), "pred_empty": float(c.pred == 0),
    }
    out.update(volumes(c, voxel_volume))
    return out
