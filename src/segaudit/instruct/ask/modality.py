"""What the image shows: a modality classifier on colour and texture statistics, trained on the project's images.

Features (:func:`image_features`, 16 numbers, from the image shrunk so its longest side is 128 pixels): colourfulness
(mean absolute channel differences), mean saturation, circular mean hue of the saturated pixels (cos, sin), the
grey-level 10/25/50/75/90 % quantiles, the dark-pixel fraction, the border-to-centre brightness ratio (fundus
photos and MR slices have a black surround, radiographs do not), mean gradient magnitude (texture), the fraction of
strong edges, the red-to-blue ratio and the aspect ratio (log).

Classifier (:class:`ModalityClassifier`): features standardised by the training set's mean and standard
deviation, one centroid per modality; the confidence is the softmax of ``-d^2 / 2`` over the centroid distances
``d``. An image farther than :data:`OTHER_FACTOR` times the largest training distance of its nearest modality from
that centroid is ``other`` (the confidence then says how sure the nearest modality would have been). Tested with
leave-one-out accuracy on the bundled images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from segaudit.errors import SegauditError

OTHER = "other"
#: Distance (in training radii of the nearest modality) beyond which an image is ``other``.
OTHER_FACTOR = 2.5
FEATURE_NAMES = ("colourfulness_rg", "colourfulness_gb", "saturation", "hue_cos", "hue_sin", "grey_q10",
                 "grey_q25", "grey_q50", "grey_q75", "grey_q90", "dark_fraction", "border_ratio", "gradient",
                 "edge_fraction", "red_blue", "log_aspect")


class ImageContentError(SegauditError):
    """The input holds no usable picture (blank, constant, empty or not 2D)."""


def as_rgb(image: np.ndarray) -> np.ndarray:
    """A float RGB copy in [0, 1] of a 2D grey, grey+alpha, RGB or RGBA array (intensities min-max scaled).

    Raises
    ------
    ImageContentError
        Not a 2D picture, empty, or every pixel the same value (a blank image).
    """
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[2] in (2, 4):
        arr = arr[..., :-1]
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (1, 3) or min(arr.shape[:2]) < 8:
        raise ImageContentError(f"expected a 2D image (H, W) or (H, W, 3) of at least 8x8 pixels, got shape "
                                f"{arr.shape}")
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    raw_uint8 = arr.dtype == np.uint8
    arr = arr.astype(np.float32)
    lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
    if not np.isfinite(hi - lo) or hi - lo <= 0:
        raise ImageContentError("the image is blank: every pixel has the same value")
    if raw_uint8:  # 8-bit pictures keep their brightness (a dark photo stays dark)
        return arr / 255.0
    return (arr - lo) / (hi - lo)


def shrink(rgb: np.ndarray, longest: int = 128) -> np.ndarray:
    """Block-mean downsampling so the longest side is about ``longest`` pixels (no-op for small images)."""
    f = max(1, int(np.ceil(max(rgb.shape[:2]) / longest)))
    if f == 1:
        return rgb
    h, w = (rgb.shape[0] // f) * f, (rgb.shape[1] // f) * f
    return rgb[:h, :w].reshape(h // f, f, w // f, f, -1).mean(axis=(1, 3))


def image_features(image: np.ndarray) -> np.ndarray:
    """The 16 colour/texture statistics of :data:`FEATURE_NAMES` (module docstring), float64."""
    arr = np.asarray(image)
    aspect = float(np.log(arr.shape[1] / arr.shape[0])) if arr.ndim >= 2 and min(arr.shape[:2]) > 0 else 0.0
    step = max(1, max(arr.shape[:2]) // 512) if arr.ndim >= 2 else 1
    rgb = shrink(as_rgb(arr[::step, ::step]))  # strided first: a 4288x2848 photo costs no more than a tile
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    grey = rgb.mean(axis=2)
    mx, mn = rgb.max(axis=2), rgb.min(axis=2)
    sat = np.where(mx > 1e-6, (mx - mn) / np.maximum(mx, 1e-6), 0.0)
    # hue angle of the saturated pixels (HSV hue on the unit circle)
    sel = sat > 0.15
    if sel.any():
        hue = np.arctan2(np.sqrt(3) * (g - b), 2 * r - g - b)[sel]
        hc, hs = float(np.cos(hue).mean()), float(np.sin(hue).mean())
    else:
        hc = hs = 0.0
    q = np.quantile(grey, [0.10, 0.25, 0.50, 0.75, 0.90])
    h, w = grey.shape
    bh, bw = max(1, h // 10), max(1, w // 10)
    border = np.concatenate([grey[:bh].ravel(), grey[-bh:].ravel(), grey[:, :bw].ravel(), grey[:, -bw:].ravel()])
    centre = grey[h // 4: 3 * h // 4, w // 4: 3 * w // 4]
    gy, gx = np.gradient(grey)
    mag = np.hypot(gx, gy)
    return np.array([float(np.abs(r - g).mean()), float(np.abs(g - b).mean()), float(sat.mean()), hc, hs,
                     *map(float, q),
                     float((grey < 0.06).mean()), float(border.mean() / max(centre.mean(), 1e-3)),
                     float(mag.mean()), float((mag > 0.1).mean()), float(r.mean() / max(b.mean(), 1e-3)), aspect],
                    dtype=np.float64)


@dataclass(frozen=True)
class ModalityGuess:
    """The recognised modality, its confidence (0-1), the nearest known modality and all centroid distances."""

    modality: str
    confidence: float
    nearest: str
    distances: dict[str, float]


@dataclass
class ModalityClassifier:
    """Nearest-centroid classifier on standardised :func:`image_features` (module docstring)."""

    classes: list[str]
    centroids: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    radius: np.ndarray

    @classmethod
    def fit(cls, features: np.ndarray, labels: list[str]) -> ModalityClassifier:
        """Train on (n, 16) features and their modality names (at least one image per modality)."""
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2 or len(labels) != len(x) or not len(x):
            raise ValueError("need one feature row per label, at least one")
        mean = x.mean(axis=0)
        scale = np.maximum(x.std(axis=0), 1e-3)
        z = (x - mean) / scale
        classes = sorted(set(labels))
        lab = np.asarray(labels)
        cents = np.stack([z[lab == c].mean(axis=0) for c in classes])
        radius = np.array([max(float(np.linalg.norm(z[lab == c] - cents[i], axis=1).max()), 1.0)
                           for i, c in enumerate(classes)])
        return cls(classes, cents, mean, scale, radius)

    def distances(self, features: np.ndarray) -> np.ndarray:
        z = (np.asarray(features, dtype=np.float64) - self.mean) / self.scale
        return np.linalg.norm(self.centroids - z[None, :], axis=1)

    def predict(self, features: np.ndarray) -> ModalityGuess:
        """The modality of one image's features (``other`` when far from every centroid)."""
        d = self.distances(features)
        logits = -0.5 * d ** 2
        p = np.exp(logits - logits.max())
        p /= p.sum()
        i = int(np.argmin(d))
        nearest = self.classes[i]
        far = d[i] > OTHER_FACTOR * self.radius[i]
        return ModalityGuess(OTHER if far else nearest, round(float(1.0 - p[i] if far else p[i]), 4), nearest,
                             {c: round(float(v), 3) for c, v in zip(self.classes, d, strict=True)})

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"mod_centroids": self.centroids, "mod_mean": self.mean, "mod_scale": self.scale,
                "mod_radius": self.radius}

    @classmethod
    def from_arrays(cls, classes: list[str], arrays: dict[str, np.ndarray]) -> ModalityClassifier:
        return cls(list(classes), arrays["mod_centroids"], arrays["mod_mean"], arrays["mod_scale"],
                   arrays["mod_radius"])


def leave_one_out_accuracy(features: np.ndarray, labels: list[str]) -> float:
    """Share of images whose modality a classifier trained on all the others recognises (NaN below 2 images)."""
    n = len(labels)
    if n < 2:
        return float("nan")
    hits = 0
    for i in range(n):
        keep = [j for j in range(n) if j != i]
        lab = [labels[j] for j in keep]
        if labels[i] not in lab:
            continue
        clf = ModalityClassifier.fit(features[keep], lab)
        hits += clf.predict(features[i]).nearest == labels[i]
    return hits / n
