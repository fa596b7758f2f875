"""Cross-sequence features of multimodal cases: which sequences carry signal, and where.

Both functions take the sequences of one case on one grid (``{name: array}``) and skip missing ones, so a case
without its T1 still gets the pairs of its other sequences.
"""

from __future__ import annotations

import itertools

import numpy as np

from segaudit.base.masks import bounding_box
from segaudit.features._layout import storage_order


def sequence_correlations(images: dict[str, np.ndarray], region: np.ndarray) -> dict[tuple[str, str], float]:
    """Pearson correlation of the intensities of every pair of sequences over the voxels of ``region``.

    Returns ``{(a, b): r}`` for each unordered pair in the order of ``images`` (dimensionless, -1..1). Voxels
    NaN in either sequence are left out of that pair. NaN when fewer than 2 voxels remain or a sequence is
    constant there.
    """
    region = np.asarray(region, dtype=bool)
    box = bounding_box(region)
    names = list(images)
    if box is None:
        return {pair: np.nan for pair in itertools.combinations(names, 2)}
    # Every array is reversed alike when the first is Fortran-ordered, so voxel pairs stay aligned.
    arrays = storage_order(region[box], *(np.asarray(images[k])[box] for k in names))
    region = arrays[0]
    vals = {k: a[region].astype(np.float64) for k, a in zip(names, arrays[1:], strict=True)}
    nan = {k: np.isnan(v) for k, v in vals.items()}
    clean = not any(m.any() for m in nan.values())
    if clean:  # the usual case: centre each sequence once, then one dot product per pair
        vals = {k: v - v.mean() for k, v in vals.items()}
        norms = {k: float(v @ v) for k, v in vals.items()}
    out = {}
    for a, b in itertools.combinations(vals, 2):
        if clean:
            x, y, xx, yy = vals[a], vals[b], norms[a], norms[b]
        else:
            ok = ~(nan[a] | nan[b])
            x, y = vals[a][ok], vals[b][ok]
            x, y = x - x.mean() if x.size else x, y - y.mean() if y.size else y
            xx, yy = float(x @ x), float(y @ y)
        if x.size < 2:
            out[(a, b)] = np.nan
            continue
        den = np.sqrt(xx * yy)
        out[(a, b)] = float(x @ y / den) if den > 0 else np.nan
    return out


def label_contrast(images: dict[str, np.ndarray], labels: dict[str, np.ndarray], foreground: np.ndarray,
                   boxes: dict[str, tuple[slice, ...] | None] | None = None) -> dict[str, dict[str, float]]:
    """How each label stands out from the rest of the foreground in each sequence, and between sequences.

    The reference tissue of a label is the foreground without the label. For each sequence ``s``: ``z_<s>`` =
    (mean of ``s`` in the label - mean in the reference) / std in the reference (dimensionless: reference
    standard deviations, so sequences in arbitrary units compare). For each pair of sequences ``(a, b)`` in the
    order of ``images``: ``contrast_<a>_vs_<b>`` = ``z_a - z_b``. For enhancing tumour with sequences
    ``t1, t1ce, ...``, ``contrast_t1_vs_t1ce`` < 0 means it is brighter on contrast-enhanced T1 than on native
    T1 relative to the brain: the signature of enhancement.

    Returns ``{label: features}``. An empty label or reference, or a constant reference, gives NaN. NaN voxels
    are left out. Reference sums are the foreground's minus the label's (one pass over the foreground per
    sequence, one over each label's bounding box). ``boxes`` (label -> bounding box, in the arrays' axes) saves
    recomputing boxes the caller already has.
    """
    fg = np.asarray(foreground, dtype=bool)
    boxes = dict(boxes or {})
    for k, m in labels.items():
        if k not in boxes:
            boxes[k] = bounding_box(np.asarray(m, dtype=bool))
    fbox = bounding_box(fg)
    totals = {}
    for name, img in images.items():
        a, f = storage_order(np.asarray(img)[fbox], fg[fbox]) if fbox is not None else (np.asarray(img), fg)
        v = a[f].astype(np.float64)
        v = v[~np.isnan(v)]
        totals[name] = (v.size, v.sum(), (v * v).sum())
    out: dict[str, dict[str, float]] = {}
    for lname, mask in labels.items():
        mask = np.asarray(mask, dtype=bool)
        box = boxes[lname]
        z: dict[str, float] = {}
        for name, img in images.items():
            if box is None:
                z[name] = np.nan
                continue
            a, m, f = storage_order(np.asarray(img)[box], mask[box], fg[box])
            inside = a[m].astype(np.float64)
            inside = inside[~np.isnan(inside)]
            shared = a[m & f].astype(np.float64)
            shared = shared[~np.isnan(shared)]
            n, s1, s2 = totals[name]
            n_ref, s_ref, q_ref = n - shared.size, s1 - shared.sum(), s2 - (shared * shared).sum()
            if inside.size == 0 or n_ref < 1:
                z[name] = np.nan
                continue
            mean_ref = s_ref / n_ref
            var_ref = max(q_ref / n_ref - mean_ref**2, 0.0)
            z[name] = float((inside.mean() - mean_ref) / np.sqrt(var_ref)) if var_ref > 0 else np.nan
        feats = {f"z_{k}": v for k, v in z.items()}
        for a_name, b_name in itertools.combinations(z, 2):
            feats[f"contrast_{a_name}_vs_{b_name}"] = z[a_name] - z[b_name]
        out[lname] = feats
    return out
