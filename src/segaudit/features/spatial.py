"""Spatial features of an image grid and of its foreground.

Units: voxels for ``shape_*``, mm for ``spacing_*``, ``extent_*`` and ``com_*_mm``. Axis ``i`` is the i-th array
axis (NIfTI storage axes ``i, j, k``; 2D ``row, column``): AUDIT multiplies (z, y, x) indices by (x, y, z)
spacing, which mixes the axes of anisotropic images; here indices and spacing always share one order.
"""

from __future__ import annotations

import numpy as np

from segaudit.base.types import Spacing

_AXIS_LETTERS = {"R": 1, "L": -1, "A": 2, "P": -2, "S": 3, "I": -3}


def orientation_codes(orientation: str) -> tuple[float, ...]:
    """Orientation letters (``"RAS"``, ``"LPS"``...) as numbers, one per array axis, for the numeric store.

    ``1, 2, 3`` mean the axis runs toward Right, Anterior, Superior (world x, y, z of RAS+); negative values
    run the other way (Left, Posterior, Inferior). ``"LPS"`` gives ``(-1, -2, 3)``; unknown letters give NaN.
    """
    return tuple(float(_AXIS_LETTERS.get(c.upper(), np.nan)) for c in orientation)


def centre_of_mass(mask: np.ndarray, spacing: Spacing) -> tuple[float, ...]:
    """Centre of mass (mm, from the centre of the first voxel) of a boolean mask; NaN per axis when empty.

    From one profile per axis (sums over the other axes), not from the coordinates of every voxel.
    """
    mask = np.asarray(mask, dtype=bool)
    n = int(np.count_nonzero(mask))
    if n == 0:
        return (np.nan,) * mask.ndim
    out = []
    for i, s in enumerate(spacing):
        profile = np.count_nonzero(mask, axis=tuple(a for a in range(mask.ndim) if a != i))
        out.append(float(np.dot(profile, np.arange(mask.shape[i], dtype=np.float64)) / n) * float(s))
    return tuple(out)


def spatial_features(shape: tuple[int, ...], spacing: Spacing, foreground: np.ndarray | None = None,
                     orientation: str = "") -> dict[str, float | str]:
    """Grid and foreground geometry.

    Returns
    -------
    dict
        ``shape_<i>`` (voxels), ``spacing_<i>`` (mm), ``extent_<i>`` (mm, shape x spacing), ``voxel_volume``
        (mm³, mm² in 2D), and with a foreground mask ``foreground_volume`` (mm³) and ``com_<i>_mm`` (centre of
        mass in mm from the centre of the first voxel; NaN for an empty foreground). ``orientation`` (e.g.
        ``"RAS"``) is passed through as text and as ``orientation_<i>`` codes (see :func:`orientation_codes`).
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
        for i, code in enumerate(orientation_codes(orientation)):
            out[f"orientation_{i}"] = code
    if foreground is not None:
        fg = np.asarray(foreground, dtype=bool)
        if fg.shape != tuple(shape):
            raise ValueError(f"foreground mask shape {fg.shape} differs from the image shape {tuple(shape)}")
        n = int(np.count_nonzero(fg))
        out["foreground_volume"] = n * float(np.prod(spacing))
        for i, c in enumerate(centre_of_mass(fg, spacing)):
            out[f"com_{i}_mm"] = c
    return out
