"""Guessing how masks are stored from a seeded, bounded sample of files (used by layout detection).

One file says little: a model's first prediction may be blank, a ground truth's first slice may hold no label.
The functions here look at up to :data:`SNIFF_SAMPLE` files spread over the whole list (one drawn at random,
with a fixed seed, from each of that many equal strata), decide the encoding from the foreground pixels found
across the sample, and count how many sampled masks the proposed encoding leaves empty, so that a proposal that
reads most masks as empty comes with a warning instead of a silent Dice of 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from segaudit.errors import SegauditError
from segaudit.io import read_image

#: Most files read to guess one folder's encoding or label values.
SNIFF_SAMPLE = 16
#: Seed of the draw inside each stratum: the same folder always gives the same sample.
SNIFF_SEED = 0
#: A colour file whose brightest channel value is at most this is blank (JPEG ringing of an empty drawing
#: reaches 1-3; a drawn mask is far brighter).
BLANK_LEVEL = 16
#: Luminance weights of ``channel: gray`` (ITU-R 601), as :func:`segaudit.io.decode_mask` applies them.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass(frozen=True)
class MaskStats:
    """What one sampled mask file holds, enough to tell whether an encoding leaves it empty.

    ``channel_max`` (colour files): the largest red, green and blue values; ``gray_max``: the largest luminance
    (colour files) or stored value (single-channel files); ``values``: the non-zero integral values of a
    single-channel file (empty for colour files); ``integral``: every stored value is a finite integer.
    """

    path: Path
    is_color: bool
    channel_max: tuple[float, float, float] = (0.0, 0.0, 0.0)
    gray_max: float = 0.0
    values: frozenset[int] = frozenset()
    integral: bool = True


@dataclass
class EncodingGuess:
    """A proposed mask encoding and the evidence for it.

    ``encoding`` is the ``mask_encoding`` mapping of a project file; ``values`` the label values it yields;
    ``reason`` one line for the notes; ``sampled`` the number of files read, ``empty`` how many of them the
    encoding leaves without any foreground (or cannot decode); ``warning`` is set when that is most of them.
    """

    encoding: dict
    values: set[int]
    reason: str
    sampled: int = 0
    empty: int = 0
    warning: str | None = None
    empty_files: list[str] = field(default_factory=list)


def sample_files(files: Sequence[Path], k: int = SNIFF_SAMPLE, seed: int = SNIFF_SEED) -> list[Path]:
    """A seeded sample of at most ``k`` files spread over the whole list.

    The list is cut into ``k`` strata of (nearly) equal length and one file is drawn from each with
    ``numpy.random.default_rng(seed)``, so the sample covers the beginning, middle and end of the list and is
    the same on every run. Lists of at most ``k`` files are returned whole, in order; ``k <= 0`` gives ``[]``.
    """
    files = list(files)
    if len(files) <= k:
        return files
    if k <= 0:
        return []
    rng = np.random.default_rng(seed)
    edges = np.linspace(0, len(files), k + 1).astype(int)  # strictly increasing since len(files) > k
    return [files[int(rng.integers(lo, hi))] for lo, hi in zip(edges[:-1], edges[1:], strict=True)]


def mask_stats(path: Path) -> MaskStats | None:
    """Read one file and summarise it as :class:`MaskStats`; ``None`` when it cannot be read."""
    try:
        img = read_image(path)
    except SegauditError:
        return None
    a = np.asarray(img.array)
    if img.is_color:
        rgb = a[..., :3]
        cmax = (float(rgb[..., 0].max(initial=0)), float(rgb[..., 1].max(initial=0)), float(rgb[..., 2].max(initial=0)))
        luma = float((rgb.astype(np.float32) @ _LUMA).max(initial=0))
        return MaskStats(path, True, cmax, luma)
    u = np.unique(a)
    finite = bool(np.all(np.isfinite(u)))
    integral = finite and bool(np.all(u == np.rint(u)))
    values = frozenset(int(v) for v in u if v != 0) if integral else frozenset()
    return MaskStats(path, False, gray_max=float(u.max(initial=0)) if finite else float("nan"),
                     values=values, integral=integral)


def is_empty_under(stats: MaskStats, encoding: dict) -> bool:
    """True when ``encoding`` reads no foreground pixel (or nothing decodable) from the summarised file.

    Mirrors :func:`segaudit.io.decode_mask`: ``binary`` keeps pixels strictly above ``threshold`` in the
    selected channel (``gray`` luminance, ``any`` the brightest channel); ``labels`` keeps non-zero integral
    values (non-integral values fail to decode, which counts as empty here); a colour file without a channel
    cannot be decoded.
    """
    kind = encoding.get("kind", "labels")
    channel = encoding.get("channel")
    if stats.is_color:
        if channel is None:
            return True
        level = {"red": stats.channel_max[0], "green": stats.channel_max[1], "blue": stats.channel_max[2],
                 "gray": stats.gray_max, "any": max(stats.channel_max)}[channel]
    else:
        level = stats.gray_max
    if kind == "binary":
        return not level > float(encoding.get("threshold", 127))
    return stats.is_color or not stats.integral or not stats.values


def _guess_from_stats(stats: list[MaskStats]) -> tuple[dict, set[int], str]:
    """Encoding, label values and reason from the summaries of the readable sampled files."""
    colour = [s for s in stats if s.is_color]
    if len(colour) * 2 > len(stats):
        drawn = [s for s in colour if max(s.channel_max) > BLANK_LEVEL]
        if not drawn:
            return ({"kind": "binary", "channel": "any", "threshold": 127}, {1},
                    f"every sampled RGB mask is blank (no channel above {BLANK_LEVEL}): foreground = brightest "
                    "channel > 127, a guess")
        maxima = [max(s.channel_max[c] for s in drawn) for c in range(3)]
        dominant = int(np.argmax(maxima))
        others = max(m for i, m in enumerate(maxima) if i != dominant)
        channel = ("red", "green", "blue")[dominant]
        blank = f", {len(colour) - len(drawn)} blank" if len(drawn) < len(colour) else ""
        if others < maxima[dominant] / 4:
            thr = int(maxima[dominant]) // 2
            return ({"kind": "binary", "channel": channel, "threshold": thr}, {1},
                    f"RGB drawing in {channel} ({len(drawn)} drawn file(s){blank}; channel max "
                    f"{int(maxima[dominant])}, others <= {int(others)}): foreground = {channel} > {thr}")
        return ({"kind": "binary", "channel": "gray", "threshold": 127}, {1},
                f"RGB mask without one dominant channel ({len(drawn)} drawn file(s){blank}): "
                "foreground = luminance > 127")
    values: set[int] = set().union(*(s.values for s in stats if not s.is_color))
    if values and max(values) == 255 and len(values) <= 2:
        return {"kind": "binary", "threshold": 127}, {1}, "0/255 mask: foreground = value > 127"
    return {"kind": "labels"}, values, f"label values {sorted(values)} stored directly"


def sniff_encoding(files: Sequence[Path], what: str = "masks", k: int = SNIFF_SAMPLE,
                   seed: int = SNIFF_SEED) -> EncodingGuess:
    """Propose a mask encoding for a folder of 2D masks from a sample of its files.

    Parameters
    ----------
    files:
        The folder's mask files, in a stable order (sorted names).
    what:
        How the warning names the files (``"predictions"``, ``"ground-truth masks"``).
    k, seed:
        Sample size and seed of :func:`sample_files`.

    Returns
    -------
    EncodingGuess
        Colour files (most of the sample): the channel whose maximum over the drawn (non-blank) files dominates
        the others four to one, threshold half that maximum; otherwise luminance > 127. Single-channel files:
        ``binary`` > 127 when the values found across the sample are at most two with maximum 255, else
        ``labels`` with their union. ``warning`` is set when more than half of the sampled files are empty
        under the proposal (no readable file: ``labels``, with a warning).
    """
    sample = sample_files(files, k, seed)
    stats = [s for s in (mask_stats(f) for f in sample) if s is not None]
    if not stats:
        return EncodingGuess({"kind": "labels"}, set(), "no readable sample mask", 0, 0,
                             f"none of the {len(sample)} sampled {what} could be read; check the files and the "
                             "encoding by hand")
    encoding, values, why = _guess_from_stats(stats)
    empty = [s.path.name for s in stats if is_empty_under(s, encoding)]
    scope = f"{len(stats)} of {len(files)} file(s) sampled"
    guess = EncodingGuess(encoding, values, f"{why} [{scope}, {len(empty)} empty under it]", len(stats),
                          len(empty), empty_files=empty)
    if len(empty) * 2 > len(stats):
        guess.warning = (f"{len(empty)} of {len(stats)} sampled {what} are empty under the proposed encoding "
                         f"{encoding} (e.g. {', '.join(empty[:3])}); if they should hold foreground, fix the "
                         "encoding (channel, threshold) before evaluating")
    return guess


def sniff_label_values(paths: Sequence[Path], k: int = SNIFF_SAMPLE, seed: int = SNIFF_SEED) -> set[int]:
    """Union of the non-zero integral values of a sample of single-channel masks (unreadable files skipped).

    Colour files and files with non-integral values contribute nothing. The sample is :func:`sample_files`.
    """
    values: set[int] = set()
    for p in sample_files(paths, k, seed):
        s = mask_stats(p)
        if s is not None:
            values |= s.values
    return values
