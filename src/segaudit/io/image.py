"""Reading images and masks into one :class:`Image` record.

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

Masks
-----
:func:`read_mask` returns an integer array. Masks stored as floats (the AUDIT sample predictions are float64)
are converted only when every value is integral and finite; otherwise :class:`~segaudit.errors.MaskValueError`
names the file and shows offending values. Binary 2D masks drawn as 0/255 or in one colour channel are read
through a :class:`MaskEncoding`, declared in the project file, not through special-case code.
"""

from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from segaudit.errors import ImageReadError, MaskValueError

NIFTI_SUFFIXES = (".nii.gz", ".nii")
RASTER_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
ARRAY_SUFFIXES = (".npy", ".npz")
IMAGE_SUFFIXES = NIFTI_SUFFIXES + RASTER_SUFFIXES + ARRAY_SUFFIXES

Channel = Literal["red", "green", "blue", "gray", "any"]
_CHANNEL_INDEX = {"red": 0, "green": 1, "blue": 2}


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


@dataclass(frozen=True)
class MaskEncoding:
    """How label values are stored in a mask file.

    Parameters
    ----------
    kind:
        ``"labels"`` (default): the stored values are the label values (after an integral check for floats).
        ``"binary"``: a drawn binary mask; pixels whose (selected) value exceeds ``threshold`` become
        ``foreground``, all others 0. Use it for 0/255 PNGs and colour drawings.
        ``"instances"`` (predictions only): an instance map, 0 = background and every other value one object
        (one nucleus), ids arbitrary; read as plain integers. ``segaudit evaluate`` then scores it against the
        dataset's ``instances`` ground truth with PQ, AJI and AJI+, and its union of instances against the
        ground-truth foreground (class-agnostic: an instance map carries no class).
    channel:
        For colour files: ``"red"``, ``"green"`` or ``"blue"`` selects one channel, ``"gray"`` converts to
        luminance (ITU-R 601), ``"any"`` takes the maximum over channels. ``None`` (default) refuses colour
        masks with a clear error rather than guessing.
    threshold:
        Strict lower bound for foreground with ``kind="binary"`` (default 127, the midpoint of 8-bit values).
        With ``kind="probability"`` (a soft map in [0, 1]; 8/16-bit rasters are scaled to [0, 1]) voxels with
        probability >= ``threshold`` are foreground (default 0.5), as MONAI's ``AsDiscrete(threshold=...)``.
    foreground:
        Label value written for foreground pixels with ``kind="binary"`` (default 1).
    """

    kind: Literal["labels", "binary", "probability", "instances"] = "labels"
    channel: Channel | None = None
    threshold: float = 127.0
    foreground: int = 1

    @classmethod
    def from_dict(cls, data: dict | None) -> MaskEncoding:
        """Build from the ``mask_encoding`` mapping of a project file (unknown keys are an error)."""
        if not data:
            return cls()
        unknown = set(data) - {"kind", "channel", "threshold", "foreground"}
        if unknown:
            raise ValueError(f"unknown mask_encoding key(s) {sorted(unknown)}; allowed: kind, channel, "
                             "threshold, foreground")
        data = dict(data)
        if data.get("kind") == "probability" and "threshold" not in data:
            data["threshold"] = 0.5
        enc = cls(**data)
        if enc.kind not in ("labels", "binary", "probability", "instances"):
            raise ValueError(f"mask_encoding.kind must be 'labels', 'binary', 'probability' or 'instances', "
                             f"not {enc.kind!r}")
        if enc.kind == "probability" and not 0 <= float(enc.threshold) <= 1:
            raise ValueError(f"a probability threshold must lie in [0, 1], not {enc.threshold!r}")
        if enc.channel not in (None, "red", "green", "blue", "gray", "any"):
            raise ValueError(f"mask_encoding.channel must be red, green, blue, gray or any, not {enc.channel!r}")
        return enc

    def to_dict(self) -> dict:
        """The non-default fields, as written in a project file."""
        out: dict = {"kind": self.kind}
        if self.channel is not None:
            out["channel"] = self.channel
        if self.kind == "binary":
            out["threshold"] = self.threshold
            out["foreground"] = self.foreground
        if self.kind == "probability":
            out["threshold"] = self.threshold
        return out


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


