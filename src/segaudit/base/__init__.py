"""The bottom layer: array helpers that metrics, features, analysis and the report share.

Nothing here imports another segaudit package, so every layer may use it (see the README's layer order).

- :mod:`segaudit.base.masks`: bounding boxes, label-set masks, connectivity and connected components;
- :mod:`segaudit.base.marching`: the marching-cubes / marching-squares tables of 2x2(x2) neighbourhoods that
  the surfel surface distances and the mesh shape features are built on.
"""

from segaudit.base.marching import cube_triangles, neighbour_codes, surfel_area_table
from segaudit.base.masks import bounding_box, connected_components, structure, values_mask

__all__ = ["bounding_box", "connected_components", "cube_triangles", "neighbour_codes", "structure",
           "surfel_area_table", "values_mask"]
