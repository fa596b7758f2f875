"""Reading images from disk into one :class:`Image` record (NIfTI, 2D rasters, numpy files).

Axis order
----------
segaudit never transposes what it reads. The array axes are the file's own storage axes:

- NIfTI (``.nii``, ``.nii.gz``): ``array[i, j, k]`` with ``i, j, k`` the voxel indices of the NIfTI header, as
  nibabel returns them. ``spacing[n]`` is the voxel size along array axis ``n`` (``pixdim[n + 1]``, in mm),
  so ``spacing`` is always in the same order as ``array.shape``. ``affine`` maps ``(i, j, k, 1)`` to RAS+
  world coordinates in mm; ``origin`` is the world position of voxel ``(0, 0, 0)`` and ``direction`` holds the
  unit column vectors of the three voxel axes. A 1 x 1 x 5 mm volume therefore has ``spacing == (1, 1, 5)``
  whatever its orientation code (``LPS``, ``RAS``...).
- 2D images (PNG, JPEG, TIFF, BMP): ``array[row, column]`` (that is ``y, x``) and, for colour images, a last
  channel axis (``array[row, column, channel]``, RGB order). ``spacing`` defaults to ``(1.0, 1.0)`` pixel
  units and ``Image.physical`` is False (distances in ``px``, areas in ``px2``); TIFF files that carry a
  resolution tag are not trusted for physical size (it is usually the DPI of a screenshot), so declare the
  pixel size (``spacing: [0.01, 0.01]``, mm per pixel, in the project file) where it is known: then mm is true.
"""

from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from segaudit.errors import ImageReadError

NIFTI_SUFFIXES = (".nii.gz", ".nii")
RASTER_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
ARRAY_SUFFIXES = (".npy", ".npz")
IMAGE_SUFFIXES = NIFTI_SUFFIXES + RASTER_SUFFIXES + ARRAY_SUFFIXES


@dataclass
class Image:
    """An image or mask as read from disk.

    Attributes
    ----------
    array:
        Voxel/pixel values, axes as stored (see the module docstring); colour images carry a last channel axis.
    spacing:
        Physical size of one voxel along each *spatial* array axis, same order as ``array.shape`` (mm for
        NIfTI, pixel units for 2D images unless given).
    origin:
        World coordinate (mm) of the first voxel's centre, one value per spatial axis.
    direction:
        ``ndim x ndim`` matrix whose column ``n`` is the unit world direction of array axis ``n``.
    path:
        The file the image was read from ('' for in-memory images).
    affine:
        The 4x4 voxel-to-world matrix of a NIfTI file, ``None`` for 2D images.
    disk_dtype:
        The data type stored on disk (before any scaling or mask conversion), as a string.
    """

    array: np.ndarray
    spacing: tuple[float, ...]
    origin: tuple[float, ...]
    direction: np.ndarray
    path: str = ""
    affine: np.ndarray | None = None
    disk_dtype: str = ""
    is_color: bool = False
    #: True when ``spacing`` is a physical size in mm (NIfTI headers, or a spacing declared in the project);
    #: False for PNG/JPEG/TIFF/BMP and numpy files, whose spacing 1 is one pixel, not one millimetre.
    physical: bool = False

    @property
    def length_unit(self) -> str:
        """``'mm'`` when :attr:`physical`, else ``'px'`` (distances in pixel/voxel steps)."""
        return "mm" if self.physical else "px"

    @property
    def ndim(self) -> int:
        """Number of spatial dimensions (2 or 3); a colour channel axis is not counted."""
        return len(self.spacing)

    @property
    def shape(self) -> tuple[int, ...]:
        """Spatial shape (colour channel axis left out)."""
        return tuple(self.array.shape[: self.ndim])

    @property
    def voxel_volume(self) -> float:
        """Volume (mm^3) or area (mm^2 / pixel units) of one voxel: the product of ``spacing``."""
        return float(np.prod(self.spacing))

    def orientation(self) -> str:
        """Orientation code of the voxel axes, e.g. ``'LPS'`` or ``'RAS'`` (``''`` for 2D images)."""
        if self.affine is None:
            return ""
        import nibabel as nib

        return "".join(nib.aff2axcodes(self.affine))



