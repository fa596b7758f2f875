"""The ``prompt`` step's library part.

Run a promptable model on one 2D image with prompts simulated from its ground truth, write the masks under the run
folder and return one record per prompt.

Per prompt kind the masks of all prompts (one per component, or one for ``box-all``) are OR-ed into one mask,
written as ``<out_dir>/<model>/<kind>/<case>.png`` (0/255), so that the store can register the folder as the
model ``<model>/<kind>`` and ``evaluate`` scores it like any other prediction. The input files are only read.
The kind ``clicks`` runs interactive refinement per component (:func:`segaudit.models.prompts.refinement_clicks`,
the previous low-resolution logits fed back as the dense prompt, as SAM's interactive loop does) and writes the
mask after the last click.

Over a whole project, :func:`prompt_project` (the API behind ``segaudit prompt``) runs every 2D case of every
dataset with images and ground truth, writes the masks under ``RUN/prompt/<dataset>/<model>/<kind>/<case>.png``,
stores one row per prompt in the ``prompts`` table (the exact prompt, seed, preprocessing, predicted IoU, Dice,
encoder and decoder time), and then scores the masks with the ``evaluate`` step as the models
``<model>/<kind>`` (:func:`scoring_project`), so every view treats them as any other model. Robustness settings
(:data:`ROBUSTNESS`) re-run the box prompts under other preprocessing or prompt perturbations and store only
their ``prompts`` rows (setting ``filter=area``, ``jitter=5px`` ...), from which
:func:`segaudit.analysis.prompting.stability_table` is computed. A re-run skips cases prompted before with the
same settings whose image and ground-truth files are unchanged (:mod:`segaudit.pipeline.resume`) and whose masks
are still there.

Multi-sequence 3D datasets (MRI) run the kind ``box-3d`` (:data:`VOLUME_KINDS`) instead: per case, the chosen
sequences (``PromptOptions.sequences``, default FLAIR; up to three stacked as the three channels) are normalised
per volume (:func:`segaudit.models.propagate.normalise_mr`) and LiteMedSAM segments the dataset's whole
foreground (its region holding every label, e.g. WT) by slice propagation along the last array axis
(:func:`segaudit.models.propagate.propagate_3d`: the ground truth's box on its largest slice, then up and down
with the previous slice's mask box, over the ground truth's extent along that axis only). The volume is written
as ``RUN/prompt/<dataset>/<model>/box-3d/<case>.nii.gz`` (0/1 uint8, the ground truth's affine and header) and
scored by ``evaluate`` as the model ``<model>/box-3d``. Its ``prompts`` row is one per case (component 0): the
key slice's box in ``box``, and per propagated slice its box, where the box came from, predicted IoU and Dice in
the prompt's ``slices`` list; ``predicted_iou`` is the mean over those slices, the times are their sums, and
``dice`` is the whole volume's. Robustness settings run on 2D cases only.
"""

from __future__ import annotations

import gzip
import json
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
from PIL import Image
from scipy import ndimage

from segaudit.base.masks import overlap_dice
from segaudit.base.types import Executor
from segaudit.dataset.discover import discover
from segaudit.dataset.project import DatasetConfig, ProjectConfig
from segaudit.errors import SegauditError, failure_message
from segaudit.io.atomic import atomic_write
from segaudit.io.masks import MaskEncoding, read_mask
from segaudit.io.paths import safe_component
from segaudit.io.readers import read_image
from segaudit.metrics.evaluate import EvaluationOptions
from segaudit.models.automatic import AUTO_PROMPTS
from segaudit.models.base import Prompt, PromptableModel
from segaudit.models.prompts import PROMPT_KINDS, case_rng, refinement_clicks, simulate
from segaudit.pipeline.evaluate import EvaluateResult, evaluate_project
from segaudit.pipeline.parallel import run_step
from segaudit.pipeline.resume import (
    CaseRows,
    case_inputs,
    drop_vanished,
    fingerprint_inputs,
    present_cases,
    resume_lines,
    stale_jobs,
    vanished_cases,
)
from segaudit.store.store import ResultsStore

__all__ = ["CLICK_TARGETS", "DEFAULT_KINDS", "DEFAULT_VOLUME_SEQUENCES", "ROBUSTNESS", "VOLUME_AXIS", "VOLUME_KINDS",
           "PromptCaseJob", "PromptOptions", "PromptProjectResult", "PromptRecord", "PromptRun", "click_refinement",
           "noisy_image", "noise_fraction", "prompt_case", "prompt_image", "prompt_project", "release_models",
           "scoring_project", "volume_sequences"]

#: Dice targets reported as "clicks to reach" (NoC@85, NoC@90).
CLICK_TARGETS = (0.85, 0.90)


@dataclass
class PromptRecord:
    """One prompt's row of the future ``prompts`` table (coordinates in original pixels)."""

    case: str
    kind: str
    component: int | None
    prompt: dict[str, Any]
    seed: int
    predicted_iou: float
    encode_seconds: float
    decode_seconds: float
    dice: float
    clicks_dice: list[float] = field(default_factory=list)
    clicks_to: dict[str, int | None] = field(default_factory=dict)


@dataclass
class PromptRun:
    """Records of one image, the union Dice per kind and the mask file written per kind."""

    records: list[PromptRecord]
    union_dice: dict[str, float]
    files: dict[str, Path]


def click_refinement(model: PromptableModel, image: np.ndarray, gt: np.ndarray, max_clicks: int = 5,
                     feed_logits: bool = True) -> tuple[np.ndarray, Any, list[Any]]:
    """Interactive refinement of one object: returns the last mask, the click trace and the predictions."""
    emb = model.encode(image)
    state: dict[str, Any] = {"logits": None, "preds": []}

    def predict(points, labels):
        prompt = Prompt(points=tuple(points), labels=tuple(labels), kind="clicks",
                        mask_logits=state["logits"] if feed_logits else None)
        pred = model.decode(emb, [prompt])[0]
        state["logits"] = pred.low_res_logits
        state["preds"].append(pred)
        return pred.mask

    trace = refinement_clicks(gt, predict, max_clicks=max_clicks)
    last = state["preds"][-1].mask if state["preds"] else np.zeros(gt.shape, bool)
    return last, trace, state["preds"]


