"""The empty-case policy: what each metric reports when the ground truth, the prediction or both are empty.

The field disagrees here (Dice of two empty masks is 1 in BraTS and AUDIT, NaN in MetricsReloaded; the distance
to an empty mask is NaN, inf, 0 or a fixed penalty depending on the library), so segaudit makes the choice
explicit, configurable, and visible: every region row also carries the flags ``gt_empty`` and ``pred_empty``
(1.0 / 0.0), so an analysis can always tell a perfect empty case from a perfect segmentation. No metric uses
epsilon smoothing: a total miss is exactly 0, never 2.5e-10.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

import numpy as np

from segaudit.base.types import Spacing
from segaudit.errors import ConfigError
from segaudit.metrics.instance import INSTANCE_METRIC_DEFINITIONS

DISTANCE_EMPTY_CHOICES = ("penalty", "nan", "inf")


@dataclass(frozen=True)
class EmptyPolicy:
    """Values used where a metric is undefined because a mask is empty.

    Parameters
    ----------
    both_empty:
        Value of the similarity metrics (dice, iou, precision, sensitivity, nsd, lesion f1/precision/recall,
        lesion_dice) when ground truth and prediction are both empty: ``1.0`` (default: nothing to find and
        nothing found, as BraTS and AUDIT report) or ``nan`` (undefined, as MetricsReloaded reports).
    distance_both_empty:
        Value of the distance metrics (hd, hd95, assd, masd, lesion_hd95) when both are empty (default 0.0).
    distance_one_empty:
        Distance metrics when exactly one mask is empty: ``"penalty"`` (default: the penalty distance, by
        default the diagonal of the image in mm, like BraTS's 374 mm), ``"nan"`` or ``"inf"``.
    penalty:
        Penalty distance in the grid's length unit (mm, or px for photos without a declared spacing); ``None``
        (default) means the diagonal of the image grid, ``sqrt(sum((shape * spacing) ** 2))`` (373.1 mm for a
        240x240x155 1 mm volume). ``segaudit evaluate`` sets it once per dataset to the largest ground-truth
        diagonal of the dataset (see :func:`segaudit.pipeline.evaluate.dataset_grid`), so that every case of a
        dataset of mixed image sizes gets the same penalty.

    Examples
    --------
    >>> p = EmptyPolicy()
    >>> round(p.one_empty_distance((240, 240, 155), (1.0, 1.0, 1.0)), 1)  # the grid's diagonal, mm
    373.1
    >>> EmptyPolicy(penalty=374.0).one_empty_distance((10, 10), (1.0, 1.0))
    374.0
    >>> EmptyPolicy(distance_one_empty="nan").one_empty_distance((10, 10), (1.0, 1.0))
    nan
    """

    both_empty: float = 1.0
    distance_both_empty: float = 0.0
    distance_one_empty: str = "penalty"
    penalty: float | None = None

    def __post_init__(self):
        if self.distance_one_empty not in DISTANCE_EMPTY_CHOICES:
            raise ConfigError(f"distance_one_empty must be one of {DISTANCE_EMPTY_CHOICES}, "
                             f"not {self.distance_one_empty!r}")
        if not (np.isnan(self.both_empty) or self.both_empty in (0.0, 1.0)):
            raise ConfigError(f"both_empty must be 1, 0 or nan, not {self.both_empty!r}")

    def penalty_for(self, shape: tuple[int, ...], spacing: Spacing) -> float:
        """The penalty distance in mm for an image grid."""
        if self.penalty is not None:
            return float(self.penalty)
        return image_diagonal(shape, spacing)

    def one_empty_distance(self, shape: tuple[int, ...], spacing: Spacing) -> float:
        """Distance reported when exactly one of the masks is empty."""
        if self.distance_one_empty == "nan":
            return np.nan
        if self.distance_one_empty == "inf":
            return np.inf
        return self.penalty_for(shape, spacing)

    def to_dict(self) -> dict:
        """The policy as a plain mapping, as recorded with a run's settings."""
        return asdict(self)


def image_diagonal(shape: tuple[int, ...], spacing: Spacing) -> float:
    """Length in mm of the diagonal of an image grid: ``sqrt(sum((shape_i * spacing_i) ** 2))``.

    Examples
    --------
    >>> image_diagonal((3, 4), (1.0, 1.0)), image_diagonal((3, 4), (2.0, 2.0))
    (5.0, 10.0)
    """
    return float(np.sqrt(np.sum((np.asarray(shape, float) * np.asarray(spacing, float)) ** 2)))


#: Units of lengths and volumes: mm on physical grids (NIfTI, or a spacing declared in the project), pixels
#: otherwise; the unit each stored value really has is in the store's ``metrics.unit`` column.
_LENGTH = "mm (px without physical spacing)"
_VOLUME = "mm3 (mm2 in 2D; px2 without physical spacing)"

# metric -> (definition, units, gt empty only, pred empty only, both empty). Printed by `segaudit metrics --explain`.
METRIC_DEFINITIONS: dict[str, tuple[str, str, str, str, str]] = {
    "tp": ("voxels in both masks", "voxels", "0", "0", "0"),
    "fp": ("voxels in the prediction only", "voxels", "count", "0", "0"),
    "fn": ("voxels in the ground truth only", "voxels", "0", "count", "0"),
    "tn": ("voxels in neither mask (whole image)", "voxels", "count", "count", "all voxels"),
    "dice": ("2TP / (2TP + FP + FN)", "1", "0", "0", "both_empty (1)"),
    "iou": ("TP / (TP + FP + FN) (Jaccard)", "1", "0", "0", "both_empty (1)"),
    "precision": ("TP / (TP + FP) (positive predictive value)", "1", "0", "nan", "both_empty (1)"),
    "sensitivity": ("TP / (TP + FN) (recall)", "1", "nan", "0", "both_empty (1)"),
    "specificity": ("TN / (TN + FP)", "1", "defined", "1", "1"),
    "accuracy": ("(TP + TN) / all voxels", "1", "defined", "defined", "1"),
    "gt_volume": ("ground-truth voxels x voxel volume", _VOLUME, "0", "count", "0"),
    "pred_volume": ("predicted voxels x voxel volume", _VOLUME, "count", "0", "0"),
    "volume_difference": ("pred_volume - gt_volume", _VOLUME, "pred_volume", "-gt_volume", "0"),
    "relative_volume_error": ("(pred_volume - gt_volume) / gt_volume", "1", "nan", "-1", "0"),
    "hd": ("max of the two directed maximum surface distances", _LENGTH, "distance_one_empty (penalty)",
           "distance_one_empty (penalty)", "distance_both_empty (0)"),
    "hd<p>": ("max of the two directed p-th percentile surface distances, p = --percentile (default 95: hd95; "
              "surfel: area-weighted; voxel: linear interpolation)", _LENGTH, "distance_one_empty (penalty)",
              "distance_one_empty (penalty)", "distance_both_empty (0)"),
    "assd": ("weighted mean surface distance over both surfaces pooled", _LENGTH, "distance_one_empty (penalty)",
             "distance_one_empty (penalty)", "distance_both_empty (0)"),
    "masd": ("mean of the two directed weighted mean surface distances", _LENGTH, "distance_one_empty (penalty)",
             "distance_one_empty (penalty)", "distance_both_empty (0)"),
    "nsd@<tau>mm": ("surface Dice: weight of surface points within tau (mm; px on grids without physical spacing) "
                  "of the other surface / total weight",
                  "1", "0", "0", "both_empty (1)"),
    "gt_empty": ("1 when the ground truth of the region is empty", "flag", "1", "0", "1"),
    "pred_empty": ("1 when the prediction of the region is empty", "flag", "0", "1", "1"),
    "lesion_tp": ("ground-truth lesions matched by the prediction", "lesions", "0", "0", "0"),
    "lesion_fp": ("predicted lesions matching no ground-truth lesion", "lesions", "count", "0", "0"),
    "lesion_fn": ("ground-truth lesions not matched", "lesions", "0", "count", "0"),
    "lesion_precision": ("lesion_tp_pred / predicted lesions", "1", "0", "nan", "both_empty (1)"),
    "lesion_recall": ("lesion_tp / ground-truth lesions", "1", "nan", "0", "both_empty (1)"),
    "lesion_f1": ("2 P R / (P + R) over lesions", "1", "0", "0", "both_empty (1)"),
    "lesion_dice": ("sum of per-lesion Dice / (gt lesions + fp lesions); misses and fps count 0", "1", "0", "0",
                    "both_empty (1)"),
    "lesion_hd<p>": ("(sum of per-lesion hd<p> + penalty x (fn + fp)) / (gt lesions + fp lesions); p as hd<p> "
                     "(default lesion_hd95)", _LENGTH, "penalty", "penalty", "distance_both_empty (0)"),
    "lesion_gt_count": ("ground-truth lesions counted (volume > min_lesion_volume)", "lesions", "0", "count", "0"),
    "lesion_pred_count": ("predicted lesions counted", "lesions", "count", "0", "0"),
    "pearson": ("voxel-wise Pearson correlation of the probability map with the ground truth", "1", "nan",
                "defined", "nan"),
    "roc_auc": ("area under the voxel-wise ROC curve of the probability map", "1", "nan", "defined", "nan"),
    "average_precision": ("sum_n (R_n - R_n-1) P_n over probability thresholds (scikit-learn's definition)",
                          "1", "nan", "defined", "nan"),
    "brier": ("mean squared difference between probability and ground truth over all voxels", "1", "defined",
              "defined", "defined"),
}

METRIC_DEFINITIONS.update(INSTANCE_METRIC_DEFINITIONS)  # pq, dq, sq, aji, aji_plus, ... (instance maps only)


# Names that depend on the evaluation options, as (pattern of a stored name, registry key). Checked after an
# exact match, so ``pq_tp`` is its own entry and not a ``pq_<class>``.
_TEMPLATES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^hd[0-9][0-9.e+-]*$"), "hd<p>"),
    (re.compile(r"^lesion_hd[0-9][0-9.e+-]*$"), "lesion_hd<p>"),
    (re.compile(r"^nsd@[0-9][0-9.e+-]*mm$"), "nsd@<tau>mm"),
    (re.compile(r"^pq_.+$"), "pq_<class>"),
)