def image_kind(path: str | Path) -> str:
    """Return ``'nifti'``, ``'raster'`` or ``'array'`` from the file name, or raise ImageReadError."""
    name = str(path).lower()
    if name.endswith(NIFTI_SUFFIXES):
        return "nifti"
    if name.endswith(RASTER_SUFFIXES):
        return "raster"
    if name.endswith(ARRAY_SUFFIXES):
        return "array"
    raise ImageReadError(path, f"unknown image format (expected one of {', '.join(IMAGE_SUFFIXES)})")


def _check_file(path: Path) -> None:
    if not path.exists():
        raise ImageReadError(path, "file not found")
    if path.is_dir():
        raise ImageReadError(path, "is a directory, not an image file")
    if path.stat().st_size == 0:
        raise ImageReadError(path, "empty file (0 bytes)")


def _nifti_failure(path: Path, exc: BaseException) -> ImageReadError:
    """Turn the many ways nibabel/gzip fail into one precise reason."""
    if str(path).lower().endswith(".gz"):
        with open(path, "rb") as fh:
            magic = fh.read(2)
        if magic != b"\x1f\x8b":
            return ImageReadError(path, "not a gzip file (bad magic bytes), although named .gz")
    if isinstance(exc, EOFError) or "end-of-stream" in str(exc) or "ended before" in str(exc):
        return ImageReadError(path, "truncated file: the gzip stream ends before the image data does")
    if isinstance(exc, zlib.error | gzip.BadGzipFile):
        return ImageReadError(path, f"corrupt gzip data ({exc})")
    return ImageReadError(path, f"not a readable NIfTI file ({type(exc).__name__}: {exc})")


def _gunzip(raw: bytes) -> bytes:
    try:  # ISA-L inflates about twice as fast as zlib; evaluation of large float masks is bound by it
        from isal import igzip

        return igzip.decompress(raw)
    except ImportError:
        return zlib.decompress(raw, 31)


def _fast_nifti_gz(path: Path):
    """(image, array) of a well-formed ``.nii.gz`` read in one pass, or None to take nibabel's own path.

    The file is inflated once in memory and the voxels are viewed in place (no second copy). Anything unusual
    (a truncated stream, scaled data, NIfTI-2) returns None so that the regular reader reports or handles it.
    """
    import io

    import nibabel as nib

    try:
        data = _gunzip(path.read_bytes())
        # The whole buffer: headers with extensions read past byte 352 (BytesIO shares the bytes, no copy).
        hdr = nib.Nifti1Header.from_fileobj(io.BytesIO(data))
        slope, inter = hdr.get_slope_inter()
        unscaled = (slope is None or np.isnan(slope) or slope == 1.0) and (inter is None or np.isnan(inter)
                                                                            or inter == 0.0)
        if not unscaled or int(hdr["sizeof_hdr"]) != 348:
            return None
        shape = tuple(int(s) for s in hdr.get_data_shape())
        dtype = hdr.get_data_dtype()
        offset = int(hdr.get_data_offset())
        n = int(np.prod(shape)) * dtype.itemsize
        if len(data) < offset + n:
            return None
        array = np.frombuffer(data, dtype=dtype, count=int(np.prod(shape)), offset=offset).reshape(shape, order="F")
        img = nib.Nifti1Image(array, hdr.get_best_affine(), hdr)
        return img, array
    except Exception:  # any surprise: let nibabel read it and explain the failure
        return None


