"""The bottom layer: array helpers that metrics, features, analysis and the report share.

Nothing here imports another segaudit package, so every layer may use it (see the README's layer order).

- :mod:`segaudit.base.masks`: bounding boxes, label-set masks, connectivity, connected components and their
  boxes, and the plain overlap Dice;
- :mod:`segaudit.base.marching`: the marching-cubes / marching-squares tables of 2x2(x2) neighbourhoods that
  the surfel surface distances and the mesh shape features are built on.
"""

from segaudit.base.marching import cube_triangles, neighbour_codes, surfel_area_table
from segaudit.base.masks import (
    bounding_box,
    component_boxes,
    connected_components,
    overlap_dice,
    structure,
    values_mask,
)

__all__ = ["bounding_box", "component_boxes", "connected_components", "cube_triangles", "neighbour_codes",
           "overlap_dice", "structure", "surfel_area_table", "values_mask"]