def hd_name(percentile: float) -> str:
    """Stored name of the robust Hausdorff distance at a percentile: ``"hd"`` + the percentile in ``%g`` form.

    Examples
    --------
    >>> hd_name(95), hd_name(90.0), hd_name(99.5)
    ('hd95', 'hd90', 'hd99.5')
    """
    return f"hd{float(percentile):g}"


def lesion_hd_name(percentile: float) -> str:
    """Stored name of the lesion-wise robust Hausdorff distance: ``"lesion_"`` + :func:`hd_name`.

    Examples
    --------
    >>> lesion_hd_name(90)
    'lesion_hd90'
    """
    return f"lesion_{hd_name(percentile)}"


def nsd_name(tolerance: float) -> str:
    """Stored name of the normalised surface distance at a tolerance in mm (px without physical spacing).

    Examples
    --------
    >>> nsd_name(1), nsd_name(0.5)
    ('nsd@1mm', 'nsd@0.5mm')
    """
    return f"nsd@{float(tolerance):g}mm"


def registry_key(metric: str) -> str | None:
    """The :data:`METRIC_DEFINITIONS` entry of a stored metric name, or ``None`` for a name it does not define.

    Names fixed by the options (``hd90``, ``lesion_hd99``, ``nsd@2mm``, ``pq_epithelial``) map to their template
    (``hd<p>``, ``lesion_hd<p>``, ``nsd@<tau>mm``, ``pq_<class>``).

    Examples
    --------
    >>> registry_key("dice"), registry_key("hd90"), registry_key("lesion_hd95"), registry_key("nsd@2mm")
    ('dice', 'hd<p>', 'lesion_hd<p>', 'nsd@<tau>mm')
    >>> registry_key("pq_tp"), registry_key("pq_epithelial"), registry_key("hd_audit") is None
    ('pq_tp', 'pq_<class>', True)
    """
    if metric in METRIC_DEFINITIONS:
        return metric
    return next((key for rx, key in _TEMPLATES if rx.match(metric)), None)


