"""Features of images and masks for dataset audits (issue 5, in progress): spatial and intensity groups.

Each group is a module of small pure functions returning ``{feature: value}`` with units stated in the
docstrings. Axis order is always the array's storage order, with ``spacing`` in the same order.
"""

from segaudit.features.intensity import foreground_mask, intensity_features
from segaudit.features.spatial import spatial_features

__all__ = ["foreground_mask", "intensity_features", "spatial_features"]
