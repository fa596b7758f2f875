"""Is the answer plausible? Mask statistics tested against reference distributions fitted from the annotations.

Statistics of a 2D mask on its image (:func:`mask_statistics`): area fraction of the image (log10), number of
connected components (log), solidity (area / convex-hull area of the union), eccentricity of the union's
second-moment ellipse, centroid row and column (fractions of the image), the brightness contrast inside vs
outside (difference of mean grey, in image standard deviations) and the mean chromaticity inside the mask
(r = R / (R + G + B) and g = G / (R + G + B); 1/3 each on a grey image). The colour tells the yellow exudates of a
fundus photo from purple specks on an H&E tile of the same size and shape, and either from grey radiograph pixels.

Counted objects (nuclei) are judged per object instead (:func:`object_statistics`): how many a tile holds varies
tenfold between tiles, so the union's area says little, but each nucleus's size and shape do. The statistics are
the median object area (log10 fraction of the image), median eccentricity and median solidity of the objects, and
the contrast and chromaticity of their union. The median of a few objects is noisier than the median of a full
tile: the reference keeps the spread of single objects (:func:`object_spread`), and a candidate with n objects has
its band widened by the median's sampling variance, (pi / 2) sd^2 / n, so four real nuclei of a rare class are not
refused for a solidity one tile of hundreds would not show, while two squares covering 9 % of a tile still are.

Statistics are computed on the image subsampled to at most :data:`STAT_SIDE` pixels a side
(:func:`stat_step`), for the references and the answers alike (a 4288-pixel fundus photo and its specks are
counted on the same grid as the answer's).

Reference (:class:`Reference`): per target, the statistics of every non-empty reference mask of the project, plus
the share of reference images where the target is present. The score of a candidate mask
(:meth:`Reference.score`) is calibrated as a p-value: each statistic's z-score against the reference mean and a
standard deviation shrunk towards a floor (:data:`SD_FLOOR`, so that 5 reference images do not make the band
razor-thin); the p-value of the largest ``|z|`` under a normal model, Bonferroni-corrected over the statistics.
Below :data:`PLAUSIBLE_P` (0.01) the mask is not returned: the answer is ``refused`` and the reason names the
statistic, its value and the reference range (the 5-95 % band of the references, or min-max with few).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

STAT_NAMES = ("log_area_fraction", "log_components", "solidity", "eccentricity", "centroid_row", "centroid_col",
              "contrast", "chroma_red", "chroma_green")
#: Floor of each statistic's standard deviation (same order as STAT_NAMES).
SD_FLOOR = np.array([0.15, 0.35, 0.08, 0.08, 0.08, 0.08, 0.35, 0.03, 0.03])
OBJECT_STAT_NAMES = ("log_object_area_fraction", "object_eccentricity", "object_solidity", "contrast", "chroma_red",
                     "chroma_green")
OBJECT_SD_FLOOR = np.array([0.1, 0.05, 0.03, 0.35, 0.03, 0.03])
#: The kinds of statistics a :class:`Reference` holds: names and standard-deviation floors.
KINDS = {"union": (STAT_NAMES, SD_FLOOR), "objects": (OBJECT_STAT_NAMES, OBJECT_SD_FLOOR)}
#: Bonferroni-corrected p-value below which a mask is implausible.
PLAUSIBLE_P = 0.01
#: Longest side of the grid the statistics are computed on.
STAT_SIDE = 1024


def stat_step(shape: tuple[int, ...]) -> int:
    """The subsampling stride that brings an image's longest side to about :data:`STAT_SIDE` (1 for smaller)."""
    return max(1, max(shape[:2]) // STAT_SIDE)


def _solidity_eccentricity(mask: np.ndarray) -> tuple[float, float]:
    from scipy.spatial import ConvexHull, QhullError

    rows, cols = np.nonzero(mask)
    area = rows.size
    if area < 3:
        return 1.0, 0.0
    pts = np.column_stack([rows, cols]).astype(float)
    if len(pts) > 20000:
        pts = pts[:: len(pts) // 20000 + 1]
    # pixel squares, not centres: the hull of the corners (a one-row mask has area, not zero)
    corners = (pts[:, None, :] + np.array([[-.5, -.5], [-.5, .5], [.5, -.5], [.5, .5]])[None]).reshape(-1, 2)
    try:
        hull = ConvexHull(corners).volume
    except QhullError:
        hull = float(area)
    solidity = min(1.0, area / max(hull, 1e-9))
    cov = np.cov(np.column_stack([rows, cols]).T.astype(float)) + np.eye(2) / 12.0
    ev = np.sort(np.linalg.eigvalsh(cov))
    ecc = math.sqrt(max(0.0, 1.0 - ev[0] / ev[1])) if ev[1] > 0 else 0.0
    return float(solidity), float(ecc)


def mask_statistics(mask: np.ndarray, image: np.ndarray) -> np.ndarray | None:
    """The :data:`STAT_NAMES` of a non-empty 2D mask on its image; None for an empty mask.

    ``image``: the same height and width as the mask, grey (h, w) or RGB (h, w, 3), any scale.
    """
    m = np.asarray(mask, dtype=bool)
    if not m.any():
        return None
    h, w = m.shape
    area = m.sum() / m.size
    _, n = ndimage.label(m)
    solidity, ecc = _solidity_eccentricity(m)
    rows, cols = np.nonzero(m)
    return np.array([math.log10(max(area, 1e-6)), math.log(n), solidity, ecc, rows.mean() / h, cols.mean() / w,
                     *_colour(m, image)], dtype=np.float64)


def _colour(m: np.ndarray, image: np.ndarray) -> tuple[float, float, float]:
    """(contrast, chroma_red, chroma_green) of the pixels of ``m`` on a grey or RGB image."""
    img = np.asarray(image)
    if img.ndim == 2:
        return _contrast(m, img.astype(np.float64, copy=False)), 1 / 3, 1 / 3
    rgb = img[..., :3].reshape(-1, 3)
    inside = rgb[np.flatnonzero(m)].sum(axis=0, dtype=np.float64)  # only the mask's pixels are gathered
    total = float(inside.sum())
    chroma = inside / total if total > 0 else np.full(3, 1 / 3)  # a black mask has no colour: call it grey
    return _contrast(m, img[..., :3].mean(axis=2, dtype=np.float64)), float(chroma[0]), float(chroma[1])


def _contrast(m: np.ndarray, g: np.ndarray) -> float:
    """Mean grey inside minus outside the mask, in standard deviations of the image (sums, not copies)."""
    sd = g.std() or 1.0
    n_in = int(np.count_nonzero(m))
    total = float(g.sum())
    inside = float(g[m].sum())
    mean_in = inside / max(n_in, 1)
    mean_out = (total - inside) / (g.size - n_in) if g.size > n_in else total / g.size
    return float((mean_in - mean_out) / sd)


def object_statistics(instances: np.ndarray, image: np.ndarray) -> np.ndarray | None:
    """The :data:`OBJECT_STAT_NAMES` of an instance map (0 = background) on its grey or RGB image; None when empty."""
    from skimage.measure import regionprops

    inst = np.asarray(instances).astype(np.int32)
    props = regionprops(inst)
    if not props:
        return None
    area = np.median([p.area for p in props]) / inst.size
    ecc = float(np.median([p.eccentricity for p in props]))
    sol = float(np.median([p.solidity for p in props]))
    return np.array([math.log10(max(area, 1e-7)), ecc, sol, *_colour(inst > 0, image)], dtype=np.float64)


def object_spread(instances: np.ndarray) -> np.ndarray | None:
    """Standard deviation of single objects' statistics (:data:`OBJECT_STAT_NAMES` order; 0 for the union's
    contrast and chromaticity); None with fewer than two objects.
    """
    from skimage.measure import regionprops

    inst = np.asarray(instances).astype(np.int32)
    props = regionprops(inst)
    if len(props) < 2:
        return None
    per = np.array([[math.log10(p.area / inst.size), p.eccentricity, p.solidity] for p in props])
    return np.concatenate([per.std(axis=0, ddof=1), np.zeros(len(OBJECT_STAT_NAMES) - 3)])


def describe_statistic(name: str, value: float) -> str:
    """A reader's rendering of one statistic (area as a percentage, components as a count)."""
    if name in ("log_area_fraction", "log_object_area_fraction"):
        return f"{100 * 10 ** value:.2g} % of the image"
    if name == "log_components":
        return f"{math.exp(value):.0f}"
    return f"{value:.2f}"


_LABELS = {"log_area_fraction": "area", "log_components": "components", "solidity": "solidity",
           "eccentricity": "eccentricity", "centroid_row": "vertical position", "centroid_col": "horizontal position",
           "contrast": "contrast inside vs outside", "log_object_area_fraction": "median object area",
           "object_eccentricity": "median object eccentricity", "object_solidity": "median object solidity",
           "chroma_red": "share of red in its colour", "chroma_green": "share of green in its colour"}


@dataclass(frozen=True)
class Plausibility:
    """Score (Bonferroni p-value, 0-1), whether it passes, the worst statistic and a sentence."""

    p_value: float
    plausible: bool
    worst: str
    message: str
    z: dict[str, float]


@dataclass
class Reference:
    """Reference distribution of one target's mask statistics (module docstring)."""

    target: str
    stats: np.ndarray  # (n, number of statistics of its kind) of the non-empty reference masks
    present_share: float
    n_images: int
    kind: str = "union"  # a key of KINDS: "union" (mask_statistics) or "objects" (object_statistics)
    object_sd: np.ndarray | None = None  # "objects": pooled spread of single objects (object_spread)

    def band(self, j: int) -> tuple[float, float]:
        col = self.stats[:, j]
        if len(col) >= 10:
            return float(np.quantile(col, 0.05)), float(np.quantile(col, 0.95))
        return float(col.min()), float(col.max())

    def score(self, stats: np.ndarray | None, n_objects: int | None = None) -> Plausibility:
        """The calibrated plausibility of a candidate mask's statistics (None: the mask is empty).

        ``n_objects``: how many objects the candidate's medians are taken over ("objects" kind; module docstring).
        """
        name = self.target
        if stats is None:
            p = 1.0 - self.present_share if self.n_images else 1.0
            # an absent answer is implausible only when every (or nearly every) reference shows the target
            ok = p >= PLAUSIBLE_P or self.n_images < 3
            msg = (f"no {name} found, although {100 * self.present_share:.0f} % of the {self.n_images} reference "
                   f"images show one") if not ok else f"no {name} found"
            return Plausibility(round(max(p, 0.0), 6), ok, "present", msg, {})
        if not len(self.stats):
            return Plausibility(0.0, False, "present", f"the project's references never show a {name}", {})
        names, floor = KINDS[self.kind]
        mean = self.stats.mean(axis=0)
        var = self.stats.var(axis=0) + floor ** 2
        if self.kind == "objects" and self.object_sd is not None and n_objects:
            var = var + (math.pi / 2) * self.object_sd ** 2 / n_objects  # sampling variance of a median of n
        sd = np.sqrt(var)
        z = (stats - mean) / sd
        j = int(np.argmax(np.abs(z)))
        p_one = math.erfc(abs(float(z[j])) / math.sqrt(2))
        p = min(1.0, p_one * len(names))
        lo, hi = self.band(j)
        stat = names[j]
        msg = (f"{_LABELS[stat]} {describe_statistic(stat, float(stats[j]))}, expected "
               f"{describe_statistic(stat, lo)} to {describe_statistic(stat, hi)}")
        if stat in ("log_area_fraction", "log_object_area_fraction"):
            msg = (f"{_LABELS[stat]} {100 * 10 ** float(stats[j]):.2g} % of the image, expected {100 * 10 ** lo:.2g}-"
                   f"{100 * 10 ** hi:.2g} %")
        return Plausibility(round(p, 6), p >= PLAUSIBLE_P, stat, msg,
                            {s: round(float(v), 3) for s, v in zip(names, z, strict=True)})
