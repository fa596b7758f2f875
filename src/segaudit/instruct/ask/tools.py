"""The tools ``ask`` acts with: prototype-prompted LiteMedSAM (PerSAM-style) and a classical H&E nuclei segmenter.

**Prototype prompting** (training-free, after PerSAM, Zhang et al. 2023). LiteMedSAM encodes an image into a
64x64 grid of 256-d features (one cell = 4x4 pixels of its 256x256 input). For a target, the *prototype* is the
mean unit-norm feature of the cells inside the reference masks (>= half covered) and the *background prototype*
the mean over the cells outside them, over every reference image. On a new image the score map is
``cos(f, target) - cos(f, background)``; cells above the threshold that best reproduces the reference masks on
the grid (mean Dice over the references, chosen from a grid of values) form components; each component gives a box
prompt, which LiteMedSAM decodes; the answer is the union of the decoded masks. No component: the target is
absent. (PerSAM adds a positive point at the best cell. Measured on the sample's held-out images with the same
boxes, the point lowered the mean Dice: lungs 0.51 with it vs 0.66 without (5 x-rays; the best cell often lies
at a lung's edge, and one x-ray with a pacemaker fell from 0.54 to 0.09), metastases 0.545 vs 0.551 (7 slices).)

**Nuclei** (:func:`segment_nuclei`): colour deconvolution (Ruifrok & Johnston, ``skimage.color.rgb2hed``) to the
haematoxylin channel, Gaussian smoothing, a threshold (Otsu's times a factor), hole filling and small-object
removal, then a watershed of the smoothed distance transform seeded by its h-maxima (a dip shallower than h pixels
does not split a nucleus). The factor, h and the smoothing are chosen on the reference tiles (PQ and count error,
:func:`calibrate_nuclei`).
Nucleus classes (inflammatory, epithelial, ...) by nearest centroid on per-nucleus shape and stain statistics
fitted on the reference instances (:class:`NucleusClassifier`).

**Specks** (:func:`segment_specks`): targets whose reference masks are scatters of many small spots (more than
:data:`SCATTERED_COMPONENTS` components in one image, e.g. hard exudates on fundus photos: 23-420) are beyond a
few box/point prompts. A morphological top-hat (white for bright spots, black for dark ones, the polarity read from
the references' contrast) of one colour channel at a working resolution of :data:`SPECK_SIDE` pixels, in robust
z-units (median and MAD inside the field of view), thresholded; the channel, the structuring-element radius and
the threshold are chosen on the reference images by mean Dice (:func:`calibrate_specks`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

GRID = 64
CELL = 4
#: At most this many components become prompts (largest score mass first).
MAX_PROMPTS = 8
#: A target whose reference masks hold more separate components than this in one image is a scatter of specks:
#: it is answered by :func:`segment_specks`, not by prototype prompts (one box + points decode a few objects).
#: The sample's fundus exudates: 23-420 components per image; lungs 2, metastases 1-3.
SCATTERED_COMPONENTS = 20
#: An organ found in fewer parts than its references typically show (one lung of two) is searched again at
#: thresholds lowered by FILL_STEP, at most FILL_RANGE below the calibrated one.
FILL_STEP = 0.02
FILL_RANGE = 0.2


# ---------------------------------------------------------------------------------------------- prototypes
def embedding_grid(embedding) -> tuple[np.ndarray, tuple[int, int]]:
    """(64, 64, 256) unit-norm features of a LiteMedSAM :class:`~segaudit.models.ImageEmbedding` and the
    (rows, cols) extent of the cells that hold the image (the rest is padding).
    """
    e = embedding.embedding
    arr = e.detach().cpu().numpy()[0] if hasattr(e, "detach") else np.asarray(e)[0]
    f = np.transpose(arr, (1, 2, 0)).astype(np.float32)
    f /= np.maximum(np.linalg.norm(f, axis=2, keepdims=True), 1e-6)
    h, w = embedding.input_size
    return f, (int(np.ceil(h / CELL)), int(np.ceil(w / CELL)))


def mask_to_grid(mask: np.ndarray, input_size: tuple[int, int]) -> np.ndarray:
    """Covered fraction (64, 64) of every grid cell by a mask in the original pixel grid."""
    from skimage.transform import resize

    m = resize(np.asarray(mask, dtype=np.float32), input_size, order=1, anti_aliasing=True, preserve_range=True)
    pad = np.zeros((GRID * CELL, GRID * CELL), np.float32)
    pad[: m.shape[0], : m.shape[1]] = m
    return pad.reshape(GRID, CELL, GRID, CELL).mean(axis=(1, 3))


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    s = int(a.sum()) + int(b.sum())
    return 1.0 if s == 0 else 2.0 * float(np.logical_and(a, b).sum()) / s


@dataclass
class Prototype:
    """A target's prototype and background prototype (256-d, unit norm) and the calibrated score threshold."""

    target: np.ndarray
    background: np.ndarray
    threshold: float
    grid_dice: float
    #: Most connected components a reference mask has (an anatomical target: 1-3; 0 = no limit learned).
    max_components: int = 0
    #: Smallest component of any reference mask, as a fraction of its image.
    min_area_fraction: float = 0.0
    #: Median number of connected components of the reference masks (0 = not learned).
    typical_components: int = 0

    def score_map(self, feats: np.ndarray, extent: tuple[int, int]) -> np.ndarray:
        s = feats @ self.target - feats @ self.background
        out = np.full(s.shape, -np.inf, np.float32)
        out[: extent[0], : extent[1]] = s[: extent[0], : extent[1]]
        return out


