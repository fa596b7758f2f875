"""``evaluate_pair``: every metric of one ground truth / prediction pair, for all labels and regions.

This is the functional core under ``segaudit evaluate`` and the entry point for library users::

    from segaudit.metrics import evaluate_pair
    res = evaluate_pair(gt, pred, spacing=(1, 1, 1), labels={"ENH": 1, "NEC": 2, "EDE": 3},
                        regions={"WT": (1, 2, 3), "TC": (1, 2), "ET": (1,)})
    res.frame()          # long table: region, metric, value

Speed comes from structure, not shortcuts: the pair is cropped once to the bounding box of all foreground of
both masks (plus the margin lesion matching needs); one confusion matrix over the crop gives the counts of every
label and region; each region's surface distances are computed once and reused by every distance metric.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import numpy as np
import pandas as pd

from segaudit.base.types import SurfaceDefinition
from segaudit.dataset.labels import unique_regions
from segaudit.errors import ConfigError, check_keys
from segaudit.metrics.instance import INSTANCE_METRIC_DEFINITIONS, instance_metrics
from segaudit.metrics.lesions import MATCHING_RULES, Lesion, lesion_metrics
from segaudit.metrics.overlap import label_confusion, overlap_metrics, region_counts, values_mask
from segaudit.metrics.policy import EmptyPolicy, hd_name, lesion_hd_name, nsd_name
from segaudit.metrics.probability import probability_metrics
from segaudit.metrics.surface import (
    SURFACE_DEFINITIONS,
    assd,
    bounding_box,
    hausdorff,
    masd,
    nsd,
    surface_distances,
)
from segaudit.store.schema import CONFUSION_REGION  # the store schema names the confusion rows

UNKNOWN_LABEL_CHOICES = ("background", "error")


@dataclass(frozen=True)
class EvaluationOptions:
    """Settings of an evaluation (all have the documented defaults of ``segaudit evaluate``).

    Parameters
    ----------
    surface:
        Surface definition for distance metrics: ``"surfel"`` (default) or ``"voxel"``.
    tolerances:
        NSD tolerances in mm; one metric ``nsd@<tau>mm`` each (default ``(1.0,)``).
    percentile:
        Percentile of the robust Hausdorff distance (default 95); names the stored metrics ``hd<p>`` and
        ``lesion_hd<p>`` (``hd95``, ``lesion_hd95`` by default; ``hd90``, ``lesion_hd90`` for 90), see
        :func:`metric_names`.
    lesion_matching:
        ``"brats"`` (default), ``"hungarian"`` or ``"none"`` (no lesion-wise metrics).
    dilation:
        Voxels of ground-truth dilation of the ``brats`` rule (default 3, as BraTS gliomas).
    min_lesion_volume:
        Lesions of this volume (mm³) or less are not counted (default 0).
    iou_threshold:
        IoU a pair must exceed under the ``hungarian`` rule (default 0.5).
    connectivity:
        Neighbours for connected components (3D 6/18/26, 2D 4/8); ``None`` = full (26 / 8).
    policy:
        The :class:`EmptyPolicy`.
    unknown_labels:
        Values present in a mask but absent from the label map: ``"background"`` (default; counted as 0 and
        reported) or ``"error"``.
    distances:
        Compute surface-distance metrics (default True).
    """

    surface: SurfaceDefinition = "surfel"
    tolerances: tuple[float, ...] = (1.0,)
    percentile: float = 95.0
    lesion_matching: str = "brats"
    dilation: int = 3
    min_lesion_volume: float = 0.0
    iou_threshold: float = 0.5
    connectivity: int | None = None
    policy: EmptyPolicy = field(default_factory=EmptyPolicy)
    unknown_labels: str = "background"
    distances: bool = True

    def __post_init__(self):
        if self.surface not in SURFACE_DEFINITIONS:
            raise ConfigError(f"surface must be one of {SURFACE_DEFINITIONS}, not {self.surface!r}")
        if self.lesion_matching not in MATCHING_RULES:
            raise ConfigError(f"lesion_matching must be one of {MATCHING_RULES}, not {self.lesion_matching!r}")
        if self.unknown_labels not in UNKNOWN_LABEL_CHOICES:
            raise ConfigError(f"unknown_labels must be one of {UNKNOWN_LABEL_CHOICES}, not {self.unknown_labels!r}")
        if not 0 < self.percentile <= 100:
            raise ConfigError(f"percentile must be in (0, 100], not {self.percentile}")
        if any(t < 0 for t in self.tolerances):
            raise ConfigError("NSD tolerances must be >= 0 mm")

    @property
    def hd_name(self) -> str:
        """Stored name of the robust Hausdorff distance: ``hd<percentile>`` (``hd95`` by default)."""
        return hd_name(self.percentile)

    @property
    def lesion_hd_name(self) -> str:
        """Stored name of the lesion-wise robust Hausdorff distance: ``lesion_hd<percentile>``."""
        return lesion_hd_name(self.percentile)

    @property
    def nsd_names(self) -> tuple[str, ...]:
        """Stored names of the NSD metrics, one per tolerance: ``nsd@<tau>mm``."""
        return tuple(nsd_name(t) for t in self.tolerances)

    def to_dict(self) -> dict:
        """The options as a plain mapping (tolerances as a list), as recorded with a run's settings."""
        d = asdict(self)
        d["tolerances"] = list(self.tolerances)
        return d

    @classmethod
    def from_dict(cls, data: dict | None) -> EvaluationOptions:
        """From a mapping (the project file's ``evaluate:`` section or :meth:`to_dict`); unknown keys fail."""
        data = dict(data or {})
        names = {f for f in cls.__dataclass_fields__}
        policy_keys = set(EmptyPolicy.__dataclass_fields__)
        check_keys(data, names | policy_keys, "evaluate")
        pol = data.pop("policy", None) or {}
        pol.update({k: data.pop(k) for k in list(data) if k in policy_keys})
        if "both_empty" in pol:
            pol["both_empty"] = float(pol["both_empty"])
        if "tolerances" in data:
            tol = data["tolerances"]
            data["tolerances"] = tuple(float(t) for t in (tol if isinstance(tol, list | tuple) else [tol]))
        return cls(policy=EmptyPolicy(**pol), **data)

    def with_changes(self, **changes) -> EvaluationOptions:
        """A copy with the given options changed."""
        return replace(self, **changes)