def _load_nifti(path: Path) -> Image:
    import nibabel as nib

    fast = _fast_nifti_gz(path) if str(path).lower().endswith(".gz") else None
    try:
        if fast is not None:
            img, array = fast
        else:
            img = nib.load(str(path))
            array = np.asanyarray(img.dataobj)
        hdr = img.header
        shape = tuple(int(s) for s in hdr.get_data_shape())
    except Exception as exc:  # nibabel raises many types; all mean "cannot read"
        raise _nifti_failure(path, exc) from exc
    if array.shape != shape:
        raise ImageReadError(path, f"data has shape {array.shape}, header says {shape}")
    ndim = min(len(shape), 3)  # 4D files keep their data; the first three axes are the spatial ones
    zooms = tuple(float(z) for z in hdr.get_zooms()[:ndim])
    affine = np.asarray(img.affine, dtype=float)
    lin = affine[:ndim, :ndim]
    norms = np.linalg.norm(lin, axis=0)
    norms[norms == 0] = 1.0
    direction = lin / norms
    origin = tuple(float(v) for v in affine[:ndim, 3])
    return Image(
        array=array,
        spacing=zooms,
        origin=origin,
        direction=direction,
        path=str(path),
        affine=affine,
        disk_dtype=str(hdr.get_data_dtype()),
        physical=True,
    )


def _load_raster(path: Path) -> Image:
    name = str(path).lower()
    try:
        if name.endswith((".tif", ".tiff")):
            import tifffile

            array = np.asarray(tifffile.imread(str(path)))
            disk_dtype = str(array.dtype)
        else:
            from PIL import Image as PILImage

            with PILImage.open(path) as pil:
                pil.load()
                if pil.mode in ("P", "PA"):
                    # Palette images: the palette colours are what a person sees.
                    pil = pil.convert("RGBA" if "transparency" in pil.info or pil.mode == "PA" else "RGB")
                elif pil.mode == "LA":
                    pil = pil.convert("L")
                array = np.asarray(pil)
                disk_dtype = str(array.dtype)
    except Exception as exc:
        raise ImageReadError(path, f"not a readable image ({type(exc).__name__}: {exc})") from exc
    if array.ndim == 3 and array.shape[-1] == 4:
        array = array[..., :3]  # alpha carries no image content for segmentation
    is_color = array.ndim == 3 and array.shape[-1] == 3
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3):
        raise ImageReadError(path, f"unsupported raster shape {array.shape}")
    ndim = 2 if (is_color or array.ndim == 2) else 3
    return Image(
        array=array,
        spacing=(1.0,) * ndim,
        origin=(0.0,) * ndim,
        direction=np.eye(ndim),
        path=str(path),
        disk_dtype=disk_dtype,
        is_color=is_color,
    )


def _load_array(path: Path) -> Image:
    try:
        if str(path).lower().endswith(".npz"):
            with np.load(path) as data:
                keys = list(data.keys())
                if not keys:
                    raise ValueError("archive holds no array")
                array = np.asarray(data[keys[0]])
        else:
            array = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise ImageReadError(path, f"not a readable numpy file ({type(exc).__name__}: {exc})") from exc
    ndim = min(array.ndim, 3)
    return Image(array=array, spacing=(1.0,) * ndim, origin=(0.0,) * ndim, direction=np.eye(ndim),
                 path=str(path), disk_dtype=str(array.dtype))


def read_image(path: str | Path) -> Image:
    """Read an image with its geometry, values untouched.

    Parameters
    ----------
    path:
        A NIfTI (``.nii``/``.nii.gz``), raster (PNG, JPEG, TIFF, BMP) or numpy (``.npy``/``.npz``) file.

    Returns
    -------
    Image
        See the module docstring for the axis order. Scaled NIfTI data (``scl_slope``) come back as floats.

    Raises
    ------
    ImageReadError
        Missing, empty, truncated or corrupt file, or an unknown format; the message names the file.
    """
    path = Path(path)
    _check_file(path)
    kind = image_kind(path)
    if kind == "nifti":
        return _load_nifti(path)
    if kind == "raster":
        return _load_raster(path)
    return _load_array(path)

