"""Decoding masks: stored values -> integer labels (or a soft map in [0, 1]) through a :class:`MaskEncoding`.

:func:`read_mask` returns an integer array. Masks stored as floats (the AUDIT sample predictions are float64)
are converted only when every value is integral and finite; otherwise :class:`~segaudit.errors.MaskValueError`
names the file and shows offending values. Binary 2D masks drawn as 0/255 or in one colour channel are read
through a :class:`MaskEncoding`, declared in the project file, not through special-case code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from segaudit.errors import MaskValueError
from segaudit.io.readers import Image, read_image

Channel = Literal["red", "green", "blue", "gray", "any"]
_CHANNEL_INDEX = {"red": 0, "green": 1, "blue": 2}


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
    order: Literal["C", "F"] = "F" if array.flags.f_contiguous and not array.flags.c_contiguous else "C"
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


def stored_mask_values(img: Image, encoding: MaskEncoding | None = None) -> tuple[np.ndarray, bool]:
    """The stored values of a mask file to decode, and whether they are colours: ``(array, is_color)``.

    Palette (indexed) PNG/BMP files give their palette indices (the labels of a palette label map) unless the
    encoding names a colour channel, in which case their colours are used as for any colour file.

    Raises
    ------
    MaskValueError
        The file holds more than a 2D or 3D mask (a 4D volume whose extra axis is not of size 1).
    """
    if img.extra_axes:
        raise MaskValueError(img.path, f"mask has {img.array.ndim} dimensions (shape {tuple(img.array.shape)}); "
                                       f"a mask must be 2D or 3D, and axes {img.extra_axes} beyond the spatial "
                                       f"{img.shape} are not of size 1")
    if img.indices is not None and (encoding is None or encoding.channel is None):
        return img.indices, False
    return img.array, img.is_color


def read_probability(path: str | Path, encoding: MaskEncoding | None = None, max_bytes: int | None = None) -> Image:
    """Read a soft prediction (``kind="probability"``) as float32 in [0, 1] (colour files need a channel).

    ``max_bytes`` is the memory budget of :func:`~segaudit.io.readers.read_image`.
    """
    img = read_image(path, max_bytes)
    array, is_color = stored_mask_values(img, encoding)
    if is_color:
        enc = encoding or MaskEncoding()
        if enc.channel in _CHANNEL_INDEX:
            array = array[..., _CHANNEL_INDEX[enc.channel]]
        else:
            raise MaskValueError(path, "probability map is an RGB image; declare channel: red|green|blue")
    img.array = to_probability(np.asarray(array), img.path)
    img.is_color = False
    img.indices = None
    return img


def read_mask(path: str | Path, encoding: MaskEncoding | None = None, max_bytes: int | None = None) -> Image:
    """Read a label mask and return it with integer values.

    Parameters
    ----------
    path:
        Mask file (any format :func:`read_image` reads).
    encoding:
        How labels are stored (default: values are labels). See :class:`MaskEncoding`. Palette (indexed)
        PNGs are read as their palette indices unless a colour channel is declared.
    max_bytes:
        Memory budget of :func:`~segaudit.io.readers.read_image` (default ``SEGAUDIT_MAX_IMAGE_BYTES`` or 4 GiB).

    Returns
    -------
    Image
        ``array`` holds integers (smallest fitting dtype); ``disk_dtype`` keeps the stored type.

    Raises
    ------
    ImageReadError
        The file cannot be read.
    MaskValueError
        Non-integral or non-finite values, a colour mask without a declared channel, or a 4D file.
    """
    img = read_image(path, max_bytes)
    array, is_color = stored_mask_values(img, encoding)
    img.array = decode_mask(array, encoding or MaskEncoding(), img.path, is_color)
    img.is_color = False
    img.indices = None
    return img
