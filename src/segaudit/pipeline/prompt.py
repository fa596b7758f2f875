"""The ``prompt`` step's library part.

Run a promptable model on one 2D image with prompts simulated from its ground truth, write the masks under the run
folder and return one record per prompt.

Per prompt kind the masks of all prompts (one per component, or one for ``box-all``) are OR-ed into one mask,
written as ``<out_dir>/<model>/<kind>/<case>.png`` (0/255), so that the store can register the folder as the
model ``<model>/<kind>`` and ``evaluate`` scores it like any other prediction. The input files are only read.
The kind ``clicks`` runs interactive refinement per component (:func:`segaudit.models.prompts.refinement_clicks`,
the previous low-resolution logits fed back as the dense prompt, as SAM's interactive loop does) and writes the
mask after the last click.

Not wired yet: the ``segaudit prompt`` CLI verb, the store registration and the ``prompts`` table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from scipy import ndimage

from segaudit.base.masks import overlap_dice
from segaudit.models.base import Prompt, PromptableModel
from segaudit.models.prompts import PROMPT_KINDS, case_rng, refinement_clicks, simulate

__all__ = ["CLICK_TARGETS", "PromptRecord", "PromptRun", "click_refinement", "prompt_image"]

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
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    Image.fromarray(np.where(mask, 255, 0).astype(np.uint8)).save(tmp, format="PNG")
    tmp.replace(path)  # atomic: a crash never leaves a half-written mask
    return path


def prompt_image(model: PromptableModel, image: np.ndarray, gt: np.ndarray, case: str, kinds: list[str],
                 out_dir: str | Path | None = None, seed: int = 0, max_clicks: int = 5,
                 **simulate_options) -> PromptRun:
    """Run every prompt kind on one image (module docstring); ``out_dir`` None writes nothing.

    Each kind's prompts are drawn from ``case_rng(seed, case, kind)``, so adding a kind never changes another
    kind's prompts. Per-prompt Dice is against the prompt's own component (the whole ground truth for
    ``box-all``); ``union_dice`` is the per-kind OR of the masks against the whole ground truth.
    """
    g = np.asarray(gt, bool)
    unknown = [k for k in kinds if k not in PROMPT_KINDS and k != "clicks"]
    if unknown:
        raise ValueError(f"unknown prompt kinds {unknown}; known: {', '.join(PROMPT_KINDS + ('clicks',))}")
    labels, _ = ndimage.label(g, structure=ndimage.generate_binary_structure(2, 2))
    emb = model.encode(image)
    records, union, files = [], {}, {}
    for kind in kinds:
        mask = np.zeros(g.shape, bool)
        if kind == "clicks":
            for comp in range(1, int(labels.max()) + 1):
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
            prompts = simulate(g, kind, case_rng(seed, case, kind), **simulate_options)
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
