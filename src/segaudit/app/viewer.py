"""Server-side slice rendering for the case viewer: numpy and Pillow only (no Streamlit, no browser code).

A volume is read once (cached by path, modification time and mask encoding) and viewed in a canonical RAS
voxel order, so every view has one convention whatever the file's axis order:

* axial (a slice at a fixed superior index): rows go anterior -> posterior, columns patient right -> left
  (radiological convention: the patient's right on the screen's left, as ITK-SNAP and most viewers);
* coronal: rows superior -> inferior, columns right -> left;
* sagittal: rows superior -> inferior, columns anterior -> posterior.

Displayed pixels keep the physical aspect ratio (a 1 x 1 x 5 mm volume's coronal view is five times taller per
row than wide per column). 2D images (x-ray, fundus, H&E, slices) are shown as stored (row 0 at the top).
Large images are reduced by block pooling before drawing: masks by their maximum, so a one-pixel lesion stays
visible at any zoom; :func:`lesion_crop_box` crops to the lesions.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass

import numpy as np
from PIL import Image as PILImage
from scipy import ndimage

from segaudit.io.masks import MaskEncoding, read_mask
from segaudit.io.readers import Image, read_image

AXES = ("axial", "coronal", "sagittal")
#: RAS axis that a view's slice index runs along.
SLICE_AXIS = {"sagittal": 0, "coronal": 1, "axial": 2}

#: Window presets (level, width) in the image's units: CT in Hounsfield units; MRI has no absolute scale, so
#: its windows are percentiles (see :func:`window_bounds`).
PRESETS: dict[str, tuple[float, float]] = {
    "CT brain": (40.0, 80.0), "CT subdural": (75.0, 215.0), "CT soft tissue": (40.0, 400.0),
    "CT lung": (-600.0, 1500.0), "CT bone": (400.0, 1800.0),
}
#: Percentile windows: (low, high) percentiles of the volume's non-zero voxels.
PERCENTILES: dict[str, tuple[float, float]] = {"auto (1-99 %)": (1.0, 99.0), "auto (0.5-99.5 %)": (0.5, 99.5),
                                               "full range": (0.0, 100.0)}

#: Ground-truth label colours (RGB), by label value 1, 2, 3...; cycled for more labels.
LABEL_COLOURS = ((255, 64, 64), (64, 200, 64), (255, 210, 0), (64, 128, 255), (255, 64, 255), (0, 220, 220))
#: Names of :data:`LABEL_COLOURS`, in the same order, for the legend under the image.
LABEL_COLOUR_NAMES = ("red", "green", "yellow", "blue", "magenta", "teal")
PREDICTION_COLOUR = (0, 255, 255)
#: Agreement colouring of one label or region: true positive, false positive, false negative.
TP_COLOUR, FP_COLOUR, FN_COLOUR = (0, 210, 0), (255, 0, 0), (40, 110, 255)


@dataclass
class Volume:
    """An image or mask in canonical view order.

    ``array``: 3D volumes in RAS voxel order (see the module docstring), 2D images as stored (a colour image
    keeps its last channel axis). ``spacing``: one value per spatial axis of ``array`` (mm, or pixels).
    ``ornt``: the nibabel orientation that took the file's voxel axes to RAS (None for 2D), used by
    :func:`view_index` to place a voxel index given in the file's order.
    """

    array: np.ndarray
    spacing: tuple[float, ...]
    is_color: bool = False
    ornt: np.ndarray | None = None
    disk_shape: tuple[int, ...] = ()

    @property
    def ndim(self) -> int:
        """Spatial dimensions (2 or 3)."""
        return len(self.spacing)


def _file_key(path: str) -> tuple[str, int]:
    return str(path), os.stat(path).st_mtime_ns


@functools.lru_cache(maxsize=32)
def _read(path: str, mtime_ns: int, kind: str, encoding: MaskEncoding | None) -> Image:
    # mtime in the key: a rewritten file is read again; otherwise each file is read once per server process.
    return read_mask(path, encoding) if kind == "mask" else read_image(path)


def read_cached(path: str, kind: str = "image", encoding: MaskEncoding | None = None) -> Image:
    """:func:`~segaudit.io.read_image` (``kind="image"``) or :func:`~segaudit.io.read_mask`
    (``kind="mask"``, with ``encoding``), cached by path + modification time + encoding (32 files).
    """
    return _read(*_file_key(path), kind, encoding)


def orientation_of(img: Image) -> np.ndarray | None:
    """The nibabel orientation (per file axis: RAS axis, flip) of a 3D image's affine; None for 2D images."""
    if img.ndim != 3:
        return None
    from nibabel import orientations

    affine = img.affine
    if affine is None:  # a 3D array without a header (numpy file): treat its axes as RAS already
        return np.array([[0, 1], [1, 1], [2, 1]], dtype=float)
    return orientations.io_orientation(affine)


