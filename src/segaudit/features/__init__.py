"""Features of images and masks for dataset audits: intensity, texture, spatial, lesion and multimodal groups.

Each group is a module of small pure functions returning ``{feature: value}`` with units stated in the
docstrings; :func:`case_features` runs every group on one case. Axis order is always the array's storage order,
with ``spacing`` in the same order.
"""

from segaudit.features.case import GROUPS, FeatureOptions, case_features
from segaudit.features.intensity import foreground_mask, intensity_features
from segaudit.features.lesion import instance_features, lesion_features, shape_features
from segaudit.features.multimodal import label_contrast, sequence_correlations
from segaudit.features.spatial import centre_of_mass, spatial_features
from segaudit.features.texture import glcm_features, glcm_matrices, quantise

__all__ = ["GROUPS", "FeatureOptions", "case_features", "centre_of_mass", "foreground_mask", "glcm_features",
           "glcm_matrices", "instance_features", "intensity_features", "label_contrast", "lesion_features",
           "quantise", "sequence_correlations", "shape_features", "spatial_features"]
