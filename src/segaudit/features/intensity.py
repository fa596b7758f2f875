"""First-order intensity features over a region of an image.

The region is explicit: a mask given by the caller (brain mask, a label, a region) or, by default, the image's
foreground from :func:`foreground_mask`. AUDIT uses voxels ``> 0``, which drops half of a z-scored MRI or CT;
here zero and negative intensities inside the region count like any other value.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from segaudit.base.masks import bounding_box
from segaudit.features._layout import storage_order

PERCENTILES = (1, 5, 10, 25, 75, 90, 95, 99)


def foreground_mask(image: np.ndarray, background: float | None = None) -> np.ndarray:
    """The image's foreground: voxels differing from the background value, with holes filled.

    ``background`` defaults to the value of the first voxel (a corner, background in skull-stripped MRI and in
    most scans), so z-scored images with negative tissue values keep their tissue. Holes inside the foreground
    (dark ventricles, necrosis) are filled in 3D (:func:`fill_holes`). NaN voxels are never foreground.
    """
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[-1] == 3 and a.dtype == np.uint8:
        raise ValueError("foreground_mask takes a single-channel image; convert RGB images first")
    return fill_holes(differs_from(a, a.flat[0] if background is None else background))


def differs_from(image: np.ndarray, value: float) -> np.ndarray:
    """Voxels whose value differs from ``value`` (NaN voxels never count): the raw, unfilled foreground."""
    a = np.asarray(image)
    return (a != value) & ~np.isnan(a) if np.issubdtype(a.dtype, np.floating) else a != value


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """``scipy.ndimage.binary_fill_holes`` (face connectivity), computed on the mask's bounding box only.

    Background not connected to the border of the bounding box (grown by one voxel) is a hole; the labelling
    of one cropped volume is several times faster than the iterative propagation over the whole image.
    """
    mask = np.asarray(mask, dtype=bool)
    box = bounding_box(mask, margin=1)
    out = np.zeros_like(mask)  # same memory order as the image it came from
    if box is None:
        return out
    crop = np.pad(mask[box], 1)
    lab, _ = ndimage.label(~crop)
    outside = lab == lab.flat[0]  # the padding is background connected to everything outside the box
    inner = tuple(slice(1, -1) for _ in crop.shape)
    out[box] = ~outside[inner]
    return out


def percentiles(values: np.ndarray, q) -> np.ndarray:
    """``np.percentile(values, q)`` (linear interpolation), from a histogram when the values are integers.

    MRI and CT are mostly stored as integers: counting values and reading the order statistics off the
    cumulative counts is exact and avoids partitioning millions of values once per percentile.
    """
    v = np.asarray(values)
    q = np.asarray(q, dtype=np.float64)
    if v.size == 0:
        return np.full(q.shape, np.nan)
    lo, hi = v.min(), v.max()
    integral = np.issubdtype(v.dtype, np.integer) or bool(np.all(v == np.round(v)))
    if not integral or hi - lo > 4 * v.size + 65536:
        return np.percentile(v, q)
    counts = np.bincount((v - lo).astype(np.int64).ravel())
    cum = np.cumsum(counts)
    pos = q / 100.0 * (v.size - 1)
    k = np.floor(pos).astype(np.int64)
    below = np.searchsorted(cum, k, side="right").astype(np.float64)  # value index of order statistic k
    above = np.searchsorted(cum, np.minimum(k + 1, v.size - 1), side="right").astype(np.float64)
    return float(lo) + below + (above - below) * (pos - k)


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
        ``p1 .. p99`` (linear interpolation), ``iqr`` (p75 - p25), ``range`` (max - min), ``skewness`` and
        ``kurtosis`` (Fisher,
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
    a, region = storage_order(a, region)  # order-free statistics: walk the voxels in storage order
    box = bounding_box(region)
    v = a[box][region[box]] if box is not None else a[region]  # crop first: fewer voxels to scan
    nan = np.isnan(v) if np.issubdtype(v.dtype, np.floating) else np.zeros(v.shape, dtype=bool)
    v = v[~nan].astype(np.float64)
    keys = ["mean", "std", "min", "max", "median", *[f"p{p}" for p in PERCENTILES], "iqr", "range", "skewness",
            "kurtosis", "entropy", "snr"]
    out = {"count": float(v.size), "nan_count": float(nan.sum())}
    if v.size == 0:
        out.update(dict.fromkeys(keys, np.nan))
        return out
    mean, std = float(v.mean()), float(v.std())
    pct = percentiles(v, [50, *PERCENTILES])
    out.update({"mean": mean, "std": std, "min": float(v.min()), "max": float(v.max()), "median": float(pct[0])})
    out.update({f"p{p}": float(x) for p, x in zip(PERCENTILES, pct[1:], strict=True)})
    out["iqr"] = out["p75"] - out["p25"]
    out["range"] = out["max"] - out["min"]
    if std > 0:
        z = (v - mean) / std
        z2 = z * z  # products, not powers: np.power is several times slower
        out["skewness"] = float(np.dot(z2, z) / v.size)
        out["kurtosis"] = float(np.dot(z2, z2) / v.size - 3.0)
        out["snr"] = mean / std
    else:
        out["skewness"] = out["kurtosis"] = out["snr"] = np.nan
    hist, _ = np.histogram(v, bins=bins)
    p = hist[hist > 0] / v.size
    out["entropy"] = float(-(p * np.log2(p)).sum())
    return out
