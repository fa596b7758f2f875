"""Lesion-wise (instance) metrics: connected components, lesion matching and per-lesion scores.

Two matching rules:

``brats`` (default) - the BraTS 2023+ lesion-wise rule (Saluja et al.): ground-truth lesions whose footprints,
    dilated by ``dilation`` voxels (18-connected structuring element in 3D, 8-connected in 2D), touch are merged
    into one lesion; every predicted component that touches a ground-truth lesion's dilated footprint is a true
    positive for that lesion, and the lesion is scored against the union of those components. Predicted
    components touching no footprint are false positives. Ground-truth lesions of volume <= ``min_volume`` mm³
    are left out of the counts and averages (BraTS: 50 mm³ for gliomas, 2 for metastases).
``hungarian`` - one-to-one matching maximising the total IoU (Hungarian algorithm) and keeping pairs with
    IoU > ``iou_threshold`` (0.5 by default, which makes the matching unique as in panoptic quality). Components
    of volume <= ``min_volume`` mm³ are dropped from both masks first.

Case-level metrics: ``lesion_tp``, ``lesion_fp``, ``lesion_fn``, ``lesion_precision`` (matched predicted
lesions / predicted lesions), ``lesion_recall`` (matched ground-truth lesions / ground-truth lesions),
``lesion_f1``, ``lesion_dice`` = sum of per-lesion Dice / (ground-truth lesions + false-positive lesions) and
``lesion_hd<p>`` = (sum of per-lesion HD<p> + penalty x false positives) / (ground-truth lesions + false
positives), where ``p`` is the robust-Hausdorff percentile (default 95: ``lesion_hd95``, the BraTS metric; the
name follows the percentile, see :func:`segaudit.metrics.policy.lesion_hd_name`) and a missed lesion has Dice 0
and HD<p> = the penalty (by default the image diagonal in mm; BraTS uses 374 mm, the diagonal of its 240x240x155
1 mm grid). With no lesion on either side, ``lesion_dice`` takes the policy's ``both_empty`` (1.0, as BraTS) and
``lesion_hd<p>`` its ``distance_both_empty`` (0.0).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage
from scipy.optimize import linear_sum_assignment

from segaudit.base.masks import bounding_box, connected_components, structure  # noqa: F401 - re-exported
from segaudit.base.types import Spacing, SurfaceDefinition
from segaudit.metrics.policy import EmptyPolicy, lesion_hd_name
from segaudit.metrics.surface import hausdorff, surface_distances

MATCHING_RULES = ("brats", "hungarian", "none")


@dataclass(frozen=True)
class LesionOptions:
    """Settings of one lesion-wise evaluation (the keyword arguments of :func:`lesion_metrics`).

    Parameters
    ----------
    rule:
        ``"brats"`` or ``"hungarian"`` (module docstring).
    dilation:
        Voxels of ground-truth dilation of the ``brats`` rule.
    min_volume:
        Lesions of this volume (mm³; mm² in 2D) or less are not counted.
    iou_threshold:
        IoU a pair must exceed under the ``hungarian`` rule.
    connectivity:
        Neighbours for connected components (3D 6/18/26, 2D 4/8); ``None`` = full.
    definition:
        Surface definition of the per-lesion distances (``"surfel"`` or ``"voxel"``).
    percentile:
        Percentile of the per-lesion robust Hausdorff distance; names the case metric ``lesion_hd<p>``.
    penalty:
        Distance in mm charged for a missed or false-positive lesion.
    policy:
        The :class:`~segaudit.metrics.policy.EmptyPolicy` (values when no lesion is on either side).
    """

    rule: str = "brats"
    dilation: int = 3
    min_volume: float = 0.0
    iou_threshold: float = 0.5
    connectivity: int | None = None
    definition: SurfaceDefinition = "surfel"
    percentile: float = 95.0
    penalty: float = 374.0
    policy: EmptyPolicy = field(default_factory=EmptyPolicy)

    @property
    def hd_name(self) -> str:
        """Name of the case-level lesion distance: ``lesion_hd<percentile>``."""
        return lesion_hd_name(self.percentile)


@dataclass
class Lesion:
    """One lesion (connected component or instance) of the ground truth or of the prediction.

    ``centroid`` and ``bbox`` are in voxel indices of the full image (``bbox``: first and last index per axis);
    ``volume`` in mm³ (mm² in 2D). ``dice``/``hd95`` score the lesion against what it was matched to (for
    ground-truth lesions; NaN for predicted ones under the ``brats`` rule, which scores ground-truth lesions);
    ``hd95`` is the robust Hausdorff distance at the evaluation's percentile (95 by default; the field keeps the
    name of the store's ``lesions.hd95`` column whatever the percentile).
    ``counted`` is False for lesions left out by ``min_volume``.
    """

    source: str
    lesion_id: int
    volume: float
    centroid: tuple[float, ...]
    bbox: tuple[int, ...]
    matched: bool
    dice: float = np.nan
    hd95: float = np.nan
    counted: bool = True


@dataclass
class LesionResult:
    """Case-level lesion metrics of one region and its lesion table."""

    metrics: dict[str, float] = field(default_factory=dict)
    lesions: list[Lesion] = field(default_factory=list)


def _describe(labels: np.ndarray, n: int, spacing, offset, boxes) -> list[tuple[float, tuple, tuple]]:
    """Volume (mm³), centroid and bbox of labels 1..n (``boxes``: their ``find_objects`` slices)."""
    if n == 0:
        return []
    vox = float(np.prod(spacing))
    if n <= 16:
        # Few objects: work inside each object's own box.
        sizes: list[int] = []
        cents: list[list[float]] = []
        for i, box in enumerate(boxes, start=1):
            idx = np.nonzero(labels[box] == i)
            sizes.append(len(idx[0]))
            cents.append([ax.mean() + b.start for ax, b in zip(idx, box, strict=True)])
    else:
        # Many objects (scattered false positives): one pass over the labelled voxels.
        nz = np.nonzero(labels)
        ids = labels[nz]
        counts = np.bincount(ids, minlength=n + 1)[1:]
        sizes = counts.tolist()
        cents = (np.stack([np.bincount(ids, weights=ax, minlength=n + 1)[1:] for ax in nz], axis=1)
                 / counts[:, None]).tolist()
    out = []
    for size, c, box in zip(sizes, cents, boxes, strict=True):
        cen = tuple(float(ci + o) for ci, o in zip(c, offset, strict=True))
        bb = tuple(int(s.start + o) for s, o in zip(box, offset, strict=True)) + \
            tuple(int(s.stop - 1 + o) for s, o in zip(box, offset, strict=True))
        out.append((float(size) * vox, cen, bb))
    return out


def _union_box(boxes: list[tuple[slice, ...]], shape, margin: int = 1) -> tuple[slice, ...]:
    lo = np.min([[s.start for s in b] for b in boxes], axis=0) - margin
    hi = np.max([[s.stop for s in b] for b in boxes], axis=0) + margin
    return tuple(slice(max(0, int(a)), min(int(n), int(b))) for a, b, n in zip(lo, hi, shape, strict=True))


def _pair_scores(gt: np.ndarray, pred: np.ndarray, spacing: Spacing,
                 opts: LesionOptions) -> tuple[float, float]:
    """Dice and robust Hausdorff distance (``opts.percentile``) of two non-empty boolean masks."""
    inter = np.count_nonzero(gt & pred)
    d = 2 * inter / (np.count_nonzero(gt) + np.count_nonzero(pred))
    return float(d), hausdorff(surface_distances(gt, pred, spacing, opts.definition), opts.percentile)


def _summary(n_gt: int, n_pred: int, tp_gt: int, tp_pred: int, n_fp: int, dices: list[float],
             hds: list[float], opts: LesionOptions) -> dict[str, float]:
    policy, penalty = opts.policy, opts.penalty
    fn = n_gt - tp_gt
    precision = tp_pred / n_pred if n_pred else (policy.both_empty if n_gt == 0 else np.nan)
    recall = tp_gt / n_gt if n_gt else (policy.both_empty if n_pred == 0 else np.nan)
    if n_gt == 0 and n_pred == 0:
        f1 = policy.both_empty
    elif np.isnan(precision) or np.isnan(recall) or precision + recall == 0:
        f1 = 0.0
    else:
        f1 = 2 * precision * recall / (precision + recall)
    denom = n_gt + n_fp
    if denom:
        ldice = float(np.sum(dices)) / denom
        lhd = (float(np.sum(hds)) + n_fp * penalty) / denom
    else:
        ldice, lhd = policy.both_empty, policy.distance_both_empty
    return {"lesion_tp": float(tp_gt), "lesion_fp": float(n_fp), "lesion_fn": float(fn),
            "lesion_precision": float(precision), "lesion_recall": float(recall), "lesion_f1": float(f1),
            "lesion_dice": float(ldice), opts.hd_name: float(lhd),
            "lesion_gt_count": float(n_gt), "lesion_pred_count": float(n_pred)}


def lesion_metrics(gt: np.ndarray, pred: np.ndarray, spacing, *, rule: str = "brats", dilation: int = 3,
                   min_volume: float = 0.0, iou_threshold: float = 0.5, connectivity: int | None = None,
                   definition: SurfaceDefinition = "surfel", percentile: float = 95.0, penalty: float = 374.0,
                   policy: EmptyPolicy | None = None, gt_instances: np.ndarray | None = None,
                   pred_instances: np.ndarray | None = None, offset=None,
                   whole: tuple[int, int, float, float] | None = None) -> LesionResult:
    """Lesion-wise metrics of one region (module docstring).

    Parameters
    ----------
    gt, pred:
        Boolean masks of the region (may be a crop of the image; see ``offset``). Under the ``brats`` rule the
        crop must leave ``dilation`` voxels around the ground truth unless it touches the image border.
    spacing:
        Voxel size in mm per axis.
    rule:
        ``"brats"`` or ``"hungarian"``.
    gt_instances, pred_instances:
        Instance label maps (0 = background) used as given instead of connected components (H&E nuclei).
    penalty:
        Distance in mm charged for a missed or false-positive lesion.
    offset:
        Index of the crop's first voxel in the full image, so centroids and boxes refer to the full image.
    whole:
        ``(gt voxels, pred voxels, dice, hd95)`` already computed for the whole masks: a lesion pair that
        *is* the whole pair (one lesion matched by every predicted component) reuses them instead of
        recomputing the same surface distances.

    Examples
    --------
    Two ground-truth lesions; the prediction finds the first exactly, misses the second and adds a false
    positive. A miss has Dice 0 and the penalty distance; a false positive counts the penalty once:

    >>> import numpy as np
    >>> gt = np.zeros((5, 5), bool); gt[0, :2] = True; gt[4, 4] = True
    >>> pred = np.zeros((5, 5), bool); pred[0, :2] = True; pred[2, 4] = True
    >>> res = lesion_metrics(gt, pred, (1.0, 1.0), rule="hungarian", penalty=10.0)
    >>> [res.metrics[k] for k in ("lesion_tp", "lesion_fp", "lesion_fn", "lesion_f1")]
    [1.0, 1.0, 1.0, 0.5]
    >>> res.metrics["lesion_dice"]  # (1 + 0) / (2 gt lesions + 1 false positive)
    0.3333333333333333
    >>> res.metrics["lesion_hd95"]  # (0 + 10 for the miss + 10 for the false positive) / 3
    6.666666666666667
    >>> "lesion_hd90" in lesion_metrics(gt, pred, (1.0, 1.0), rule="hungarian", percentile=90).metrics
    True
    """
    opts = LesionOptions(rule=rule, dilation=dilation, min_volume=min_volume, iou_threshold=iou_threshold,
                         connectivity=connectivity, definition=definition, percentile=percentile, penalty=penalty,
                         policy=policy or EmptyPolicy())
    offset = tuple(offset) if offset is not None else (0,) * gt.ndim
    spacing = tuple(float(s) for s in spacing)
    if rule not in ("brats", "hungarian"):
        raise ValueError(f"lesion matching rule must be 'brats' or 'hungarian', not {rule!r}")
    gt = np.asarray(gt, dtype=bool)
    pred = np.asarray(pred, dtype=bool)
    if gt_instances is not None:
        g_lab = _relabel(gt_instances)
        n_g = int(g_lab.max(initial=0))
    elif rule == "brats" and dilation > 0:
        g_lab, n_g = None, int(gt.any())  # the brats rule labels the dilated mask instead
    else:
        g_lab, n_g = connected_components(gt, connectivity)
    if pred_instances is not None:
        p_lab = _relabel(pred_instances)
        n_p = int(p_lab.max(initial=0))
    else:
        p_lab, n_p = connected_components(pred, connectivity)
    if rule == "brats":
        return _brats(gt, g_lab, n_g, p_lab, n_p, spacing, offset, opts, merged=gt_instances is None, whole=whole)
    assert g_lab is not None  # None only for the brats rule, handled above
    return _hungarian(g_lab, n_g, p_lab, n_p, spacing, offset, opts)


def _relabel(instances: np.ndarray) -> np.ndarray:
    """Instance ids made consecutive 1..n (order kept); 0 stays background."""
    vals = np.unique(instances)
    vals = vals[vals != 0]
    lut = np.zeros(int(instances.max(initial=0)) + 1, dtype=np.int32)
    lut[vals] = np.arange(1, len(vals) + 1)
    return lut[instances]


def _brats(gt: np.ndarray, g_cc: np.ndarray | None, n_cc: int, p_lab: np.ndarray, n_p: int,
           spacing: Spacing, offset: tuple[int, ...], opts: LesionOptions, merged: bool,
           whole: tuple[int, int, float, float] | None = None) -> LesionResult:
    """The ``brats`` rule on labelled masks (``g_cc`` None: the ground truth is labelled here, dilated)."""
    dilation, connectivity = opts.dilation, opts.connectivity
    struct = ndimage.generate_binary_structure(gt.ndim, min(2, gt.ndim))
    hits_of: dict[int, list[int]] | None = None
    if merged and n_cc and dilation > 0:
        # Lesions whose dilated footprints touch become one lesion: label the dilated mask, keep gt voxels.
        # Only the ground truth's box (grown by the dilation) is processed. Every dilated component holds
        # ground truth, so lesion j's footprint (its own dilation) is exactly dilated component j, and the
        # predicted components touching each footprint come from one pass over the overlap.
        box = bounding_box(gt, dilation + 1)
        dil = ndimage.binary_dilation(gt[box], structure=struct, iterations=dilation)
        dil_lab, _ = connected_components(dil, connectivity)
        g_lab = np.zeros(gt.shape, dtype=np.int32)
        g_lab[box] = np.where(gt[box], dil_lab, 0)
        pb = p_lab[box]
        both = (dil_lab > 0) & (pb > 0)
        pairs = np.unique(dil_lab[both].astype(np.int64) * (n_p + 1) + pb[both])
        hits_of = {}
        for code in pairs.tolist():
            hits_of.setdefault(code // (n_p + 1), []).append(code % (n_p + 1))
    else:
        g_lab = g_cc if g_cc is not None else np.zeros(gt.shape, dtype=np.int32)
    n_g = int(g_lab.max(initial=0))
    g_boxes = ndimage.find_objects(g_lab, n_g) if n_g else []
    p_boxes = ndimage.find_objects(p_lab, n_p) if n_p else []
    g_info = _describe(g_lab, n_g, spacing, offset, g_boxes)
    p_info = _describe(p_lab, n_p, spacing, offset, p_boxes)
    tp_pred: set[int] = set()
    lesions: list[Lesion] = []
    dices, hds = [], []
    tp_gt = n_counted = 0
    for j in range(1, n_g + 1):
        if hits_of is not None:
            hits = hits_of.get(j, [])
        else:
            box = _union_box([g_boxes[j - 1]], gt.shape, margin=dilation + 1)
            lesion = g_lab[box] == j
            foot = ndimage.binary_dilation(lesion, structure=struct, iterations=dilation) if dilation else lesion
            hits = [int(h) for h in np.unique(p_lab[box][foot]) if h]
        tp_pred.update(hits)
        volume, cen, bb = g_info[j - 1]
        counted = volume > opts.min_volume
        if hits and whole is not None and n_g == 1 and len(hits) == n_p:
            d, h95 = whole[2], whole[3]  # the lesion pair is the whole pair: same masks, same scores
        elif hits:
            pbox = _union_box([g_boxes[j - 1]] + [p_boxes[h - 1] for h in hits], gt.shape)
            d, h95 = _pair_scores(g_lab[pbox] == j, np.isin(p_lab[pbox], hits), spacing, opts)
        else:
            d, h95 = 0.0, opts.penalty
        lesions.append(Lesion("gt", j, volume, cen, bb, bool(hits), d, h95, counted))
        if counted:
            n_counted += 1
            tp_gt += bool(hits)
            dices.append(d)
            hds.append(h95)
    fp = [i for i in range(1, n_p + 1) if i not in tp_pred]
    for i in range(1, n_p + 1):
        volume, cen, bb = p_info[i - 1]
        lesions.append(Lesion("pred", i, volume, cen, bb, i in tp_pred))
    metrics = _summary(n_counted, n_p, tp_gt, len(tp_pred), len(fp), dices, hds, opts)
    return LesionResult(metrics, lesions)


def _hungarian(g_lab: np.ndarray, n_g: int, p_lab: np.ndarray, n_p: int, spacing: Spacing,
               offset: tuple[int, ...], opts: LesionOptions) -> LesionResult:
    """The ``hungarian`` rule on labelled masks."""
    vox = float(np.prod(spacing))
    min_volume = opts.min_volume
    g_boxes = ndimage.find_objects(g_lab, n_g) if n_g else []
    p_boxes = ndimage.find_objects(p_lab, n_p) if n_p else []
    g_info = _describe(g_lab, n_g, spacing, offset, g_boxes)
    p_info = _describe(p_lab, n_p, spacing, offset, p_boxes)
    g_keep = np.array([v > min_volume for v, _, _ in g_info], dtype=bool)
    p_keep = np.array([v > min_volume for v, _, _ in p_info], dtype=bool)
    # Intersections of every (gt, pred) pair from one bincount over the overlapping voxels.
    both = (g_lab > 0) & (p_lab > 0)
    inter = np.bincount(g_lab[both].astype(np.int64) * (n_p + 1) + p_lab[both],
                        minlength=(n_g + 1) * (n_p + 1)).reshape(n_g + 1, n_p + 1)[1:, 1:].astype(float)
    gv = np.array([v for v, _, _ in g_info]) / vox
    pv = np.array([v for v, _, _ in p_info]) / vox
    iou = inter / (gv[:, None] + pv[None, :] - inter) if n_g and n_p else np.zeros((n_g, n_p))
    iou[~g_keep, :] = 0
    iou[:, ~p_keep] = 0
    pairs: dict[int, int] = {}
    if n_g and n_p:
        rows, cols = linear_sum_assignment(-iou)
        pairs = {int(r) + 1: int(c) + 1 for r, c in zip(rows, cols, strict=True) if iou[r, c] > opts.iou_threshold}
    lesions: list[Lesion] = []
    dices, hds = [], []
    pred_scores: dict[int, tuple[float, float]] = {}
    for j in range(1, n_g + 1):
        volume, cen, bb = g_info[j - 1]
        i = pairs.get(j)
        if i is not None:
            box = _union_box([g_boxes[j - 1], p_boxes[i - 1]], g_lab.shape)
            d, h95 = _pair_scores(g_lab[box] == j, p_lab[box] == i, spacing, opts)
            pred_scores[i] = (d, h95)
        else:
            d, h95 = 0.0, opts.penalty
        lesions.append(Lesion("gt", j, volume, cen, bb, i is not None, d, h95, bool(g_keep[j - 1])))
        if g_keep[j - 1]:
            dices.append(d)
            hds.append(h95)
    for i in range(1, n_p + 1):
        volume, cen, bb = p_info[i - 1]
        d, h95 = pred_scores.get(i, (np.nan, np.nan))
        lesions.append(Lesion("pred", i, volume, cen, bb, i in pred_scores, d, h95, bool(p_keep[i - 1])))
    n_gk, n_pk = int(g_keep.sum()), int(p_keep.sum())
    tp = len(pairs)
    metrics = _summary(n_gk, n_pk, tp, tp, n_pk - tp, dices, hds, opts)
    return LesionResult(metrics, lesions)
