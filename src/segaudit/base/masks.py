"""Mask helpers shared by every layer: bounding boxes, label-set masks, connectivity and connected components.

All functions take arrays in storage axis order and work in voxel indices (no spacing).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def bounding_box(mask: np.ndarray, margin: int = 0) -> tuple[slice, ...] | None:
    """Slices of the bounding box of a boolean mask grown by ``margin`` voxels (clipped), or None when empty.

    One reduction per axis; after the first, each runs on the part of the mask already known to hold it.
    """
    bounds: list[tuple[int, int]] = []
    sub = mask
    for axis in range(mask.ndim):
        other = tuple(a for a in range(mask.ndim) if a != axis)
        nz = np.flatnonzero(sub.any(axis=other))
        if nz.size == 0:
            return None
        lo, hi = int(nz[0]), int(nz[-1]) + 1
        bounds.append((lo, hi))
        sub = sub[(slice(None),) * axis + (slice(lo, hi),)]
    return tuple(slice(max(0, lo - margin), min(n, hi + margin))
                 for (lo, hi), n in zip(bounds, mask.shape, strict=True))


def values_mask(labels: np.ndarray, values) -> np.ndarray:
    """Boolean mask of the voxels whose label is one of ``values`` (a region), keeping the array's memory order.

    Small non-negative integer label maps use a lookup table, several times faster than ``np.isin``.
    """
    values = list(values)
    if len(values) == 1:
        return labels == values[0]
    if np.issubdtype(labels.dtype, np.integer) and labels.dtype.itemsize <= 2 and labels.size and labels.min() >= 0:
        lut = np.zeros(int(labels.max()) + 1, dtype=bool)
        lut[[int(v) for v in values if 0 <= v < lut.size]] = True
        return lut[labels]
    return np.isin(labels, values)


def structure(ndim: int, connectivity: int | None) -> np.ndarray:
    """Structuring element for a connectivity given as a neighbour count (3D: 6, 18, 26; 2D: 4, 8).

    ``None`` means full connectivity (26 in 3D, 8 in 2D).
    """
    if connectivity is None:
        return ndimage.generate_binary_structure(ndim, ndim)
    table = {2: {4: 1, 8: 2}, 3: {6: 1, 18: 2, 26: 3}}
    try:
        rank = table[ndim][int(connectivity)]
    except KeyError:
        allowed = ", ".join(map(str, table.get(ndim, {})))
        raise ValueError(f"connectivity {connectivity} is not valid in {ndim}D (choose {allowed})") from None
    return ndimage.generate_binary_structure(ndim, rank)


def connected_components(mask: np.ndarray, connectivity: int | None = None) -> tuple[np.ndarray, int]:
    """Label the connected components of a boolean mask; returns (labels 1..n, n).

    Only the bounding box of the mask is labelled (a small lesion in a large image costs little).

    Examples
    --------
    >>> import numpy as np
    >>> mask = np.array([[1, 1, 0, 0], [0, 0, 1, 0]], dtype=bool)
    >>> connected_components(mask)[1], connected_components(mask, connectivity=4)[1]  # diagonal: 8- not 4-
    (1, 2)
    >>> connected_components(mask, connectivity=4)[0]
    array([[1, 1, 0, 0],
           [0, 0, 2, 0]], dtype=int32)
    """
    mask = np.asarray(mask, dtype=bool)
    labels = np.zeros(mask.shape, dtype=np.int32)
    box = bounding_box(mask)
    if box is None:
        return labels, 0
    sub, n = ndimage.label(mask[box], structure=structure(mask.ndim, connectivity), output=np.int32)
    labels[box] = sub
    return labels, int(n)
