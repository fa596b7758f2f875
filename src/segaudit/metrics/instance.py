"""Instance (nuclei) metrics of two instance maps: panoptic quality, AJI, AJI+ and per-class PQ.

An *instance map* is an integer array (2D or 3D) in which 0 is background and every other value names one
object (one nucleus); ids are arbitrary and need not be contiguous (CoNSeP's are not). All metrics here are
ratios of pixel counts or object counts: dimensionless, whatever the pixel size.

Everything starts from one sparse contingency table (:func:`instance_contingency`): the ids of both maps are
mapped to dense indices with a lookup table, the overlapping pixel pairs are encoded as one integer each and
counted with ``np.bincount`` (or ``np.unique`` when the table would be large). No per-instance mask is ever
built, so a 1000 x 1000 tile with a thousand nuclei takes milliseconds, not the minutes of a per-instance loop.

Definitions follow the published ones and HoVer-Net's reference code (``metrics/stats_utils.py`` of
github.com/vqdang/hover_net, Graham et al., Medical Image Analysis 2019), which the tests re-implement:

- PQ (Kirillov et al. 2019): GT and predicted instances match when IoU > 0.5 (which makes the matching
  unique); DQ = TP / (TP + FP/2 + FN/2), SQ = mean IoU of the matched pairs, PQ = DQ x SQ.
- AJI (Kumar et al., IEEE TMI 2017): each GT instance takes the predicted instance of highest IoU (a
  prediction may be taken by several GT instances); AJI = sum of their intersections / (sum of their unions +
  area of every GT instance without overlap + area of every prediction taken by none).
- AJI+ (Graham et al. 2019): as AJI, but the pairs are a one-to-one maximum-IoU assignment (Hungarian), which
  removes AJI's over-penalisation of a prediction that covers several GT instances.
- Per-class PQ (PanNuke, Gamper et al. 2020; CoNSeP): every instance gets the majority class of its pixels;
  PQ is computed per class on the instances of that class only; mPQ is the mean over the classes present in
  the ground truth.

Differences from HoVer-Net's code, all at its numerical guards: SQ is ``sum IoU / TP`` exactly (HoVer-Net
divides by ``TP + 1e-6``), and SQ is NaN (undefined) when nothing matched, where HoVer-Net's guard gives 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Dense contingency (bincount) up to this many cells, a sparse np.unique beyond (keeps memory bounded).
_DENSE_CELLS = 1 << 22
# Id lookup tables up to this largest id; larger ids go through np.unique.
_LUT_MAX_ID = 1 << 24


@dataclass(frozen=True)
class InstanceContingency:
    """Overlaps between the instances of two maps.

    Attributes
    ----------
    gt_ids, pred_ids:
        The instance ids present (sorted, background 0 excluded).
    gt_area, pred_area:
        Pixels of each instance, aligned with ``gt_ids`` / ``pred_ids``.
    pair_gt, pair_pred:
        For every (GT, prediction) pair that overlaps: indices into ``gt_ids`` and ``pred_ids``.
    pair_inter:
        Pixels shared by each overlapping pair.
    """

    gt_ids: np.ndarray
    pred_ids: np.ndarray
    gt_area: np.ndarray
    pred_area: np.ndarray
    pair_gt: np.ndarray
    pair_pred: np.ndarray
    pair_inter: np.ndarray

    @property
    def pair_union(self) -> np.ndarray:
        """Pixels in either instance of each overlapping pair: ``|G| + |P| - |G n P|`` (always > 0)."""
        return self.gt_area[self.pair_gt] + self.pred_area[self.pair_pred] - self.pair_inter

    @property
    def pair_iou(self) -> np.ndarray:
        """IoU of each overlapping pair (exact, no smoothing)."""
        return self.pair_inter / self.pair_union


def _dense_ids(instances: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Present ids (sorted, 0 excluded) and the map with each pixel's 1-based index into them (0 = background)."""
    inst = np.asarray(instances)
    if inst.dtype == bool:
        inst = inst.astype(np.uint8)
    if inst.dtype.kind not in "ui":
        raise ValueError(f"{what} instance map must hold integers, not {inst.dtype}")
    if inst.size and inst.dtype.kind == "i" and inst.min() < 0:
        raise ValueError(f"{what} instance map has negative ids")
    top = int(inst.max(initial=0))
    if top < _LUT_MAX_ID:
        present = np.bincount(inst.ravel(), minlength=top + 1) > 0
        present[0] = False
        ids = np.flatnonzero(present)
        lut = np.zeros(top + 1, dtype=np.int64)
        lut[ids] = np.arange(1, ids.size + 1)
        return ids, lut[inst]
    vals, inverse = np.unique(inst, return_inverse=True)
    if vals[0] == 0:
        return vals[1:], inverse.reshape(inst.shape).astype(np.int64)
    return vals, inverse.reshape(inst.shape).astype(np.int64) + 1


