"""Lesion features of a binary mask (one label or region) and of instance masks (nuclei).

Units: mm³ for volumes, mm² for surface areas (3D) and 2D areas, mm for lengths and positions, voxels for
slice counts and bounding boxes. Positions are centres of mass measured from the centre of the first voxel along
the array axes (``spacing`` in the same axis order); ``bbox_lo_<i>``/``bbox_hi_<i>`` are first/last voxel
indices. AUDIT stores lesion sizes as truncated integers; here volumes are floats.

Shape descriptors follow pyradiomics' ``shape``/``shape2D`` definitions (the tests check equality to 1e-6):
surface and perimeter come from a marching-cubes (marching-squares) mesh of the zero-padded mask at level 0.5,
the enclosed mesh volume from the same mesh, principal axes from the covariance of the voxel centres (mm).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from segaudit.base.marching import cube_triangles, neighbour_codes
from segaudit.base.masks import bounding_box, connected_components
from segaudit.base.types import Spacing

SHAPE_3D = ("surface_area", "mesh_volume", "sphericity", "max_diameter", "major_axis", "minor_axis",
            "least_axis", "elongation", "flatness")
SHAPE_2D = ("perimeter", "mesh_area", "circularity", "max_diameter", "major_axis", "minor_axis", "elongation")


# pyradiomics' marching cubes replaces a configuration by its complement when this corner is foreground (the
# surface is the same, its triangulation of ambiguous faces is not); bit 16 is the voxel at offset (0, 1, 1).
_PYRADIOMICS_FLIP_BIT = 16


@lru_cache(maxsize=1)
def mesh_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per neighbourhood code (256): triangle area vectors summed, ``N`` (3,), and ``C`` = sum u0·(u1 x u2).

    Returns ``(area_vectors, N, C)`` with ``area_vectors`` an object-free ``(256, T_max, 3)`` zero-padded array of
    the triangles' doubled area vectors. The signed volume of a mesh is ``sum over cubes (p·N + C) / 6`` with
    ``p`` the cube's position; with spacing ``s`` it scales by ``prod(s)``. Triangles follow pyradiomics'
    convention (complement when the ``_PYRADIOMICS_FLIP_BIT`` corner is set, orientation flipped).
    """
    tris = []
    for code in range(256):
        flip = bool(code & _PYRADIOMICS_FLIP_BIT)
        tri = cube_triangles(code ^ 0xFF if flip else code)
        tris.append((tri, -1.0 if flip else 1.0))
    t_max = max(len(t) for t, _ in tris)
    vectors = np.zeros((256, t_max, 3))
    n = np.zeros((256, 3))
    c = np.zeros(256)
    for code, (tri, sign) in enumerate(tris):
        if len(tri):
            cr = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
            vectors[code, : len(tri)] = cr
            n[code] = sign * cr.sum(axis=0)
            c[code] = sign * np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum()
    return vectors, n, c


def _mesh_3d(crop: np.ndarray, spacing: Spacing) -> tuple[float, float]:
    """Marching-cubes surface area (mm²) and enclosed volume (mm³) of a cropped mask, without building a mesh."""
    vectors, n, c = mesh_tables()
    codes = neighbour_codes(crop)
    flat = codes.ravel()
    hist = np.bincount(flat, minlength=256).astype(np.float64)
    s0, s1, s2 = spacing
    scale = np.array([s1 * s2, s0 * s2, s0 * s1])
    area_table = 0.5 * np.linalg.norm(vectors * scale, axis=2).sum(axis=1)
    area = float(hist @ area_table)
    # Sum of positions per code, one weighted bincount per axis.
    pos = np.stack([np.bincount(flat, weights=np.broadcast_to(
        np.arange(codes.shape[k]).reshape([-1 if a == k else 1 for a in range(3)]), codes.shape).ravel(),
        minlength=256) for k in range(3)], axis=1)
    volume = abs(float(np.einsum("ck,ck->", pos, n) + hist @ c)) * s0 * s1 * s2 / 6.0
    return area, volume


