"""Metrics.

Overlap, volume, surface distance, lesion-wise, instance (nuclei) and probability metrics with a stated empty-case
policy.

``evaluate_pair`` scores one ground truth / prediction pair for all labels and regions. Beside it, the metric
functions it is built from, usable one by one (MONAI-style functional metrics), each documenting its empty-case
value:

- overlap and volume from the confusion counts of two boolean masks: ``dice(counts(gt, pred))``, ``iou``,
  ``precision``, ``sensitivity``, ``specificity``, ``accuracy``, ``volumes``;
- surface distances (mm) from one :class:`SurfaceDistances` record, computed once per pair:
  ``sd = surface_distances(gt, pred, spacing)`` then ``hausdorff(sd)``, ``hausdorff(sd, 95)``, ``assd(sd)``,
  ``masd(sd)``, ``nsd(sd, tolerance)``;
- probability maps against a binary truth: ``pearson``, ``roc_auc``, ``average_precision``, ``brier``;
- lesion-wise (``lesion_metrics``), instance maps (``panoptic_quality``, ``aggregated_jaccard_index``, ...) and
  agreement between models without ground truth (``majority_vote``, ``staple``).
"""

from segaudit.base.masks import connected_components
from segaudit.metrics.agreement import majority_vote, staple
from segaudit.metrics.evaluate import EvaluationOptions, PairResult, evaluate_pair
from segaudit.metrics.instance import (
    aggregated_jaccard_index,
    aggregated_jaccard_index_plus,
    instance_metrics,
    panoptic_quality,
    per_class_pq,
)
from segaudit.metrics.lesions import Lesion, LesionResult, lesion_metrics
from segaudit.metrics.overlap import (
    Counts,
    accuracy,
    counts,
    dice,
    iou,
    overlap_metrics,
    precision,
    sensitivity,
    specificity,
    volumes,
)
from segaudit.metrics.policy import EmptyPolicy, explain_table, image_diagonal
from segaudit.metrics.probability import average_precision, brier, pearson, probability_metrics, roc_auc
from segaudit.metrics.surface import (
    SurfaceDistances,
    assd,
    directed_hausdorff,
    hausdorff,
    masd,
    nsd,
    surface_distances,
)

__all__ = [
    # one pair, every label and region
    "EvaluationOptions", "PairResult", "evaluate_pair", "EmptyPolicy", "explain_table",
    "image_diagonal",
    # overlap and volume
    "Counts", "counts", "dice", "iou", "precision", "sensitivity", "specificity", "accuracy", "volumes",
    "overlap_metrics",
    # surface distances
    "SurfaceDistances", "surface_distances", "hausdorff", "directed_hausdorff", "assd", "masd", "nsd",
    # probability maps
    "pearson", "roc_auc", "average_precision", "brier", "probability_metrics",
    # lesions and instances
    "Lesion", "LesionResult", "lesion_metrics", "connected_components", "aggregated_jaccard_index",
    "aggregated_jaccard_index_plus", "instance_metrics", "panoptic_quality", "per_class_pq",
    # agreement without ground truth
    "majority_vote", "staple",
]
