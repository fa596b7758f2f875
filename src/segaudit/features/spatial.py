"""Spatial features of an image grid and of its foreground.

Units: voxels for ``shape_*``, mm for ``spacing_*``, ``extent_*`` and ``com_*_mm``. Axis ``i`` is the i-th array
axis (NIfTI storage axes ``i, j, k``; 2D ``row, column``): AUDIT multiplies (z, y, x) indices by (x, y, z)
spacing, which mixes the axes of anisotropic images; here indices and spacing always share one order.
"""

from __future__ import annotations

import numpy as np


def spatial_features(shape: tuple[int, ...], spacing: tuple[float, ...], foreground: np.ndarray | None = None,
                     orientation: str = "") -> dict[str, float | str]:
    """Grid and foreground geometry.

    Returns
    -------
    dict
        ``shape_<i>`` (voxels), ``spacing_<i>`` (mm), ``extent_<i>`` (mm, shape x spacing), ``voxel_volume``
        (mm³, mm² in 2D), and with a foreground mask ``foreground_volume`` (mm³) and ``com_<i>_mm`` (centre of
        mass in mm from the centre of the first voxel; NaN for an empty foreground). ``orientation`` (e.g.
        ``"RAS"``) is passed through as text.
    """
    if len(shape) != len(spacing):
        raise ValueError(f"spacing {spacing} does not match a {len(shape)}D shape {shape}")
    out: dict[str, float | str] = {}
    for i, (n, s) in enumerate(zip(shape, spacing, strict=True)):
        out[f"shape_{i}"] = float(n)
        out[f"spacing_{i}"] = float(s)
        out[f"extent_{i}"] = float(n) * float(s)
    out["voxel_volume"] = float(np.prod(spacing))
    if orientation:
        out["orientation"] = orientation
    if foreground is not None:
        fg = np.asarray(foreground, dtype=bool)
        if fg.shape != tuple(shape):
            raise ValueError(f"foreground mask shape {fg.shape} differs from the image shape {tuple(shape)}")
        n = int(fg.sum())
        out["foreground_volume"] = n * float(np.prod(spacing))
        idx = np.nonzero(fg)
        for i, s in enumerate(spacing):
            out[f"com_{i}_mm"] = float(idx[i].mean()) * float(s) if n else np.nan
    return out
