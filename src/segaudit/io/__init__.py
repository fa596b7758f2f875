"""Image and mask input: one :class:`Image` record for 3D NIfTI and 2D raster files."""

from segaudit.io.image import (
    IMAGE_SUFFIXES,
    Geometry,
    Image,
    MaskEncoding,
    compare_geometry,
    decode_mask,
    image_kind,
    read_image,
    read_mask,
    read_probability,
    to_label_array,
    to_probability,
)

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
