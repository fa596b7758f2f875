"""Marching-cubes (3D) and marching-squares (2D) tables of 2x2x2 (2x2) voxel neighbourhoods.

A voxel-corner point is coded by which of the voxels around it are foreground (:func:`neighbour_codes`); per
code, :func:`cube_triangles` gives the classic marching-cubes triangles and :func:`surfel_area_table` the
surface area (2D: contour length) at a spacing. The surfel surface distances of :mod:`segaudit.metrics.surface`
and the mesh shape features of :mod:`segaudit.features.lesion` are built on the same tables.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from segaudit.base.types import Spacing

# Bit weight of each corner of a 2x2x2 (2x2) neighbourhood; position (i, j, k) holds the weight of the voxel at
# offset (i-1, j-1, k-1) from the corner point. The same convention as surface-distance, so codes are comparable.
_KERNEL_3D = np.array([[[128, 64], [32, 16]], [[8, 4], [2, 1]]], dtype=np.uint8)
_KERNEL_2D = np.array([[8, 4], [2, 1]], dtype=np.uint8)


@lru_cache(maxsize=1)
def cube_triangles(code: int) -> np.ndarray:
    """Classic (Lorensen) marching-cubes triangles of one 2x2x2 neighbourhood code, shape ``(T, 3, 3)``.

    Vertex coordinates are in voxel units inside the cube (corner voxel centres at 0 and 1), ordered as the
    axes of :func:`neighbour_codes`; derived with scikit-image on the single configuration.
    """
    from skimage.measure import marching_cubes

    if code in (0, 255):
        return np.zeros((0, 3, 3))
    cube = ((code & _KERNEL_3D) > 0).astype(np.float32)
    verts, faces, _, _ = marching_cubes(cube, 0.5, method="lorensen", allow_degenerate=True)
    return verts[faces].astype(np.float64)


def _surfel_normals_3d() -> tuple[np.ndarray, ...]:
    """Area vectors (unit spacing) of the marching-cubes triangles of each of the 256 neighbourhood codes.

    Configurations with more than four foreground corners use the triangulation of their complement (the same
    surface seen from the other side), which is how the surface-distance table was built; tests check all 256
    codes.
    """
    normals: list[np.ndarray] = []
    for code in range(256):
        tri = cube_triangles(code if bin(code).count("1") <= 4 else 255 - code)
        normals.append(0.5 * np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]))
    return tuple(normals)


@lru_cache(maxsize=64)
def surfel_area_table(spacing: Spacing) -> np.ndarray:
    """Surface area (3D, mm²) or contour length (2D, mm) of each neighbourhood code at a given spacing.

    3D: sum over the code's marching-cubes triangles of the norm of the triangle's area vector with each
    component scaled by the spacing of the two other axes. 2D: marching-squares segments: one corner (or three)
    cut a diagonal of length ``0.5 * hypot(s0, s1)``; two corners in a row give a segment along axis 1 of length
    ``s1``, in a column one along axis 0 of length ``s0``; two opposite corners give two diagonals.
    """
    spacing = tuple(float(s) for s in spacing)
    if len(spacing) == 3:
        s0, s1, s2 = spacing
        scale = np.array([s1 * s2, s0 * s2, s0 * s1])
        return np.array([np.linalg.norm(n * scale, axis=1).sum() if len(n) else 0.0 for n in _surfel_normals_3d()])
    if len(spacing) == 2:
        s0, s1 = spacing
        diag = 0.5 * np.hypot(s0, s1)
        table = np.zeros(16)
        for code in range(1, 15):
            bits = [(code >> b) & 1 for b in (3, 2, 1, 0)]  # top-left, top-right, bottom-left, bottom-right
            n = sum(bits)
            if n in (1, 3):
                table[code] = diag
            elif bits[0] == bits[1]:  # a whole row inside: the contour runs along axis 1
                table[code] = s1
            elif bits[0] == bits[2]:  # a whole column inside: the contour runs along axis 0
                table[code] = s0
            else:  # opposite corners (ambiguous saddle): two diagonal segments
                table[code] = 2 * diag
        return table
    raise ValueError(f"surfaces are defined for 2D and 3D masks, not {len(spacing)}D")


def neighbour_codes(mask: np.ndarray) -> np.ndarray:
    """Neighbourhood code of every voxel-corner point of a 2D/3D boolean mask (shape + 1 along each axis).

    Point ``p`` combines the voxels ``p - 1`` and ``p`` along each axis (outside the array is background).
    """
    m = np.pad(mask.astype(np.uint8), 1)
    kernel = _KERNEL_3D if mask.ndim == 3 else _KERNEL_2D
    out_shape = tuple(s + 1 for s in mask.shape)
    code = np.zeros(out_shape, dtype=np.uint8)
    for offset in np.ndindex(*kernel.shape):
        sl = tuple(slice(o, o + n) for o, n in zip(offset, out_shape, strict=True))
        code |= m[sl] * kernel[offset]  # distinct bits: OR == sum, and stays in uint8
    return code
