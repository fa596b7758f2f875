"""Putting a mask on a reference grid before it is used voxel by voxel (``evaluate``, ``features``).

Two files of the same shape are only the same grid when their spacing, origin and direction agree (the voxel-to-
world affine); otherwise voxel ``(i, j, k)`` of one is another place of the body than voxel ``(i, j, k)`` of the
other. :func:`align_to` compares the full geometry with QC's tolerances and applies one of three policies
(:data:`GEOMETRY_MODES`):

``strict`` (default)
    Any difference beyond tolerance refuses the pair: an error naming both geometries.
``resample_nearest``
    The mask is resampled into the reference's physical space with nearest neighbour through both affines
    (a warning records it): a prediction stored with a flipped axis but physically identical then matches.
``ignore_affine``
    For data known to carry wrong headers (e.g. AUDIT's ground truths written at origin 0): same-shape files
    are used voxel by voxel and the header differences are recorded as a warning. Different shapes still fail.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from segaudit.errors import ConfigError
from segaudit.io.image import Geometry, Image, compare_geometry, format_vector

GEOMETRY_MODES = ("strict", "resample_nearest", "ignore_affine")


@dataclass(frozen=True)
class GridTolerance:
    """Tolerances of :func:`segaudit.io.image.compare_geometry` (QC's defaults; ``qc:`` in the project file).

    ``spacing_tol`` is relative (0.1 %), ``origin_tol`` absolute in mm, ``direction_tol`` absolute per
    direction-cosine entry.
    """

    spacing_tol: float = 1e-3
    origin_tol: float = 1e-2
    direction_tol: float = 1e-3

    @classmethod
    def from_qc(cls, qc: dict | None) -> GridTolerance:
        """From the project's ``qc:`` section (other keys ignored: QC validates that section)."""
        qc = qc if isinstance(qc, dict) else {}
        keys = ("spacing_tol", "origin_tol", "direction_tol")
        try:
            tol = {k: float(qc[k]) for k in keys if k in qc}
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"qc: tolerances must be numbers ({exc})") from exc
        if any(not v >= 0 for v in tol.values()):
            raise ConfigError(f"qc: tolerances must be >= 0, got {tol}")
        return cls(**tol)


@dataclass
class Alignment:
    """Outcome of :func:`align_to`.

    ``array`` is the mask on the reference grid (``None`` when refused); ``severity`` is ``""`` (grids agree),
    ``"warning"`` (used after resampling or with the affine ignored) or ``"error"`` (refused); ``message``
    names both files and both geometries whenever they differ.
    """

    array: np.ndarray | None
    severity: str = ""
    message: str = ""
    differences: list[str] = field(default_factory=list)
    resampled: bool = False


def describe_grid(img: Image) -> str:
    """``shape (..), spacing (..), origin (..), orientation XYZ`` of an image, for messages."""
    text = f"shape {img.shape}, spacing {format_vector(img.spacing)}, origin {format_vector(img.origin)}"
    orient = img.orientation()
    return text + (f", orientation {orient}" if orient else "")


def voxel_to_world(img: Image) -> np.ndarray:
    """The ``(n+1) x (n+1)`` homogeneous voxel-index -> world (mm) matrix of an ``n``-D image.

    NIfTI files: their affine. Others: ``direction @ diag(spacing)`` and ``origin``.
    """
    nd = len(img.spacing)
    a = np.eye(nd + 1)
    if img.affine is not None and img.affine.shape[0] >= nd + 1:
        a[:nd, :nd] = img.affine[:nd, :nd]
        a[:nd, nd] = img.affine[:nd, img.affine.shape[1] - 1]
    else:
        a[:nd, :nd] = np.asarray(img.direction, dtype=float)[:nd, :nd] @ np.diag(img.spacing)
        a[:nd, nd] = img.origin[:nd]
    return a


def resample_nearest(src: Image, ref: Image) -> np.ndarray:
    """Resample a label map onto ``ref``'s grid, nearest neighbour, through both voxel-to-world matrices.

    Each reference voxel takes the value of the source voxel whose centre is nearest to the same world point;
    reference voxels falling outside the source are background (0). Values are never mixed.
    """
    from scipy import ndimage

    nd = len(ref.spacing)
    m = np.linalg.inv(voxel_to_world(src)) @ voxel_to_world(ref)  # reference voxel -> source voxel
    return ndimage.affine_transform(np.asarray(src.array), m[:nd, :nd], offset=m[:nd, nd], output_shape=ref.shape,
                                    order=0, mode="constant", cval=0)


def align_to(img: Image, ref: Image, mode: str = "strict", what: str = "prediction",
             tolerance: GridTolerance | None = None, spacing: tuple[float, ...] | None = None) -> Alignment:
    """``img``'s voxels on ``ref``'s grid under a geometry policy (see the module docstring).

    Parameters
    ----------
    img, ref:
        The mask to use and the file whose grid it is used on (ground truth, or the first image).
    mode:
        One of :data:`GEOMETRY_MODES`.
    what:
        Words for ``img`` in messages (``"prediction"``, ``"ground truth"``).
    tolerance:
        Geometry tolerances (default QC's).
    spacing:
        A dataset's ``spacing:`` override: replaces both files' header spacing in the comparison, as in QC.
    """
    if mode not in GEOMETRY_MODES:
        raise ValueError(f"unknown geometry mode {mode!r}; one of {', '.join(GEOMETRY_MODES)}")
    tol = tolerance or GridTolerance()
    ga, gb = Geometry.of(img), Geometry.of(ref)
    if spacing is not None and len(spacing) == len(ga.spacing) == len(gb.spacing):
        ga.spacing = gb.spacing = tuple(spacing)
    diffs = compare_geometry(ga, gb, tol.spacing_tol, tol.origin_tol, tol.direction_tol)
    if not diffs:
        return Alignment(img.array)
    both = f"{describe_grid(img)} vs {describe_grid(ref)}"
    same_shape = img.shape == ref.shape
    if mode == "resample_nearest":
        return Alignment(resample_nearest(img, ref), "warning",
                         f"{img.path}: {what} resampled into the physical space of {ref.path} (nearest neighbour "
                         f"through the affines; {'; '.join(diffs)}): {both}", diffs, True)
    if mode == "ignore_affine" and same_shape:
        return Alignment(img.array, "warning",
                         f"{img.path}: {what} used voxel by voxel on the grid of {ref.path} with the header "
                         f"differences ignored (geometry: ignore_affine; {'; '.join(diffs)}): {both}", diffs)
    hint = ("set geometry: resample_nearest (--resample-nearest) to resample it through the affines"
            + ("" if not same_shape else ", or geometry: ignore_affine (--ignore-affine) if the headers are "
               "known to be wrong and the voxels aligned"))
    return Alignment(None, "error", f"{img.path}: {what} grid differs from {ref.path} beyond tolerance "
                                    f"({'; '.join(diffs)}): {both}; {hint}", diffs)
