"""Slice extraction and export of training data (PNG and ``.npz``). Inputs are only read, never written.

Slices are taken along one array axis (see :mod:`segaudit.io.readers` for the axis order). Exported files:

Every name from data is made a safe file name first (:func:`segaudit.io.paths.safe_component`), and every path
is checked to stay under ``<out>``.

- PNG: ``<out>/<dataset>/<case>/<sequence>/<case>_<axis><index>.png`` (8-bit, the normalised slice rescaled
  from its slice range to 0-255) and ``.../mask/<case>_<axis><index>.png`` (label values as stored, uint8 or
  uint16).
- NPZ: ``<out>/<dataset>/<case>/<case>_<axis><index>.npz`` holding ``image`` (float32, sequences x H x W, in
  the order of ``sequences``), ``mask`` (H x W, integer, absent without ground truth), ``sequences``,
  ``spacing`` (the two in-plane spacings, mm) and ``index``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from segaudit.base.types import Spacing
from segaudit.io.atomic import atomic_write
from segaudit.io.paths import inside, output_path, safe_component
from segaudit.preprocess.normalize import Method, normalize


def _save_npz(target: str, payload: dict[str, np.ndarray]) -> None:
    np.savez_compressed(target, **payload)  # type: ignore[arg-type]


def _save_png(target: str, array: np.ndarray) -> None:
    from PIL import Image as PILImage

    PILImage.fromarray(array).save(target, format="PNG")


def slice_indices(shape: tuple[int, ...], axis: int, mask: np.ndarray | None = None,
                  nonempty_only: bool = False) -> list[int]:
    """Indices along ``axis``; with ``nonempty_only`` only those where ``mask`` has foreground."""
    if not 0 <= axis < len(shape):
        raise ValueError(f"axis {axis} out of range for shape {shape}")
    if nonempty_only:
        if mask is None:
            raise ValueError("nonempty_only needs a mask")
        other = tuple(a for a in range(mask.ndim) if a != axis)
        return [int(i) for i in np.flatnonzero(np.any(mask != 0, axis=other))]
    return list(range(shape[axis]))


def extract_slices(array: np.ndarray, axis: int = 2, indices: list[int] | None = None
                   ) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(index, 2D slice)`` along ``axis`` (views: copy before modifying)."""
    for i in indices if indices is not None else range(array.shape[axis]):
        yield i, np.take(array, i, axis=axis)


def _to_uint8(slice_: np.ndarray) -> np.ndarray:
    lo, hi = float(slice_.min()), float(slice_.max())
    if hi <= lo:
        return np.zeros(slice_.shape, dtype=np.uint8)
    return np.round((slice_ - lo) / (hi - lo) * 255).astype(np.uint8)


def export_slices(images: dict[str, np.ndarray], out_dir: str | Path, case: str, dataset: str = "",
                  mask: np.ndarray | None = None, axis: int = 2, method: Method | None = "zscore",
                  fmt: str = "npz", nonempty_only: bool = False,
                  spacing: Spacing | None = None) -> list[Path]:
    """Export one case's slices for training.

    Parameters
    ----------
    images:
        Sequence name -> 3D array, all of one shape (e.g. the four BraTS sequences).
    mask:
        Ground-truth labels of the same shape, or None.
    axis:
        Array axis to slice along (2 = the third storage axis, axial for BraTS files).
    method:
        Normalisation per sequence (see :func:`~segaudit.preprocess.normalize`), ``None`` for raw values.
    fmt:
        ``"npz"`` (stacked float32 sequences + mask per slice) or ``"png"`` (one 8-bit PNG per sequence and
        slice, plus the mask).
    nonempty_only:
        Only slices where the mask has foreground.
    spacing:
        Voxel spacing of the volume (mm, array order); the in-plane pair is stored in each ``.npz``.

    Returns
    -------
    list of Path
        Files written, each written atomically.
    """
    if not images:
        raise ValueError("no image to export")
    shapes = {name: a.shape for name, a in images.items()}
    ref = next(iter(shapes.values()))
    if any(s != ref for s in shapes.values()) or (mask is not None and mask.shape != ref):
        raise ValueError(f"{case}: sequences and mask must share one shape, got {shapes}"
                         + (f" and mask {mask.shape}" if mask is not None else ""))
    if fmt not in ("npz", "png"):
        raise ValueError(f"unknown slice format {fmt!r} (npz or png)")
    names = list(images)
    vols = {n: (normalize(a, method) if method else a.astype(np.float32)) for n, a in images.items()}
    idx = slice_indices(ref, axis, mask, nonempty_only)
    # Dataset, case and sequence names come from data: each becomes one safe path component under out_dir.
    base = output_path(out_dir, dataset, case) if dataset else output_path(out_dir, case)
    dirs = {n: inside(out_dir, base / safe_component(n)) for n in names}
    if fmt == "png" and (len(set(dirs.values())) < len(dirs) or (mask is not None and base / "mask" in dirs.values())):
        raise ValueError(f"{case}: sequence names {names} give clashing PNG folders (one is named 'mask', the "
                         "masks' folder): rename the sequences")
    axis_name = "ijk"[axis] if len(ref) == 3 else "yx"[axis]
    inplane = tuple(s for a, s in enumerate(spacing) if a != axis) if spacing else ()
    written: list[Path] = []
    for i in idx:
        tag = f"{safe_component(case)}_{axis_name}{i:03d}"
        m = np.take(mask, i, axis=axis) if mask is not None else None
        if fmt == "npz":
            stack = np.stack([np.take(vols[n], i, axis=axis) for n in names]).astype(np.float32)
            payload = {"image": stack, "sequences": np.array(names), "index": np.array(i),
                       "spacing": np.array(inplane, dtype=float)}
            if m is not None:
                payload["mask"] = m
            path = base / f"{tag}.npz"
            atomic_write(path, functools.partial(_save_npz, payload=payload))
            written.append(path)
        else:

            for n in names:
                path = dirs[n] / f"{tag}.png"
                arr = _to_uint8(np.take(vols[n], i, axis=axis))
                atomic_write(path, functools.partial(_save_png, array=arr))
                written.append(path)
            if m is not None:
                path = inside(out_dir, base / "mask" / f"{tag}.png")
                labels = m.astype(np.uint8 if m.max(initial=0) < 256 else np.uint16)
                atomic_write(path, functools.partial(_save_png, array=labels))
                written.append(path)
    return written
