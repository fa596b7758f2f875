"""All feature groups of one case, from arrays already read: the functional core of ``segaudit features``.

:func:`case_features` returns long rows ``(model, source, group, feature, value)``:

========== ==================================== ===========================================================
group      source                               features
========== ==================================== ===========================================================
spatial    ``image``                            shape, spacing, extent, voxel volume, foreground volume and
                                                centre of mass (mm) of the case's foreground
intensity  ``<sequence>``, ``<sequence>/<label>`` first-order statistics (:mod:`.intensity`)
texture    ``<sequence>``, ``<sequence>/<label>`` GLCM (:mod:`.texture`)
lesion     ``<label>`` (labels and regions)      size, components, position, extent, shape (:mod:`.lesion`)
multimodal ``<a>~<b>``, ``<label>``              sequence correlation over the brain; label contrast
========== ==================================== ===========================================================

``model`` is ``""`` for the images and the ground truth, the model's name for features of its prediction
(lesion group, size and count only: what longitudinal and bias analyses compare with the ground truth).

The foreground ("brain") of a sequence is :func:`~segaudit.features.intensity.foreground_mask` (or voxels
``!= 0`` / ``> 0`` with ``foreground="nonzero"`` / ``"positive"``, AUDIT's choices); the case foreground is
the union over sequences, the multimodal correlation uses their intersection (voxels every sequence covers).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import numpy as np

from segaudit.base.masks import bounding_box, values_mask
from segaudit.base.types import Spacing
from segaudit.errors import ConfigError, check_keys
from segaudit.features.intensity import differs_from, fill_holes, intensity_features
from segaudit.features.lesion import lesion_features
from segaudit.features.multimodal import label_contrast, sequence_correlations
from segaudit.features.spatial import spatial_features
from segaudit.features.texture import glcm_features

GROUPS = ("spatial", "intensity", "texture", "lesion", "multimodal")

Row = tuple[str, str, str, str, float]  # model, source, group, feature, value


@dataclass(frozen=True)
class FeatureOptions:
    """Settings of feature extraction (stored with each run; changing one re-extracts).

    Parameters
    ----------
    groups:
        Feature groups to compute (see :data:`GROUPS`).
    bin_count, bin_width:
        Texture quantisation: fixed bin count (default 32) or, when ``bin_width`` is given, fixed bin width.
    histogram_bins:
        Bins of the first-order entropy histogram.
    foreground:
        ``"auto"`` (voxels differing from the corner value, holes filled), ``"nonzero"`` (``!= 0``, AUDIT's
        brain for its centre of mass) or ``"positive"`` (``> 0``, AUDIT's region for intensity statistics).
    connectivity:
        Connected-component neighbourhood for lesion counts (3D 6/18/26, 2D 4/8; default full).
    shape:
        Mesh shape descriptors of labels (surface, sphericity, diameter, axes).
    label_texture:
        Texture inside each label and region as well as over the foreground.
    """

    groups: tuple[str, ...] = GROUPS
    bin_count: int | None = 32
    bin_width: float | None = None
    histogram_bins: int = 64
    foreground: str = "auto"
    connectivity: int | None = None
    shape: bool = True
    label_texture: bool = True

    def __post_init__(self) -> None:
        bad = set(self.groups) - set(GROUPS)
        if bad:
            raise ConfigError(f"unknown feature group(s) {sorted(bad)}; choose from {', '.join(GROUPS)}")
        if self.foreground not in ("auto", "nonzero", "positive"):
            raise ConfigError(f"foreground must be 'auto', 'nonzero' or 'positive', not {self.foreground!r}")

    @classmethod
    def from_dict(cls, data: dict | None) -> FeatureOptions:
        """Options from a project's ``features:`` section (unknown keys are an error)."""
        data = dict(data or {})
        known = set(cls.__dataclass_fields__)
        check_keys(data, known, "features")
        if "groups" in data:
            data["groups"] = tuple(data["groups"])
        return cls(**data)

    def to_dict(self) -> dict:
        """The options as a plain mapping (groups as a list), as recorded with a run's settings."""
        d = asdict(self)
        d["groups"] = list(self.groups)
        return d

    def with_changes(self, **kw) -> FeatureOptions:
        """A copy with the given options changed; ``None`` values keep the current ones."""
        return replace(self, **{k: v for k, v in kw.items() if v is not None})


@dataclass
class CaseFeatures:
    """Rows of one case and what went wrong while computing them (warnings, not failures)."""

    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, source: str, group: str, values: dict, model: str = "") -> None:
        """Append one row per numeric value of ``values``; text values are skipped."""
        for k, v in values.items():
            if isinstance(v, str):
                continue  # text (orientation codes) lives in the files table, not in the numeric store
            self.rows.append((model, source, group, k, float(v)))