def definition_of(metric: str) -> tuple[str, str, str, str, str]:
    """(definition, units, gt empty only, pred empty only, both empty) of a stored metric name.

    Raises
    ------
    KeyError
        For a name that is not in the registry (see :func:`registry_key`).

    Examples
    --------
    >>> definition_of("hd90")[1]
    'mm (px without physical spacing)'
    """
    key = registry_key(metric)
    if key is None:
        raise KeyError(f"{metric!r} is not a segaudit metric (see `segaudit metrics --explain`)")
    return METRIC_DEFINITIONS[key]


def is_length(metric: str) -> bool:
    """Whether a stored metric is a length (mm, or px without physical spacing) according to the registry.

    Examples
    --------
    >>> is_length("hd90"), is_length("lesion_hd90"), is_length("dice"), is_length("hd_audit")
    (True, True, False, False)
    """
    key = registry_key(metric)
    return key is not None and METRIC_DEFINITIONS[key][1] == _LENGTH


def explain_table() -> list[dict[str, str]]:
    """One row per metric: definition, units and the value for each empty case (default policy)."""
    return [{"metric": m, "definition": d, "units": u, "gt empty": g, "pred empty": p, "both empty": b}
            for m, (d, u, g, p, b) in METRIC_DEFINITIONS.items()]