def _boundary_points(crop: np.ndarray, spacing: Spacing) -> np.ndarray:
    """Mesh vertices of a binary mask: midpoints between face-adjacent object and background voxels (mm)."""
    padded = np.pad(crop, 1)
    pts = []
    for ax in range(crop.ndim):
        d = np.diff(padded.astype(np.int8), axis=ax) != 0
        idx = np.nonzero(d)
        p = np.stack(idx, axis=1).astype(np.float64) - 1.0
        p[:, ax] += 0.5
        pts.append(p)
    return np.concatenate(pts) * np.asarray(spacing)


def _max_pairwise(points: np.ndarray, chunk: int = 2048) -> float:
    """Largest distance between two of ``points`` (exact: over the convex hull, in bounded-memory blocks)."""
    from scipy.spatial import ConvexHull, QhullError
    from scipy.spatial.distance import cdist

    if len(points) < 2:
        return 0.0
    try:
        points = points[ConvexHull(points).vertices]
    except (QhullError, ValueError):
        pass  # degenerate (flat or collinear) sets: use every point
    # Row block i against the points from i on: every pair once, at most chunk x n distances in memory.
    return float(max(cdist(points[i:i + chunk], points[i:]).max() for i in range(0, len(points), chunk)))


def principal_axes(mask: np.ndarray, spacing: Spacing) -> np.ndarray:
    """Eigenvalues (mm², descending) of the covariance of the voxel centres (population, ddof 0)."""
    idx = np.nonzero(mask)
    pts = np.stack([i * float(s) for i, s in zip(idx, spacing, strict=True)], axis=1)
    pts = pts - pts.mean(axis=0)
    cov = pts.T @ pts / len(pts)
    return np.sort(np.clip(np.linalg.eigvalsh(cov), 0, None))[::-1]


def shape_features(mask: np.ndarray, spacing: Spacing) -> dict[str, float]:
    """Shape of one object (all voxels of ``mask`` taken together), 3D or 2D.

    3D: ``surface_area`` (mm², marching-cubes mesh), ``mesh_volume`` (mm³, enclosed by that mesh),
    ``sphericity`` (pi^(1/3) (6 V)^(2/3) / A with the mesh volume and area; 1 for a ball, lower otherwise),
    ``max_diameter`` (mm, largest distance between mesh vertices), ``major_axis``/``minor_axis``/``least_axis``
    (mm, 4 sqrt(eigenvalue) of the voxel-centre covariance), ``elongation`` = sqrt(minor/major eigenvalue) and
    ``flatness`` = sqrt(least/major) (1 for a sphere, toward 0 for a needle or a plate).

    2D: ``perimeter`` (mm, marching-squares contour length), ``mesh_area`` (mm² inside the contour),
    ``circularity`` (4 pi area / perimeter², with the contour's area; 1 for a disc), ``max_diameter``,
    ``major_axis``, ``minor_axis``, ``elongation``.

    An empty mask gives NaN for every feature.
    """
    mask = np.asarray(mask, dtype=bool)
    spacing = tuple(float(s) for s in spacing)
    names = SHAPE_3D if mask.ndim == 3 else SHAPE_2D
    box = bounding_box(mask)
    if box is None:
        return dict.fromkeys(names, np.nan)
    crop = mask[box]
    ev = principal_axes(crop, spacing)
    axes = 4 * np.sqrt(ev)
    with np.errstate(divide="ignore", invalid="ignore"):
        elong = float(np.sqrt(ev[1] / ev[0])) if ev[0] > 0 else np.nan
    if mask.ndim == 3:
        area, volume = _mesh_3d(crop, spacing)
        flat = float(np.sqrt(ev[2] / ev[0])) if ev[0] > 0 else np.nan
        return {"surface_area": area, "mesh_volume": volume,
                "sphericity": float(np.pi ** (1 / 3) * (6 * volume) ** (2 / 3) / area) if area > 0 else np.nan,
                "max_diameter": _max_pairwise(_boundary_points(crop, spacing)), "major_axis": float(axes[0]),
                "minor_axis": float(axes[1]),
                "least_axis": float(axes[2]), "elongation": elong, "flatness": flat}
    from skimage.measure import find_contours

    padded = np.pad(crop.astype(np.float32), 1)
    perimeter = mesh_area = 0.0
    pts = []
    for c in find_contours(padded, 0.5):
        c = c * np.asarray(spacing)
        seg = np.diff(c, axis=0)
        perimeter += float(np.hypot(seg[:, 0], seg[:, 1]).sum())
        # Shoelace area of the closed contour; holes run the other way and subtract.
        mesh_area += 0.5 * float(np.dot(c[:-1, 0], c[1:, 1]) - np.dot(c[1:, 0], c[:-1, 1]))
        pts.append(c)
    mesh_area = abs(mesh_area)
    return {"perimeter": perimeter, "mesh_area": mesh_area,
            "circularity": 4 * np.pi * mesh_area / perimeter**2 if perimeter > 0 else np.nan,
            "max_diameter": _max_pairwise(np.concatenate(pts)) if pts else np.nan,
            "major_axis": float(axes[0]), "minor_axis": float(axes[1]), "elongation": elong}