def _write_mask(path: Path, mask: np.ndarray) -> Path:
    """A 0/255 PNG, written atomically (a crash never leaves a half-written mask)."""
    image = Image.fromarray(np.where(mask, 255, 0).astype(np.uint8))
    return atomic_write(path, lambda tmp: image.save(tmp, format="PNG"))


#: Kinds :func:`prompt_image` runs besides the simulators' (:data:`~segaudit.models.prompts.PROMPT_KINDS`).
EXTRA_KINDS = ("clicks", "auto")


def _shift_record(rec: dict[str, Any], x0: int, y0: int, window: tuple[int, int, int, int]) -> dict[str, Any]:
    out = dict(rec)
    if out.get("box") is not None:
        out["box"] = [out["box"][0] + x0, out["box"][1] + y0, out["box"][2] + x0, out["box"][3] + y0]
    out["points"] = [[x + x0, y + y0] for x, y in out.get("points", [])]
    out["tile"] = list(window)
    return out


def _tiled_kind(model: PromptableModel, image: np.ndarray, g: np.ndarray, case: str, kind: str, tile: int,
                seed: int, records: list, simulate_options: dict) -> np.ndarray:
    """One simulator kind over the tiles of a large image (see :func:`prompt_image`); appends the records."""
    from segaudit.models.propagate import tile_windows

    mask = np.zeros(g.shape, bool)
    comp_id = 0
    for y0, x0, y1, x1 in tile_windows(g.shape, tile):
        gt_t = g[y0:y1, x0:x1]
        if not gt_t.any():
            continue
        labels_t, _ = ndimage.label(gt_t, structure=ndimage.generate_binary_structure(2, 2))
        prompts = simulate(gt_t, kind, case_rng(seed, case, kind, f"{y0},{x0}"), **simulate_options)
        emb = model.encode(np.asarray(image)[y0:y1, x0:x1])
        for pred in model.decode(emb, prompts):
            p = pred.prompt
            mask[y0:y1, x0:x1] |= pred.mask
            target = gt_t if p.component in (0, None) else labels_t == p.component
            comp_id += 1
            records.append(PromptRecord(case=case, kind=kind, component=comp_id,
                                        prompt=_shift_record(p.record(), x0, y0, (y0, x0, y1, x1)), seed=seed,
                                        predicted_iou=pred.predicted_iou, encode_seconds=emb.encode_seconds,
                                        decode_seconds=pred.decode_seconds, dice=overlap_dice(pred.mask, target)))
    return mask


def prompt_image(model: PromptableModel, image: np.ndarray, gt: np.ndarray, case: str, kinds: list[str],
                 out_dir: str | Path | None = None, seed: int = 0, max_clicks: int = 5, auto_grid: int = 4,
                 tile: int | None = None, instances: np.ndarray | None = None, auto_prompts: str = "boxes",
                 auto_filters: tuple[float, float] = (0.8, 0.9), **simulate_options) -> PromptRun:
    """Run every prompt kind on one image (module docstring); ``out_dir`` None writes nothing.

    Each kind's prompts are drawn from ``case_rng(seed, case, kind)``, so adding a kind never changes another
    kind's prompts. Per-prompt Dice is against the prompt's own component (the whole ground truth for
    ``box-all``); ``union_dice`` is the per-kind OR of the masks against the whole ground truth. The kind ``auto``
    runs :func:`~segaudit.models.automatic.automatic_masks` on a grid of ``auto_prompts`` (``"boxes"``: the
    multi-scale :func:`~segaudit.models.automatic.box_grid` up to ``auto_grid`` windows per side, the default for
    the box-trained LiteMedSAM; ``"points"``: an ``auto_grid × auto_grid`` point grid), without ground truth, and
    keeps, per component, the mask that matches it best (oracle choice); its record holds that mask's grid prompt,
    predicted IoU and stability score. ``auto_filters``: the (predicted IoU, stability) a grid mask needs to be
    kept (SAM's filters; LiteMedSAM's predicted IoU sits at 0.7-0.83 for any box on the x-rays, so ``(0, 0)``
    keeps every grid mask left after NMS). With ``tile`` and an image whose longest side exceeds it, the
    simulator kinds run per ``tile × tile`` window holding ground truth (:func:`~segaudit.models.propagate.
    tile_windows`; prompts simulated from the window's ground truth, a component cut by a window border is prompted
    in each window), each window encoded on its own; their records say the window (``tile``: y0, x0, y1, x1) and
    their coordinates are in the whole image; components are numbered over the image, window by window.
    ``instances`` (an instance map of the image's shape, 0 = background): the objects are its instances instead of
    the connected components (one prompt per instance, component = instance id; H&E nuclei that touch), for the
    simulator kinds and ``clicks``.
    """
    g = np.asarray(gt, bool)
    unknown = [k for k in kinds if k not in PROMPT_KINDS + EXTRA_KINDS]
    if unknown:
        raise ValueError(f"unknown prompt kinds {unknown}; known: {', '.join(PROMPT_KINDS + EXTRA_KINDS)}")
    if instances is not None:
        labels = np.where(g, np.asarray(instances), 0).astype(np.int64)
    else:
        labels, _ = ndimage.label(g, structure=ndimage.generate_binary_structure(2, 2))
    ids = [int(v) for v in np.unique(labels) if v != 0]
    emb = model.encode(image)
    records, union, files = [], {}, {}
    for kind in kinds:
        mask = np.zeros(g.shape, bool)
        if kind == "auto":
            from segaudit.models.automatic import automatic_masks, match_to_components

            found = automatic_masks(model, image, grid=auto_grid, prompts=auto_prompts,
                                    iou_threshold=auto_filters[0], stability_threshold=auto_filters[1])
            for comp, best, dice in match_to_components(found, g):
                if best is not None:
                    mask |= best.mask
                records.append(PromptRecord(
                    case=case, kind=kind, component=comp,
                    prompt={"grid": auto_grid, "grid_prompts": auto_prompts, "kept_masks": len(found),
                            "min_predicted_iou": auto_filters[0], "min_stability": auto_filters[1],
                            **(best.prompt_record() if best else {"points": [], "labels": []}),
                            "stability": best.stability if best else None},
                    seed=seed, predicted_iou=best.predicted_iou if best else float("nan"),
                    encode_seconds=emb.encode_seconds, decode_seconds=float("nan"), dice=dice))
        elif tile and max(g.shape) > tile and kind in PROMPT_KINDS:
            mask = _tiled_kind(model, image, g, case, kind, tile, seed, records, simulate_options)
        elif kind == "clicks":
            for comp in ids:
                region = labels == comp
                last, trace, preds = click_refinement(model, image, region, max_clicks=max_clicks)
                mask |= last
                records.append(PromptRecord(
                    case=case, kind=kind, component=comp,
                    prompt={"points": [list(p) for p in trace.points], "labels": trace.labels}, seed=seed,
                    predicted_iou=preds[-1].predicted_iou if preds else float("nan"),
                    encode_seconds=emb.encode_seconds,
                    decode_seconds=float(sum(p.decode_seconds for p in preds)), dice=overlap_dice(last, region),
                    clicks_dice=list(trace.dice),
                    clicks_to={f"{t:.2f}": trace.clicks_to(t) for t in CLICK_TARGETS}))
        else:
            if instances is None:
                prompts = simulate(g, kind, case_rng(seed, case, kind), **simulate_options)
            else:  # one object per instance id (touching nuclei stay apart), each with its own stream
                prompts = [replace(q, component=oid) for oid in ids
                           for q in simulate(labels == oid, kind, case_rng(seed, case, kind, oid), **simulate_options)
                           [:1]]
            for pred in model.decode(emb, prompts):
                p = pred.prompt
                target = g if p.component in (0, None) else labels == p.component
                mask |= pred.mask
                records.append(PromptRecord(case=case, kind=kind, component=p.component, prompt=p.record(),
                                            seed=seed, predicted_iou=pred.predicted_iou,
                                            encode_seconds=emb.encode_seconds,
                                            decode_seconds=pred.decode_seconds, dice=overlap_dice(pred.mask, target)))
        union[kind] = overlap_dice(mask, g)
        if out_dir is not None:
            files[kind] = _write_mask(Path(out_dir) / model.name / kind / f"{case}.png", mask)
    return PromptRun(records=records, union_dice=union, files=files)


