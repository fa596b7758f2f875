"""Metrics of soft predictions (probability maps in [0, 1]) against a binary ground truth.

Computed over all voxels of the image. They complement, never replace, the overlap/surface/lesion metrics of
the thresholded mask. Undefined values (NaN) are stated per function; no smoothing constants are used.
"""

from __future__ import annotations

import numpy as np


def pearson(prob: np.ndarray, gt: np.ndarray) -> float:
    """Pearson correlation between the probability map and the 0/1 ground truth, voxel-wise.

    NaN when either is constant (e.g. an empty ground truth, or a constant probability map).

    Examples
    --------
    >>> import numpy as np
    >>> prob, gt = np.array([0.9, 0.8, 0.3, 0.1]), np.array([1, 0, 1, 0])
    >>> round(pearson(prob, gt), 4)  # 0.15 / sqrt(0.4475 * 1.0)
    0.2242
    >>> pearson(prob, np.zeros(4))
    nan
    """
    x = np.asarray(prob, dtype=np.float64).ravel()
    y = np.asarray(gt, dtype=bool).ravel().astype(np.float64)
    xm, ym = x - x.mean(), y - y.mean()
    den = np.sqrt(np.dot(xm, xm) * np.dot(ym, ym))
    return float(np.dot(xm, ym) / den) if den > 0 else np.nan


def _sorted_counts(prob: np.ndarray, gt: np.ndarray):
    """Distinct scores (descending) with the positive and negative counts at each."""
    x = np.asarray(prob, dtype=np.float64).ravel()
    y = np.asarray(gt, dtype=bool).ravel()
    scores, inverse = np.unique(x, return_inverse=True)
    pos = np.bincount(inverse, weights=y, minlength=len(scores))[::-1]
    tot = np.bincount(inverse, minlength=len(scores))[::-1]
    return scores[::-1], pos, tot - pos


def roc_auc(prob: np.ndarray, gt: np.ndarray) -> float:
    """Area under the ROC curve (ties handled by the trapezoid rule, i.e. the Mann-Whitney U statistic).

    NaN when the ground truth is empty or fills the image (one class only).

    Examples
    --------
    >>> import numpy as np
    >>> prob, gt = np.array([0.9, 0.8, 0.3, 0.1]), np.array([1, 0, 1, 0])
    >>> roc_auc(prob, gt)  # 3 of the 4 (positive, negative) pairs are ranked right
    0.75
    >>> roc_auc(np.array([0.2, 0.2]), np.array([1, 0]))  # a tie counts one half
    0.5
    >>> roc_auc(prob, np.ones(4))
    nan
    """
    _, pos, neg = _sorted_counts(prob, gt)
    n_pos, n_neg = pos.sum(), neg.sum()
    if n_pos == 0 or n_neg == 0:
        return np.nan
    tpr = np.concatenate([[0.0], np.cumsum(pos) / n_pos])
    fpr = np.concatenate([[0.0], np.cumsum(neg) / n_neg])
    return float(np.sum((fpr[1:] - fpr[:-1]) * (tpr[1:] + tpr[:-1]) / 2))


def average_precision(prob: np.ndarray, gt: np.ndarray) -> float:
    """Average precision ``sum_n (R_n - R_{n-1}) P_n`` over the distinct thresholds.

    As scikit-learn's ``average_precision_score``, no interpolation. NaN when the ground truth is empty.

    Examples
    --------
    >>> import numpy as np
    >>> prob, gt = np.array([0.9, 0.8, 0.3, 0.1]), np.array([1, 0, 1, 0])
    >>> average_precision(prob, gt)  # recall 0.5 at precision 1, then recall 1 at precision 2/3
    0.8333333333333333
    """
    _, pos, neg = _sorted_counts(prob, gt)
    n_pos = pos.sum()
    if n_pos == 0:
        return np.nan
    tp = np.cumsum(pos)
    fp = np.cumsum(neg)
    precision = tp / (tp + fp)
    recall = tp / n_pos
    return float(np.sum(np.diff(np.concatenate([[0.0], recall])) * precision))


def brier(prob: np.ndarray, gt: np.ndarray) -> float:
    """Brier score: mean of ``(p - y)^2`` over all voxels, in [0, 1] (0 is perfect); always defined.

    Examples
    --------
    >>> import numpy as np
    >>> round(brier(np.array([0.9, 0.8, 0.3, 0.1]), np.array([1, 0, 1, 0])), 6)  # (.01 + .64 + .49 + .01) / 4
    0.2875
    """
    x = np.asarray(prob, dtype=np.float64)
    y = np.asarray(gt, dtype=bool)
    return float(np.mean((x - y) ** 2))


def probability_metrics(prob: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """``pearson``, ``roc_auc``, ``average_precision`` and ``brier`` of one probability map.

    Examples
    --------
    >>> import numpy as np
    >>> {k: round(v, 4) for k, v in probability_metrics(np.array([0.9, 0.1]), np.array([1, 0])).items()}
    {'pearson': 1.0, 'roc_auc': 1.0, 'average_precision': 1.0, 'brier': 0.01}
    """
    return {"pearson": pearson(prob, gt), "roc_auc": roc_auc(prob, gt),
            "average_precision": average_precision(prob, gt), "brier": brier(prob, gt)}
