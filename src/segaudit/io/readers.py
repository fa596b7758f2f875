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
import logging
import os
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import numpy as np

from segaudit.base.types import Spacing
from segaudit.errors import ConfigError, ImageReadError

NIFTI_SUFFIXES = (".nii.gz", ".nii")
RASTER_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
ARRAY_SUFFIXES = (".npy", ".npz")
IMAGE_SUFFIXES = NIFTI_SUFFIXES + RASTER_SUFFIXES + ARRAY_SUFFIXES

#: Largest data size (bytes, as the header claims it: voxels x bytes per voxel) a reader allocates by default.
DEFAULT_MAX_IMAGE_BYTES = 4 * 1024**3
#: Environment variable overriding :data:`DEFAULT_MAX_IMAGE_BYTES` (``8G``, ``500M``, ``1000000``...).
MAX_IMAGE_BYTES_ENV = "SEGAUDIT_MAX_IMAGE_BYTES"
#: Deflate (gzip, zlib, PNG) cannot expand more than 1032-fold: one 258-byte match per 2 bits at best.
DEFLATE_MAX_RATIO = 1032

_log = logging.getLogger("segaudit.io")


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
    stored_shape:
        The data shape the file declares, before trailing singleton axes beyond the third were dropped
        (a NIfTI ``(240, 240, 155, 1)`` is read as ``(240, 240, 155)``); ``()`` when not known.
    indices:
        For palette (indexed, mode ``P``) PNG/BMP files only: the stored palette indices, while ``array``
        holds the colours a person sees. :func:`~segaudit.io.masks.read_mask` reads these as the labels.
    notes:
        What the reader had to say about the file (nibabel's header warnings), each naming the file and also
        logged as a warning (logger ``segaudit.io``); empty for a clean file.
    """

    array: np.ndarray
    spacing: Spacing
    origin: tuple[float, ...]
    direction: np.ndarray
    path: str = ""
    affine: np.ndarray | None = None
    disk_dtype: str = ""
    is_color: bool = False
    #: True when ``spacing`` is a physical size in mm (NIfTI headers, or a spacing declared in the project);
    #: False for PNG/JPEG/TIFF/BMP and numpy files, whose spacing 1 is one pixel, not one millimetre.
    physical: bool = False
    stored_shape: tuple[int, ...] = ()
    indices: np.ndarray | None = field(default=None, repr=False)
    notes: list[str] = field(default_factory=list)

    @property
    def extra_axes(self) -> tuple[int, ...]:
        """Sizes of the data axes beyond the spatial ones (and a colour channel).

        ``(3,)`` for a 4D volume of three time points, ``()`` for a plain 2D or 3D image.
        """
        return tuple(self.array.shape[self.ndim + (1 if self.is_color else 0):])

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


_SIZE_SUFFIXES = {"": 1, "B": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def parse_byte_size(text: str | int) -> int:
    """Bytes of a size written ``4294967296``, ``4G``, ``500M``, ``64K`` or ``1.5G`` (binary multiples).

    Raises
    ------
    ValueError
        Not a positive size.
    """
    raw = str(text).strip().upper().removesuffix("IB").removesuffix("B")
    unit = raw[-1:] if raw[-1:] in _SIZE_SUFFIXES else ""
    try:
        value = float(raw[: len(raw) - len(unit)]) * _SIZE_SUFFIXES[unit]
    except ValueError:
        value = float("nan")
    if not value > 0:
        raise ValueError(f"{text!r} is not a positive size (bytes, or a number with K, M, G or T)")
    return int(value)


def max_image_bytes(max_bytes: int | None = None) -> int:
    """The memory budget of one read, in bytes.

    ``max_bytes`` when given, else the environment variable :data:`MAX_IMAGE_BYTES_ENV`, else
    :data:`DEFAULT_MAX_IMAGE_BYTES` (4 GiB).

    Raises
    ------
    ConfigError
        The environment variable does not hold a size.
    """
    if max_bytes is not None:
        return int(max_bytes)
    text = os.environ.get(MAX_IMAGE_BYTES_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_IMAGE_BYTES
    try:
        return parse_byte_size(text)
    except ValueError as exc:
        raise ConfigError(f"{MAX_IMAGE_BYTES_ENV}: {exc}") from exc


def format_bytes(n: float) -> str:
    """``8.0 GB``-style text (decimal units, as file managers show sizes)."""
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{int(n)} bytes" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover - the loop returns


def check_claimed_size(path: Path, shape: tuple[int, ...], itemsize: int, budget: int,
                       payload: int | None = None, compressed: int | None = None) -> int:
    """Refuse a header whose data cannot be in the file or would not fit the memory budget, before allocating.

    Parameters
    ----------
    path:
        The file (for the message).
    shape, itemsize:
        The data shape and bytes per value the header declares; ``claimed = prod(shape) * itemsize``.
    budget:
        Largest ``claimed`` accepted, in bytes (see :func:`max_image_bytes`).
    payload:
        Bytes of raw (uncompressed) data the file holds after its header: ``claimed`` must not exceed it.
    compressed:
        Bytes of a deflate-compressed file (``.nii.gz``, PNG): ``claimed`` must not exceed
        :data:`DEFLATE_MAX_RATIO` times it, the most deflate can expand.

    Returns
    -------
    int
        The claimed size in bytes.

    Raises
    ------
    ImageReadError
        Naming the file, the claimed shape and size, and the reason.
    """
    claimed = int(np.prod([int(v) for v in shape], dtype=object)) * int(itemsize)
    what = f"its header claims {'×'.join(str(int(v)) for v in shape)} values of {itemsize} byte(s) = " \
           f"{format_bytes(claimed)}"
    if payload is not None and claimed > payload:
        raise ImageReadError(path, f"{what}, but the file holds only {format_bytes(max(payload, 0))} of data "
                                   "(a truncated file or a corrupt header); not read")
    if compressed is not None and claimed > compressed * DEFLATE_MAX_RATIO:
        raise ImageReadError(path, f"{what}, but a compressed file of {format_bytes(compressed)} inflates to "
                                   f"at most {format_bytes(compressed * DEFLATE_MAX_RATIO)} (deflate expands "
                                   f"at most {DEFLATE_MAX_RATIO}-fold): a truncated file or a corrupt header; not read")
    if claimed > budget:
        raise ImageReadError(path, f"{what}, above the memory budget of {format_bytes(budget)} per image; "
                                   f"not read (raise it with {MAX_IMAGE_BYTES_ENV}, e.g. "
                                   f"{MAX_IMAGE_BYTES_ENV}=16G, if the file is genuine)")
    return claimed


_capture = threading.local()


class _NibabelLogCapture(logging.Filter):
    """Diverts nibabel's log records to the read in progress on this thread (see :func:`_nibabel_log`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        sink = getattr(_capture, "sink", None)
        if sink is None:
            return True  # not inside a segaudit read: nibabel's own handling
        sink.append(record.getMessage())
        return False


_NIBABEL_FILTER = _NibabelLogCapture()


@contextmanager
def _nibabel_log() -> Iterator[list[str]]:
    """Collect what nibabel logs (``sizeof_hdr should be 348; ...``) during a read.

    Instead of letting it reach stderr without a file name; the caller re-emits each line with the file's path.
    """
    import nibabel  # noqa: F401 - configures the 'nibabel.global' logger

    logger = logging.getLogger("nibabel.global")
    if _NIBABEL_FILTER not in logger.filters:
        logger.addFilter(_NIBABEL_FILTER)
    previous = getattr(_capture, "sink", None)
    sink: list[str] = []
    _capture.sink = sink
    try:
        yield sink
    finally:
        _capture.sink = previous


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


def drop_singleton_axes(array: np.ndarray, spatial: int = 3) -> np.ndarray:
    """``array`` without its size-1 axes beyond the first ``spatial`` ones (a view, no copy).

    A NIfTI ``(240, 240, 155, 1)`` (one time point, ``dim[0] = 4``) is a 3D volume; spatial axes of size 1
    (a ``(512, 512, 1)`` slice) are kept, because they carry a spacing and a direction.
    """
    shape = array.shape[:spatial] + tuple(s for s in array.shape[spatial:] if s != 1)
    return array if shape == array.shape else array.reshape(shape)


def _with_notes(img: Image, notes: list[str]) -> Image:
    """Record reader notes on ``img`` and log each (they name the file) once."""
    for note in dict.fromkeys(notes):  # nibabel checks a header twice on some paths: say it once
        img.notes.append(note)
        _log.warning(note)
    return img


def _load_nifti(path: Path, budget: int) -> Image:
    with _nibabel_log() as said:
        try:
            img = _read_nifti(path, budget)
        except ImageReadError as exc:
            if not said:
                raise
            raise ImageReadError(path, f"{exc.reason} (nibabel: {'; '.join(dict.fromkeys(said))})") from exc
    return _with_notes(img, [f"{path}: nibabel: {m}" for m in said])


def _read_nifti(path: Path, budget: int) -> Image:
    import nibabel as nib

    gz = str(path).lower().endswith(".gz")
    try:  # the header only (nibabel loads lazily): its claimed size is checked before any voxel is allocated
        # nib.load is annotated as the generic FileBasedImage; a .nii(.gz) loads as a Nifti1Image (Nifti2 subclasses it)
        lazy = cast("nib.Nifti1Image", nib.load(str(path)))
        claimed_shape = tuple(int(s) for s in lazy.header.get_data_shape())
        itemsize = lazy.header.get_data_dtype().itemsize
        offset = int(lazy.header.get_data_offset())
    except Exception as exc:  # nibabel raises many types; all mean "cannot read"
        raise _nifti_failure(path, exc) from exc
    size = path.stat().st_size
    check_claimed_size(path, claimed_shape, itemsize, budget, payload=None if gz else size - offset,
                       compressed=size if gz else None)
    fast = _fast_nifti_gz(path) if gz else None
    try:
        if fast is not None:
            img, array = fast
        else:
            img = lazy
            array = np.asanyarray(img.dataobj)
        hdr = img.header
        shape = tuple(int(s) for s in hdr.get_data_shape())
    except Exception as exc:  # nibabel raises many types; all mean "cannot read"
        raise _nifti_failure(path, exc) from exc
    if array.shape != shape:
        raise ImageReadError(path, f"data has shape {array.shape}, header says {shape}")
    array = drop_singleton_axes(array)
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
        stored_shape=shape,
    )