def _smallest_int_dtype(lo: int, hi: int) -> np.dtype:
    for dt in (np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32, np.int64):
        info = np.iinfo(dt)
        if info.min <= lo and hi <= info.max:
            return np.dtype(dt)
    return np.dtype(np.int64)


def _sparse_float_labels(array: np.ndarray) -> np.ndarray | None:
    """Integer labels of a float label map when every value is finite and integral, else None.

    Masks are mostly background, so only the non-zero voxels are checked and converted: one pass over the
    array in memory order instead of several full-size temporaries (float64 predictions are 8 bytes a voxel).
    """
    if array.size == 0:
        return None
    order = "F" if array.flags.f_contiguous and not array.flags.c_contiguous else "C"
    flat = array.ravel(order=order)
    nz = np.flatnonzero(flat)
    vals = flat[nz]
    with np.errstate(invalid="ignore", over="ignore"):
        ints = vals.astype(np.int64)
    if (ints != vals).any():  # NaN, inf or a fraction: let the caller explain
        return None
    lo = min(int(ints.min(initial=0)), 0)
    hi = max(int(ints.max(initial=0)), 0)
    out = np.zeros(flat.size, dtype=_smallest_int_dtype(lo, hi))
    out[nz] = ints
    return out.reshape(array.shape, order=order)


def to_label_array(array: np.ndarray, path: str | Path = "") -> np.ndarray:
    """Convert a label array to the smallest integer dtype that holds it.

    Floats are accepted only when all values are finite and integral (``x == round(x)`` exactly);
    anything else raises :class:`MaskValueError` with the count and a few examples of the bad values.
    Integer and boolean arrays are returned unchanged except for the dtype.
    """
    if array.dtype == bool:
        return array.astype(np.uint8)
    if np.issubdtype(array.dtype, np.integer):
        if array.size == 0:
            return array
        lo, hi = int(array.min()), int(array.max())
        dt = _smallest_int_dtype(lo, hi)
        return array if array.dtype == dt else array.astype(dt)
    if not np.issubdtype(array.dtype, np.floating):
        raise MaskValueError(path, f"mask has unsupported dtype {array.dtype}")
    fast = _sparse_float_labels(array)
    if fast is not None:
        return fast
    finite = np.isfinite(array)
    if not finite.all():
        n_bad = int((~finite).sum())
        raise MaskValueError(path, f"mask contains {n_bad} NaN/inf value(s); labels must be finite integers")
    rounded = np.rint(array)
    bad = rounded != array
    if bad.any():
        examples = np.unique(array[bad])[:5]
        shown = ", ".join(f"{v:g}" for v in examples)
        raise MaskValueError(
            path,
            f"mask stored as {array.dtype} has {int(bad.sum())} non-integral value(s) (e.g. {shown}); "
            "labels must be whole numbers (declare the file as a probability map to threshold it)",
        )
    if array.size == 0:
        return array.astype(np.uint8)
    dt = _smallest_int_dtype(int(rounded.min()), int(rounded.max()))
    return rounded.astype(dt)


