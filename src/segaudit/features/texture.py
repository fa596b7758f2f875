"""Second-order texture: grey-level co-occurrence (GLCM) features inside a region.

Definitions follow the Image Biomarker Standardisation Initiative as implemented by pyradiomics (the tests
check equality with pyradiomics to 1e-6 on real MRI), so values can be compared with published radiomics:

Quantisation (documented because every texture value depends on it)
    Intensities inside the region are discretised to grey levels ``1 .. N``.

    * fixed bin count (default, ``bin_count=32``): ``floor(N (x - min) / (max - min)) + 1``, the maximum in bin
      ``N`` (pyradiomics ``binCount``; the recommended choice for MRI, whose intensities have arbitrary units);
    * fixed bin width (``bin_width=W``, e.g. 25 HU for CT): ``floor(x / W) - floor(min / W) + 1`` (pyradiomics
      ``binWidth``).

    ``min`` and ``max`` are those of the region, so the levels do not depend on the background.

Co-occurrence
    Voxel pairs at distance 1 along 13 directions in 3D (26-neighbourhood, each direction once) or 4 in 2D
    (0°, 45°, 90°, 135°), counted only when *both* voxels are in the region (AUDIT counts background pairs of a
    bounding box). Each direction's matrix is made symmetric and normalised to ``p(i, j)``; features are computed
    per direction and averaged over the directions that have pairs.

Speed
    The region is cropped to its bounding box and its levels written into a zero-padded array (0 = outside).
    In the flattened array a neighbour at offset ``d`` is a fixed flat distance away, so each direction is the
    sum ``a * (N + 1) + b`` of two contiguous slices, pairs of two outside voxels are dropped, and one
    ``np.bincount`` counts the rest; pairs with one outside voxel land in row or column 0 and are sliced off.
"""

from __future__ import annotations

import itertools

import numpy as np

from segaudit.base.masks import bounding_box
from segaudit.features._layout import storage_order

GLCM_FEATURES = ("contrast", "dissimilarity", "homogeneity", "id", "asm", "energy", "correlation", "entropy",
                 "autocorrelation", "cluster_shade", "cluster_prominence")


def directions(ndim: int) -> list[tuple[int, ...]]:
    """The unique neighbour offsets at distance 1: 13 in 3D, 4 in 2D (one of each ``±d`` pair)."""
    if ndim not in (2, 3):
        raise ValueError(f"texture needs a 2D or 3D image, got {ndim}D")
    out = []
    for d in itertools.product((-1, 0, 1), repeat=ndim):
        if any(d) and d > tuple(-x for x in d):  # keep the lexicographically larger of d and -d
            out.append(d)
    return out


def quantise(values: np.ndarray, bin_count: int | None = 32, bin_width: float | None = None) -> np.ndarray:
    """Grey levels ``1 .. N`` (int) of ``values`` by fixed bin count or, when given, fixed bin width.

    Constant values all get level 1. See the module docstring for the formulas; NaN values are not allowed.
    """
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return np.zeros(0, dtype=np.int64)
    lo, hi = float(v.min()), float(v.max())
    if bin_width is not None:
        if bin_width <= 0:
            raise ValueError(f"bin_width must be > 0, got {bin_width}")
        return (np.floor(v / bin_width) - np.floor(lo / bin_width) + 1).astype(np.int64)
    if bin_count is None or bin_count < 1:
        raise ValueError(f"bin_count must be >= 1, got {bin_count}")
    if hi == lo:
        return np.ones(v.shape, dtype=np.int64)
    # The same edges as numpy.histogram (and pyradiomics), the top edge widened to hold the maximum.
    edges = np.histogram_bin_edges(v, bin_count)
    edges[-1] += 1
    if hi - lo <= 65536 and bool(np.all(v == np.floor(v))):
        # Integer intensities (most MRI and CT): bin each distinct value once, then look the voxels up.
        lut = np.digitize(np.arange(lo, hi + 1), edges)
        return lut[(v - lo).astype(np.int64)]
    return np.digitize(v, edges).astype(np.int64)


