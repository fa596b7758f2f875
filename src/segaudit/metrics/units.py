"""The unit of every stored metric value, from the metric's kind and whether the grid's spacing is physical.

A NIfTI header gives voxel sizes in mm, so distances are in ``mm`` and volumes in ``mm3`` (``mm2`` for a 2D
slice). A PNG, JPEG, TIFF or numpy file has no physical size: segaudit measures in pixel steps (``px``) and
pixel areas (``px2``, ``px3`` for unit voxels of a 3D array), unless the project declares the pixel size
(``spacing: [0.01, 0.01]``, mm per pixel), in which case the units are mm again. The unit is written next to
each value in the store's ``metrics.unit`` column so that the CLI, the report and any reader show the truth.

Units used:

==================  =====================================================================
``mm`` / ``px``     lengths: hd, hd<p> (any percentile), assd, masd, lesion_hd<p>
``mm3`` ``mm2``     volumes / areas: gt_volume, pred_volume, volume_difference
``px2`` ``px3``     the same in pixel (voxel) units when the spacing is not physical
``voxels``          voxel counts (tp, fp, fn, tn, the confusion matrix)
``lesions``         lesion counts (lesion_tp, lesion_fp, lesion_fn)
``''``              dimensionless: ratios in [0, 1], correlations, flags
==================  =====================================================================

NSD (``nsd@<tau>mm``) is a dimensionless ratio whose tolerance ``tau`` is in the length unit of the grid: on
pixel data ``nsd@1mm`` means a tolerance of one pixel (the metric name is kept for stability).
"""

from __future__ import annotations

from segaudit.metrics.policy import is_length

#: The fixed-name lengths; names set by the options (``hd90``, ``lesion_hd90``) are lengths through the registry
#: (:func:`segaudit.metrics.policy.is_length`).
LENGTH_METRICS = frozenset({"hd", "assd", "masd", "lesion_hd95"})
VOLUME_METRICS = frozenset({"gt_volume", "pred_volume", "volume_difference"})
VOXEL_COUNT_METRICS = frozenset({"tp", "fp", "fn", "tn", "gt_voxels", "pred_voxels"})
LESION_COUNT_METRICS = frozenset({"lesion_tp", "lesion_fp", "lesion_fn", "lesion_gt_count", "lesion_pred_count"})


def length_unit(physical: bool) -> str:
    """``'mm'`` for a physical spacing (NIfTI, or declared in the project), ``'px'`` otherwise."""
    return "mm" if physical else "px"


def metric_unit(metric: str, length: str, ndim: int, region: str = "") -> str:
    """Unit of one stored metric value.

    Parameters
    ----------
    metric:
        Metric name as stored (``hd95``, ``gt_volume``, ``dice``, ``background->ENH`` for the confusion rows).
    length:
        Length unit of the grid: ``'mm'`` or ``'px'`` (see :func:`length_unit`).
    ndim:
        Spatial dimensions of the grid (2 or 3): volumes are ``<length><ndim>`` (``mm3``, ``px2``).
    region:
        Region of the row; the confusion-matrix region holds voxel counts.

    Returns
    -------
    str
        See the module docstring; ``''`` for dimensionless values.

    Examples
    --------
    >>> metric_unit("hd90", "mm", 3), metric_unit("gt_volume", "px", 2), metric_unit("dice", "mm", 3)
    ('mm', 'px2', '')
    >>> metric_unit("ENH->EDE", "mm", 3, region="confusion"), metric_unit("lesion_fp", "mm", 3)
    ('voxels', 'lesions')
    """
    if region == "confusion" or "->" in metric or metric in VOXEL_COUNT_METRICS:
        return "voxels"
    if metric in LENGTH_METRICS or is_length(metric):
        return length
    if metric in VOLUME_METRICS:
        return f"{length}{ndim}"
    if metric in LESION_COUNT_METRICS:
        return "lesions"
    return ""


def unit_label(name: str, unit: str) -> str:
    """``'HD95 (px)'``-style column title: the name with its unit in brackets (``(0–1)`` when dimensionless)."""
    return f"{name} ({unit})" if unit else f"{name} (0–1)"