def decode_mask(array: np.ndarray, encoding: MaskEncoding, path: str | Path = "",
                is_color: bool = False) -> np.ndarray:
    """Apply a :class:`MaskEncoding` to raw stored values and return integer labels.

    Colour arrays (last axis of length 3) need ``encoding.channel``; without it the call fails with a
    message that lists the channels, because guessing a channel silently is how masks go wrong.
    """
    if is_color:
        if encoding.channel is None:
            raise MaskValueError(
                path,
                "mask is an RGB colour image; declare mask_encoding: {kind: binary, channel: red|green|blue|gray}"
                " to say which channel holds the mask",
            )
        if encoding.channel in _CHANNEL_INDEX:
            array = array[..., _CHANNEL_INDEX[encoding.channel]]
        elif encoding.channel == "gray":
            array = array[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        else:  # any
            array = array.max(axis=-1)
    if encoding.kind == "probability":
        return threshold_probability(to_probability(array, path), encoding)
    if encoding.kind == "binary":
        if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
            raise MaskValueError(path, "binary mask contains NaN/inf values")
        fg = array > encoding.threshold
        dt = _smallest_int_dtype(0, int(encoding.foreground))
        return fg.astype(dt) * dt.type(encoding.foreground)
    return to_label_array(array, path)


def to_probability(array: np.ndarray, path: str | Path = "") -> np.ndarray:
    """A soft map as float32 in [0, 1]: floats are checked, 8/16-bit integers are divided by 255/65535.

    Raises :class:`MaskValueError` for NaN/inf or values outside [0, 1].
    """
    if array.dtype == bool:
        return array.astype(np.float32)
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    if array.dtype == np.uint16:
        return array.astype(np.float32) / 65535.0
    if not np.issubdtype(array.dtype, np.floating):
        raise MaskValueError(path, f"probability map has dtype {array.dtype}; expected floats in [0, 1] or 8/16-bit")
    finite = np.isfinite(array)
    if not finite.all():
        raise MaskValueError(path, f"probability map contains {int((~finite).sum())} NaN/inf value(s)")
    lo, hi = float(array.min(initial=0)), float(array.max(initial=0))
    if lo < 0 or hi > 1:
        raise MaskValueError(path, f"probability map has values outside [0, 1] (min {lo:g}, max {hi:g})")
    return array.astype(np.float32, copy=False)


def threshold_probability(prob: np.ndarray, encoding: MaskEncoding) -> np.ndarray:
    """Labels of a soft map: ``encoding.foreground`` where ``prob >= encoding.threshold``, else 0."""
    return (prob >= encoding.threshold).astype(np.uint8) * np.uint8(encoding.foreground)


def read_probability(path: str | Path, encoding: MaskEncoding | None = None) -> Image:
    """Read a soft prediction (``kind="probability"``) as float32 in [0, 1] (colour files need a channel)."""
    img = read_image(path)
    array = img.array
    if img.is_color:
        enc = encoding or MaskEncoding()
        if enc.channel in _CHANNEL_INDEX:
            array = array[..., _CHANNEL_INDEX[enc.channel]]
        else:
            raise MaskValueError(path, "probability map is an RGB image; declare channel: red|green|blue")
    img.array = to_probability(np.asarray(array), img.path)
    img.is_color = False
    return img


def read_mask(path: str | Path, encoding: MaskEncoding | None = None) -> Image:
    """Read a label mask and return it with integer values.

    Parameters
    ----------
    path:
        Mask file (any format :func:`read_image` reads).
    encoding:
        How labels are stored (default: values are labels). See :class:`MaskEncoding`.

    Returns
    -------
    Image
        ``array`` holds integers (smallest fitting dtype); ``disk_dtype`` keeps the stored type.

    Raises
    ------
    ImageReadError
        The file cannot be read.
    MaskValueError
        Non-integral or non-finite values, or a colour mask without a declared channel.
    """
    img = read_image(path)
    img.array = decode_mask(img.array, encoding or MaskEncoding(), img.path, img.is_color)
    img.is_color = False
    return img


@dataclass
class Geometry:
    """The grid of an image without its values: enough to compare two files."""

    shape: tuple[int, ...]
    spacing: tuple[float, ...]
    origin: tuple[float, ...]
    direction: np.ndarray = field(repr=False)
    orientation: str = ""
    #: Whether ``spacing`` is in mm (see :attr:`Image.physical`).
    physical: bool = False

    @classmethod
    def of(cls, img: Image) -> Geometry:
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

            img = nib.load(str(path))
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