def fit_prototype(grids: list[tuple[np.ndarray, tuple[int, int], np.ndarray]]) -> Prototype | None:
    """The prototype of one target from (features, extent, covered fraction) of its reference images.

    None when no reference cell is covered at least half (the target is too small for the grid everywhere).
    """
    pos_sum = np.zeros(256, np.float64)
    neg_sum = np.zeros(256, np.float64)
    for feats, (gh, gw), frac in grids:
        f = feats[:gh, :gw]
        fr = frac[:gh, :gw]
        pos = fr >= 0.5
        if not pos.any() and fr.max() > 0:  # a small target: its best-covered cell
            pos = fr == fr.max()
        pos_sum += f[pos].sum(axis=0)
        neg_sum += f[fr == 0].sum(axis=0)
    if not pos_sum.any() or not neg_sum.any():
        return None
    tgt = (pos_sum / np.linalg.norm(pos_sum)).astype(np.float32)
    bg = (neg_sum / np.linalg.norm(neg_sum)).astype(np.float32)
    proto = Prototype(tgt, bg, 0.0, 0.0)
    maps = [(proto.score_map(feats, ext), frac >= 0.5 if (frac >= 0.5).any() else frac == frac.max())
            for feats, ext, frac in grids]
    best = (-1.0, 0.0)
    for t in np.linspace(-0.3, 0.5, 33):
        d = float(np.mean([_dice(s > t, truth) for s, truth in maps]))
        if d > best[0]:
            best = (d, float(t))
    proto.threshold, proto.grid_dice = best[1], best[0]
    return proto


def _keep_components(mask: np.ndarray, proto: Prototype) -> np.ndarray:
    """Drop decoded components below half the smallest reference component; an organ keeps its largest few."""
    lab, n = ndimage.label(mask)
    if n == 0:
        return mask
    sizes = np.bincount(lab.ravel())[1:]
    keep = sizes >= 0.5 * proto.min_area_fraction * mask.size
    if 0 < proto.max_components <= 3:
        rank = np.argsort(-sizes)
        keep[rank[proto.max_components:]] = False
    if not keep.any():
        keep[int(np.argmax(sizes))] = True
    return np.isin(lab, np.flatnonzero(keep) + 1)


@dataclass
class PrototypeResult:
    """The decoded mask (original grid), the prompts given (as records) and the best score on the image."""

    mask: np.ndarray
    prompts: list[dict]
    max_score: float
    predicted_iou: list[float]