def instance_contingency(gt: np.ndarray, pred: np.ndarray) -> InstanceContingency:
    """The sparse table of instance areas and pairwise overlaps of two instance maps.

    Parameters
    ----------
    gt, pred:
        Instance maps of the same shape (non-negative integers, 0 = background, ids arbitrary).

    Returns
    -------
    InstanceContingency
        Areas in pixels (voxels in 3D); only pairs with a non-zero intersection are listed. Empty maps give
        empty arrays.

    Examples
    --------
    >>> import numpy as np
    >>> gt = np.array([[5, 5, 0], [0, 0, 9]])
    >>> pred = np.array([[2, 0, 0], [0, 0, 2]])
    >>> ct = instance_contingency(gt, pred)
    >>> ct.gt_ids.tolist(), ct.gt_area.tolist(), ct.pair_inter.tolist()
    ([5, 9], [2, 1], [1, 1])
    """
    gt = np.asarray(gt)
    pred = np.asarray(pred)
    if gt.shape != pred.shape:
        raise ValueError(f"instance maps differ in shape: {gt.shape} vs {pred.shape}")
    gt_ids, gi = _dense_ids(gt, "ground-truth")
    pred_ids, pi = _dense_ids(pred, "predicted")
    ng, npr = gt_ids.size, pred_ids.size
    gt_area = np.bincount(gi.ravel(), minlength=ng + 1)[1:]
    pred_area = np.bincount(pi.ravel(), minlength=npr + 1)[1:]
    both = (gi > 0) & (pi > 0)
    codes = gi[both] * (npr + 1) + pi[both]
    if (ng + 1) * (npr + 1) <= _DENSE_CELLS:
        table = np.bincount(codes, minlength=(ng + 1) * (npr + 1))
        cells = np.flatnonzero(table)
        inter = table[cells]
    else:
        cells, inter = np.unique(codes, return_counts=True)
    return InstanceContingency(gt_ids, pred_ids, gt_area.astype(np.int64), pred_area.astype(np.int64),
                               cells // (npr + 1) - 1, cells % (npr + 1) - 1, inter.astype(np.int64))


@dataclass(frozen=True)
class PanopticResult:
    """Panoptic quality of one pair of instance maps.

    Attributes
    ----------
    pq, dq, sq:
        Panoptic, detection and segmentation quality (dimensionless, in [0, 1] or NaN).
    tp, fp, fn:
        Matched pairs, unmatched predicted instances, unmatched GT instances (counts of instances).
    iou_sum:
        Sum of the IoU of the matched pairs.
    matched_gt, matched_pred:
        Ids of the matched pairs (same order).
    """

    pq: float
    dq: float
    sq: float
    tp: int
    fp: int
    fn: int
    iou_sum: float
    matched_gt: tuple[int, ...] = ()
    matched_pred: tuple[int, ...] = ()

    def rows(self) -> dict[str, float]:
        """The stored metrics: ``pq``, ``dq``, ``sq``, ``pq_tp``, ``pq_fp``, ``pq_fn``."""
        return {"pq": self.pq, "dq": self.dq, "sq": self.sq, "pq_tp": float(self.tp), "pq_fp": float(self.fp),
                "pq_fn": float(self.fn)}


def _check_threshold(iou_threshold: float) -> None:
    if not 0.5 <= iou_threshold < 1:
        # Below 0.5 one GT instance could match two predictions; PQ's matching is unique only from 0.5 up.
        raise ValueError(f"PQ matching needs an IoU threshold in [0.5, 1), not {iou_threshold!r}")


def _pq_from_table(ct: InstanceContingency, iou_threshold: float, both_empty: float,
                   gt_keep: np.ndarray | None = None, pred_keep: np.ndarray | None = None) -> PanopticResult:
    """PQ from a contingency table, optionally restricted to some GT / predicted instances (boolean masks)."""
    gt_keep = np.ones(ct.gt_ids.size, bool) if gt_keep is None else gt_keep
    pred_keep = np.ones(ct.pred_ids.size, bool) if pred_keep is None else pred_keep
    n_gt, n_pred = int(gt_keep.sum()), int(pred_keep.sum())
    if n_gt == 0 and n_pred == 0:
        return PanopticResult(both_empty, both_empty, both_empty, 0, 0, 0, 0.0)
    iou = ct.pair_iou
    hit = (iou > iou_threshold) & gt_keep[ct.pair_gt] & pred_keep[ct.pair_pred]
    tp = int(hit.sum())
    iou_sum = float(iou[hit].sum())
    fp, fn = n_pred - tp, n_gt - tp
    dq = tp / (tp + 0.5 * fp + 0.5 * fn)
    sq = iou_sum / tp if tp else float("nan")
    pq = dq * sq if tp else 0.0  # PQ = sum IoU / (TP + FP/2 + FN/2) is 0, not undefined, without matches
    return PanopticResult(pq, dq, sq, tp, fp, fn, iou_sum, tuple(int(v) for v in ct.gt_ids[ct.pair_gt[hit]]),
                          tuple(int(v) for v in ct.pred_ids[ct.pair_pred[hit]]))


def panoptic_quality(gt: np.ndarray, pred: np.ndarray, iou_threshold: float = 0.5,
                     both_empty: float = 1.0) -> PanopticResult:
    """Panoptic quality PQ = DQ x SQ of a predicted instance map against the ground truth.

    Definition (Kirillov et al., CVPR 2019; as HoVer-Net's ``get_fast_pq``): a GT instance g and a predicted
    instance p are a true positive when IoU(g, p) > ``iou_threshold`` (0.5: each instance then matches at
    most one other, so the matching is unique and maximal); unmatched predictions are FP, unmatched GT
    instances FN. ``DQ = TP / (TP + FP/2 + FN/2)`` (the detection F1), ``SQ = sum of matched IoU / TP``,
    ``PQ = DQ x SQ = sum of matched IoU / (TP + FP/2 + FN/2)``.

    Parameters
    ----------
    gt, pred:
        Instance maps of the same shape (0 = background; ids arbitrary, not necessarily contiguous).
    iou_threshold:
        Strict IoU bound for a match, in [0.5, 1) (default 0.5).
    both_empty:
        PQ, DQ and SQ when neither map holds an instance (default 1.0, the project's ``EmptyPolicy``
        default: nothing to find, nothing found; pass ``nan`` for "undefined").

    Returns
    -------
    PanopticResult
        ``pq``, ``dq``, ``sq`` (dimensionless) and the instance counts ``tp``, ``fp``, ``fn``. One map empty:
        PQ = DQ = 0 and SQ = NaN (no matched pair to average; HoVer-Net's code reports 0 here). No match at
        all: same. Both empty: ``both_empty`` for all three, counts 0.

    Examples
    --------
    >>> import numpy as np
    >>> gt = np.zeros((4, 6), int); gt[:2, :2] = 7; gt[:2, 3:5] = 9
    >>> pred = np.zeros((4, 6), int); pred[:2, :2] = 1; pred[0, 3] = 2; pred[3, 5] = 3
    >>> r = panoptic_quality(gt, pred)
    >>> r.tp, r.fp, r.fn, r.dq, r.sq, r.pq
    (1, 2, 1, 0.4, 1.0, 0.4)
    >>> panoptic_quality(gt, gt).pq
    1.0
    >>> panoptic_quality(gt, np.zeros_like(gt)).pq, panoptic_quality(np.zeros_like(gt), np.zeros_like(gt)).pq
    (0.0, 1.0)
    """
    _check_threshold(iou_threshold)
    return _pq_from_table(instance_contingency(gt, pred), iou_threshold, both_empty)


def _aji_from_pairs(ct: InstanceContingency, pg: np.ndarray, pp: np.ndarray, inter: np.ndarray,
                    union: np.ndarray) -> float:
    """sum(inter) / (sum(union) + area of GT instances not in ``pg`` + area of predictions not in ``pp``)."""
    gt_left = np.ones(ct.gt_ids.size, bool)
    gt_left[pg] = False
    pred_left = np.ones(ct.pred_ids.size, bool)
    pred_left[pp] = False
    total = float(union.sum()) + float(ct.gt_area[gt_left].sum()) + float(ct.pred_area[pred_left].sum())
    return float(inter.sum()) / total


def aggregated_jaccard_index(gt: np.ndarray, pred: np.ndarray, both_empty: float = 1.0) -> float:
    """Aggregated Jaccard Index (AJI) of Kumar et al. (IEEE TMI 2017), as HoVer-Net's ``get_fast_aji``.

    Definition: every GT instance G_i takes the predicted instance S_j of highest IoU with it (ties: the
    smallest predicted id; several G_i may take the same S_j); ``C = sum_i |G_i n S_j(i)|``,
    ``U = sum_i |G_i u S_j(i)|`` + the area of every GT instance that overlaps no prediction + the area of
    every predicted instance taken by no G_i; ``AJI = C / U``.

    Parameters
    ----------
    gt, pred:
        Instance maps of the same shape (0 = background; ids arbitrary).
    both_empty:
        Value when neither map holds an instance (default 1.0, as the project's ``EmptyPolicy``).

    Returns
    -------
    float
        AJI in [0, 1], dimensionless (a ratio of pixel counts). One map empty: 0 (nothing shared, U > 0).

    Examples
    --------
    >>> import numpy as np
    >>> gt = np.array([[1, 1, 0, 2, 2]])
    >>> pred = np.array([[4, 4, 4, 4, 4]])        # one prediction merges both nuclei
    >>> aggregated_jaccard_index(gt, pred)        # (2 + 2) / (5 + 5): the merged area counts twice
    0.4
    >>> aggregated_jaccard_index(gt, gt)
    1.0
    """
    return _aji(instance_contingency(gt, pred), both_empty)


def _aji(ct: InstanceContingency, both_empty: float) -> float:
    if ct.gt_ids.size == 0 and ct.pred_ids.size == 0:
        return float(both_empty)
    iou = ct.pair_iou
    # Per GT instance the pair of highest IoU, ties to the smallest predicted index (np.argmax's order).
    order = np.lexsort((ct.pair_pred, -iou, ct.pair_gt))
    first = order[np.unique(ct.pair_gt[order], return_index=True)[1]]
    return _aji_from_pairs(ct, ct.pair_gt[first], ct.pair_pred[first], ct.pair_inter[first], ct.pair_union[first])


def aggregated_jaccard_index_plus(gt: np.ndarray, pred: np.ndarray, both_empty: float = 1.0) -> float:
    """AJI+ (Graham et al., HoVer-Net, Medical Image Analysis 2019), as HoVer-Net's ``get_fast_aji_plus``.

    Definition: as :func:`aggregated_jaccard_index`, but the (GT, prediction) pairs are a one-to-one
    assignment maximising the sum of IoU (Hungarian algorithm, ``scipy.optimize.linear_sum_assignment``);
    pairs of IoU 0 are dropped. ``AJI+ = sum of paired intersections / (sum of paired unions + area of every
    unpaired GT and predicted instance)``. A prediction that merges two nuclei is paired with one of them; the
    other becomes unpaired instead of counting the merged area twice.

    Parameters
    ----------
    gt, pred:
        Instance maps of the same shape (0 = background; ids arbitrary).
    both_empty:
        Value when neither map holds an instance (default 1.0, as the project's ``EmptyPolicy``).

    Returns
    -------
    float
        AJI+ in [0, 1], dimensionless. One map empty: 0.

    Examples
    --------
    >>> import numpy as np
    >>> gt = np.array([[1, 1, 0, 2, 2]])
    >>> pred = np.array([[4, 4, 4, 4, 4]])
    >>> aggregated_jaccard_index_plus(gt, pred)   # 2 / (5 + 2): nucleus 2 is unpaired
    0.2857142857142857
    """
    return _aji_plus(instance_contingency(gt, pred), both_empty)


def _aji_plus(ct: InstanceContingency, both_empty: float) -> float:
    from scipy.optimize import linear_sum_assignment

    if ct.gt_ids.size == 0 and ct.pred_ids.size == 0:
        return float(both_empty)
    if ct.pair_gt.size == 0:
        return _aji_from_pairs(ct, ct.pair_gt, ct.pair_pred, ct.pair_inter, ct.pair_union)
    # The assignment only involves instances that overlap something: a smaller dense matrix, same optimum.
    rows, r_inv = np.unique(ct.pair_gt, return_inverse=True)
    cols, c_inv = np.unique(ct.pair_pred, return_inverse=True)
    iou = np.zeros((rows.size, cols.size))
    iou[r_inv, c_inv] = ct.pair_iou
    r, c = linear_sum_assignment(iou, maximize=True)
    keep = iou[r, c] > 0
    pair_index = np.full((rows.size, cols.size), -1, dtype=np.int64)
    pair_index[r_inv, c_inv] = np.arange(ct.pair_gt.size)
    sel = pair_index[r[keep], c[keep]]
    return _aji_from_pairs(ct, ct.pair_gt[sel], ct.pair_pred[sel], ct.pair_inter[sel], ct.pair_union[sel])


def instance_classes(instances: np.ndarray, classes: np.ndarray) -> dict[int, int]:
    """The class of every instance: the most frequent non-zero class value among its pixels.

    Parameters
    ----------
    instances:
        Instance map (0 = background).
    classes:
        Class map of the same shape (non-negative integers, 0 = no class).

    Returns
    -------
    dict
        Instance id -> class value; ties go to the smallest class value; an instance whose pixels are all
        class 0 gets class 0 (it then belongs to no class). HoVer-Net assigns predicted types the same way
        (majority vote inside the instance, background votes ignored).

    Examples
    --------
    >>> import numpy as np
    >>> instance_classes(np.array([[3, 3, 3, 8]]), np.array([[2, 1, 2, 0]]))
    {3: 2, 8: 0}
    """
    ids, idx = _dense_ids(instances, "")
    cls = np.asarray(classes)
    if cls.shape != idx.shape:
        raise ValueError(f"class map shape {cls.shape} differs from the instance map shape {idx.shape}")
    if cls.dtype.kind not in "uib" or (cls.size and cls.min() < 0):
        raise ValueError("class map must hold non-negative integers")
    return dict(zip(ids.tolist(), _votes(idx, cls, ids.size).tolist(), strict=True))


def _votes(idx: np.ndarray, cls: np.ndarray, n: int) -> np.ndarray:
    """Majority non-zero class of each dense instance index 1..n (0 when it has no classed pixel)."""
    cls = cls.astype(np.int64)
    k = int(cls.max(initial=0)) + 1
    sel = (idx > 0) & (cls > 0)
    table = np.bincount(idx[sel] * k + cls[sel], minlength=(n + 1) * k).reshape(n + 1, k)[1:]
    return np.where(table.sum(axis=1) > 0, table.argmax(axis=1), 0)


@dataclass(frozen=True)
class ClassPQResult:
    """Per-class panoptic quality.

    Attributes
    ----------
    per_class:
        Class name -> :class:`PanopticResult` on that class's instances only; ``pq`` is NaN for a class with
        no GT instance (its ``fp`` still counts the predictions of that class).
    mpq:
        Mean of ``pq`` over the classes present in the ground truth (NaN when none is).
    """

    per_class: dict[str, PanopticResult]
    mpq: float

    def rows(self) -> dict[str, float]:
        """``pq_<class>`` for every class and ``mpq``."""
        return {**{f"pq_{name}": r.pq for name, r in self.per_class.items()}, "mpq": self.mpq}


def per_class_pq(gt: np.ndarray, pred: np.ndarray, gt_classes: np.ndarray, pred_classes: np.ndarray,
                 classes: dict[str, int] | None = None, iou_threshold: float = 0.5) -> ClassPQResult:
    """Panoptic quality per class and its mean, mPQ (the PanNuke / CoNSeP convention).

    Definition: each instance (GT and predicted) takes the majority class of its pixels in its own class map
    (:func:`instance_classes`). For class c, PQ_c is :func:`panoptic_quality` between the GT instances of
    class c and the predicted instances of class c only (a nucleus found with the wrong class is a FN of its
    true class and a FP of the predicted one). ``mPQ = mean of PQ_c over the classes with at least one GT
    instance``.

    Empty classes, explicitly: a class with no GT instance has PQ_c = NaN whether or not the model predicted
    it, and is left out of mPQ; this is PanNuke's rule (its evaluation sets PQ to NaN when the GT of a class is
    empty and averages with ``nanmean``), so the same image gives the same mPQ as PanNuke's script. Its
    false positives remain visible in ``per_class[c].fp``. A class present in the GT but never predicted has
    PQ_c = 0. No class present in the GT: mPQ = NaN.

    Parameters
    ----------
    gt, pred:
        Instance maps of the same shape (0 = background; ids arbitrary).
    gt_classes, pred_classes:
        Class maps of the same shape (0 = background), e.g. CoNSeP's type map.
    classes:
        Class name -> value; default: every non-zero value of either class map, named ``class_<v>``.
    iou_threshold:
        Matching threshold of PQ (default 0.5).

    Returns
    -------
    ClassPQResult
        Per-class results (dimensionless PQ, DQ, SQ and instance counts) and mPQ.

    Examples
    --------
    >>> import numpy as np
    >>> inst = np.array([[1, 1, 0, 2, 2, 0, 3]])
    >>> cls = np.array([[1, 1, 0, 2, 2, 0, 2]])
    >>> wrong = np.array([[1, 1, 0, 1, 1, 0, 2]])   # nucleus 2 predicted as class 1
    >>> r = per_class_pq(inst, inst, cls, wrong, {"a": 1, "b": 2, "c": 3})
    >>> round(r.per_class["a"].pq, 4), round(r.per_class["b"].pq, 4), r.per_class["c"].pq, round(r.mpq, 4)
    (0.6667, 0.6667, nan, 0.6667)
    """
    _check_threshold(iou_threshold)
    ct = instance_contingency(gt, pred)
    gt_cls_map, pred_cls_map = np.asarray(gt_classes), np.asarray(pred_classes)
    for what, cmap, inst in (("ground-truth", gt_cls_map, gt), ("predicted", pred_cls_map, pred)):
        if cmap.shape != np.shape(inst):
            raise ValueError(f"{what} class map shape {cmap.shape} differs from its instance map {np.shape(inst)}")
    # ct.gt_ids / ct.pred_ids are sorted like the dicts' keys, so the values line up with the table's indices.
    gt_cls = np.fromiter(instance_classes(gt, gt_cls_map).values(), dtype=np.int64, count=ct.gt_ids.size)
    pred_cls = np.fromiter(instance_classes(pred, pred_cls_map).values(), dtype=np.int64, count=ct.pred_ids.size)
    if classes is None:
        values = sorted((set(np.unique(gt_cls_map).tolist()) | set(np.unique(pred_cls_map).tolist())) - {0})
        classes = {f"class_{v}": int(v) for v in values}
    per: dict[str, PanopticResult] = {}
    for name, value in classes.items():
        g_keep, p_keep = gt_cls == value, pred_cls == value
        res = _pq_from_table(ct, iou_threshold, float("nan"), g_keep, p_keep)
        if not g_keep.any():  # PanNuke: a class absent from the GT is undefined, whatever was predicted
            res = PanopticResult(float("nan"), float("nan"), float("nan"), res.tp, res.fp, res.fn, res.iou_sum)
        per[name] = res
    present = [r.pq for r in per.values() if r.tp + r.fn > 0]
    return ClassPQResult(per, float(np.mean(present)) if present else float("nan"))


@dataclass(frozen=True)
class InstanceResult:
    """All instance metrics of one pair: PQ (with counts), AJI, AJI+ and, with class maps, per-class PQ."""

    panoptic: PanopticResult
    aji: float
    aji_plus: float
    classes: ClassPQResult | None = None

    def rows(self) -> dict[str, float]:
        """Metric name -> value as stored: ``pq dq sq pq_tp pq_fp pq_fn aji aji_plus`` [+ ``pq_<class>``, ``mpq``]."""
        out = {**self.panoptic.rows(), "aji": self.aji, "aji_plus": self.aji_plus}
        if self.classes is not None:
            out.update(self.classes.rows())
        return out


def instance_metrics(gt: np.ndarray, pred: np.ndarray, gt_classes: np.ndarray | None = None,
                     pred_classes: np.ndarray | None = None, classes: dict[str, int] | None = None,
                     iou_threshold: float = 0.5, both_empty: float = 1.0) -> InstanceResult:
    """PQ, DQ, SQ, AJI, AJI+ and (when both class maps are given) per-class PQ and mPQ of one pair.

    Parameters
    ----------
    gt, pred:
        Instance maps of the same shape (0 = background; ids arbitrary).
    gt_classes, pred_classes:
        Optional class maps; per-class PQ needs both.
    classes:
        Class name -> value for per-class PQ (see :func:`per_class_pq`).
    iou_threshold:
        PQ matching threshold (default 0.5).
    both_empty:
        PQ/DQ/SQ/AJI/AJI+ when neither map holds an instance (default 1.0).

    Returns
    -------
    InstanceResult
        All values dimensionless; see each metric's function for its empty cases.

    Examples
    --------
    >>> import numpy as np
    >>> gt = np.array([[1, 1, 0, 2, 2]])
    >>> r = instance_metrics(gt, np.array([[4, 4, 4, 4, 4]]))
    >>> r.rows()["pq"], r.rows()["aji"], r.rows()["pq_fn"]
    (0.0, 0.4, 2.0)
    """
    _check_threshold(iou_threshold)
    cls = None
    if gt_classes is not None and pred_classes is not None:
        cls = per_class_pq(gt, pred, gt_classes, pred_classes, classes, iou_threshold)
    ct = instance_contingency(gt, pred)  # one table serves PQ, AJI and AJI+
    return InstanceResult(_pq_from_table(ct, iou_threshold, both_empty), _aji(ct, both_empty),
                          _aji_plus(ct, both_empty), cls)


# metric -> (definition, units, gt empty only, pred empty only, both empty); merged into METRIC_DEFINITIONS.
INSTANCE_METRIC_DEFINITIONS: dict[str, tuple[str, str, str, str, str]] = {
    "pq": ("panoptic quality DQ x SQ = sum of matched IoU / (TP + FP/2 + FN/2); instances match at IoU > 0.5 "
           "(instance maps only)", "1", "0", "0", "both_empty (1)"),
    "dq": ("detection quality TP / (TP + FP/2 + FN/2) over instances matched at IoU > 0.5", "1", "0", "0",
           "both_empty (1)"),
    "sq": ("segmentation quality: mean IoU of the matched instance pairs", "1", "nan", "nan", "both_empty (1)"),
    "pq_tp": ("instance pairs matched at IoU > 0.5", "instances", "0", "0", "0"),
    "pq_fp": ("predicted instances without a match", "instances", "count", "0", "0"),
    "pq_fn": ("ground-truth instances without a match", "instances", "0", "count", "0"),
    "aji": ("aggregated Jaccard index (Kumar 2017): each GT instance with its best-IoU prediction; sum of "
            "intersections / (sum of unions + unpaired instance areas)", "1", "0", "0", "both_empty (1)"),
    "aji_plus": ("AJI+ (HoVer-Net): as aji with a one-to-one Hungarian pairing on IoU", "1", "0", "0",
                 "both_empty (1)"),
    "pq_<class>": ("PQ on the instances of one class (majority class of each instance's pixels)", "1",
                   "nan (class not in GT)", "0", "nan (class not in GT)"),
    "mpq": ("mean of pq_<class> over the classes present in the ground truth (PanNuke)", "1", "nan", "0", "nan"),
}
