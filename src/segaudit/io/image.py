"""Images, masks and grids.

A re-export of :mod:`~segaudit.io.readers`, :mod:`~segaudit.io.masks` and :mod:`~segaudit.io.geometry` (the three
modules this one was split into), kept so ``segaudit.io.image`` imports keep working.
"""

from segaudit.io.geometry import Geometry, compare_geometry, format_vector, read_geometry
from segaudit.io.masks import (
    Channel,
    MaskEncoding,
    decode_mask,
    read_mask,
    read_probability,
    stored_mask_values,
    threshold_probability,
    to_label_array,
    to_probability,
)
from segaudit.io.readers import (
    ARRAY_SUFFIXES,
    DEFAULT_MAX_IMAGE_BYTES,
    IMAGE_SUFFIXES,
    MAX_IMAGE_BYTES_ENV,
    NIFTI_SUFFIXES,
    RASTER_SUFFIXES,
    Image,
    image_kind,
    max_image_bytes,
    read_image,
)

__all__ = [
    "ARRAY_SUFFIXES",
    "DEFAULT_MAX_IMAGE_BYTES",
    "IMAGE_SUFFIXES",
    "MAX_IMAGE_BYTES_ENV",
    "NIFTI_SUFFIXES",
    "RASTER_SUFFIXES",
    "Channel",
    "Geometry",
    "Image",
    "MaskEncoding",
    "compare_geometry",
    "decode_mask",
    "format_vector",
    "image_kind",
    "max_image_bytes",
    "read_geometry",
    "read_image",
    "read_mask",
    "read_probability",
    "stored_mask_values",
    "threshold_probability",
    "to_label_array",
    "to_probability",
]
