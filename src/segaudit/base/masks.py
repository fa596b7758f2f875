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


def overlap_dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice 2|A∩B| / (|A| + |B|) of two boolean masks, unitless in [0, 1]; 1.0 when both are empty.

    The plain overlap that lower layers (prompt simulation, instruction checks) need without the metrics engine;
    :func:`segaudit.metrics.dice` is the reported metric, with its documented empty-mask policy.

    Examples
    --------
    >>> import numpy as np
    >>> overlap_dice(np.array([1, 1, 0, 0], bool), np.array([0, 1, 1, 0], bool))
    0.5
    >>> overlap_dice(np.zeros(3, bool), np.zeros(3, bool))
    1.0
    """
    p, g = np.asarray(a, bool), np.asarray(b, bool)
    denom = int(p.sum()) + int(g.sum())
    return 1.0 if denom == 0 else 2.0 * int((p & g).sum()) / denom


def component_boxes(labels: np.ndarray, n: int | None = None, min_size: int = 1) -> list[tuple[int, tuple[int, ...]]]:
    """(component id, pixel box ``(x0, y0, x1, y1)`` with exclusive ends) per component of a 2D labelled array.

    ``labels`` holds components 1..n (0 is background), as :func:`connected_components` or
    :func:`scipy.ndimage.label` return them; ``n`` defaults to the largest label. Components smaller than
    ``min_size`` pixels and ids with no pixels are left out; ids are kept, so they still index ``labels``.

    Examples
    --------
    >>> import numpy as np
    >>> component_boxes(np.array([[1, 1, 0], [0, 0, 2]]))
    [(1, (0, 0, 2, 1)), (2, (2, 1, 3, 2))]
    """
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"expected a 2D labelled array, got shape {labels.shape}")
    n = int(labels.max(initial=0)) if n is None else int(n)
    sizes = np.bincount(labels.ravel(), minlength=n + 1) if min_size > 1 else None
    out: list[tuple[int, tuple[int, ...]]] = []
    for i, sl in enumerate(ndimage.find_objects(labels, max_label=n), start=1):
        if sl is None or (sizes is not None and sizes[i] < min_size):
            continue
        ys, xs = sl
        out.append((i, (int(xs.start), int(ys.start), int(xs.stop), int(ys.stop))))
    return out