# ---------------------------------------------------------------------------------------------------- project
#: Kinds run on 3D (multi-sequence) datasets: box prompts propagated slice by slice.
VOLUME_KINDS = ("box-3d",)
#: Prompt kinds run by default: on 2D images the box per component, its jittered version, the centre point, the
#: clicks; on 3D volumes the propagated box.
DEFAULT_KINDS = ("box", "box-jitter", "point", "clicks", "box-3d")
#: Sequences stacked as the channels of a 3D case's slices by default: the first of these present, alone (FLAIR
#: shows the whole tumour; MedSAM's published brain-MRI anchor is FLAIR), else the dataset's first sequence.
DEFAULT_VOLUME_SEQUENCES = ("flair",)
#: The array axis 3D volumes are sliced along (the last: axial for BraTS-style NIfTI).
VOLUME_AXIS = 2
STEP = "prompt"
#: The tables whose rows the prompt step owns (per case).
STEP_TABLES = ("prompts", "errors", "inputs")
INPUT_ROLES = ("image", "ground_truth", "instances")
#: Robustness settings: name -> (prompt kind, preprocessing changes, simulate options, equivalent). Each re-runs
#: one prompt kind under a change a user would not expect to matter much; ``equivalent`` settings are those a
#: user would call the same prompt (a Dice moving by more than :data:`FLIP_DELTA` across them is a flip).
ROBUSTNESS: dict[str, tuple[str, dict[str, Any], dict[str, Any], bool]] = {
    "filter=area": ("box", {"filter": "area"}, {}, True),
    "filter=bilinear-antialias": ("box", {"antialias": True}, {}, True),
    "scaling=divide255": ("box", {"scaling": "divide255"}, {}, True),
    "jitter=5px": ("box-jitter", {}, {"shift_px": 5}, True),
    "jitter=10px": ("box-jitter", {}, {"shift_px": 10}, False),
    "jitter=20px": ("box-jitter", {}, {"shift_px": 20}, False),
    "jitter=10%": ("box-jitter-frac", {}, {"shift_frac": 0.1}, False),
    "expand=10px": ("box-expand", {}, {"expand_px": 10.0}, False),
    "points=3": ("points", {}, {"n_points": 3}, False),
}
#: ``noise=<f>`` (or ``noise=<p>%``): the default box on the image plus Gaussian noise of standard deviation ``f``
#: times the image's intensity range (:func:`noisy_image`), ``0 < f <= 1``; not an equivalent setting.
NOISE_SETTING = re.compile(r"^noise=(\d+(?:\.\d*)?|\.\d+)(%?)$")


def noise_fraction(setting: str) -> float | None:
    """The noise level of a ``noise=...`` robustness setting (``noise=0.05`` and ``noise=5%`` give 0.05), else None.

    Raises ValueError for a ``noise=`` setting outside ``(0, 1]``.
    """
    m = NOISE_SETTING.match(setting)
    if not m:
        return None
    f = float(m.group(1)) / (100.0 if m.group(2) else 1.0)
    if not 0 < f <= 1:
        raise ValueError(f"{setting}: the noise level must lie in (0, 1] (a fraction of the intensity range)")
    return f