def to_view(img: Image, ornt: np.ndarray | None = None) -> Volume:
    """An :class:`~segaudit.io.Image` in view order.

    ``ornt`` (default: the image's own) lets a mask whose header is known to be wrong use the image's orientation
    instead (same voxel grid).
    """
    if img.ndim == 2:
        return Volume(img.array, tuple(float(s) for s in img.spacing), bool(img.is_color), None,
                      tuple(img.array.shape[:2]))
    from nibabel import orientations

    o = orientation_of(img) if ornt is None else ornt
    assert o is not None  # a 3D image always has an orientation
    arr = orientations.apply_orientation(img.array, o)
    spacing = [0.0, 0.0, 0.0]
    for i, (axis, _) in enumerate(o):
        spacing[int(axis)] = float(img.spacing[i])
    return Volume(arr, tuple(spacing), False, o, tuple(img.array.shape[:3]))


def n_slices(vol: Volume, axis: str) -> int:
    """Number of slices along a view (1 for 2D images)."""
    return 1 if vol.ndim == 2 else int(vol.array.shape[SLICE_AXIS[axis]])


def view_index(vol: Volume, index: tuple[float, ...]) -> tuple[int, ...]:
    """A voxel index in the file's axis order (e.g. a lesion centroid from the store) -> index in ``vol.array``
    (rounded; RAS order for 3D, unchanged for 2D).
    """
    idx = [int(round(v)) for v in index]
    if vol.ornt is None:
        return tuple(idx)
    out = [0, 0, 0]
    for i, (axis, flip) in enumerate(vol.ornt):
        n = vol.disk_shape[i]
        out[int(axis)] = idx[i] if flip > 0 else n - 1 - idx[i]
    return tuple(out)


def centroid_slice(vol: Volume, centroid: tuple[float, ...], axis: str) -> int:
    """The slice of view ``axis`` through a centroid given in file voxel indices (0 for 2D)."""
    if vol.ndim == 2:
        return 0
    return int(np.clip(view_index(vol, centroid)[SLICE_AXIS[axis]], 0, n_slices(vol, axis) - 1))


def take_slice(vol: Volume, axis: str, index: int) -> tuple[np.ndarray, tuple[float, float]]:
    """One 2D slice in display order and its (row, column) pixel spacing.

    3D: see the module docstring for the orientation. ``index`` is clipped to the volume. 2D images: the image
    itself, ``axis`` and ``index`` ignored.
    """
    if vol.ndim == 2:
        return vol.array, (vol.spacing[0], vol.spacing[1])
    a = SLICE_AXIS[axis]
    index = int(np.clip(index, 0, vol.array.shape[a] - 1))
    # Basic indexing: a view of the two remaining RAS axes, in order (np.take copied through the whole
    # Fortran-ordered volume, about 0.1 s a slice on a 240 x 240 x 155 scan).
    s = vol.array[tuple(index if i == a else slice(None) for i in range(3))]
    rest = [i for i in range(3) if i != a]
    # Transposed so rows run along the later RAS axis, both flipped: rows top = anterior (axial) or superior
    # (coronal, sagittal); columns left = patient right (axial, coronal) or anterior (sagittal).
    img = s.T[::-1, ::-1]
    return img, (vol.spacing[rest[1]], vol.spacing[rest[0]])


def display_pixel(vol: Volume, axis: str, index: tuple[float, ...]) -> tuple[int, int]:
    """(row, column) in :func:`take_slice`'s slice of a voxel given in file order (2D: (row, col) unchanged)."""
    if vol.ndim == 2:
        return int(round(index[0])), int(round(index[1]))
    v = view_index(vol, index)
    a = SLICE_AXIS[axis]
    rest = [i for i in range(3) if i != a]
    return vol.array.shape[rest[1]] - 1 - v[rest[1]], vol.array.shape[rest[0]] - 1 - v[rest[0]]


