"""Grids of images.

:class:`Geometry` read from headers, compared (:func:`compare_geometry`), and a mask put on a reference grid before it
is used voxel by voxel (:func:`align_to`, in ``evaluate`` and ``features``).

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
from pathlib import Path
from typing import Literal, cast

import numpy as np

from segaudit.base.types import Severity, Spacing
from segaudit.errors import ConfigError, ImageReadError
from segaudit.io.readers import Image, _check_file, _log, _nibabel_log, image_kind, read_image

GEOMETRY_MODES = ("strict", "resample_nearest", "ignore_affine")


@dataclass
class Geometry:
    """The grid of an image without its values: enough to compare two files."""

    shape: tuple[int, ...]
    spacing: Spacing
    origin: tuple[float, ...]
    direction: np.ndarray = field(repr=False)
    orientation: str = ""
    #: Whether ``spacing`` is in mm (see :attr:`Image.physical`).
    physical: bool = False

    @classmethod
    def of(cls, img: Image) -> Geometry:
        """The geometry of an image, read from its header."""
        return cls(img.shape, img.spacing, img.origin, img.direction, img.orientation(), img.physical)

    @property
    def length_unit(self) -> str:
        """``'mm'`` when the spacing is physical, else ``'px'``."""
        return "mm" if self.physical else "px"


def read_geometry(path: str | Path) -> Geometry:
    """The grid of an image file read from its header only (no voxel data is decoded where avoidable).

    NIfTI: the header's shape (first three axes), zooms in mm and affine (``physical=True``). Rasters: the
    pixel size from PIL/tifffile, spacing 1 pixel (``physical=False``). Numpy files: a memory-mapped shape.

    Raises
    ------
    ImageReadError
        Missing, empty or unreadable file.
    """
    path = Path(path)
    _check_file(path)
    kind = image_kind(path)
    try:
        if kind == "nifti":
            import nibabel as nib

            with _nibabel_log() as said:  # nibabel's header warnings, re-emitted with the file's name
                # annotated as the generic FileBasedImage; a .nii(.gz) loads as a Nifti1Image (or its Nifti2 subclass)
                img = cast("nib.Nifti1Image", nib.load(str(path)))
            for message in dict.fromkeys(said):
                _log.warning(f"{path}: nibabel: {message}")
            shape = tuple(int(s) for s in img.header.get_data_shape())[:3]
            nd = len(shape)
            spacing = tuple(float(z) for z in img.header.get_zooms()[:nd])
            aff = np.asarray(img.affine, float)
            lin = aff[:nd, :nd]
            norms = np.linalg.norm(lin, axis=0)
            norms[norms == 0] = 1.0
            return Geometry(shape, spacing, tuple(float(v) for v in aff[:nd, 3]), lin / norms,
                            "".join(nib.aff2axcodes(aff)), True)
        if kind == "raster" and not str(path).lower().endswith((".tif", ".tiff")):
            from PIL import Image as PILImage

            with PILImage.open(path) as pil:
                shape = (int(pil.size[1]), int(pil.size[0]))  # PIL gives (width, height); arrays are (row, col)
        else:  # TIFF and numpy: shapes need the array reader (numpy is memory-mapped)
            shape = read_image(path).shape
    except ImageReadError:
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure means the header cannot be read
        raise ImageReadError(path, f"cannot read the image header ({type(exc).__name__}: {exc})") from exc
    nd = len(shape)
    return Geometry(shape, (1.0,) * nd, (0.0,) * nd, np.eye(nd), "", False)


def compare_geometry(a: Geometry, b: Geometry, spacing_tol: float = 1e-3, origin_tol: float = 1e-2,
                     direction_tol: float = 1e-3) -> list[str]:
    """List how two grids differ; an empty list means they match within tolerance.

    Parameters
    ----------
    spacing_tol:
        Relative tolerance on each spacing value (default 0.1 %).
    origin_tol:
        Absolute tolerance on each origin coordinate, in mm (default 0.01 mm).
    direction_tol:
        Absolute tolerance on each direction-cosine entry (default 1e-3).
    """
    diffs: list[str] = []
    if a.shape != b.shape:
        diffs.append(f"shape {a.shape} vs {b.shape}")
        return diffs  # spacing etc. are meaningless to compare across different grids' dimensionality
    if not np.allclose(a.spacing, b.spacing, rtol=spacing_tol, atol=0):
        diffs.append(f"spacing {format_vector(a.spacing)} vs {format_vector(b.spacing)}")
    if not np.allclose(a.origin, b.origin, rtol=0, atol=origin_tol):
        diffs.append(f"origin {format_vector(a.origin)} vs {format_vector(b.origin)}")
    if a.direction.shape != b.direction.shape or not np.allclose(a.direction, b.direction, atol=direction_tol):
        codes = f" ({a.orientation} vs {b.orientation})" if a.orientation != b.orientation else ""
        diffs.append(f"direction differs{codes}")
    return diffs


def format_vector(values) -> str:
    """``(1, 1, 5)``-style text of a spacing/origin vector (negative zero printed as 0)."""
    return "(" + ", ".join(f"{float(v) + 0.0:g}" for v in values) + ")"


@dataclass(frozen=True)
class GridTolerance:
    """Tolerances of :func:`segaudit.io.compare_geometry` (QC's defaults; ``qc:`` in the project file).

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
    severity: Severity | Literal[""] = ""
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
             tolerance: GridTolerance | None = None, spacing: Spacing | None = None) -> Alignment:
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
