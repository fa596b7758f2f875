"""A promptable 2D model on 3D volumes (slice propagation) and on large 2D images (tiles); no torch here.

Slice propagation follows LiteMedSAM's 3D inference (bowang-lab/MedSAM, branch LiteMedSAM,
``CVPR24_LiteMedSAM_infer.py``): the ground truth's box on a key slice, then slice by slice up and down, each
slice prompted with the box of the previous slice's predicted mask grown by ``bbox_shift`` = 3 pixels of the
256-pixel model frame (``get_bbox256``), within the ground truth's extent along the axis. When a slice comes back
empty the next one falls back to the last box used (``fallback="last"``); upstream falls back to the key slice's
box (``fallback="key"``). Our key slice is the slice with the largest ground-truth area (upstream: the middle of
the 3D box's z range; ``key="middle"``). Slices outside the ground truth's extent are not prompted (their mask is
empty), as upstream: the z range is part of the prompt.

:func:`normalise_mr` is the per-volume MR intensity normalisation of MedSAM's ``pre_MR.py`` (the preprocessing
behind LiteMedSAM's 3D training and challenge data).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from segaudit.models.base import Box, Prompt, PromptableModel
from segaudit.models.prompts import expand_box, mask_box, simulate

__all__ = ["PropagationResult", "TiledResult", "key_slice", "normalise_mr", "predict_tiled", "propagate_3d",
           "tile_windows"]


@dataclass
class PropagationResult:
    """A 3D mask from slice propagation and, per slice index, the box used, where it came from (``"key"``,
    ``"previous"`` for the previous slice's mask box, ``"fallback"``), the model's predicted IoU, the encoder and
    decoder seconds and where the slice's embedding came from (``"encoder"`` or ``"disk"``).
    """

    mask: np.ndarray
    key_slice: int
    boxes: dict[int, Box] = field(default_factory=dict)
    source: dict[int, str] = field(default_factory=dict)
    predicted_iou: dict[int, float] = field(default_factory=dict)
    encode_seconds: dict[int, float] = field(default_factory=dict)
    decode_seconds: dict[int, float] = field(default_factory=dict)
    embedding_source: dict[int, str] = field(default_factory=dict)


def key_slice(gt: np.ndarray, axis: int = 0, rule: Literal["largest", "middle"] = "largest") -> int | None:
    """The key slice index along ``axis``.

    The largest ground-truth area (first on ties) or the middle of the ground truth's extent (``int((z_max - z_min) / 2
    + z_min)``, upstream). None for an empty ground truth.
    """
    area = np.moveaxis(np.asarray(gt, bool), axis, 0).reshape(gt.shape[axis], -1).sum(axis=1)
    nz = np.flatnonzero(area)
    if nz.size == 0:
        return None
    if rule == "middle":
        return int((nz[-1] - nz[0]) / 2 + nz[0])
    return int(np.argmax(area))


def _slice_image(volume: np.ndarray, z: int) -> np.ndarray:
    return np.asarray(volume[z])


def propagate_3d(model: PromptableModel, volume: np.ndarray, gt: np.ndarray, axis: int = 0,
                 key: Literal["largest", "middle"] = "largest", fallback: Literal["last", "key"] = "last",
                 bbox_shift: float = 3.0, shift_frame: int | None = 256, key_box: Box | None = None,
                 slice_image: Callable[[np.ndarray, int], np.ndarray] = _slice_image) -> PropagationResult:
    """Segment a volume slice by slice from one box on the key slice (module docstring).

    Parameters
    ----------
    volume:
        (..., D along ``axis``, ...) image, grey or with a trailing channel axis (then ``axis`` must not be it).
    gt:
        Boolean ground truth with the volume's spatial shape: it gives the key slice, its box (unless
        ``key_box`` is given, e.g. a jittered one) and the slice range (its extent along ``axis``).
    bbox_shift, shift_frame:
        The previous-mask box is grown by ``bbox_shift`` pixels of a frame whose longest side is ``shift_frame``
        (i.e. ``bbox_shift * max(H, W) / shift_frame`` original pixels); ``shift_frame=None``: original pixels.
    slice_image:
        ``(moved volume, z) -> 2D image`` (default: the slice as is; e.g. build a 3-channel slice).

    An empty ground truth gives an empty mask and no model call.
    """
    g = np.moveaxis(np.asarray(gt, bool), axis, 0)
    vol = np.moveaxis(np.asarray(volume), axis, 0)
    out = np.zeros(g.shape, bool)
    z0 = key_slice(g, 0, key)
    if z0 is None:
        return PropagationResult(mask=np.moveaxis(out, 0, axis), key_slice=-1)
    nz = np.flatnonzero(g.reshape(g.shape[0], -1).any(axis=1))
    lo, hi = int(nz[0]), int(nz[-1])
    h, w = g.shape[1:3]
    shift = bbox_shift if shift_frame is None else bbox_shift * max(h, w) / shift_frame
    first = key_box if key_box is not None else mask_box(g[z0])
    if first is None:  # middle rule on a gap slice: the box of the whole extent's projection
        first = mask_box(np.asarray(g[lo:hi + 1].any(axis=0)))
    assert first is not None  # the extent lo..hi holds foreground, so its projection has a box
    res = PropagationResult(mask=out, key_slice=z0)

    def run(z: int, box: Box, source: str) -> None:
        emb = model.encode(slice_image(vol, z))
        pred = model.decode(emb, [Prompt(box=box, kind="box-3d")])[0]
        out[z] = pred.mask
        res.boxes[z], res.source[z], res.predicted_iou[z] = box, source, pred.predicted_iou
        res.encode_seconds[z], res.decode_seconds[z] = emb.encode_seconds, pred.decode_seconds
        res.embedding_source[z] = emb.source

    run(z0, first, "key")
    for direction, stop in ((1, hi), (-1, lo)):
        last = first
        for z in range(z0 + direction, stop + direction, direction):
            prev_box = mask_box(out[z - direction])
            if prev_box is not None:
                box, source = expand_box(prev_box, (h, w), px=shift), "previous"
            else:
                box, source = (last if fallback == "last" else first), "fallback"
            run(z, box, source)
            last = box
    res.mask = np.moveaxis(out, 0, axis)
    return res


def normalise_mr(volume: np.ndarray, lower: float = 0.5, upper: float = 99.5) -> np.ndarray:
    """An MR volume as uint8 0..255, as MedSAM's ``pre_MR.py``: clip to the ``lower``/``upper`` percentiles of the
    non-zero voxels, scale to 0..255, round, and keep the zero (outside the head) voxels 0.

    A volume without non-zero voxels comes back all zeros; a constant non-zero volume comes back 0 inside too (no
    contrast to scale). Values are percentiles (0..100), not fractions.
    """
    v = np.asarray(volume, dtype=np.float64)
    inside = v[v != 0]
    if inside.size == 0:
        return np.zeros(v.shape, np.uint8)
    lo, hi = np.percentile(inside, [lower, upper])
    out = (np.clip(v, lo, hi) - lo) / max(float(hi - lo), 1e-8) * 255.0
    out[v == 0] = 0
    return np.rint(out).astype(np.uint8)


def tile_windows(shape: tuple[int, int], tile: int, overlap: int = 0) -> list[tuple[int, int, int, int]]:
    """``(y0, x0, y1, x1)`` windows (end exclusive) of ``tile``×``tile`` pixels covering the image, stepping by
    ``tile - overlap``; the last row/column of windows is aligned to the image's end, so every window is full-size
    (a side shorter than ``tile`` gives one window of that side).
    """
    if tile <= 0 or not 0 <= overlap < tile:
        raise ValueError(f"need tile > 0 and 0 <= overlap < tile, got tile={tile}, overlap={overlap}")

    def starts(n: int) -> list[int]:
        if n <= tile:
            return [0]
        s = list(range(0, n - tile, tile - overlap))
        return s + [n - tile]

    h, w = shape[:2]
    return [(y, x, min(y + tile, h), min(x + tile, w)) for y in starts(h) for x in starts(w)]


@dataclass
class TiledResult:
    """The union mask over tiles, the windows that held ground truth, and the number of prompts decoded."""

    mask: np.ndarray
    windows: list[tuple[int, int, int, int]]
    prompts: int


def predict_tiled(model: PromptableModel, image: np.ndarray, gt: np.ndarray, tile: int = 512, overlap: int = 0,
                  kind: str = "box", rng: np.random.Generator | None = None, **simulate_options) -> TiledResult:
    """Prompt each tile with the prompts of ``kind`` simulated from the ground truth inside it (components cut by
    the tile border become separate prompts) and OR the tiles' masks into one image-size mask. Tiles without
    ground truth are not run (the prompts come from the ground truth).
    """
    g = np.asarray(gt, bool)
    out = np.zeros(g.shape, bool)
    rng = rng if rng is not None else np.random.default_rng(0)
    used, n = [], 0
    for y0, x0, y1, x1 in tile_windows(g.shape, tile, overlap):
        gt_t = g[y0:y1, x0:x1]
        if not gt_t.any():
            continue
        prompts = simulate(gt_t, kind, rng, **simulate_options)
        for pred in model.predict(np.asarray(image)[y0:y1, x0:x1], prompts):
            out[y0:y1, x0:x1] |= pred.mask
        used.append((y0, x0, y1, x1))
        n += len(prompts)
    return TiledResult(mask=out, windows=used, prompts=n)