def lesion_features(mask: np.ndarray, spacing: Spacing, reference: tuple[float, ...] | None = None,
                    connectivity: int | None = None, shape: bool = True,
                    box: tuple[slice, ...] | None = None) -> dict[str, float]:
    """Size, position, extent and shape of a label or region mask.

    Parameters
    ----------
    mask:
        Boolean 2D or 3D mask of one label or region.
    spacing:
        Voxel size (mm) per array axis.
    reference:
        A point in mm (same frame as the centroid), e.g. the foreground centre of mass; gives ``distance``.
    connectivity:
        Neighbourhood of connected components (3D: 6/18/26, 2D: 4/8; default full).
    shape:
        Also compute :func:`shape_features` of the whole mask (the slowest part).
    box:
        The mask's bounding box when the caller already has it (else computed).

    Returns
    -------
    dict
        ``volume`` (mm³, mm² in 2D, float), ``voxels``, ``n_components``, ``largest_volume`` (mm³ of the
        largest component), ``com_<i>_mm`` (centre of mass), ``distance`` (mm, from ``reference``),
        ``bbox_lo_<i>``/``bbox_hi_<i>`` (voxel indices), ``slices_<i>`` (number of indices along axis i holding
        the mask), and the shape features. An empty mask: volume, voxels and n_components are 0, everything else
        NaN (so a missing label is never confused with a tiny one).
    """
    mask = np.asarray(mask, dtype=bool)
    spacing = tuple(float(s) for s in spacing)
    nd = mask.ndim
    vox = float(np.prod(spacing))
    box = bounding_box(mask) if box is None else box
    out: dict[str, float] = {}
    if box is None:
        out.update({"volume": 0.0, "voxels": 0.0, "n_components": 0.0, "largest_volume": np.nan})
        for i in range(nd):
            out.update({f"com_{i}_mm": np.nan, f"bbox_lo_{i}": np.nan, f"bbox_hi_{i}": np.nan,
                        f"slices_{i}": 0.0})
        if reference is not None:
            out["distance"] = np.nan
        if shape:
            out.update(shape_features(mask, spacing))
        return out
    crop = mask[box]
    n_vox = int(crop.sum())
    labels, n = connected_components(crop, connectivity)
    sizes = np.bincount(labels.ravel())[1:]
    out.update({"volume": n_vox * vox, "voxels": float(n_vox), "n_components": float(n),
                "largest_volume": float(sizes.max()) * vox})
    com = []
    for i, s in enumerate(spacing):
        other = tuple(a for a in range(nd) if a != i)
        profile = crop.sum(axis=other)
        pos = np.arange(box[i].start, box[i].stop)
        c = float((profile * pos).sum() / n_vox) * s
        com.append(c)
        out[f"com_{i}_mm"] = c
        out[f"bbox_lo_{i}"] = float(box[i].start)
        out[f"bbox_hi_{i}"] = float(box[i].stop - 1)
        out[f"slices_{i}"] = float(np.count_nonzero(profile))
    if reference is not None:
        ref = np.asarray(reference, dtype=float)
        out["distance"] = float(np.linalg.norm(np.asarray(com) - ref)) if ref.size == nd else np.nan
    if shape:
        out.update(shape_features(crop, spacing))
    return out