# Names of the fixed-name metrics of every label and region, in the order evaluate_pair stores them.
_OVERLAP_NAMES = ("tp", "fp", "fn", "tn", "dice", "iou", "precision", "sensitivity", "specificity", "accuracy",
                  "gt_empty", "pred_empty", "gt_volume", "pred_volume", "volume_difference", "relative_volume_error")
_LESION_NAMES = ("lesion_tp", "lesion_fp", "lesion_fn", "lesion_precision", "lesion_recall", "lesion_f1",
                 "lesion_dice")
_LESION_COUNT_NAMES = ("lesion_gt_count", "lesion_pred_count")
_PROBABILITY_NAMES = ("pearson", "roc_auc", "average_precision", "brier")
_INSTANCE_NAMES = tuple(m for m in INSTANCE_METRIC_DEFINITIONS if m not in ("pq_<class>", "mpq"))


def metric_names(options: EvaluationOptions | None = None, *, probability: bool = False, instances: bool = False,
                 classes: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Names of the metrics :func:`evaluate_pair` stores for one label or region under these options.

    Every name is an entry of :data:`segaudit.metrics.policy.METRIC_DEFINITIONS` (names set by the options
    resolve through :func:`segaudit.metrics.policy.registry_key`): ``hd<p>`` and ``lesion_hd<p>`` follow
    ``options.percentile``, ``nsd@<tau>mm`` follows ``options.tolerances``, the distance metrics are absent
    with ``distances=False`` and the lesion metrics with ``lesion_matching="none"``. The ``confusion`` region's
    rows (``<gt label>-><pred label>``) are not metrics of a region and are not listed.

    Parameters
    ----------
    options:
        The :class:`EvaluationOptions` (default: the defaults).
    probability:
        A probability map is given: ``pearson``, ``roc_auc``, ``average_precision``, ``brier`` (stored on the
        single label's region or ``foreground``).
    instances:
        Instance maps are given: ``pq``, ``dq``, ``sq``, ``pq_tp``, ``pq_fp``, ``pq_fn``, ``aji``, ``aji_plus``
        (stored on :func:`instance_region`).
    classes:
        With ``instances``, the label names of a map of two or more classes: adds ``pq_<class>`` each and
        ``mpq``.

    Returns
    -------
    tuple of str
        The names, in the order they are stored.

    Examples
    --------
    >>> names = metric_names(EvaluationOptions(percentile=90, tolerances=(1.0, 2.0)))
    >>> [m for m in names if "hd" in m or "nsd" in m]
    ['hd', 'hd90', 'nsd@1mm', 'nsd@2mm', 'lesion_hd90']
    >>> "lesion_f1" in metric_names(EvaluationOptions(lesion_matching="none"))
    False
    """
    options = options or EvaluationOptions()
    names = list(_OVERLAP_NAMES)
    if options.distances:
        names += ["hd", options.hd_name, "assd", "masd", *options.nsd_names]
    if options.lesion_matching != "none":
        names += [*_LESION_NAMES, options.lesion_hd_name, *_LESION_COUNT_NAMES]
    if probability:
        names += _PROBABILITY_NAMES
    if instances:
        names += _INSTANCE_NAMES
        if len(classes) >= 2:
            names += [f"pq_{c}" for c in classes] + ["mpq"]
    return tuple(dict.fromkeys(names))  # percentile 100 makes hd100 beside hd: both are stored


@dataclass
class PairResult:
    """Metrics of one pair: ``rows`` (region, metric, value), per-lesion records and notes (warnings)."""

    rows: list[tuple[str, str, float]] = field(default_factory=list)
    lesions: list[tuple[str, Lesion]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def frame(self) -> pd.DataFrame:
        """Long table with columns region, metric, value."""
        return pd.DataFrame(self.rows, columns=["region", "metric", "value"])

    def value(self, region: str, metric: str) -> float:
        """One value (KeyError when absent)."""
        for r, m, v in self.rows:
            if r == region and m == metric:
                return v
        raise KeyError((region, metric))

    def lesion_frame(self) -> pd.DataFrame:
        """The per-lesion records as a DataFrame, one row per lesion with its region."""
        rows = [{"region": r, **asdict(les)} for r, les in self.lesions]
        return pd.DataFrame(rows)


def _clean_labels(arr: np.ndarray, known: set[int], what: str, options: EvaluationOptions,
                  notes: list[str]) -> np.ndarray:
    if arr.size == 0:
        return arr
    if arr.dtype.kind in "ui" and arr.min() >= 0:
        present = np.flatnonzero(np.bincount(arr.ravel()))
    else:
        present = np.unique(arr)
    unknown = [int(v) for v in present if v != 0 and int(v) not in known]
    if not unknown:
        return arr
    if options.unknown_labels == "error":
        raise ValueError(f"{what} has label value(s) {unknown} that are not in the label map {sorted(known)}")
    notes.append(f"{what} has label value(s) {unknown} not in the label map {sorted(known)}; counted as background")
    return np.where(np.isin(arr, unknown), 0, arr).astype(arr.dtype)


def evaluate_pair(gt: np.ndarray, pred: np.ndarray, spacing, labels: dict[str, int] | None = None,
                  regions: dict[str, tuple[int, ...]] | None = None, options: EvaluationOptions | None = None,
                  probability: np.ndarray | None = None, gt_instances: np.ndarray | None = None,
                  pred_instances: np.ndarray | None = None) -> PairResult:
    """All metrics of one ground truth / prediction pair.

    Parameters
    ----------
    gt, pred:
        Integer label maps (2D or 3D) of the same shape; booleans count as label 1.
    spacing:
        Voxel size in mm along each array axis (volumes in mm³, 2D areas in mm², distances in mm).
    labels:
        Label name -> value. ``None``: every non-zero value present, named ``label_<v>``.
    regions:
        Region name -> label values evaluated together (e.g. ``{"WT": (1, 2, 3)}``).
    options:
        :class:`EvaluationOptions`.
    probability:
        Optional soft prediction in [0, 1] (same shape) for the foreground; adds ``pearson``, ``roc_auc``,
        ``average_precision`` and ``brier`` to the region of the single label (or ``foreground``).
    gt_instances, pred_instances:
        Instance maps used as given for lesion-wise metrics instead of connected components. When both are
        given, the instance metrics of :mod:`segaudit.metrics.instance` (``pq``, ``dq``, ``sq``, ``pq_tp``,
        ``pq_fp``, ``pq_fn``, ``aji``, ``aji_plus``; matching at IoU > 0.5) are added to the region of
        :func:`instance_region`; with two or more labels, ``gt`` and ``pred`` serve as class maps and
        ``pq_<label>`` and ``mpq`` (PanNuke convention, see :func:`~segaudit.metrics.instance.per_class_pq`)
        are added too.

    Returns
    -------
    PairResult
        For each label and region: counts, overlap and volume metrics, ``gt_empty``/``pred_empty`` flags,
        distance metrics (``hd``, ``hd<p>``, ``assd``, ``masd``, ``nsd@<tau>mm``) and lesion-wise metrics,
        with the empty-case values of ``options.policy``.

    Examples
    --------
    A 1x4 image with two labels; the region ``WT`` is both together:

    >>> import numpy as np
    >>> gt = np.array([[1, 1, 2, 0]])
    >>> pred = np.array([[1, 2, 2, 0]])
    >>> res = evaluate_pair(gt, pred, spacing=(1.0, 1.0), labels={"A": 1, "B": 2}, regions={"WT": (1, 2)})
    >>> res.value("A", "dice"), res.value("B", "dice"), res.value("WT", "dice")  # 2/3, 2/3, 6/6
    (0.6666666666666666, 0.6666666666666666, 1.0)
    >>> res.value("confusion", "A->B")  # voxels of A predicted as B
    1.0

    No label in either mask: the policy's values, and both flags set:

    >>> empty = evaluate_pair(np.zeros((3, 3), int), np.zeros((3, 3), int), (1.0, 1.0), labels={"A": 1})
    >>> empty.value("A", "dice"), empty.value("A", "hd95"), empty.value("A", "gt_empty")
    (1.0, 0.0, 1.0)
    """
    options = options or EvaluationOptions()
    policy = options.policy
    gt = np.asarray(gt)
    pred = np.asarray(pred)
    if gt.shape != pred.shape:
        raise ValueError(f"ground truth and prediction differ in shape: {gt.shape} vs {pred.shape}")
    if gt.ndim not in (2, 3):
        raise ValueError(f"masks must be 2D or 3D, not {gt.ndim}D")
    spacing = tuple(float(s) for s in spacing)
    if len(spacing) != gt.ndim or any(s <= 0 for s in spacing):
        raise ValueError(f"spacing {spacing} does not fit a {gt.ndim}D mask (one positive value per axis)")
    gt = gt.astype(np.uint8) if gt.dtype == bool else gt
    pred = pred.astype(np.uint8) if pred.dtype == bool else pred
    if labels is None:
        values = sorted(({int(v) for v in np.unique(gt)} | {int(v) for v in np.unique(pred)}) - {0})
        labels = {f"label_{v}": v for v in values}
    # A region named like a label (BraTS ET) is that label: scored once, under one name.
    regions = unique_regions(labels, dict(regions or {}), "evaluate_pair")
    result = PairResult()
    known = set(labels.values())

    margin = (options.dilation + 1) if options.lesion_matching == "brats" else 1
    box = bounding_box((gt != 0) | (pred != 0), margin)
    if box is None:
        box = tuple(slice(0, 0) for _ in gt.shape)
    # Every non-zero voxel lies inside the box, so label values are checked on the crop only.
    g = _clean_labels(gt[box], known, "ground truth", options, result.notes)
    p = _clean_labels(pred[box], known, "prediction", options, result.notes)
    offset = tuple(s.start for s in box)
    gi = gt_instances[box] if gt_instances is not None else None
    pi = pred_instances[box] if pred_instances is not None else None

    value_list = [0] + sorted(known)
    index = {v: i for i, v in enumerate(value_list)}
    confusion = label_confusion(g, p, value_list) if g.size else np.zeros((len(value_list),) * 2, np.int64)
    # The segmentation error matrix, stored once here so no view has to re-read images: region "confusion",
    # metric "<gt label>-><pred label>", value = voxels (background-background includes the uncropped rest).
    names = {v: n for n, v in labels.items()}
    label_names = ["background"] + [names[v] for v in value_list[1:]]
    full = confusion.astype(np.int64)
    full[0, 0] += gt.size - int(confusion.sum())
    result.rows += [(CONFUSION_REGION, f"{a}->{b}", float(full[i, j]))
                    for i, a in enumerate(label_names) for j, b in enumerate(label_names)]
    voxel_volume = float(np.prod(spacing))
    one_empty = policy.one_empty_distance(gt.shape, spacing)
    penalty = policy.penalty_for(gt.shape, spacing)

    items = [(name, (v,)) for name, v in labels.items()] + [(name, tuple(vals)) for name, vals in regions.items()]
    done: dict[frozenset, str] = {}
    for name, vals in items:
        key = frozenset(vals)
        if key in done:  # a region equal to a label (BraTS ET = enhancing tumour): same masks, same values
            first = done[key]
            result.rows += [(name, m, v) for r, m, v in list(result.rows) if r == first]
            result.lesions += [(name, les) for r, les in list(result.lesions) if r == first]
            continue
        done[key] = name
        members = [index[v] for v in vals if v in index]
        c = region_counts(confusion, members, gt.size)
        metrics = overlap_metrics(c, voxel_volume, policy.both_empty)
        gm = pm = None
        if options.distances or options.lesion_matching != "none":
            gm, pm = values_mask(g, vals), values_mask(p, vals)
        whole = None
        if options.distances:
            assert gm is not None
            assert pm is not None
            if c.gt == 0 and c.pred == 0:
                dist = dict.fromkeys(("hd", options.hd_name, "assd", "masd"), policy.distance_both_empty)
                dist.update(dict.fromkeys(options.nsd_names, policy.both_empty))
            elif c.gt == 0 or c.pred == 0:
                dist = dict.fromkeys(("hd", options.hd_name, "assd", "masd"), one_empty)
                dist.update(dict.fromkeys(options.nsd_names, 0.0))
            else:
                sd = surface_distances(gm, pm, spacing, options.surface)
                dist = {"hd": hausdorff(sd, 100.0), options.hd_name: hausdorff(sd, options.percentile),
                        "assd": assd(sd), "masd": masd(sd)}
                dist.update({name: nsd(sd, t) for name, t in zip(options.nsd_names, options.tolerances, strict=True)})
                whole = (c.gt, c.pred, metrics["dice"], dist[options.hd_name])
            metrics.update(dist)
        if options.lesion_matching != "none":
            assert gm is not None
            assert pm is not None
            single = len(vals) == 1
            les = lesion_metrics(
                gm, pm, spacing, rule=options.lesion_matching, dilation=options.dilation,
                min_volume=options.min_lesion_volume, iou_threshold=options.iou_threshold,
                connectivity=options.connectivity, definition=options.surface, percentile=options.percentile,
                penalty=penalty, policy=policy,
                gt_instances=np.where(gm, gi, 0) if gi is not None and single else None,
                pred_instances=np.where(pm, pi, 0) if pi is not None and single else None, offset=offset,
                whole=whole)
            metrics.update(les.metrics)
            result.lesions += [(name, lesion) for lesion in les.lesions]
        result.rows += [(name, m, float(v)) for m, v in metrics.items()]

    if gt_instances is not None and pred_instances is not None:
        result.rows += _instance_rows(gt, pred, gt_instances, pred_instances, labels, regions, policy)

    if probability is not None:
        prob = np.asarray(probability, dtype=np.float64)
        if prob.shape != gt.shape:
            raise ValueError(f"probability map shape {prob.shape} differs from the ground truth's {gt.shape}")
        region = next(iter(labels)) if len(labels) == 1 else "foreground"
        result.rows += [(region, m, float(v)) for m, v in probability_metrics(prob, gt != 0).items()]
    return result


def instance_region(labels: dict[str, int], regions: dict[str, tuple[int, ...]]) -> str:
    """The region that holds the instance metrics.

    The one label, else the first region made of all labels (CoNSeP's ``nuclei``), else ``"foreground"``.
    """
    if len(labels) == 1:
        return next(iter(labels))
    every = set(labels.values())
    return next((name for name, vals in regions.items() if set(vals) == every), "foreground")


def _instance_rows(gt: np.ndarray, pred: np.ndarray, gt_instances: np.ndarray, pred_instances: np.ndarray,
                   labels: dict[str, int], regions: dict[str, tuple[int, ...]],
                   policy: EmptyPolicy) -> list[tuple[str, str, float]]:
    """Rows of PQ/AJI/AJI+ (and per-class PQ with two or more labels) for :func:`evaluate_pair`."""
    gi, pi = np.asarray(gt_instances), np.asarray(pred_instances)
    for what, arr in (("ground-truth", gi), ("predicted", pi)):
        if arr.shape != gt.shape:
            raise ValueError(f"{what} instance map shape {arr.shape} differs from the masks' {gt.shape}")
    multi = len(labels) >= 2
    res = instance_metrics(gi, pi, gt if multi else None, pred if multi else None, labels if multi else None,
                           both_empty=policy.both_empty)
    region = instance_region(labels, regions)
    return [(region, m, float(v)) for m, v in res.rows().items()]