def _load_raster(path: Path, budget: int) -> Image:
    name = str(path).lower()
    indices = None
    try:
        if name.endswith((".tif", ".tiff")):
            import tifffile

            with tifffile.TiffFile(str(path)) as tif:
                series = tif.series[0]  # what imread returns; its shape and dtype come from the tags
                check_claimed_size(path, tuple(series.shape), np.dtype(series.dtype).itemsize, budget)
                array = np.asarray(tif.asarray())
            disk_dtype = str(array.dtype)
        else:
            from PIL import Image as PILImage

            with PILImage.open(path) as pil:
                # Size and mode come from the header (PIL opens lazily): the budget is checked before decoding.
                bytes_per_band = {"I;16": 2, "I;16B": 2, "I;16L": 2, "I": 4, "F": 4}.get(pil.mode, 1)
                check_claimed_size(path, (pil.size[1], pil.size[0], len(pil.getbands())), bytes_per_band, budget)
                pil.load()
                if pil.mode in ("P", "PA"):
                    # Palette images: the palette colours are what a person sees; the indices are kept for
                    # masks, whose labels they are (a palette label map shows each label in its colour).
                    stored = np.asarray(pil)
                    indices = stored[..., 0] if stored.ndim == 3 else stored
                    pil = pil.convert("RGBA" if "transparency" in pil.info or pil.mode == "PA" else "RGB")
                elif pil.mode == "LA":
                    pil = pil.convert("L")
                array = np.asarray(pil)
                disk_dtype = str(array.dtype)
    except ImageReadError:
        raise
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
        stored_shape=tuple(array.shape),
        indices=indices,
    )