def instance_features(instances: np.ndarray, spacing: Spacing, classes: np.ndarray | None = None,
                      class_names: dict[int, str] | None = None, region: np.ndarray | None = None
                      ) -> dict[str, dict[str, float]]:
    """Counts, density and size distribution of instances (e.g. nuclei in an H&E tile), overall and per class.

    Parameters
    ----------
    instances:
        Integer map, one id per object (0 = background).
    spacing:
        Pixel size (mm, or the image's units) per axis.
    classes:
        Optional class map of the same shape; an instance's class is its most frequent class value.
    class_names:
        Class value -> name (default ``class_<value>``).
    region:
        Area over which density is measured (default: the whole image).

    Returns
    -------
    dict
        Source -> features, with source ``"all"`` and one per class present: ``count``, ``density`` (objects
        per mm², or per unit² of the spacing), ``area_mean``, ``area_median``, ``area_p10``, ``area_p90``,
        ``area_std`` (mm²), ``area_fraction`` (covered fraction of the region). No instances: count 0, density 0,
        sizes NaN.
    """
    inst = np.asarray(instances)
    if inst.ndim != 2:
        raise ValueError(f"instance features need a 2D instance map, got shape {inst.shape}")
    px = float(np.prod(spacing))
    region_area = (float(np.count_nonzero(region)) if region is not None else float(inst.size)) * px
    ids, counts = np.unique(inst[inst > 0], return_counts=True)
    cls_of = None
    if classes is not None and ids.size:
        cls = np.asarray(classes)
        if cls.shape != inst.shape:
            raise ValueError(f"class map shape {cls.shape} differs from the instance map shape {inst.shape}")
        sel = inst > 0
        pairs = np.stack([inst[sel], cls[sel]], axis=1)
        uniq, cnt = np.unique(pairs, axis=0, return_counts=True)
        best: dict[int, tuple[int, int]] = {}
        for (i, c), k in zip(uniq.tolist(), cnt.tolist(), strict=True):
            if i not in best or k > best[i][1]:
                best[i] = (c, k)
        cls_of = np.array([best[int(i)][0] for i in ids])

    def summarise(areas: np.ndarray) -> dict[str, float]:
        base = {"count": float(areas.size), "density": areas.size / region_area if region_area else np.nan,
                "area_fraction": float(areas.sum()) / region_area if region_area else np.nan}
        if areas.size == 0:
            return {**base, **dict.fromkeys(("area_mean", "area_median", "area_p10", "area_p90", "area_std"),
                                            np.nan)}
        p10, med, p90 = np.percentile(areas, [10, 50, 90])
        return {**base, "area_mean": float(areas.mean()), "area_median": float(med), "area_p10": float(p10),
                "area_p90": float(p90), "area_std": float(areas.std())}

    areas = counts.astype(np.float64) * px
    out = {"all": summarise(areas)}
    if cls_of is not None:
        for c in np.unique(cls_of):
            name = (class_names or {}).get(int(c), f"class_{int(c)}")
            out[name] = summarise(areas[cls_of == c])
    return out