def _prompt_components(s: np.ndarray, threshold: float, organ_parts: int) -> tuple[np.ndarray, list[int]]:
    """Components of the score map above ``threshold`` (8-connected) and the labels that become prompts.

    Largest score mass first, at most :data:`MAX_PROMPTS`; with ``organ_parts`` > 0 only parts of at least a tenth
    of the largest mass, at most ``organ_parts`` of them.
    """
    lab, n = ndimage.label(s > threshold, structure=np.ones((3, 3)))
    if n == 0:
        return lab, []
    idx = np.arange(1, n + 1)
    mass = np.asarray(ndimage.sum(np.where(np.isfinite(s), s, 0.0) - threshold, lab, idx))
    order = [int(k) for k in idx[np.argsort(-mass)][:MAX_PROMPTS]]
    if organ_parts:
        order = [k for k in order if mass[k - 1] >= 0.1 * mass.max()][:organ_parts]
    return lab, order


def prompt_components(s: np.ndarray, proto: Prototype) -> tuple[np.ndarray, list[int], float]:
    """(labels, prompt labels, threshold used) of a score map: the components that become box prompts.

    An organ (1-3 parts in every reference) keeps its few largest parts; found in fewer parts than its references
    typically show (the second lung of a hard x-ray), the threshold is lowered by :data:`FILL_STEP` until one more
    part appears, at most :data:`FILL_RANGE` below. No part at the calibrated threshold stays absent.
    (Held-out x-rays of the sample: mean Dice 0.656 -> 0.676; 41182_2020_203_Fig5: 1 lung -> 2, Dice 0.55 -> 0.65.)
    """
    organ = 0 < proto.max_components <= 3
    parts = proto.max_components if organ else 0
    lab, order = _prompt_components(s, proto.threshold, parts)
    t = proto.threshold
    if organ and 0 < len(order) < proto.typical_components:
        while t > proto.threshold - FILL_RANGE + 1e-9:
            t -= FILL_STEP
            lab2, order2 = _prompt_components(s, t, parts)
            if len(order2) > len(order):
                return lab2, order2, t
    return lab, order, proto.threshold


def prototype_segment(model, embedding, proto: Prototype) -> PrototypeResult:
    """Prompts from the score map, decoded by ``model`` (a :class:`~segaudit.models.PromptableModel`)."""
    from segaudit.models.base import Prompt

    feats, extent = embedding_grid(embedding)
    s = proto.score_map(feats, extent)
    h0, w0 = embedding.original_size
    scale = (GRID * CELL) / max(h0, w0)
    lab, order, _ = prompt_components(s, proto)
    mask = np.zeros((h0, w0), bool)
    best = float(s[np.isfinite(s)].max()) if np.isfinite(s).any() else float("-inf")
    if not len(order):
        return PrototypeResult(mask, [], best, [])
    prompts = []
    for k in order:
        rows, cols = np.nonzero(lab == k)
        r0, r1, c0, c1 = rows.min(), rows.max(), cols.min(), cols.max()
        box = (max(0.0, c0 * CELL / scale), max(0.0, r0 * CELL / scale),
               min(w0 - 1.0, ((c1 + 1) * CELL) / scale - 1), min(h0 - 1.0, ((r1 + 1) * CELL) / scale - 1))
        prompts.append(Prompt(box=box, kind="prototype", component=int(k)))
    preds = model.decode(embedding, prompts)
    for p in preds:
        mask |= p.mask
    mask = _keep_components(mask, proto)
    return PrototypeResult(mask, [p.record() for p in prompts], best, [round(p.predicted_iou, 4) for p in preds])


# ---------------------------------------------------------------------------------------------- nuclei
def haematoxylin(rgb: np.ndarray) -> np.ndarray:
    """The haematoxylin optical density of an RGB tile (``skimage.color.rgb2hed`` channel 0)."""
    from skimage.color import rgb2hed

    return rgb2hed(np.asarray(rgb)[..., :3])[..., 0]


#: The nuclei calibration grid: Otsu factor x h-maxima height (px) x distance smoothing (px).
NUCLEI_FACTORS = (0.9, 1.0, 1.15)
NUCLEI_HEIGHTS = (0.5, 1.0, 1.5, 2.5)
NUCLEI_SIGMAS = (1.0, 2.0)


def _nucleus_foreground(h: np.ndarray, factor: float, min_area: int) -> np.ndarray:
    fg = h > _otsu(h) * factor
    fg = ndimage.binary_fill_holes(ndimage.binary_opening(fg, iterations=1))
    lab, n = ndimage.label(fg)
    if n == 0:
        return fg
    return fg & (np.bincount(lab.ravel())[lab] >= min_area)


