"""First-order intensity features over a region of an image.

The region is explicit: a mask given by the caller (brain mask, a label, a region) or, by default, the image's
foreground from :func:`foreground_mask`. AUDIT uses voxels ``> 0``, which drops half of a z-scored MRI or CT;
here zero and negative intensities inside the region count like any other value.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

PERCENTILES = (1, 5, 10, 25, 75, 90, 95, 99)


def foreground_mask(image: np.ndarray, background: float | None = None) -> np.ndarray:
    """The image's foreground: voxels differing from the background value, with holes filled.

    ``background`` defaults to the value of the first voxel (a corner, background in skull-stripped MRI and in
    most scans), so z-scored images with negative tissue values keep their tissue. Holes inside the foreground
    (dark ventricles, necrosis) are filled slice-independently in 3D. NaN voxels are never foreground.
    """
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[-1] == 3 and a.dtype == np.uint8:
        raise ValueError("foreground_mask takes a single-channel image; convert RGB images first")
    bg = a.flat[0] if background is None else background
    fg = (a != bg) & ~np.isnan(a) if np.issubdtype(a.dtype, np.floating) else a != bg
    return ndimage.binary_fill_holes(fg)


def intensity_features(image: np.ndarray, region: np.ndarray | None = None, bins: int = 64) -> dict[str, float]:
    """First-order statistics of the intensities inside ``region``.

    Parameters
    ----------
    image:
        A single-channel 2D or 3D image (any intensity unit; features keep it).
    region:
        Boolean mask of the same shape; default :func:`foreground_mask`.
    bins:
        Bins of the histogram for ``entropy`` (fixed bin count over the region's min..max).

    Returns
    -------
    dict
        ``count`` (voxels), ``mean``, ``std`` (population, ddof 0), ``min``, ``max``, ``median``,
        ``p1 .. p99`` (linear interpolation), ``iqr`` (p75 - p25), ``skewness`` and ``kurtosis`` (Fisher,
        excess; population moments), ``entropy`` (bits, of the ``bins``-bin histogram), ``snr`` (mean / std),
        ``nan_count`` (NaN voxels in the region, excluded from every statistic). With an empty region (or only
        NaN voxels) every statistic is NaN and ``count`` is 0; ``std`` 0 gives NaN skewness, kurtosis and SNR.
    """
    a = np.asarray(image)
    if region is None:
        region = foreground_mask(a)
    region = np.asarray(region, dtype=bool)
    if region.shape != a.shape:
        raise ValueError(f"region shape {region.shape} differs from the image shape {a.shape}")
    v = a[region].astype(np.float64)
    nan = np.isnan(v)
    v = v[~nan]
    keys = ["mean", "std", "min", "max", "median", *[f"p{p}" for p in PERCENTILES], "iqr", "skewness",
            "kurtosis", "entropy", "snr"]
    out = {"count": float(v.size), "nan_count": float(nan.sum())}
    if v.size == 0:
        out.update(dict.fromkeys(keys, np.nan))
        return out
    mean, std = float(v.mean()), float(v.std())
    pct = np.percentile(v, [50, *PERCENTILES])
    out.update({"mean": mean, "std": std, "min": float(v.min()), "max": float(v.max()), "median": float(pct[0])})
    out.update({f"p{p}": float(x) for p, x in zip(PERCENTILES, pct[1:], strict=True)})
    out["iqr"] = out["p75"] - out["p25"]
    if std > 0:
        z = (v - mean) / std
        out["skewness"] = float(np.mean(z**3))
        out["kurtosis"] = float(np.mean(z**4) - 3.0)
        out["snr"] = mean / std
    else:
        out["skewness"] = out["kurtosis"] = out["snr"] = np.nan
    hist, _ = np.histogram(v, bins=bins)
    p = hist[hist > 0] / v.size
    out["entropy"] = float(-(p * np.log2(p)).sum())
    return out