def noisy_image(image: np.ndarray, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """``image`` plus Gaussian noise, and the noise's standard deviation in intensity units.

    The standard deviation is ``fraction * (max - min)`` of the whole image (every channel together); the noise is
    drawn independently per pixel and channel from ``rng``, added in float32 and not clipped (the model's min-max
    scaling then sees the noisy range). A constant image gets no noise (zero range).
    """
    arr = np.asarray(image, dtype=np.float32)
    sigma = float(fraction) * float(arr.max() - arr.min()) if arr.size else 0.0
    noise = rng.standard_normal(arr.shape, dtype=np.float32) * np.float32(sigma)
    return arr + noise, sigma


def _setting(name: str) -> tuple[str, dict[str, Any], dict[str, Any], bool]:
    if name in ROBUSTNESS:
        return ROBUSTNESS[name]
    if noise_fraction(name) is not None:
        return "box", {}, {}, False
    raise KeyError(name)


@dataclass(frozen=True)
class PromptOptions:
    """Settings of a ``prompt`` run (all recorded in the run's config and part of its resume key).

    ``kinds``: prompt kinds whose masks are written and scored as models ``<model>/<kind>``
    (:data:`~segaudit.models.prompts.PROMPT_KINDS` plus ``clicks``); ``robustness``: names of :data:`ROBUSTNESS`
    settings run on top (``prompts`` rows only); ``seed``: run seed of the prompt simulators; ``max_clicks``: clicks
    per object for ``clicks``; ``shift_px``: the ``box-jitter`` shift; ``filter``: the default resize filter;
    ``cache_dir``: where the weights are copied and the disk embedding cache lives (default: segaudit's cache
    folder, never the working or data folder); ``embedding_cache``: keep embeddings on disk (bounded by
    ``cache_bytes``) so that a second run does not re-encode. ``sequences``: the (up to three) sequences stacked as
    the channels of 3D cases (default :data:`DEFAULT_VOLUME_SEQUENCES`; see :func:`volume_sequences`).
    """

    kinds: tuple[str, ...] = DEFAULT_KINDS
    robustness: tuple[str, ...] = ()
    seed: int = 0
    max_clicks: int = 5
    shift_px: int = 20
    auto_grid: int = 4
    auto_prompts: str = "boxes"
    auto_iou: float = 0.8
    auto_stability: float = 0.9
    tile: int | None = None
    filter: str = "bilinear"
    model: str = "litemedsam"
    cache_dir: str | None = None
    embedding_cache: bool = True
    cache_bytes: int = 1 << 30
    sequences: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        known = PROMPT_KINDS + EXTRA_KINDS + VOLUME_KINDS
        unknown = [k for k in self.kinds if k not in known]
        if unknown or not self.kinds:
            raise ValueError(f"unknown prompt kinds {unknown or '(none given)'}; known: {', '.join(known)}")
        bad = [r for r in self.robustness if r not in ROBUSTNESS and noise_fraction(r) is None]
        if bad:
            raise ValueError(f"unknown robustness settings {bad}; known: {', '.join(ROBUSTNESS)}, noise=<fraction "
                             "of the intensity range, e.g. 0.05 or 5%>")
        if len(self.sequences) > 3:
            raise ValueError(f"at most three sequences make a 3-channel slice, got {len(self.sequences)}")
        if self.model != "litemedsam":
            raise ValueError(f"unknown promptable model {self.model!r}; known: litemedsam")
        if self.max_clicks < 1 or self.shift_px < 0 or self.auto_grid < 1:
            raise ValueError("max_clicks and auto_grid must be >= 1 and shift_px >= 0")
        if self.auto_prompts not in AUTO_PROMPTS:
            raise ValueError(f"unknown automatic-mode prompts {self.auto_prompts!r}; known: {', '.join(AUTO_PROMPTS)}")
        if not (0 <= self.auto_iou <= 1 and 0 <= self.auto_stability <= 1):
            raise ValueError("auto_iou and auto_stability must lie in [0, 1]")
        if self.tile is not None and self.tile < 16:
            raise ValueError(f"tile must be >= 16 pixels, got {self.tile}")
        if self.filter not in ("bilinear", "area"):
            raise ValueError(f"filter must be 'bilinear' or 'area', got {self.filter!r}")

    def resume_key(self) -> dict[str, Any]:
        """The settings that change results (not where caches live)."""
        d = asdict(self)
        for k in ("cache_dir", "embedding_cache", "cache_bytes"):
            d.pop(k)
        return d

    def kinds_for(self, volume: bool) -> tuple[str, ...]:
        """The kinds run on a 3D (``volume``) or a 2D dataset, in the order given."""
        return tuple(k for k in self.kinds if (k in VOLUME_KINDS) == volume)

    def model_names(self, volume: bool | None = None) -> list[str]:
        """The store's model names of the scored kinds: ``<model>/<kind>`` (of 2D or 3D datasets only when
        ``volume`` is given).
        """
        kinds = self.kinds if volume is None else self.kinds_for(volume)
        return [f"{self.model}/{k}" for k in kinds]


@dataclass
class PromptCaseJob:
    """One 2D case to prompt (picklable: worker processes load their own model)."""

    dataset: str
    case: str
    image: str
    ground_truth: str
    mask_encoding: MaskEncoding
    region: str
    out_dir: str  # RUN/prompt/<dataset>
    options: PromptOptions
    inputs: tuple[tuple[str, str, str], ...] = ()
    fingerprint: str = "edge"
    instances: str | None = None  # the ground-truth instance map: one prompt per instance
    kinds: tuple[str, ...] = ()  # the kinds run on this case (default: the options' 2D kinds)
    sequences: tuple[tuple[str, str], ...] = ()  # 3D cases: (sequence, path) stacked as the channels
    volume: bool = False  # a 3D case: box prompts propagated slice by slice

    @property
    def run_kinds(self) -> tuple[str, ...]:
        return self.kinds or self.options.kinds_for(self.volume)


@dataclass
class PromptCaseOutput(CaseRows):
    """One case of the prompt step (rows of ``prompts``), with its encoder time and where its embedding came from."""

    encode_seconds: float = 0.0
    embedding_source: str = ""


_MODELS: dict[tuple, Any] = {}


def _model(options: PromptOptions):
    """The process's LiteMedSAM for these cache settings (loaded once per process)."""
    from segaudit.models.litemedsam import LiteMedSAM, Preprocessing, default_cache_dir

    root = Path(options.cache_dir) if options.cache_dir else default_cache_dir()
    key = (str(root), options.embedding_cache, options.cache_bytes, options.filter)
    if key not in _MODELS:
        from segaudit.models.cache import DiskEmbeddingCache

        disk = DiskEmbeddingCache(root / "embeddings", options.cache_bytes) if options.embedding_cache else None
        _MODELS[key] = LiteMedSAM(Preprocessing(filter=options.filter), cache_dir=root, disk_cache=disk)  # type: ignore[arg-type]
    return _MODELS[key]


def release_models() -> int:
    """Drop the models this process loaded for ``prompt`` (their memory and in-memory embedding caches); returns
    how many. The next case loads the model again (the disk embedding cache is kept).
    """
    n = len(_MODELS)
    _MODELS.clear()
    return n


def _mask_path(job: PromptCaseJob, kind: str) -> Path:
    suffix = ".nii.gz" if job.volume else ".png"
    return Path(job.out_dir) / job.options.model / kind / f"{safe_component(job.case)}{suffix}"


def _write_nifti_mask(path: Path, mask: np.ndarray, reference: str) -> Path:
    """A 0/1 uint8 NIfTI with the reference file's affine and header (data type and scaling excepted), written
    atomically and gzip-compressed without a time stamp (the same mask gives the same bytes).
    """
    import nibabel as nib

    ref = cast("nib.Nifti1Image", nib.load(reference))  # a .nii(.gz) loads as a Nifti1Image (Nifti2 subclasses it)
    header = ref.header.copy()
    header.set_data_dtype(np.uint8)
    header.set_slope_inter(1.0, 0.0)
    img = type(ref)(np.asarray(mask, bool).astype(np.uint8), ref.affine, header)
    data = gzip.compress(img.to_bytes(), compresslevel=6, mtime=0)
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def _row(job: PromptCaseJob, kind: str, setting: str, rec: PromptRecord, prep: dict, mask: Path | None) -> dict:
    return {"dataset": job.dataset, "case": job.case, "model": f"{job.options.model}/{kind}", "region": job.region,
            "kind": kind, "setting": setting, "component": int(rec.component or 0),
            "prompt": json.dumps(rec.prompt), "seed": job.options.seed, "preprocessing": json.dumps(prep),
            "predicted_iou": rec.predicted_iou, "dice": rec.dice,
            "clicks_dice": json.dumps(rec.clicks_dice) if rec.clicks_dice else None,
            "clicks_to": json.dumps(rec.clicks_to) if rec.clicks_to else None,
            "encode_seconds": rec.encode_seconds, "decode_seconds": rec.decode_seconds,
            "mask_path": str(mask) if mask is not None else None, "image_path": job.image,
            "ground_truth_path": job.ground_truth}


def _robustness_records(model, image: np.ndarray, gt: np.ndarray, job: PromptCaseJob, setting: str,
                        instances: np.ndarray | None = None) -> tuple[str, list[PromptRecord], dict]:
    from segaudit.models.litemedsam import Preprocessing

    kind, prep_changes, sim, _ = _setting(setting)
    variant = model.with_preprocessing(replace(model.preprocessing, **prep_changes)) if prep_changes else model
    noise = noise_fraction(setting)
    noise_record: dict[str, Any] = {}
    if noise is not None:  # the same prompts as the default box (same stream), on a noisy image
        image, sigma = noisy_image(image, noise, case_rng(job.options.seed, job.case, "noise", setting))
        noise_record = {"noise": {"kind": "additive gaussian, per pixel and channel, float32, not clipped",
                                  "sigma_fraction_of_range": noise, "sigma": sigma,
                                  "rng": f"case_rng(seed, case, 'noise', {setting!r})"}}
    # Seeded by setting, so a setting's prompts never depend on which other settings run.
    if instances is None:
        labels, _ = ndimage.label(gt, structure=ndimage.generate_binary_structure(2, 2))
        keys = (kind,) if noise is not None else (kind, setting)
        prompts = simulate(gt, kind, case_rng(job.options.seed, job.case, *keys), **sim)
    else:  # the objects of the default run: one per instance
        labels = np.where(gt, np.asarray(instances), 0).astype(np.int64)
        prompts = [replace(q, component=oid) for oid in (int(v) for v in np.unique(labels) if v != 0)
                   for q in simulate(labels == oid, kind,
                                     case_rng(job.options.seed, job.case, kind,
                                              *(() if noise is not None else (setting,)), oid), **sim)[:1]]
    emb = variant.encode(image)
    recs = []
    for pred in variant.decode(emb, prompts):
        p = pred.prompt
        target = gt if p.component in (0, None) else labels == p.component
        recs.append(PromptRecord(case=job.case, kind=kind, component=p.component, prompt=p.record(),
                                 seed=job.options.seed, predicted_iou=pred.predicted_iou,
                                 encode_seconds=emb.encode_seconds, decode_seconds=pred.decode_seconds,
                                 dice=overlap_dice(pred.mask, target)))
    assert isinstance(variant.preprocessing, Preprocessing)
    return kind, recs, {**variant.preprocessing.record(), **noise_record}


def _volume(job: PromptCaseJob, shape: tuple[int, ...]) -> np.ndarray:
    """The chosen sequences, each normalised per volume, as (H, W, D) for one or (H, W, D, 3) for two or three
    (a missing third channel is zeros).
    """
    from segaudit.models.propagate import normalise_mr

    chans = []
    for _, path in job.sequences:
        arr = np.asarray(read_image(path).array)
        if arr.shape != shape:
            raise SegauditError(f"{path}: shape {arr.shape} differs from the ground truth's {shape}")
        chans.append(normalise_mr(arr))
    if len(chans) == 1:
        return chans[0]
    return np.stack(chans + [np.zeros(shape, np.uint8)] * (3 - len(chans)), axis=-1)


def _prompt_volume(job: PromptCaseJob, model, out: PromptCaseOutput) -> None:
    """One 3D case: box propagation over the ground truth's extent, the mask written as NIfTI (module docstring)."""
    from segaudit.models.propagate import propagate_3d

    gt = np.asarray(read_mask(job.ground_truth, job.mask_encoding).array) != 0
    if gt.ndim != 3:
        raise SegauditError(f"{job.ground_truth}: a {gt.ndim}D mask; box-3d propagates over 3D volumes")
    if not gt.any():
        out.errors.append({"model": "", "path": job.ground_truth, "severity": "warning",
                           "message": f"{job.ground_truth}: empty ground truth: no prompt can be simulated; "
                                      "the models score an empty mask"})
    vol = _volume(job, gt.shape)
    res = propagate_3d(model, vol, gt, axis=VOLUME_AXIS)
    seqs = [s for s, _ in job.sequences]
    prep = {**model.preprocessing.record(),
            "volume": {"sequences": seqs, "channels": "one sequence: grey repeated to 3" if len(seqs) == 1 else
                       "the sequences in order" + (", a zero third channel" if len(seqs) == 2 else ""),
                       "normalisation": "per sequence volume: clip to the 0.5 and 99.5 percentiles of the non-zero "
                                        "voxels, scale to 0..255, round to uint8, zero voxels stay 0 (MedSAM "
                                        "pre_MR.py)", "axis": VOLUME_AXIS}}
    slices = [{"z": int(z), "box": [float(v) for v in res.boxes[z]], "source": res.source[z],
               "predicted_iou": res.predicted_iou[z],
               "dice": overlap_dice(np.take(res.mask, z, axis=VOLUME_AXIS), np.take(gt, z, axis=VOLUME_AXIS))}
              for z in sorted(res.boxes)]
    key_box = res.boxes.get(res.key_slice)
    prompt = {"kind": "box-3d", "component": 0, "box": None if key_box is None else [float(v) for v in key_box],
              "points": [], "labels": [], "mask_prompt": False, "axis": VOLUME_AXIS, "key_slice": res.key_slice,
              "key_rule": "largest", "fallback": "last", "bbox_shift": 3.0, "shift_frame": 256,
              "slice_range": [slices[0]["z"], slices[-1]["z"]] if slices else [], "sequences": seqs,
              "slices": slices}
    enc = float(sum(res.encode_seconds.values()))
    rec = PromptRecord(case=job.case, kind="box-3d", component=0, prompt=prompt, seed=job.options.seed,
                       predicted_iou=float(np.mean(list(res.predicted_iou.values()))) if slices else float("nan"),
                       encode_seconds=enc, decode_seconds=float(sum(res.decode_seconds.values())),
                       dice=overlap_dice(res.mask, gt))
    path = _write_nifti_mask(_mask_path(job, "box-3d"), res.mask, job.ground_truth)
    out.rows.append(_row(job, "box-3d", "default", rec, prep, path))
    out.encode_seconds = enc
    srcs = set(res.embedding_source.values())
    out.embedding_source = "disk" if srcs == {"disk"} else "encoder"


def prompt_case(job: PromptCaseJob) -> PromptCaseOutput:
    """Prompt one case with every kind and robustness setting; never raises (a failure is an error row)."""
    out = PromptCaseOutput(job.dataset, job.case)
    out.inputs = fingerprint_inputs(job.inputs, job.fingerprint)
    try:
        model = _model(job.options)
        if job.volume:
            _prompt_volume(job, model, out)
            return out
        img = read_image(job.image)
        gt_img = read_mask(job.ground_truth, job.mask_encoding)
        if img.array.ndim - (1 if img.is_color else 0) != 2 or gt_img.array.ndim != 2:
            raise SegauditError(f"{job.image}: a {img.array.ndim}D image in a single-image dataset; segaudit "
                                "prompt propagates box prompts over 3D volumes of multi-sequence datasets only "
                                "(declare its sequences)")
        gt = np.asarray(gt_img.array) != 0
        if gt.shape != img.array.shape[:2]:
            raise SegauditError(f"{job.ground_truth}: ground truth {gt.shape} and image {img.array.shape[:2]} "
                                "differ in size")
        if not gt.any():
            out.errors.append({"model": "", "path": job.ground_truth, "severity": "warning",
                               "message": f"{job.ground_truth}: empty ground truth: no prompt can be simulated; "
                                          "the models score an empty mask"})
        inst = np.asarray(read_mask(job.instances).array) if job.instances else None
        run = prompt_image(model, img.array, gt, safe_component(job.case), list(job.run_kinds), instances=inst,
                           out_dir=Path(job.out_dir), seed=job.options.seed, max_clicks=job.options.max_clicks,
                           auto_grid=job.options.auto_grid, tile=job.options.tile, shift_px=job.options.shift_px,
                           auto_prompts=job.options.auto_prompts,
                           auto_filters=(job.options.auto_iou, job.options.auto_stability))
        emb = model.encode(img.array)
        out.encode_seconds, out.embedding_source = emb.encode_seconds, emb.source
        prep = model.preprocessing.record()
        for rec in run.records:
            out.rows.append(_row(job, rec.kind, "default", rec, prep, run.files.get(rec.kind)))
        for setting in job.options.robustness:
            kind, recs, vprep = _robustness_records(model, img.array, gt, job, setting, inst)
            out.rows += [_row(job, kind, setting, r, vprep, None) for r in recs]
    except Exception as exc:  # noqa: BLE001 - any failure is this case's, recorded with its reason
        msg = failure_message(exc)
        out.rows = []
        out.errors.append({"model": "", "path": job.image if job.image in msg else "", "severity": "error",
                           "message": msg})
    return out


def _write_case(store: ResultsStore, res: PromptCaseOutput, run_id: str) -> None:
    res.write(store, "prompts", STEP, run_id)


def _region_name(ds: DatasetConfig) -> tuple[str, str | None]:
    """(region name of the prompts, region the scoring is limited to or None): the dataset's foreground."""
    labels = dict(ds.label_map.labels)
    if len(labels) <= 1:
        return (next(iter(labels)) if labels else "label_1"), None
    values = set(labels.values())
    for name, vals in ds.label_map.regions.items():
        if set(vals) == values:
            return name, name
    raise SegauditError(f"{ds.name}: prompts segment the whole foreground, and no region holds every label "
                        f"({', '.join(labels)}): declare one (regions: {{foreground: [...]}})")


def is_volume_dataset(ds: DatasetConfig) -> bool:
    """Whether a dataset's cases are 3D volumes for ``prompt``: it declares sequences (multi-sequence MRI)."""
    return len(ds.sequences) > 1 or "*" in ds.images


def volume_sequences(ds: DatasetConfig, wanted: tuple[str, ...] = ()) -> list[str]:
    """The sequences stacked as the channels of a 3D dataset's slices.

    ``wanted`` (1 to 3, each declared by the dataset) if given, else the first of :data:`DEFAULT_VOLUME_SEQUENCES`
    present, else the dataset's first sequence. Raises SegauditError for an undeclared sequence.
    """
    if wanted:
        missing = [s for s in wanted if s not in ds.sequences]
        if missing:
            raise SegauditError(f"{ds.name}: no sequence(s) {', '.join(missing)} (has {', '.join(ds.sequences)})")
        return list(wanted)
    have = [s for s in DEFAULT_VOLUME_SEQUENCES if s in ds.sequences]
    return have[:1] or ds.sequences[:1]


def prompt_datasets(project: ProjectConfig, options: PromptOptions | None = None
                    ) -> tuple[list[DatasetConfig], list[str]]:
    """The datasets ``prompt`` runs (images and ground truth, and a kind for their dimension) and why each other
    one is left out.
    """
    options = options or PromptOptions()
    keep, notes = [], []
    for ds in project.datasets:
        volume = is_volume_dataset(ds)
        if not ds.images or not ds.ground_truth:
            notes.append(f"{ds.name}: needs images and ground truth (prompts are simulated from it); left out")
        elif not options.kinds_for(volume):
            which = (f"3D (multi-sequence) dataset: its kinds are {', '.join(VOLUME_KINDS)}" if volume else
                     "2D dataset: box-3d runs on 3D volumes only")
            notes.append(f"{ds.name}: {which}, none of them asked for (--prompts); left out")
        else:
            if volume and options.robustness:
                notes.append(f"{ds.name}: 3D dataset: the robustness settings run on 2D cases only")
            keep.append(ds)
    return keep, notes


def scoring_project(project: ProjectConfig, run_dir: str | Path, options: PromptOptions,
                    datasets: list[DatasetConfig]) -> ProjectConfig:
    """The project whose only predictions are the prompt masks, as models ``<model>/<kind>`` (0/255 PNGs; 0/1
    NIfTI volumes for 3D datasets).

    ``evaluate`` scores it like any project; its settings hash differs from the user's project, so the two
    never skip or re-score each other's models.
    """
    base = Path(run_dir).resolve() / "prompt"
    out = []
    for ds in datasets:
        _, only = _region_name(ds)
        folder = base / safe_component(ds.name) / options.model
        volume = is_volume_dataset(ds)
        names, kinds = options.model_names(volume), options.kinds_for(volume)
        suffix, threshold = (".nii.gz", 0.0) if volume else (".png", 127.0)  # 0/1 NIfTI, 0/255 PNG
        # The template's {case} is the case id as discovery matched it; a case whose id is not a safe file-name
        # component is written under its safe name, and is an error row of the prompt step.
        preds = [(m, str(folder / k / ("{case}" + suffix))) for m, k in zip(names, kinds, strict=True)]
        enc = {m: MaskEncoding(kind="binary", threshold=threshold) for m in names}
        out.append(replace(ds, predictions=preds, models=names, model_encodings=enc, prediction_encoding=None,
                           prediction_regions={m: only for m in names} if only else {}))
    raw = {**(project.raw or {}), "prompt": {"run": str(base), **options.resume_key()}}
    return ProjectConfig(datasets=out, path=project.path, raw=raw, name=project.name)


@dataclass
class PromptProjectResult:
    """What a ``prompt`` run did: its run id, cases prompted and skipped, the scoring's result, notes."""

    run_id: str
    prompted: int
    skipped: list[tuple[str, str]]
    errors: pd.DataFrame
    evaluation: EvaluateResult | None
    notes: list[str] = field(default_factory=list)
    resume_notes: list[str] = field(default_factory=list)
    embeddings_from_disk: int = 0
    encode_seconds: float = 0.0  # encoder seconds of this run's cases (as recorded when computed)


def prompt_project(project: ProjectConfig, out_dir: str | Path, options: PromptOptions | None = None,
                   evaluation: EvaluationOptions | None = None, workers: int = 1, scheduler: str | None = None,
                   force: bool = False, progress: bool = True, executor: Executor = "auto",
                   argv: list[str] | None = None, fingerprint: str = "edge", score: bool = True
                   ) -> PromptProjectResult:
    """Run a promptable model with simulated prompts over every case, store the prompts, score the masks.

    Parameters
    ----------
    project:
        The project; datasets without images and ground truth, or without a kind asked for their dimension (2D:
        the simulators' kinds, ``clicks``, ``auto``; 3D multi-sequence: ``box-3d``), are left out (a note says
        why).
    out_dir:
        Run directory of the results store; the masks go under ``out_dir/prompt/`` (never beside the inputs).
    options:
        :class:`PromptOptions` (default: box, box-jitter, point, clicks; seed 0).
    evaluation:
        Metric settings of the scoring (default: the project's ``evaluate:`` section).
    workers, scheduler, executor:
        As for ``evaluate`` (each worker process loads its own model).
    force:
        Re-prompt (and re-score) cases already done with these settings.
    fingerprint:
        ``edge`` or ``full``: how unchanged image and ground-truth files are recognised on a re-run.
    score:
        Score the masks with ``evaluate`` afterwards (models ``<model>/<kind>``).
    """
    options = options or PromptOptions()
    datasets, notes = prompt_datasets(project, options)
    if not datasets:
        raise SegauditError("nothing to prompt: " + "; ".join(notes))
    sub = ProjectConfig(datasets=datasets, path=project.path, raw=project.raw, name=project.name)
    files = discover(sub).files_frame()
    names = [ds.name for ds in datasets]
    ohash = project.settings_hash(prompt=options.resume_key())
    run_dir = Path(out_dir)
    jobs: list[PromptCaseJob] = []
    skipped: list[tuple[str, str]] = []
    seqs = {ds.name: volume_sequences(ds, options.sequences) for ds in datasets if is_volume_dataset(ds)}
    with ResultsStore(run_dir) as store:
        by_case = case_inputs(files, INPUT_ROLES)
        for key in by_case:  # a 3D case depends on its chosen sequences only
            if key[0] in seqs:
                by_case[key] = [i for i in by_case[key] if i[0] != "image" or i[1] in seqs[key[0]]]
        done = set() if force else store.completed("prompts", STEP, ohash, ["dataset", "case"])
        stale = stale_jobs(store, STEP, ["dataset", "case"], {k: by_case[k] for k in done if k in by_case},
                           fingerprint)
        done -= set(stale.changed)
        gone, vnotes = vanished_cases(store, STEP, list(STEP_TABLES), present_cases(files, names))
        for ds in datasets:
            region, _ = _region_name(ds)
            folder = run_dir.resolve() / "prompt" / safe_component(ds.name)
            f = files[files.dataset == ds.name]
            for case, rows in f.groupby("case", sort=True):
                case = str(case)
                img = rows[(rows.role == "image") & rows.exists.astype(bool)]
                gt = rows[(rows.role == "ground_truth") & rows.exists.astype(bool)]
                inst = rows[(rows.role == "instances") & rows.exists.astype(bool)]
                volume = ds.name in seqs
                if volume:
                    by_seq = {str(r.key): str(r.path) for r in img.itertuples()}
                    img = img[img.key.isin(seqs[ds.name])]
                    if len(img) < len(seqs[ds.name]):
                        img = img.iloc[:0]  # a chosen sequence is missing: scan reports it
                if img.empty or gt.empty:
                    continue  # scan reports the missing file; evaluate reports the missing prediction
                job = PromptCaseJob(ds.name, case, str(img.path.iloc[0]), str(gt.path.iloc[0]), ds.mask_encoding,
                                    region, str(folder), options, tuple(by_case.get((ds.name, case), [])),
                                    fingerprint, str(inst.path.iloc[0]) if len(inst) else None,
                                    kinds=options.kinds_for(volume), volume=volume,
                                    sequences=tuple((q, by_seq[q]) for q in seqs[ds.name]) if volume else ())
                if volume:
                    job.image = job.sequences[0][1]
                masks_there = all(_mask_path(job, k).is_file() for k in job.run_kinds)
                if (ds.name, case) in done and masks_there:
                    skipped.append((ds.name, case))
                    continue
                jobs.append(job)
        stats: dict[str, float] = {"disk": 0, "seconds": 0.0}

        def write(st: ResultsStore, res: PromptCaseOutput, run_id: str) -> None:
            _write_case(st, res, run_id)
            stats["disk"] += res.embedding_source == "disk"
            stats["seconds"] += res.encode_seconds

        def summary() -> dict:
            return {"cases": len(jobs), "skipped": len(skipped), "embeddings_from_disk": stats["disk"],
                    "options": asdict(options)}

        run_id = run_step(store, STEP, ohash, {"project": project.raw, "prompt": asdict(options)}, argv,
                          prompt_case, jobs, write, f"Prompting {options.model}", summary=summary,
                          start=lambda rid: drop_vanished(store, STEP, list(STEP_TABLES), gone), progress=progress,
                          workers=workers, scheduler=scheduler, executor=executor)
        errors = store.errors(STEP, names)
    for case in sorted({c for _, c in skipped} | {j.case for j in jobs}):
        if safe_component(case) != case:
            notes.append(f"case {case!r}: its id is not a safe file name; its masks are named "
                         f"{safe_component(case)} (.png or .nii.gz) and evaluate cannot find them")
    result = PromptProjectResult(run_id, len(jobs), skipped, errors, None, notes,
                                 resume_lines("case(s)", stale.changed, gone, "re-prompted") + vnotes,
                                 int(stats["disk"]), stats["seconds"])
    if score:
        result.evaluation = evaluate_project(scoring_project(project, run_dir, options, datasets), run_dir,
                                             evaluation, workers=workers, scheduler=scheduler, force=force,
                                             progress=progress, executor=executor, argv=argv,
                                             fingerprint=fingerprint)
    return result