def _foreground(image: np.ndarray, mode: str, seen: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """The foreground of one sequence; ``seen`` caches (raw, filled) pairs of the case's other sequences."""
    if mode == "positive":
        return image > 0  # NaN compares False
    if mode == "nonzero":
        return differs_from(image, 0)
    raw = differs_from(image, image.flat[0])
    for prev_raw, prev_filled in seen:
        if np.array_equal(prev_raw, raw):  # co-registered, skull-stripped sequences share one brain mask
            return prev_filled
    filled = fill_holes(raw)
    seen.append((raw, filled))
    return filled


def _combine(op, masks: list[np.ndarray]) -> np.ndarray | None:
    """Union or intersection of masks, pairwise (``op.reduce`` on a list would stack them first).

    A mask shared by several sequences (the same object) is used once.
    """
    unique = list({id(m): m for m in masks}.values())
    if not unique:
        return None
    out = unique[0]
    for m in unique[1:]:
        out = op(out, m)
    return out


def label_masks(gt: np.ndarray, labels: dict[str, int], regions: dict[str, tuple[int, ...]]
                ) -> dict[str, np.ndarray]:
    """Boolean mask of each label and region (a region made of one label shares that label's mask)."""
    masks = {name: gt == value for name, value in labels.items()}
    by_value = {v: n for n, v in labels.items()}
    for name, values in regions.items():
        if len(values) == 1 and values[0] in by_value:
            masks[name] = masks[by_value[values[0]]]
        else:
            masks[name] = values_mask(gt, values)
    return masks


def case_features(images: dict[str, np.ndarray], spacing: Spacing, gt: np.ndarray | None = None,
                  labels: dict[str, int] | None = None, regions: dict[str, tuple[int, ...]] | None = None,
                  predictions: dict[str, np.ndarray] | None = None, options: FeatureOptions | None = None,
                  orientation: str = "") -> CaseFeatures:
    """Every requested feature of one case.

    Parameters
    ----------
    images:
        Sequence name -> single-channel image, all on the grid of ``gt`` (missing sequences left out by the
        caller, who records the gap).
    spacing:
        Voxel size (mm) per array axis.
    gt:
        Integer label map (or None: image features only).
    labels, regions:
        Label name -> value and region name -> values; default: every non-zero value present, as ``label_<v>``.
    predictions:
        Model -> label map of its prediction (lesion size and count per label and region).
    """
    opts = options or FeatureOptions()
    out = CaseFeatures()
    groups = set(opts.groups)
    shape = next(iter(images.values())).shape if images else (gt.shape if gt is not None else None)
    if shape is None:
        out.notes.append("no image and no ground truth: nothing to compute")
        return out
    for name, img in images.items():
        if img.shape != shape:
            raise ValueError(f"sequence {name} has shape {img.shape}, other files {shape}")
    if gt is not None and gt.shape != shape:
        raise ValueError(f"ground truth shape {gt.shape} differs from the image shape {shape}")
    if labels is None and gt is not None:
        labels = {f"label_{int(v)}": int(v) for v in np.unique(gt) if v != 0}
    labels, regions = labels or {}, regions or {}
    masks = label_masks(gt, labels, regions) if gt is not None else {}

    box_cache: dict[int, tuple[slice, ...] | None] = {}

    def box_of(m: np.ndarray) -> tuple[slice, ...] | None:
        """Bounding box of a mask, computed once per mask object (sequences share the brain mask)."""
        if id(m) not in box_cache:
            box_cache[id(m)] = bounding_box(m)
        return box_cache[id(m)]

    fgs = {}
    seen: list[tuple[np.ndarray, np.ndarray]] = []
    for name, img in images.items():
        fg = _foreground(img, opts.foreground, seen)
        if box_of(fg) is None:
            out.notes.append(f"sequence {name}: no foreground (the image is constant): intensity and texture "
                             "features are NaN")
        nan = int(np.isnan(img).sum()) if np.issubdtype(img.dtype, np.floating) else 0
        if nan:
            out.notes.append(f"sequence {name}: {nan} NaN voxels left out of every statistic")
        fgs[name] = fg
    union = _combine(np.logical_or, list(fgs.values()))

    com = None  # the foreground's centre of mass: a spatial feature, and the origin of lesion distances
    if groups & {"spatial", "lesion"}:
        spatial = spatial_features(shape, spacing, union, orientation)
        if union is not None and not np.isnan(spatial["com_0_mm"]):
            com = tuple(float(spatial[f"com_{i}_mm"]) for i in range(len(shape)))
        if "spatial" in groups:
            out.add("image", "spatial", spatial)
    if "intensity" in groups or "texture" in groups:
        for name, img in images.items():
            regions_of = {"": fgs[name]} | {f"/{k}": m for k, m in masks.items()}
            done: dict[int, tuple[dict, dict | None]] = {}  # a region equal to a label is computed once
            for suffix, m in regions_of.items():
                if id(m) not in done:
                    box = box_of(m) or tuple(slice(0, 0) for _ in m.shape)
                    ci, cm = img[box], m[box]  # every statistic is over the region: its bounding box suffices
                    first = intensity_features(ci, cm, opts.histogram_bins) if "intensity" in groups else {}
                    tex = (glcm_features(ci, cm, opts.bin_count, opts.bin_width)
                           if "texture" in groups and (suffix == "" or opts.label_texture) else None)
                    done[id(m)] = (first, tex)
                first, tex = done[id(m)]
                out.add(f"{name}{suffix}", "intensity", first)
                if tex is not None:
                    out.add(f"{name}{suffix}", "texture", tex)
    if "lesion" in groups:
        done_lesion: dict[int, dict] = {}
        for name, m in masks.items():
            if id(m) not in done_lesion:
                if box_of(m) is None:
                    out.notes.append(f"label {name}: empty in the ground truth (volume 0, other lesion features "
                                     "NaN)")
                done_lesion[id(m)] = lesion_features(m, spacing, com, opts.connectivity, opts.shape, box_of(m))
            out.add(name, "lesion", done_lesion[id(m)])
        for model, pred in (predictions or {}).items():
            if pred.shape != shape:
                out.notes.append(f"prediction of {model}: shape {pred.shape} differs from {shape}; skipped")
                continue
            for name, m in label_masks(pred, labels, regions).items():
                f = lesion_features(m, spacing, com, opts.connectivity, shape=False)
                out.add(name, "lesion", {k: f[k] for k in ("volume", "n_components", "largest_volume",
                                                           "distance") if k in f}, model=model)
    if "multimodal" in groups and len(images) >= 1:
        inter = _combine(np.logical_and, list(fgs.values()))
        assert inter is not None  # at least one image, so both masks exist
        assert union is not None
        for (a, b), r in sequence_correlations(images, inter).items():
            out.add(f"{a}~{b}", "multimodal", {"correlation": r})
        for name, feats in label_contrast(images, masks, union, {k: box_of(m) for k, m in masks.items()}).items():
            out.add(name, "multimodal", feats)
    return out
