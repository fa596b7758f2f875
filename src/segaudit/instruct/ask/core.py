"""``ask``: an image and a free-text instruction -> a mask, boxes, a count and a sentence, or a reasoned refusal.

The verify-then-act procedure, every step returned as data (:attr:`AskResult.checks`):

1. **goal**: the task and target understood from the instruction (:mod:`.understand`); an off-task request is
   refused, an unknown target is ``clarify`` (listing what the project knows);
2. **assumption**: what the target implies about the image (its modality and site, from the project);
3. **image shows**: the modality recognised from the pixels (:mod:`.modality`) with its confidence, and the
   site from the project metadata when the image is a case of the project;
4. **match**: whether the two agree; if not, ``refused`` naming the discrepancy.

Only then the tool runs (:mod:`.tools`), and its answer is checked against the reference distributions of the
project's annotations (:mod:`.plausibility`) before it is returned: an implausible mask is ``refused``.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from segaudit.errors import SegauditError
from segaudit.instruct.ask.index import AskIndex, content_hash, default_model, encode_one_thread, one_thread
from segaudit.instruct.ask.modality import OTHER, ModalityGuess, as_rgb, image_features
from segaudit.instruct.ask.plausibility import Plausibility, mask_statistics, object_statistics, stat_step
from segaudit.instruct.ask.tools import (
    instance_boxes,
    nucleus_features,
    prototype_segment,
    segment_nuclei,
    segment_specks,
)
from segaudit.instruct.ask.understand import Request
from segaudit.instruct.language import plural
from segaudit.io import read_image
from segaudit.io.atomic import atomic_write
from segaudit.io.paths import output_path

VERDICTS = ("answered", "refused", "clarify")


@dataclass
class AskResult:
    """The answer to one request (the ``--json`` object; see the README's ``segaudit ask``)."""

    verdict: str
    reason: str
    task: str
    target: str | None
    modality: str
    modality_confidence: float
    checks: dict[str, Any]
    mask: str | None = None
    boxes: list[list[int]] = field(default_factory=list)
    count: int | None = None
    measurements: dict[str, dict[str, Any]] = field(default_factory=dict)
    text: str = ""
    tool: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    plausibility: dict[str, Any] | None = None
    understanding: dict[str, Any] = field(default_factory=dict)
    case: list[str] | None = None
    #: The answer's pixels (not serialised): bool mask or int instance map; None when there is none.
    array: np.ndarray | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("array")
        return d


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiouh" and not word.lower().startswith(("hu", "eu")) else "a"


def _image_noun(index: AskIndex, modality: str) -> str:
    desc = index.modalities.get(modality, {})
    noun = desc.get("image", modality)
    return f"{desc.get('article', _article(noun))} {noun}"


def read_picture(path: str | Path) -> np.ndarray:
    """The pixels of a 2D image file (error for unreadable, 3D or non-image input)."""
    p = Path(path)
    if not p.is_file():
        raise SegauditError(f"{p}: no such image file")
    try:
        arr = read_image(p).array
    except SegauditError as exc:
        raise SegauditError(f"{p}: cannot read the image ({exc})") from exc
    if arr.ndim == 3 and arr.shape[2] > 4:
        raise SegauditError(f"{p}: a 3D volume {arr.shape}; segaudit ask answers on 2D images (pick a slice)")
    if arr.ndim not in (2, 3):
        raise SegauditError(f"{p}: not a 2D image (shape {arr.shape})")
    return arr


def _known_list(index: AskIndex) -> str:
    return ", ".join(f"{n} ({t.modality})" for n, t in sorted(index.targets.items()))


def _mask_file(out_dir: Path, image_path: Path, target: str, task: str) -> Path:
    resolved = out_dir.resolve()
    if resolved == image_path.resolve().parent:
        raise SegauditError(f"{out_dir}: is the input image's folder; write answers elsewhere (--out)")
    return output_path(out_dir, f"{image_path.stem}.{target}.{task}", suffix=".png")


def write_mask_png(path: Path, array: np.ndarray) -> Path:
    """A binary mask as 0/255 8-bit PNG, an instance map as 16-bit PNG, written atomically."""
    from PIL import Image as PILImage

    arr = np.asarray(array)
    if arr.dtype == bool:
        img = PILImage.fromarray((arr * 255).astype(np.uint8))
    else:
        img = PILImage.fromarray(arr.astype(np.uint16))
    return atomic_write(path, lambda tmp: img.save(tmp, format="PNG"))


def _checks(req: Request, assumption: dict[str, Any] | None, shows: dict[str, Any], match: bool | None,
            why: str) -> dict[str, Any]:
    return {"goal": {"task": req.task, "target": req.target, "phrase": req.phrase,
                     "task_similarity": req.task_similarity, "target_similarity": req.target_similarity},
            "assumption": assumption, "image_shows": shows, "match": {"ok": match, "detail": why}}


def _understanding(req: Request) -> dict[str, Any]:
    return {"task": req.task, "task_similarity": req.task_similarity, "target": req.target,
            "target_similarity": req.target_similarity, "phrase": req.phrase,
            "alternatives": [list(a) for a in req.alternatives], "threshold": None, "intent": req.intent}


def _site(index: AskIndex, case: list[str] | None, metadata: dict[tuple[str, str], dict] | None) -> str | None:
    if case is None or not metadata:
        return None
    meta = metadata.get((case[0], case[1]), {})
    for key in ("site", "organ", "body_part", "bodypart", "anatomy"):
        if meta.get(key):
            return str(meta[key])
    return None


def ask(image: str | Path, instruction: str, index: AskIndex, out_dir: str | Path | None = None,
        model=None, verify: bool = True, metadata: dict[tuple[str, str], dict] | None = None) -> AskResult:
    """Answer one instruction about one 2D image (module docstring).

    Parameters
    ----------
    image:
        Path of a 2D image file (PNG, JPEG, TIFF, NIfTI slice...).
    instruction:
        Free text, e.g. ``"outline the lungs"``.
    index:
        The project's :class:`~segaudit.instruct.ask.index.AskIndex`.
    out_dir:
        Where the answer's mask PNG is written (never the image's folder); None: no file.
    model:
        Promptable model for prototype targets (default: one LiteMedSAM per process).
    verify:
        False skips the modality match (evaluation only: what the tool would have returned).
    metadata:
        (dataset, case) -> metadata row, to read the site of a project case.

    Raises
    ------
    SegauditError
        Unreadable, blank, 3D or non-image input (one line naming the file).
    """
    t0 = time.perf_counter()
    path = Path(image)
    arr = read_picture(path)
    try:
        rgb = as_rgb(arr)
    except SegauditError as exc:
        raise SegauditError(f"{path}: {exc}") from exc
    timings = {"read_s": time.perf_counter() - t0}
    req = index.understander.understand(instruction)
    timings["understand_ms"] = req.seconds * 1000
    t1 = time.perf_counter()
    guess: ModalityGuess = index.modality.predict(image_features(arr))
    timings["modality_ms"] = (time.perf_counter() - t1) * 1000
    case = index.images.get(content_hash(path))
    site = _site(index, case, metadata)
    shows = {"modality": guess.modality, "confidence": guess.confidence, "nearest": guess.nearest,
             "site": site, "case": case}
    und = _understanding(req)
    und["threshold"] = index.understander.threshold

    def finish(res: AskResult) -> AskResult:
        res.timings = {k: round(v, 4) for k, v in {**timings, "total_s": time.perf_counter() - t0}.items()}
        res.understanding, res.case = und, case
        return res

    base: dict[str, Any] = {"task": req.task, "target": req.target, "modality": guess.modality,
            "modality_confidence": guess.confidence}
    if req.task == "offtask":
        asks = (f"a {req.intent} question" if req.intent in ("billing", "legal")
                else f"a clinical judgement ({req.intent})" if req.intent
                else "a clinical judgement (diagnosis, prognosis, treatment) or something else")
        why = (f"off-task: this asks for {asks} that the image and the project's annotations cannot answer; "
               f"I can segment, detect, count, measure or describe: {', '.join(sorted(index.targets))}")
        return finish(AskResult("refused", why, checks=_checks(req, None, shows, None, "not checked: off-task"),
                                **{**base, "target": None}))
    if not req.known:
        what = f"I don't know '{req.phrase}'" if req.phrase else "I could not tell what to look for"
        alts = [a for a, _ in req.alternatives if a in index.targets]
        hint = f" (nearest: {', '.join(alts)})" if alts else ""
        why = f"{what}{hint}; this project knows: {_known_list(index)}"
        return finish(AskResult("clarify", why, checks=_checks(req, None, shows, None, "not checked: no target"),
                                **base))
    target = str(req.target)
    info = index.targets.get(target)
    if info is None:
        from segaudit.instruct.language import load_ontology

        concept = load_ontology().concepts.get(target)
        modality = concept.modality if concept else ""
        assumption = {"modality": modality, "site": concept.site if concept else None, "source": "ontology"}
        if verify and modality and guess.modality != modality:
            why = (f"This appears to be {_image_noun(index, guess.modality)}; {plural(target)} are found in "
                   f"{plural(_image_noun(index, modality).split(' ', 1)[1])}, and this project has no annotations "
                   f"of them. Is this the image you meant? This project knows: {_known_list(index)}")
            return finish(AskResult("refused", why, checks=_checks(req, assumption, shows, False, why), **base))
        why = (f"this project has no annotations of '{target}', so I cannot check an answer; this project knows: "
               f"{_known_list(index)}")
        return finish(AskResult("clarify", why, checks=_checks(req, assumption, shows, None, why), **base))
    assumption = {"modality": info.modality, "site": info.site or None, "source": f"project dataset {info.dataset}"}
    ok = guess.modality == info.modality
    if site and info.site and site.lower() != info.site.lower():
        ok = False
    if ok:
        detail = (f"the image looks like {_image_noun(index, guess.modality)} (confidence {guess.confidence:.2f}), "
                  f"where {plural(target)} are annotated")
    elif guess.modality == OTHER:
        detail = (f"This does not look like any image this project knows (nearest: {_image_noun(index, guess.nearest)}"
                  f"); {plural(target)} are found in {plural(_image_noun(index, info.modality).split(' ', 1)[1])}. "
                  "Is this the image you meant?")
    else:
        detail = (f"This appears to be {_image_noun(index, guess.modality)} (confidence {guess.confidence:.2f}); "
                  f"{plural(target)} are found in {plural(_image_noun(index, info.modality).split(' ', 1)[1])}. "
                  "Is this the image you meant?")
    checks = _checks(req, assumption, shows, ok, detail)
    if verify and not ok:
        return finish(AskResult("refused", detail, checks=checks, **base))
    t2 = time.perf_counter()
    res = _act(arr, rgb, req.task, target, index, model, timings)
    timings["tool_s"] = time.perf_counter() - t2
    res.checks = checks
    res.modality, res.modality_confidence = guess.modality, guess.confidence
    if res.verdict == "answered" and out_dir is not None and res.array is not None:
        res.mask = str(write_mask_png(_mask_file(Path(out_dir), path, target, req.task), res.array))
    return finish(res)


def _measure(mask: np.ndarray, count: int) -> dict[str, dict[str, Any]]:
    area = int(np.count_nonzero(mask))
    return {"area": {"value": area, "unit": "pixel"},
            "area_fraction": {"value": round(100.0 * area / mask.size, 3), "unit": "%"},
            "count": {"value": count, "unit": "object"}}


def _act(arr: np.ndarray, rgb: np.ndarray, task: str, target: str, index: AskIndex, model,
         timings: dict[str, float]) -> AskResult:
    info = index.targets[target]
    # statistics on at most ~1024 pixels a side: a 4288x2848 fundus photo costs what a radiograph does
    step = stat_step(rgb.shape)
    small = rgb[::step, ::step]
    names = plural(target)
    if info.tool == "nuclei":
        nuc = index.nuclei
        if nuc is None:
            raise SegauditError("the index has no nuclei model")
        pix = np.asarray(arr)
        pix = (rgb * 255).astype(np.uint8) if pix.ndim != 3 or pix.dtype != np.uint8 else pix[..., :3]
        tool = "classical nuclei segmenter (haematoxylin deconvolution + watershed)"
        classes = [] if nuc.classifier is None else [int(c) for c in nuc.classifier.classes]
        if len(info.values) == 1 and int(info.values[0]) in nuc.class_names and int(info.values[0]) not in classes:
            # "none found" would be vacuous: the classifier cannot assign a class it never saw
            return AskResult("refused", f"the project's reference tiles hold no {target} to learn it from, so I "
                             f"cannot tell one apart (learned classes: "
                             f"{', '.join(nuc.class_names.get(c, str(c)) for c in classes) or 'none'})",
                             task, target, "", 0.0, {}, tool=tool)
        seg = nuc.calibration
        inst = segment_nuclei(pix, seg.factor, seg.height, seg.sigma)
        if len(info.values) == 1 and nuc.classifier is not None and int(info.values[0]) in nuc.class_names:
            ids, feats = nucleus_features(pix, inst)
            cls = nuc.classifier.predict(feats)
            keep = ids[cls == int(info.values[0])]
            floor = nuc.classifier.threshold(int(info.values[0]))
            tool += " + nearest-centroid nucleus classes"
            if 0 < len(keep) < floor:
                # as few look-alikes as reference tiles without the class show (leave-one-tile-out calibration)
                tool += f" (fewer than {floor} candidates: read as none)"
                keep = keep[:0]
            inst = np.where(np.isin(inst, keep), inst, 0)
        _, inv = np.unique(inst, return_inverse=True)
        inst = inv.reshape(inst.shape).astype(np.int32)
        mask = inst > 0
        count = int(inst.max())
        boxes = instance_boxes(inst)
        array: np.ndarray = inst
        extra: dict[str, Any] = {}
    elif info.tool == "specks":
        sm = index.specks.get(target)
        if sm is None:
            raise SegauditError(f"the index has no speck detector for {target}")
        from scipy import ndimage

        mask = segment_specks(rgb, sm)
        lab, count = ndimage.label(mask)
        boxes = instance_boxes(lab)
        array = mask
        tool = (f"speck detector ({'white' if sm.polarity >= 0 else 'black'} top-hat of the {sm.channel} channel, "
                f"radius {sm.radius}, threshold {sm.threshold:g} robust z; reference Dice {sm.dice:.2f})")
        extra = {}
    else:
        proto = index.prototypes.get(target)
        if proto is None:
            return AskResult("refused", f"no prototype for {target}: its reference masks are too small for the "
                             "encoder's grid", task, target, "", 0.0, {}, tool="prototype prompts + LiteMedSAM")
        m = model or default_model()
        t = time.perf_counter()
        emb = encode_one_thread(m, arr)
        timings["encode_s"] = time.perf_counter() - t
        with one_thread():
            pr = prototype_segment(m, emb, proto)
        mask = pr.mask
        from scipy import ndimage

        lab, count = ndimage.label(mask)
        boxes = instance_boxes(lab)
        array = mask
        tool = "prototype prompts (PerSAM-style) + LiteMedSAM"
        extra = {"prompts": pr.prompts, "max_score": round(pr.max_score, 4), "score_threshold": proto.threshold,
                 "predicted_iou": pr.predicted_iou}
    ref = index.references.get(target)
    if ref is not None and ref.kind == "objects":
        stats = object_statistics(np.asarray(array)[::step, ::step], small)
    else:
        stats = mask_statistics(np.asarray(mask)[::step, ::step], small)
    plaus: Plausibility | None = ref.score(stats, count) if ref is not None else None
    pdict = None if plaus is None else {"p_value": plaus.p_value, "plausible": plaus.plausible,
                                        "worst": plaus.worst, "detail": plaus.message, "z": plaus.z, **extra}
    meas = _measure(mask, count)
    if info.tool == "nuclei" and count:
        meas["mean_object_area"] = {"value": round(float(mask.sum()) / count, 1), "unit": "pixel"}
    base: dict[str, Any] = {"task": task, "target": target, "modality": "", "modality_confidence": 0.0, "checks": {},
            "boxes": boxes, "count": count, "measurements": meas, "tool": tool, "plausibility": pdict}
    if plaus is not None and not plaus.plausible:
        what = "the object found" if count else "the answer"
        return AskResult("refused", f"{what} does not look like {_article(target)} {target} ({plaus.message})",
                         array=array, **base)
    if count == 0:
        text = f"No {target} found in this image."
    elif task == "count":
        text = f"{count} {names if count != 1 else target} counted."
    elif task == "measure":
        text = (f"The {names if count != 1 else target} cover {meas['area']['value']} pixels "
                f"({meas['area_fraction']['value']:.2f} % of the image) in {count} region(s).")
    elif task == "detect":
        text = f"{count} {names if count != 1 else target} found; boxes in pixel XYXY."
    else:
        text = (f"Segmented {count} {target} region{'s' if count != 1 else ''} covering "
                f"{meas['area_fraction']['value']:.2f} % of the image.")
    reason = "answer checked against the project's reference annotations" + (
        f" (p = {plaus.p_value:.3g})" if plaus is not None and not math.isnan(plaus.p_value) else "")
    return AskResult("answered", reason, text=text, array=array, **base)