def _otsu(a: np.ndarray) -> float:
    """Otsu's threshold of ``a``; +inf for a constant array (nothing is foreground)."""
    from skimage.filters import threshold_otsu

    return float(threshold_otsu(a)) if np.ptp(a) > 0 else float("inf")


def _split_nuclei(fg: np.ndarray, height: float, sigma: float, min_area: int) -> np.ndarray:
    from skimage.filters import gaussian
    from skimage.morphology import h_maxima
    from skimage.segmentation import watershed

    if not fg.any():
        return np.zeros(fg.shape, np.int32)
    dist = gaussian(ndimage.distance_transform_edt(fg), sigma)
    markers, _ = ndimage.label(h_maxima(dist, height) & fg)
    ws = watershed(-dist, markers, mask=fg).astype(np.int32)
    sizes = np.bincount(ws.ravel())
    ws[(sizes[ws] < min_area) & (ws > 0)] = 0
    _, inv = np.unique(ws, return_inverse=True)
    return inv.reshape(ws.shape).astype(np.int32)


def segment_nuclei(rgb: np.ndarray, factor: float = 1.0, height: float = 1.0, sigma: float = 1.0,
                   min_area: int = 20) -> np.ndarray:
    """Instance map (int32, 0 = background) of the nuclei of an H&E tile (module docstring).

    ``factor`` scales Otsu's threshold of the smoothed haematoxylin density; ``height`` (pixels) is the h of the
    h-maxima of the smoothed distance transform that seed the watershed: a dip shallower than it between two
    maxima does not split a nucleus; ``sigma`` (pixels) smooths the distance transform; objects under
    ``min_area`` pixels are dropped. A blank tile gives an all-zero map.
    """
    from skimage.filters import gaussian

    h = gaussian(haematoxylin(rgb), 1.0)
    return _split_nuclei(_nucleus_foreground(h, factor, min_area), height, sigma, min_area)


@dataclass(frozen=True)
class NucleiCalibration:
    """The chosen segmenter parameters and their mean PQ, relative count error and score on the reference tiles."""

    factor: float
    height: float
    sigma: float
    pq: float
    count_error: float
    score: float


def calibrate_nuclei(tiles: list[tuple[np.ndarray, np.ndarray]]) -> NucleiCalibration:
    """Segmenter parameters maximising mean PQ minus half the mean relative count error on (rgb, instances) tiles.

    The grid is :data:`NUCLEI_FACTORS` x :data:`NUCLEI_HEIGHTS` x :data:`NUCLEI_SIGMAS`. PQ (Kirillov et al.,
    IoU > 0.5 matching) is the instance score of the nuclei literature; the count term is there because "how many"
    is what users ask. (Seeding the watershed from peaks ``min_distance`` apart instead of h-maxima, chosen by
    pixel Dice minus half the count error, over-split textured nuclei. Each way calibrated leave-one-tile-out on the
    10 CoNSeP tiles of the sample, on the held-out tile: count error 0.38 with peaks vs 0.29 with h-maxima, PQ 0.225
    vs 0.245, AJI 0.333 vs 0.296; h-maxima merges more, which AJI punishes most. Adding AJI to the objective lowered
    PQ and raised the count error.) Without tiles: the defaults, with NaN figures.
    """
    from skimage.filters import gaussian

    from segaudit.metrics.instance import panoptic_quality

    best = NucleiCalibration(1.0, 1.0, 1.0, float("nan"), float("nan"), -np.inf)
    if not tiles:
        return best
    hs = [gaussian(haematoxylin(rgb), 1.0) for rgb, _ in tiles]
    for factor in NUCLEI_FACTORS:
        fgs = [_nucleus_foreground(h, factor, 20) for h in hs]
        for sigma in NUCLEI_SIGMAS:
            for height in NUCLEI_HEIGHTS:
                pqs, errs = [], []
                for fg, (_, inst) in zip(fgs, tiles, strict=True):
                    pred = _split_nuclei(fg, height, sigma, 20)
                    n_gt = len(np.unique(inst)) - 1
                    errs.append(abs(int(pred.max()) - n_gt) / max(n_gt, 1))
                    pqs.append(panoptic_quality(inst, pred).pq)
                pq, err = float(np.mean(pqs)), float(np.mean(errs))
                if pq - 0.5 * err > best.score:
                    best = NucleiCalibration(factor, height, sigma, pq, err, pq - 0.5 * err)
    return best


