"""Image and mask input: one :class:`Image` record for 3D NIfTI and 2D raster files."""

from segaudit.io.geometry import Geometry, compare_geometry
from segaudit.io.masks import MaskEncoding, decode_mask, read_mask, read_probability, to_label_array, to_probability
from segaudit.io.readers import IMAGE_SUFFIXES, Image, image_kind, read_image

__all__ = [
    "IMAGE_SUFFIXES",
    "Geometry",
    "Image",
    "MaskEncoding",
    "compare_geometry",
    "decode_mask",
    "image_kind",
    "read_image",
    "read_mask",
    "read_probability",
    "to_label_array",
    "to_probability",
]