def window_bounds(array: np.ndarray, preset: str = "auto (1-99 %)", level: float | None = None,
                  width: float | None = None) -> tuple[float, float]:
    """(low, high) intensity window.

    ``level`` and ``width`` given: ``level ± width / 2``. Else ``preset``: a :data:`PRESETS` name (level,
    width in the image's units) or a :data:`PERCENTILES` name (percentiles of the non-zero finite voxels, so
    a background of zeros does not squeeze the window). A flat or empty image gives a window of width 1.
    """
    if level is not None and width is not None:
        lo, hi = level - width / 2, level + width / 2
    elif preset in PRESETS:
        lv, w = PRESETS[preset]
        lo, hi = lv - w / 2, lv + w / 2
    else:
        p = PERCENTILES.get(preset, PERCENTILES["auto (1-99 %)"])
        v = np.asarray(array, dtype=float)
        v = v[np.isfinite(v) & (v != 0)]
        if v.size > 2_000_000:  # a strided sample: the percentiles of 2M voxels are stable to < 0.1 %
            v = v[:: v.size // 2_000_000]
        lo, hi = (float(x) for x in np.percentile(v, p)) if v.size else (0.0, 1.0)
    if not hi > lo:
        hi = lo + 1.0
    return float(lo), float(hi)


def apply_window(image: np.ndarray, low: float, high: float) -> np.ndarray:
    """Linear map of [low, high] to 0..255 (clipped), as uint8; colour images per channel."""
    x = (np.asarray(image, dtype=np.float32) - low) / (high - low)
    return (np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def lesion_crop_box(*masks: np.ndarray | None, margin: float = 0.5,
                    min_size: int = 32) -> tuple[int, int, int, int] | None:
    """(row0, row1, col0, col1) around the non-zero pixels of the masks, widened by ``margin`` of the box
    size on each side and to at least ``min_size`` pixels, clipped to the image; None when all are empty.
    """
    shapes = [m.shape[:2] for m in masks if m is not None]
    fg = [np.asarray(m) != 0 for m in masks if m is not None]
    if not fg:
        return None
    union = np.logical_or.reduce(fg)
    if not union.any():
        return None
    rows, cols = np.nonzero(union.any(axis=1))[0], np.nonzero(union.any(axis=0))[0]
    h, w = shapes[0]
    out = []
    for lo, hi, n in ((rows[0], rows[-1] + 1, h), (cols[0], cols[-1] + 1, w)):
        size = max(hi - lo, 1)
        pad = int(math.ceil(size * margin))
        lo, hi = lo - pad, hi + pad
        if hi - lo < min_size:
            extra = min_size - (hi - lo)
            lo, hi = lo - extra // 2, hi + extra - extra // 2
        lo, hi = max(lo, 0), min(hi, n)
        out += [int(lo), int(hi)]
    return out[0], out[1], out[2], out[3]


def pool(a: np.ndarray, f: int, how: str = "mean") -> np.ndarray:
    """Block-reduce the first two axes by an integer factor ``f`` (edge blocks padded).

    ``"mean"`` for intensities, ``"max"`` for masks (a one-pixel lesion survives).
    """
    if f <= 1:
        return a
    h, w = a.shape[:2]
    ph, pw = (-h) % f, (-w) % f
    pad = [(0, ph), (0, pw)] + [(0, 0)] * (a.ndim - 2)
    a = np.pad(a, pad, mode="edge")
    shape = (a.shape[0] // f, f, a.shape[1] // f, f) + a.shape[2:]
    b = a.reshape(shape)
    return b.max(axis=(1, 3)) if how == "max" else b.mean(axis=(1, 3)).astype(a.dtype if how == "keep" else float)


def outline(mask: np.ndarray) -> np.ndarray:
    """Boundary pixels of a binary mask: the mask minus its erosion (a one-pixel object is its own outline)."""
    m = np.asarray(mask, dtype=bool)
    return m & ~ndimage.binary_erosion(m, border_value=0)


@dataclass(frozen=True)
class Overlay:
    """How masks are drawn.

    ``gt`` and ``prediction``: ``"off"``, ``"outline"`` or ``"fill"``; ``opacity`` of fills (outlines are opaque);
    ``agreement``: label values of one label or region -> true positives, false positives and false negatives of the
    prediction against the ground truth are coloured instead (:data:`TP_COLOUR`, :data:`FP_COLOUR`, :data:`FN_COLOUR`).
    """

    gt: str = "fill"
    prediction: str = "outline"
    opacity: float = 0.4
    agreement: tuple[int, ...] | None = None


def _paint(rgb: np.ndarray, mask: np.ndarray, colour, style: str, opacity: float) -> None:
    if style == "off" or not mask.any():
        return
    if style == "outline":
        rgb[outline(mask)] = colour
        return
    c = np.asarray(colour, dtype=np.float32)
    rgb[mask] = (1 - opacity) * rgb[mask] + opacity * c


def label_colour(value: int) -> tuple[int, int, int]:
    """The RGB colour of ground-truth label ``value`` (1, 2, 3...; cycled over :data:`LABEL_COLOURS`)."""
    return LABEL_COLOURS[(int(value) - 1) % len(LABEL_COLOURS)]


def label_legend(labels: dict[str, int]) -> str:
    """The colour of each declared label in words, by value: ``"NEC (1) red, EDE (2) green"``.

    Without declared labels (no project file) the first four colours are listed by value.

    >>> label_legend({"EDE": 2, "NEC": 1})
    'NEC (1) red, EDE (2) green'
    """
    if not labels:
        return ", ".join(f"{v} {LABEL_COLOUR_NAMES[v - 1]}" for v in range(1, 5))
    return ", ".join(f"{name} ({v}) {LABEL_COLOUR_NAMES[(v - 1) % len(LABEL_COLOUR_NAMES)]}"
                     for name, v in sorted(labels.items(), key=lambda kv: kv[1]) if v > 0)


def compose(image: np.ndarray | None, gt: np.ndarray | None, pred: np.ndarray | None, overlay: Overlay,
            window: tuple[float, float] | None = None) -> np.ndarray:
    """Grey (or colour) image with the ground truth and prediction drawn on it, as an RGB uint8 array at the
    input's pixel grid. Without an image the background is black. Ground-truth labels take
    :data:`LABEL_COLOURS` by value; the prediction :data:`PREDICTION_COLOUR`.
    """
    ref = next(a for a in (image, gt, pred) if a is not None)
    h, w = ref.shape[:2]
    if image is None:
        rgb = np.zeros((h, w, 3), np.float32)
    else:
        lo, hi = window if window is not None else window_bounds(image)
        g = apply_window(image, lo, hi) if image.dtype != np.uint8 or window is not None else image
        rgb = (np.repeat(g[..., None], 3, axis=2) if g.ndim == 2 else g[..., :3]).astype(np.float32)
    if overlay.agreement is not None and gt is not None and pred is not None:
        vals = list(overlay.agreement)
        g, p = np.isin(gt, vals), np.isin(pred, vals)
        style = overlay.gt if overlay.gt != "off" else "fill"
        for m, colour in ((g & p, TP_COLOUR), (p & ~g, FP_COLOUR), (g & ~p, FN_COLOUR)):
            _paint(rgb, m, colour, style, overlay.opacity)
    else:
        if gt is not None:
            for v in np.unique(gt):
                if v != 0:
                    _paint(rgb, gt == v, label_colour(int(v)), overlay.gt, overlay.opacity)
        if pred is not None:
            _paint(rgb, pred != 0, PREDICTION_COLOUR, overlay.prediction, overlay.opacity)
    return np.clip(rgb + 0.5, 0, 255).astype(np.uint8)


def render_view(image: np.ndarray | None, gt: np.ndarray | None, pred: np.ndarray | None,
           spacing: tuple[float, float] = (1.0, 1.0), overlay: Overlay = Overlay(),
           window: tuple[float, float] | None = None, crop: tuple[int, int, int, int] | None = None,
           max_side: int = 720) -> np.ndarray:
    """A display-ready RGB slice.

    Cropped, pooled to at most ``max_side`` pixels (masks by maximum), composed (:func:`compose`), then resized
    (nearest) to the physical aspect ratio ``spacing`` = (row, column) size of a pixel, with its longer side
    ``max_side`` (small slices are enlarged).
    """
    if crop is not None:
        r0, r1, c0, c1 = crop
        image, gt, pred = (None if a is None else a[r0:r1, c0:c1] for a in (image, gt, pred))
    ref = next(a for a in (image, gt, pred) if a is not None)
    h, w = ref.shape[:2]
    f = max(1, int(math.ceil(max(h * spacing[0], w * spacing[1]) / min(spacing) / max_side)))
    if f > 1:
        if image is not None and window is None:
            window = window_bounds(image)
        image = None if image is None else pool(image.astype(np.float32), f, "mean")
        if overlay.agreement is not None and gt is not None and pred is not None:
            # Pool the agreement classes, not the labels: max(gt) and max(pred) of a block need not match.
            vals = list(overlay.agreement)
            g, p = np.isin(gt, vals), np.isin(pred, vals)
            gt, pred = pool(g.astype(np.uint8), f, "max"), pool(p.astype(np.uint8), f, "max")
            overlay = Overlay(overlay.gt, overlay.prediction, overlay.opacity, (1,))
        else:
            gt = None if gt is None else pool(gt, f, "max")
            pred = None if pred is None else pool(pred, f, "max")
        h, w = ref.shape[0] // f + (ref.shape[0] % f > 0), ref.shape[1] // f + (ref.shape[1] % f > 0)
    rgb = compose(image, gt, pred, overlay, window)
    ph, pw = h * spacing[0], w * spacing[1]
    scale = max_side / max(ph, pw)
    size = (max(1, int(round(pw * scale))), max(1, int(round(ph * scale))))
    return np.asarray(PILImage.fromarray(rgb).resize(size, PILImage.Resampling.NEAREST))


def to_png(rgb: np.ndarray) -> bytes:
    """PNG bytes of an RGB uint8 array."""
    import io

    buf = io.BytesIO()
    PILImage.fromarray(rgb).save(buf, format="PNG", compress_level=1)  # fast: a slice is sent once
    return buf.getvalue()