def _npy_header(fh) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of the ``.npy`` stream at ``fh``, read from its header only."""
    version = np.lib.format.read_magic(fh)
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, _fortran, dtype = read(fh)
    return tuple(int(v) for v in shape), np.dtype(dtype)


def _check_array_header(path: Path, budget: int) -> None:
    """Refuse a ``.npy``/``.npz`` whose header claims more data than the file holds or than the budget."""
    import zipfile

    try:
        if str(path).lower().endswith(".npz"):
            with zipfile.ZipFile(path) as zf:
                infos = zf.infolist()
                if not infos:
                    return
                with zf.open(infos[0]) as fh:  # np.load's first key is the archive's first member
                    shape, dtype = _npy_header(fh)
                    payload = infos[0].file_size - fh.tell()
        else:
            with open(path, "rb") as fh:
                shape, dtype = _npy_header(fh)
                payload = path.stat().st_size - fh.tell()
    except Exception:  # noqa: BLE001 - no readable header: np.load reports the failure below
        return
    check_claimed_size(path, shape, dtype.itemsize, budget, payload=payload)


def _load_array(path: Path, budget: int) -> Image:
    _check_array_header(path, budget)
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
    stored = tuple(array.shape)
    array = drop_singleton_axes(array)
    ndim = min(array.ndim, 3)
    return Image(array=array, spacing=(1.0,) * ndim, origin=(0.0,) * ndim, direction=np.eye(ndim),
                 path=str(path), disk_dtype=str(array.dtype), stored_shape=stored)


def read_image(path: str | Path, max_bytes: int | None = None) -> Image:
    """Read an image with its geometry, values untouched.

    Parameters
    ----------
    path:
        A NIfTI (``.nii``/``.nii.gz``), raster (PNG, JPEG, TIFF, BMP) or numpy (``.npy``/``.npz``) file.
    max_bytes:
        Memory budget: the largest data size (voxels x bytes per stored value, as the header claims it) read;
        default :func:`max_image_bytes` (``SEGAUDIT_MAX_IMAGE_BYTES``, else 4 GiB). The claim is checked
        against the budget, and against what the file can hold (its size; 1032 times it for ``.nii.gz``),
        before anything is allocated. Size-1 axes beyond the third are dropped (``stored_shape`` keeps them).

    Returns
    -------
    Image
        See the module docstring for the axis order. Scaled NIfTI data (``scl_slope``) come back as floats.

    Raises
    ------
    ImageReadError
        Missing, empty, truncated or corrupt file, an unknown format, or a header claiming more data than the
        file holds or than the budget; the message names the file.
    """
    path = Path(path)
    _check_file(path)
    kind = image_kind(path)
    budget = max_image_bytes(max_bytes)
    if kind == "nifti":
        return _load_nifti(path, budget)
    if kind == "raster":
        return _load_raster(path, budget)
    return _load_array(path, budget)

