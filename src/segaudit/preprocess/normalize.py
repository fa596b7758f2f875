"""Per-modality intensity normalisation. Every function returns a new float32 array; inputs are never changed.

Foreground
----------
Statistics are computed over a *foreground*: the ``mask`` you pass (a brain mask, say), or by default the
voxels that are not exactly 0, which is the background of skull-stripped MRI (BraTS). Pass a mask for data
whose background is not 0 (CT, z-scored images). Voxels outside the foreground are set to 0 in the output
when ``keep_background`` is true (the default), so the background stays a constant.

NaN/inf voxels are ignored in the statistics and written as 0.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

Method = Literal["zscore", "minmax", "percentile"]


def nonzero_mask(array: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Boolean foreground: ``mask != 0`` if given, else ``array != 0``; non-finite voxels excluded.

    The default foreground of :func:`normalize`; not :func:`segaudit.features.foreground_mask` (the corner value
    as background, holes filled), which the features use.
    """
    fg = (mask != 0) if mask is not None else (array != 0)
    if np.issubdtype(array.dtype, np.floating):
        fg &= np.isfinite(array)
    return fg


def normalize(array: np.ndarray, method: Method = "zscore", mask: np.ndarray | None = None,
              percentiles: tuple[float, float] = (0.5, 99.5), keep_background: bool = True) -> np.ndarray:
    """Normalise one image (one modality).

    Parameters
    ----------
    array:
        Image values (any numeric dtype, 2D or 3D; a colour image is normalised over all channels together).
    method:
        ``"zscore"``: ``(x - mean) / std`` over the foreground (unitless; std 0 gives all zeros).
        ``"minmax"``: ``(x - min) / (max - min)`` over the foreground, in [0, 1] (constant image gives zeros).
        ``"percentile"``: clip to the foreground's ``percentiles`` (in %, linear interpolation) and rescale
        that range to [0, 1] (robust to hot voxels).
    mask:
        Foreground mask with the image's shape; default ``array != 0``.
    percentiles:
        Lower and upper percentiles (0-100) for ``"percentile"``.
    keep_background:
        Set voxels outside the foreground to 0 in the output.

    Returns
    -------
    numpy.ndarray
        float32 array of the input's shape. An image without foreground comes back as zeros.
    """
    if mask is not None and mask.shape != array.shape[: mask.ndim]:
        raise ValueError(f"mask shape {mask.shape} differs from image shape {array.shape}")
    x = array.astype(np.float32, copy=True)
    fg = nonzero_mask(array, mask)
    if fg.ndim < x.ndim:  # colour image with a 2D mask
        fg = np.broadcast_to(fg[..., None], x.shape)
    out = np.zeros_like(x)
    values = x[fg]
    if values.size == 0:
        return out
    if method == "zscore":
        mean, std = float(values.mean(dtype=np.float64)), float(values.std(dtype=np.float64))
        if std > 0:
            out = (x - mean) / std
    elif method == "minmax":
        lo, hi = float(values.min()), float(values.max())
        if hi > lo:
            out = (x - lo) / (hi - lo)
    elif method == "percentile":
        lo, hi = (float(v) for v in np.percentile(values, percentiles))
        if hi > lo:
            out = (np.clip(x, lo, hi) - lo) / (hi - lo)
    else:
        raise ValueError(f"unknown normalisation {method!r} (zscore, minmax or percentile)")
    out = out.astype(np.float32, copy=False)
    out[~np.isfinite(out)] = 0
    if keep_background:
        out[~fg] = 0
    return out