def glcm_matrices(image: np.ndarray, region: np.ndarray, bin_count: int | None = 32,
                  bin_width: float | None = None) -> np.ndarray:
    """Symmetric co-occurrence counts, one ``N x N`` matrix per direction: shape ``(D, N, N)``.

    ``N`` is the highest grey level in the region; NaN voxels are left out of the region. An empty region
    gives an array of shape ``(D, 0, 0)``.
    """
    a = np.asarray(image)
    region = np.asarray(region, dtype=bool)
    if region.shape != a.shape:
        raise ValueError(f"region shape {region.shape} differs from the image shape {a.shape}")
    dirs = directions(a.ndim)
    a, region = storage_order(a, region)  # the 13 (4) directions are closed under reversing the axes
    box = bounding_box(region)
    if box is None:
        return np.zeros((len(dirs), 0, 0))
    img, reg = a[box], region[box]
    if np.issubdtype(img.dtype, np.floating):
        reg = reg & ~np.isnan(img)
    levels = quantise(img[reg], bin_count, bin_width)
    if levels.size == 0:  # only NaN voxels
        return np.zeros((len(dirs), 0, 0))
    n = int(levels.max())
    m = (n + 1) ** 2
    code_t = np.uint16 if m <= np.iinfo(np.uint16).max else np.int64
    mats = np.empty((len(dirs), n, n), dtype=np.float64)
    # Levels in a zero-padded array, flattened: the neighbour at offset d of every voxel is the voxel a fixed
    # flat distance away, so each direction is two contiguous 1D slices (no strided 3D views, no gathers).
    # Pairs that wrap around a row end touch the zero padding and fall into row/column 0, which is dropped.
    q = np.zeros(tuple(s + 2 for s in img.shape), dtype=code_t)
    q[tuple(slice(1, -1) for _ in img.shape)][reg] = levels
    q_flat = q.ravel()
    q_row = q_flat * code_t(n + 1)  # the first voxel's level, pre-multiplied once for all directions
    nz = np.flatnonzero(q_flat)
    lo, hi = int(nz[0]), int(nz[-1]) + 1  # only the span holding the region
    strides = np.array(q.strides) // q.itemsize
    for k, d in enumerate(dirs):
        off = int(np.dot(d, strides))
        a_lo, a_hi = max(lo, -off), min(hi, q_flat.size - off)  # first voxels with the neighbour in bounds
        codes = q_row[a_lo:a_hi] + q_flat[a_lo + off:a_hi + off]
        # Pairs of two outside voxels (code 0) are most of a bounding box; leaving them out before counting
        # is cheaper than counting them (each count is a dependent increment of the same bin).
        codes = codes[codes != 0]
        counts = np.bincount(codes, minlength=m).reshape(n + 1, n + 1)[1:, 1:]
        mats[k] = counts + counts.T
    return mats


def glcm_features(image: np.ndarray, region: np.ndarray, bin_count: int | None = 32,
                  bin_width: float | None = None) -> dict[str, float]:
    """GLCM texture features of ``image`` inside ``region`` (2D or 3D), averaged over directions.

    With ``p(i, j)`` the normalised symmetric co-occurrence matrix of one direction, grey levels ``i, j`` from 1,
    ``mu = sum i p`` and ``sigma² = sum (i - mu)² p`` (equal for rows and columns by symmetry):

    ``contrast``            sum (i - j)² p                       (grey levels²)
    ``dissimilarity``       sum |i - j| p                        (pyradiomics DifferenceAverage)
    ``homogeneity``         sum p / (1 + (i - j)²)               (inverse difference moment; pyradiomics Idm)
    ``id``                  sum p / (1 + |i - j|)                (inverse difference; pyradiomics Id)
    ``asm``                 sum p²                               (angular second moment; pyradiomics JointEnergy)
    ``energy``              sqrt(asm), per direction             (scikit-image's "energy")
    ``correlation``         (sum i j p - mu²) / sigma²           (1 when sigma is 0, as pyradiomics)
    ``entropy``             -sum p log2 p                        (bits; pyradiomics JointEntropy)
    ``autocorrelation``     sum i j p
    ``cluster_shade``       sum (i + j - 2 mu)³ p
    ``cluster_prominence``  sum (i + j - 2 mu)⁴ p

    Also ``levels`` (grey levels N after quantisation) and ``pairs`` (neighbour pairs counted, each direction
    once). Empty region, or a region without any neighbour pair (a single voxel): every feature is NaN.
    """
    mats = glcm_matrices(image, region, bin_count, bin_width)
    n = mats.shape[1]
    totals = mats.sum(axis=(1, 2))
    out = {"levels": float(n), "pairs": float(totals.sum() / 2)}
    valid = totals > 0
    if not valid.any():
        out.update(dict.fromkeys(GLCM_FEATURES, np.nan))
        return out
    p = mats[valid] / totals[valid, None, None]
    i = np.arange(1, n + 1, dtype=np.float64)
    ii, jj = i[:, None], i[None, :]
    diff = ii - jj
    mu = np.einsum("dij,i->d", p, i)
    var = np.einsum("dij,i->d", p, i**2) - mu**2
    auto = np.einsum("dij,ij->d", p, ii * jj)
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = np.where(var > 1e-12, (auto - mu**2) / np.where(var > 1e-12, var, 1.0), 1.0)
        logp = np.where(p > 0, np.log2(np.where(p > 0, p, 1.0)), 0.0)
    asm = np.einsum("dij,dij->d", p, p)
    s = (ii + jj)[None] - 2 * mu[:, None, None]
    per_dir = {
        "contrast": np.einsum("dij,ij->d", p, diff**2),
        "dissimilarity": np.einsum("dij,ij->d", p, np.abs(diff)),
        "homogeneity": np.einsum("dij,ij->d", p, 1.0 / (1.0 + diff**2)),
        "id": np.einsum("dij,ij->d", p, 1.0 / (1.0 + np.abs(diff))),
        "asm": asm,
        "energy": np.sqrt(asm),
        "correlation": corr,
        "entropy": -np.einsum("dij,dij->d", p, logp),
        "autocorrelation": auto,
        "cluster_shade": np.einsum("dij,dij->d", p, s**3),
        "cluster_prominence": np.einsum("dij,dij->d", p, s**4),
    }
    out.update({k: float(v.mean()) for k, v in per_dir.items()})
    return out
