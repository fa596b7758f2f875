"""Metrics: overlap, volume, surface distance, lesion-wise, instance (nuclei) and probability metrics with a stated
empty-case policy.

``evaluate_pair`` scores one ground truth / prediction pair for all labels and regions; the functions of the
submodules are the small pure building blocks it uses.
"""

from segaudit.metrics.evaluate import EvaluationOptions, PairResult, evaluate_pair
from segaudit.metrics.instance import (
    aggregated_jaccard_index,
    aggregated_jaccard_index_plus,
    instance_metrics,
    panoptic_quality,
    per_class_pq,
)
from segaudit.metrics.lesions import Lesion, LesionResult, connected_components, lesion_metrics
from segaudit.metrics.overlap import Counts, counts, overlap_metrics
from segaudit.metrics.policy import EmptyPolicy, explain_table, image_diagonal
from segaudit.metrics.probability import probability_metrics
from segaudit.metrics.surface import SurfaceDistances, assd, hausdorff, masd, nsd, surface_distances

__all__ = [
    "aggregated_jaccard_index", "aggregated_jaccard_index_plus", "instance_metrics", "panoptic_quality",
    "per_class_pq",
    "Counts", "EmptyPolicy", "EvaluationOptions", "Lesion", "LesionResult", "PairResult", "SurfaceDistances",
    "assd", "connected_components", "counts", "evaluate_pair", "explain_table", "hausdorff", "image_diagonal",
    "lesion_metrics", "masd", "nsd", "overlap_metrics", "probability_metrics", "surface_distances",
]
