"""COCO run-length encoding of binary masks, written from the COCO mask API's definition (pycocotools-compatible).

Definition (``pycocotools/common/maskApi.c``): the ``h x w`` mask is read in **column-major** (Fortran) order and
cut into alternating runs of 0s and 1s, starting with a run of 0s (of length 0 when the first pixel is 1). The
*uncompressed* form keeps the run lengths as a list of ints; the *compressed* form (``rleToString``) stores
each run length, minus the one two places earlier for the 4th run on, as a little-endian sequence of 5-bit groups
with a continuation bit (0x20) and a sign bit (0x10) in the last group, each group + 48 as one ASCII character.
Both forms carry ``size = [h, w]``. An empty mask is one run of ``h * w`` zeros.
"""

from __future__ import annotations

import numpy as np


def rle_counts(mask: np.ndarray) -> list[int]:
    """Run lengths of a 2D binary mask in column-major order, starting with a run of 0s.

    Parameters
    ----------
    mask:
        2D array; any non-zero value is foreground.

    Returns
    -------
    list of int
        Alternating run lengths (0s, 1s, 0s, ...) that sum to ``mask.size``; ``[0, ...]`` when the first
        pixel (row 0, column 0) is foreground; ``[]`` for an empty (0-pixel) array.
    """
    if mask.ndim != 2:
        raise ValueError(f"COCO RLE encodes 2D masks, got shape {mask.shape}")
    flat = np.asarray(mask, dtype=bool).ravel(order="F")
    if flat.size == 0:
        return []
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate(([0], change, [flat.size]))
    runs = np.diff(bounds).tolist()
    return [0] + runs if flat[0] else runs


def counts_to_string(counts: list[int]) -> str:
    """The compressed COCO string of run lengths (``rleToString``)."""
    out = bytearray()
    for i, c in enumerate(counts):
        x = int(c) - (int(counts[i - 2]) if i > 2 else 0)
        more = True
        while more:
            ch = x & 0x1F
            x >>= 5  # arithmetic shift: negative deltas end at -1
            more = (x != -1) if (ch & 0x10) else (x != 0)
            if more:
                ch |= 0x20
            out.append(ch + 48)
    return out.decode("ascii")


def string_to_counts(text: str | bytes) -> list[int]:
    """Run lengths from a compressed COCO string (``rleFrString``); raises ValueError on a malformed string."""
    data = text.encode("ascii") if isinstance(text, str) else bytes(text)
    counts: list[int] = []
    p = 0
    while p < len(data):
        x = 0
        k = 0
        more = True
        while more:
            if p >= len(data):
                raise ValueError("truncated COCO RLE string")
            c = data[p] - 48
            if not 0 <= c < 64:
                raise ValueError(f"invalid COCO RLE character {chr(data[p])!r}")
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and (c & 0x10):
                x -= 1 << (5 * k)  # sign-extend the last group
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def encode_rle(mask: np.ndarray, compressed: bool = True) -> dict:
    """COCO RLE of a 2D binary mask: ``{"size": [h, w], "counts": str | list[int]}``.

    ``compressed=True`` gives the string form pycocotools' ``mask.encode`` returns (as ``str``, not ``bytes``,
    so it serialises to JSON); ``False`` the uncompressed list form (``iscrowd`` annotations in COCO files).
    """
    counts = rle_counts(mask)
    h, w = mask.shape
    return {"size": [int(h), int(w)], "counts": counts_to_string(counts) if compressed else counts}


def encode_rle_crop(crop: np.ndarray, offset: tuple[int, int], shape: tuple[int, int],
                    compressed: bool = True) -> dict:
    """COCO RLE of an ``h x w`` mask that is zero outside ``crop`` (placed at ``offset = (row, col)``).

    Same result as :func:`encode_rle` on the full mask, in time proportional to the crop's foreground: the
    column-major flat index of each foreground pixel is ``col * h + row``, and runs are read off their gaps.
    """
    h, w = (int(v) for v in shape)
    cols, rows = np.nonzero(np.asarray(crop, dtype=bool).T)  # sorted by column, then row: column-major order
    if cols.size == 0:
        counts = [h * w] if h * w else []
    else:
        idx = (cols.astype(np.int64) + offset[1]) * h + rows.astype(np.int64) + offset[0]
        gaps = np.flatnonzero(np.diff(idx) > 1)
        starts = idx[np.concatenate(([0], gaps + 1))]
        ends = idx[np.concatenate((gaps, [idx.size - 1]))] + 1
        runs = np.empty(2 * starts.size + 1, dtype=np.int64)
        runs[0] = starts[0]
        runs[1::2] = ends - starts
        runs[2:-1:2] = starts[1:] - ends[:-1]
        runs[-1] = h * w - ends[-1]
        counts = runs.tolist()
        if counts[-1] == 0:
            counts.pop()
    return {"size": [h, w], "counts": counts_to_string(counts) if compressed else counts}


def decode_rle(rle: dict) -> np.ndarray:
    """The boolean ``h x w`` mask of a COCO RLE (either form); raises ValueError when runs do not sum to h*w."""
    h, w = (int(v) for v in rle["size"])
    counts = rle["counts"]
    if isinstance(counts, (str, bytes)):
        counts = string_to_counts(counts)
    counts = [int(c) for c in counts]
    if any(c < 0 for c in counts) or sum(counts) != h * w:
        raise ValueError(f"COCO RLE runs sum to {sum(counts)}, not {h} x {w} = {h * w}")
    values = np.zeros(len(counts), dtype=bool)
    values[1::2] = True
    flat = np.repeat(values, counts)
    return flat.reshape((h, w), order="F")


def rle_area(rle: dict) -> int:
    """Foreground pixel count of a COCO RLE (sum of the odd runs), without decoding it."""
    counts = rle["counts"]
    if isinstance(counts, (str, bytes)):
        counts = string_to_counts(counts)
    return int(sum(counts[1::2]))


def uncompressed(rle: dict) -> dict:
    """The uncompressed (run-length list) form of a COCO RLE in either form; a list form is copied."""
    counts = rle["counts"]
    runs = string_to_counts(counts) if isinstance(counts, (str, bytes)) else [int(c) for c in counts]
    return {"size": [int(v) for v in rle["size"]], "counts": runs}