#: Columns of :func:`nucleus_features` that are stain, not shape: made relative to the tile.
STAIN_COLUMNS = (1, 2, 5, 6, 7)


def nucleus_features(rgb: np.ndarray, instances: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ids, features) per instance: log area (pixels), then mean and sd haematoxylin density, eccentricity,
    solidity and mean R, G, B (0-1).

    The stain columns (:data:`STAIN_COLUMNS`) are minus their median over the tile's instances: staining varies
    from slide to slide more than between nucleus classes, so a nucleus is described by how much darker or bluer
    it is than its neighbours. (Leave-one-tile-out on the 10 CoNSeP tiles of the sample: nearest-centroid accuracy
    on the true instances 0.45 with absolute colour, 0.51 relative; relative error of the per-class counts on the
    segmenter's nuclei, classes with at least 5 nuclei on a tile, 0.72 absolute, 0.45 relative.)
    """
    from skimage.measure import regionprops

    hem = haematoxylin(rgb)
    img = np.asarray(rgb)[..., :3].astype(np.float64) / 255.0
    ids, rows = [], []
    for p in regionprops(instances.astype(np.int32)):
        rr, cc = p.coords[:, 0], p.coords[:, 1]
        hv = hem[rr, cc]
        rows.append([np.log(p.area), hv.mean(), hv.std(), p.eccentricity, p.solidity,
                     *img[rr, cc].mean(axis=0)])
        ids.append(p.label)
    feats = np.asarray(rows, np.float64).reshape(-1, 8)
    if len(feats):
        cols = list(STAIN_COLUMNS)
        feats[:, cols] -= np.median(feats[:, cols], axis=0)
    return np.asarray(ids, np.int64), feats


@dataclass
class NucleusClassifier:
    """Nearest centroid over standardised :func:`nucleus_features`, one centroid per class value.

    A nucleus farther from its nearest centroid than that class's ``radius`` (the 90th percentile of the training
    nuclei's distances to it) is left unclassified (0): a tile without a class then counts none of it, instead of
    giving it the nuclei that resemble nothing.

    ``min_count`` (per class, default 1): fewer nuclei of a class than this on one tile are read as look-alikes,
    not as the class being present (see :func:`calibrate_min_counts`); :meth:`count_filter` applies it.
    """

    classes: np.ndarray
    centroids: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    radius: np.ndarray
    min_count: np.ndarray | None = None

    def threshold(self, value: int) -> int:
        """The calibrated minimum per-tile count of class ``value`` (1 when uncalibrated or unknown)."""
        if self.min_count is None or value not in self.classes:
            return 1
        return int(self.min_count[int(np.flatnonzero(self.classes == value)[0])])

    @classmethod
    def fit(cls, features: np.ndarray, classes: np.ndarray) -> NucleusClassifier:
        mean = features.mean(axis=0)
        scale = np.maximum(features.std(axis=0), 1e-6)
        z = (features - mean) / scale
        values = np.unique(classes)
        cents = np.stack([z[classes == v].mean(axis=0) for v in values])
        radius = np.array([float(np.quantile(np.linalg.norm(z[classes == v] - cents[i], axis=1), 0.9))
                           for i, v in enumerate(values)])
        return cls(values, cents, mean, scale, radius)

    def predict(self, features: np.ndarray) -> np.ndarray:
        if not len(features):
            return np.zeros(0, np.int64)
        z = (features - self.mean) / self.scale
        d = np.sqrt(((z[:, None, :] - self.centroids[None]) ** 2).sum(-1))
        best = np.argmin(d, axis=1)
        out = self.classes[best].astype(np.int64)
        out[d[np.arange(len(best)), best] > self.radius[best]] = 0
        return out


#: Share of the reference tiles showing a class whose leave-one-out count must still pass its floor.
PRESENT_KEPT = 0.9


def calibrate_min_counts(tiles: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]) -> np.ndarray:
    """Per-class minimum per-tile count, by leave-one-tile-out over the reference tiles.

    ``tiles``: per reference tile (training features, their classes, features of the segmenter's instances, their
    true classes by majority). For each tile the classifier is refitted without it and counts each class on the
    tile's segmented nuclei. A class's threshold is the smallest count that rejects every class-free tile, capped
    so that :data:`PRESENT_KEPT` (90 %) of the tiles showing the class still reach it; 1 when the class is never
    absent or never present. (Maximising balanced accuracy instead was tried: with one or two class-free tiles it
    set floors of 16-52 and zeroed real counts.)
    Classes follow ``np.unique`` of all training classes (> 0).
    """
    all_cls = np.concatenate([t[1] for t in tiles]) if tiles else np.zeros(0, np.int64)
    values = np.unique(all_cls[all_cls > 0])
    seen: dict[int, tuple[list[int], list[int]]] = {int(v): ([], []) for v in values}  # (present, absent) counts
    for i, (_, _, seg_f, seg_c) in enumerate(tiles):
        rest_f = [t[0][t[1] > 0] for j, t in enumerate(tiles) if j != i]
        rest_c = [t[1][t[1] > 0] for j, t in enumerate(tiles) if j != i]
        if not rest_f or not sum(len(c) for c in rest_c):
            continue
        clf = NucleusClassifier.fit(np.concatenate(rest_f), np.concatenate(rest_c))
        pred = clf.predict(seg_f) if len(seg_f) else np.zeros(0, np.int64)
        for v in values:
            seen[int(v)][0 if (seg_c == v).any() else 1].append(int((pred == v).sum()))
    out = []
    for v in values:
        present, absent = (np.asarray(x) for x in seen[int(v)])
        t = 1
        if len(present) and len(absent):
            needed = int(absent.max()) + 1  # rejects every class-free reference tile
            keeps = int(np.floor(np.quantile(present, 1 - PRESENT_KEPT)))  # keeps PRESENT_KEPT of the others
            t = max(1, min(needed, keeps))
        out.append(t)
    return np.array(out, np.int64)


def instance_boxes(instances: np.ndarray) -> list[list[int]]:
    """Pixel XYXY boxes (inclusive) of every instance id > 0, in id order."""
    out = []
    for sl in ndimage.find_objects(instances.astype(np.int32)):
        if sl is not None:
            out.append([int(sl[1].start), int(sl[0].start), int(sl[1].stop - 1), int(sl[0].stop - 1)])
    return out


def majority_class(instances: np.ndarray, classes: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """The most frequent class value (> 0) under each instance id of ``ids`` (0 when none)."""
    out = np.zeros(len(ids), np.int64)
    inst = instances.ravel().astype(np.int64)
    cls = classes.ravel().astype(np.int64)
    sel = (inst > 0) & (cls > 0)
    if not sel.any():
        return out
    pairs = np.unique(np.stack([inst[sel], cls[sel]]), axis=1, return_counts=True)
    best: dict[int, tuple[int, int]] = {}
    for (i, c), n in zip(pairs[0].T, pairs[1], strict=True):
        if n > best.get(int(i), (0, 0))[1]:
            best[int(i)] = (int(c), int(n))
    for k, i in enumerate(ids):
        out[k] = best.get(int(i), (0, 0))[0]
    return out


# ---------------------------------------------------------------------------------------------- specks
#: Longest side (pixels) of the working resolution of the speck detector.
SPECK_SIDE = 640
#: Candidate channels: mean grey, green (the contrast channel of fundus photography), yellowness ((R+G)/2 - B/2).
SPECK_CHANNELS = ("grey", "green", "yellow")
SPECK_RADII = (2, 3, 4, 6, 8)
SPECK_THRESHOLDS = (2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0)


@dataclass
class SpeckModel:
    """The calibrated speck detector of one target (module docstring); ``dice``: its mean reference Dice."""

    channel: str
    radius: int
    threshold: float
    polarity: int
    dice: float


def _speck_channel(rgb: np.ndarray, channel: str) -> np.ndarray:
    img = np.asarray(rgb, dtype=np.float32)
    if channel == "green":
        return img[..., 1]
    if channel == "yellow":
        return img[..., :2].mean(axis=2) - 0.5 * img[..., 2]
    return img.mean(axis=2)


def _block_mean(a: np.ndarray, step: int) -> np.ndarray:
    """Mean over ``step`` x ``step`` blocks (the ragged last row/column of blocks averaged over what is there)."""
    if step == 1:
        return a
    h, w = a.shape
    hp, wp = -h % step, -w % step
    pad = np.pad(a, ((0, hp), (0, wp)), mode="edge") if hp or wp else a
    return pad.reshape(pad.shape[0] // step, step, pad.shape[1] // step, step).mean(axis=(1, 3))


def speck_step(shape: tuple[int, ...]) -> int:
    """The block size that brings an image's longest side to at most :data:`SPECK_SIDE`."""
    return max(1, int(np.ceil(max(shape[:2]) / SPECK_SIDE)))


def speck_working(rgb: np.ndarray) -> np.ndarray:
    """An RGB image in [0, 1] block-averaged to the working resolution (longest side <= :data:`SPECK_SIDE`)."""
    img = np.asarray(rgb, dtype=np.float32)
    step = speck_step(img.shape)
    return np.stack([_block_mean(img[..., c], step) for c in range(3)], axis=2)


def speck_scores(small: np.ndarray, channel: str, radius: int, polarity: int) -> np.ndarray:
    """Top-hat of ``channel`` of a :func:`speck_working` image in robust z-units (0 outside the field of view)."""
    from skimage.morphology import black_tophat, disk, white_tophat

    ch = _speck_channel(small, channel)
    grey = small.mean(axis=2)
    # field of view: fundus photos and microscope fields sit in a dark surround whose rim is no speck
    fov = grey > float(grey.min()) + 0.04 * float(np.ptp(grey) or 1.0)
    fov = ndimage.binary_erosion(fov, iterations=radius + 2) if fov.mean() < 0.98 else fov
    if not fov.any():
        return np.zeros(ch.shape, np.float32)
    top = (white_tophat if polarity >= 0 else black_tophat)(ch, disk(radius))
    vals = top[fov]
    med = float(np.median(vals))
    mad = float(np.median(np.abs(vals - med))) * 1.4826 or float(vals.std()) or 1.0
    return np.where(fov, (top - med) / mad, 0.0).astype(np.float32)


def _upsample(mask: np.ndarray, step: int, shape: tuple[int, int]) -> np.ndarray:
    return mask.repeat(step, axis=0).repeat(step, axis=1)[: shape[0], : shape[1]] if step > 1 else mask


def segment_specks(rgb: np.ndarray, model: SpeckModel) -> np.ndarray:
    """The bool speck mask of an image (original grid) with a calibrated :class:`SpeckModel`."""
    z = speck_scores(speck_working(rgb), model.channel, model.radius, model.polarity)
    return _upsample(z > model.threshold, speck_step(rgb.shape), rgb.shape[:2])


def speck_truth(mask: np.ndarray) -> np.ndarray:
    """A reference mask at the working resolution (a block is target when at least half of it is)."""
    return _block_mean(np.asarray(mask, dtype=np.float32), speck_step(mask.shape)) >= 0.5


def calibrate_specks(images: list[tuple[np.ndarray, np.ndarray]], polarity: int) -> SpeckModel:
    """The (channel, radius, threshold) of best mean Dice on (:func:`speck_working` image, :func:`speck_truth`)
    pairs, measured at the working resolution.
    """
    smalls = [small for small, _ in images]
    truths = [truth for _, truth in images]
    best = SpeckModel("grey", SPECK_RADII[0], SPECK_THRESHOLDS[0], polarity, -1.0)
    for channel in SPECK_CHANNELS:
        for radius in SPECK_RADII:
            zs = [speck_scores(small, channel, radius, polarity) for small in smalls]
            for t in SPECK_THRESHOLDS:
                d = float(np.mean([_dice(z > t, truth) for z, truth in zip(zs, truths, strict=True)]))
                if d > best.dice:
                    best = SpeckModel(channel, radius, t, polarity, round(d, 4))
    return best
