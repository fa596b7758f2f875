"""``segaudit ask-eval``: how often ``segaudit ask`` is right, and how often it refuses wrongly, on a holdout split.

The project's 2D annotated images are split per dataset (``holdout`` share held out, at least one image, seeded);
the index is built from the rest. For every held-out image the suite holds (image, instruction) pairs phrased with
:data:`EVAL_PHRASINGS` — paraphrases written for the evaluation and checked to be absent from the template bank
the router's exemplars come from:

* ``valid``: a target of the image's dataset that its annotation shows (segment for anatomy and lesions, count
  for nuclei);
* ``absent``: a target of the image's dataset that its annotation does not show (correct: answered, none found);
* ``wrong_modality``: a target of another modality of the project (correct: refused);
* ``offtask``: a clinical judgement (correct: refused);
* ``unknown``: a target nobody annotates (correct: clarify).

Scores (overall and per modality): router accuracy (task and target as expected; for off-task the task, for
unknown "no target"), refusal rate on invalid pairs (wrong modality, off-task, unknown: refused or clarify),
false-refusal rate on valid pairs, absent accuracy, Dice of answered segmentations, count error (absolute and
relative) and PQ/AJI of the nuclei instances, and the AUROC of the plausibility p-value separating the tool's
answers on valid pairs from what the tool returns when the modality check is skipped on wrong-modality pairs.
Rows go to the results store (dataset ``ask-eval``, model ``segaudit-ask``, case = modality or ``all``) and every
pair's answer to ``RUN/ask_eval_pairs.jsonl``.
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from segaudit.dataset import ProjectConfig, discover, load_project
from segaudit.errors import SegauditError
from segaudit.instruct.ask import AskIndex, ask, build_index
from segaudit.instruct.ask.understand import normalise
from segaudit.instruct.language import load_ontology, load_templates, plural
from segaudit.instruct.views import iter_views
from segaudit.io.atomic import atomic_write_text
from segaudit.metrics.instance import aggregated_jaccard_index, panoptic_quality
from segaudit.store.store import ResultsStore

MODEL_NAME = "segaudit-ask"
EVAL_DATASET = "ask-eval"

#: Evaluation phrasings ({t}: the target's plural); none of them is (after normalisation) in the template bank.
EVAL_PHRASINGS: dict[str, tuple[str, ...]] = {
    "segment": ("trace the outline of the {t}", "I need the {t} shaded in", "paint over the {t} for me",
                "produce a pixel map of the {t}", "colour in the {t}"),
    "count": ("give me a tally of the {t}", "how many {t} can you spot", "tally up the {t} on this tile",
              "what's the number of {t} you see"),
    "offtask": ("based on this, is the patient going to die soon?", "which chemotherapy regimen fits this case?",
                "should this person be admitted to hospital?", "is this cancer curable?",
                "what billing code applies to this study?"),
}
#: Target phrasings used by the suite (others: the concept's plural).
EVAL_TARGETS: dict[str, tuple[str, ...]] = {
    "lung": ("lung fields", "lungs"), "exudate": ("hard exudates", "exudate spots"),
    "metastasis": ("metastatic lesions", "metastases"), "nucleus": ("cell nuclei", "nuclei"),
    "inflammatory nucleus": ("inflammatory cells", "immune cells"),
    "epithelial nucleus": ("epithelial cells", "epithelial nuclei"),
    "spindle-shaped nucleus": ("spindle cells", "spindle-shaped nuclei"),
    "other nucleus": ("other nuclei", "miscellaneous nuclei"),
}
UNKNOWN_TARGETS = ("giraffes", "coffee stains", "wristwatch", "tattoo", "hair follicles", "pacemaker leads")


@dataclass
class Pair:
    """One (image, instruction) of the suite, what is expected and what ``ask`` answered."""

    dataset: str
    case: str
    image: str
    modality: str
    kind: str
    instruction: str
    task: str
    target: str | None
    answer: dict = field(default_factory=dict)
    dice: float | None = None
    count_gt: int | None = None
    pq: float | None = None
    aji: float | None = None
    forced_p: float | None = None


@dataclass
class AskEvalResult:
    """The per-pair table, the metrics table (rows: modality and ``all``) and where they were written."""

    pairs: pd.DataFrame
    table: pd.DataFrame
    index: AskIndex
    out_dir: Path
    seconds: float
    warmup_seconds: float = 0.0  # the untimed first request (library initialisation), not in request_s


def _warm_up(index: AskIndex, out: Path, model) -> float:
    """One untimed request on a noise picture, so the table times requests, not the process's first call.

    The first LiteMedSAM decode and the first image statistics of a process pay one-off initialisation
    (measured ~0.4 s on an x-ray). Noise, not a suite image: the model's embedding cache must not hold an
    image the suite then times.
    """
    if not index.prototypes:
        return 0.0
    from PIL import Image

    start = time.perf_counter()
    noise = np.random.default_rng(0).integers(0, 256, (256, 256), dtype=np.uint8)
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        path = Path(tmp) / "warm-up.png"
        Image.fromarray(noise).save(path)
        ask(path, f"segment the {sorted(index.prototypes)[0]}", index, model=model, verify=False)
    return time.perf_counter() - start


def check_phrasings() -> list[str]:
    """Evaluation phrasings that are also in the template bank (should be none: the suite would be in-sample)."""
    bank = {normalise(t.text.format(target="x", targets="x", modality="x", image="x"))
            for ts in load_templates().values() for t in ts}
    return [p for ps in EVAL_PHRASINGS.values() for p in ps if normalise(p.format(t="x")) in bank]


def split_cases(project: ProjectConfig, holdout: float, seed: int) -> tuple[set, set]:
    """(train, test) (dataset, case) sets of the 2D annotated cases, per dataset, seeded."""
    if not 0 < holdout < 1:
        raise SegauditError(f"--holdout must be between 0 and 1, got {holdout}")
    ontology = load_ontology()
    disc = discover(project)
    by_ds: dict[str, list[str]] = {}
    for v in iter_views(project, disc, ontology):
        if v.provenance.slice is None:
            by_ds.setdefault(v.dataset, []).append(v.case)
    rng = random.Random(seed)
    train: set[tuple[str, str]] = set()
    test: set[tuple[str, str]] = set()
    for ds, cases in sorted(by_ds.items()):
        cases = sorted(set(cases))
        if len(cases) < 2:
            continue
        rng.shuffle(cases)
        k = min(len(cases) - 1, max(1, round(holdout * len(cases))))
        test.update((ds, c) for c in cases[:k])
        train.update((ds, c) for c in cases[k:])
    if not test:
        raise SegauditError(f"{project.name}: no 2D dataset with two or more annotated images to hold out")
    return train, test


def _phrase(rng: random.Random, task: str, target: str) -> str:
    t = rng.choice(EVAL_TARGETS.get(target, (plural(target),)))
    return rng.choice(EVAL_PHRASINGS[task]).format(t=t)


def build_suite(project: ProjectConfig, test: set, index: AskIndex, seed: int) -> list[tuple[Pair, np.ndarray,
                                                                                                 np.ndarray | None]]:
    """The pairs for the held-out images, with each image's label array and instance map (module docstring)."""
    rng = random.Random(seed + 1)
    ontology = load_ontology()
    disc = discover(project)
    disc.cases = [c for c in disc.cases if (c.dataset, c.case) in test]
    out = []
    modalities = sorted({t.modality for t in index.targets.values()})
    for v in iter_views(project, disc, ontology):
        if v.provenance.slice is not None or not v.provenance.image_file:
            continue
        mine = [t for t in index.targets.values() if t.dataset == v.dataset]
        if not mine:
            continue
        modality = mine[0].modality
        img = str(v.provenance.image_file)
        present = [t for t in mine if np.isin(v.labels, t.values).any()]
        absent = [t for t in mine if t not in present]
        # valid: the dataset's main target (the most values: the union region, e.g. all nuclei) and one other
        chosen = sorted(present, key=lambda t: (-len(t.values), t.name))[:1]
        others = [t for t in present if t not in chosen]
        if others:
            chosen.append(rng.choice(others))
        for t in chosen:
            task = "count" if t.tool == "nuclei" else "segment"
            out.append((Pair(v.dataset, v.case, img, modality, "valid", _phrase(rng, task, t.name), task, t.name),
                        v.labels, v.instances))
        for t in absent[:1]:
            task = "count" if t.tool == "nuclei" else "segment"
            out.append((Pair(v.dataset, v.case, img, modality, "absent", _phrase(rng, task, t.name), task, t.name),
                        v.labels, v.instances))
        for m in modalities:
            if m == modality:
                continue
            cands = sorted(t.name for t in index.targets.values() if t.modality == m)
            t = index.targets[rng.choice(cands)]
            task = "count" if t.tool == "nuclei" else "segment"
            out.append((Pair(v.dataset, v.case, img, modality, "wrong_modality", _phrase(rng, task, t.name), task,
                             t.name), v.labels, v.instances))
        out.append((Pair(v.dataset, v.case, img, modality, "offtask", rng.choice(EVAL_PHRASINGS["offtask"]),
                         "offtask", None), v.labels, v.instances))
        task = rng.choice(("segment", "count"))
        out.append((Pair(v.dataset, v.case, img, modality, "unknown",
                         rng.choice(EVAL_PHRASINGS[task]).format(t=rng.choice(UNKNOWN_TARGETS)), task, None),
                    v.labels, v.instances))
    return out


def auroc(positive: list[float], negative: list[float]) -> float:
    """Area under the ROC curve of scores (higher = positive), ties counted half; NaN when a side is empty."""
    if not positive or not negative:
        return float("nan")
    p = np.asarray(positive)[:, None]
    n = np.asarray(negative)[None, :]
    return float(((p > n).sum() + 0.5 * (p == n).sum()) / (p.size * n.size))


def _router_ok(p: Pair) -> bool:
    u = p.answer.get("understanding", {})
    if p.kind == "offtask":
        return u.get("task") == "offtask"
    if p.kind == "unknown":
        return u.get("task") != "offtask" and u.get("target") is None
    return u.get("task") == p.task and u.get("target") == p.target


def _score(pairs: list[Pair]) -> dict[str, float]:
    def share(sel, cond) -> float:
        sel = list(sel)
        return float(np.mean([cond(p) for p in sel])) if sel else float("nan")

    invalid = [p for p in pairs if p.kind in ("wrong_modality", "offtask", "unknown")]
    valid = [p for p in pairs if p.kind == "valid"]
    absent = [p for p in pairs if p.kind == "absent"]
    seg = [p.dice for p in valid if p.dice is not None and p.answer.get("verdict") == "answered"]
    cnt = [p for p in valid if p.count_gt is not None and p.answer.get("verdict") == "answered"]
    errs = [abs(int(p.answer["count"]) - (p.count_gt or 0)) for p in cnt]
    pos = [float(p.answer["plausibility"]["p_value"]) for p in valid if p.answer.get("plausibility")]
    neg = [float(p.forced_p) for p in pairs if p.forced_p is not None]
    und = [p.answer.get("timings", {}).get("understand_ms", np.nan) for p in pairs]
    tot = [p.answer.get("timings", {}).get("total_s", np.nan) for p in valid if p.answer.get("tool")]
    return {
        "pairs": float(len(pairs)), "router_accuracy": share(pairs, _router_ok),
        "refusal_rate_invalid": share(invalid, lambda p: p.answer.get("verdict") in ("refused", "clarify")),
        "false_refusal_rate_valid": share(valid, lambda p: p.answer.get("verdict") != "answered"),
        "absent_accuracy": share(absent, lambda p: p.answer.get("verdict") == "answered"
                                 and (p.answer.get("count") or 0) == 0),
        "plausibility_auroc": auroc(pos, neg),
        "dice_mean": float(np.mean(seg)) if seg else float("nan"), "dice_n": float(len(seg)),
        "count_abs_error": float(np.mean(errs)) if errs else float("nan"),
        "count_rel_error": float(np.mean([e / max(p.count_gt or 0, 1) for e, p in zip(errs, cnt, strict=True)]))
        if errs else float("nan"),
        "pq_mean": float(np.nanmean([p.pq for p in valid if p.pq is not None])) if any(
            p.pq is not None for p in valid) else float("nan"),
        "aji_mean": float(np.nanmean([p.aji for p in valid if p.aji is not None])) if any(
            p.aji is not None for p in valid) else float("nan"),
        "understand_ms_mean": float(np.nanmean(und)) if und else float("nan"),
        "understand_ms_max": float(np.nanmax(und)) if und else float("nan"),
        "request_s_mean": float(np.nanmean(tot)) if tot else float("nan"),
        "request_s_max": float(np.nanmax(tot)) if tot else float("nan"),
    }


def _grade(p: Pair, labels: np.ndarray, instances: np.ndarray | None, result, index: AskIndex) -> None:
    info = index.targets.get(p.target or "")
    if info is None or p.kind != "valid" or result.array is None:
        return
    truth = np.isin(labels, info.values)
    if info.tool == "nuclei":
        if instances is not None:
            gt_inst = np.where(truth, instances, 0)
            p.count_gt = int(len(np.unique(gt_inst[gt_inst > 0])))
            if p.target == "nucleus":
                p.pq = panoptic_quality(gt_inst, result.array).pq
                p.aji = aggregated_jaccard_index(gt_inst, result.array)
        return
    pred = np.asarray(result.array, dtype=bool)
    if pred.shape == truth.shape:
        s = int(pred.sum()) + int(truth.sum())
        p.dice = 1.0 if s == 0 else 2.0 * float(np.logical_and(pred, truth).sum()) / s


def ask_eval(project: ProjectConfig | str | Path, out_dir: str | Path, holdout: float = 0.3, seed: int = 0,
             progress=None, model=None, embed=None) -> AskEvalResult:
    """Split, build the index on the training part, run the suite, score it and store the table."""
    start = time.perf_counter()
    cfg = project if isinstance(project, ProjectConfig) else load_project(project)
    clash = check_phrasings()
    if clash:
        raise SegauditError(f"evaluation phrasings found in the template bank: {clash}")
    train, test = split_cases(cfg, holdout, seed)
    index = build_index(cfg, cases=train, model=model, embed=embed, progress=progress)
    suite = build_suite(cfg, test, index, seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    warmup = _warm_up(index, out, model)
    pairs = []
    for pair, labels, instances in suite:
        res = ask(pair.image, pair.instruction, index, model=model)
        pair.answer = res.to_dict()
        _grade(pair, labels, instances, res, index)
        if pair.kind == "wrong_modality" and res.understanding.get("target") == pair.target:
            forced = ask(pair.image, pair.instruction, index, model=model, verify=False)
            if forced.plausibility:
                pair.forced_p = float(forced.plausibility["p_value"])
        if progress:
            progress(f"{pair.kind:14} {pair.dataset}/{pair.case}: {pair.instruction!r} -> {res.verdict}")
        pairs.append(pair)
    rows = [{"modality": "all", **_score(pairs)}]
    for m in sorted({p.modality for p in pairs}):
        rows.append({"modality": m, **_score([p for p in pairs if p.modality == m])})
    table = pd.DataFrame(rows)
    frame = pd.DataFrame([{k: v for k, v in p.__dict__.items() if k != "answer"} | {
        "verdict": p.answer.get("verdict"), "reason": p.answer.get("reason"),
        "understood_task": p.answer.get("understanding", {}).get("task"),
        "understood_target": p.answer.get("understanding", {}).get("target"), "count": p.answer.get("count"),
        "p_value": (p.answer.get("plausibility") or {}).get("p_value")} for p in pairs])
    atomic_write_text(out / "ask_eval_pairs.jsonl",
                      "".join(json.dumps({**{k: v for k, v in p.__dict__.items()}}, default=str) + "\n"
                              for p in pairs))
    _store(out, table, {"holdout": holdout, "seed": seed, "train": len(train), "test": len(test)})
    return AskEvalResult(frame, table, index, out, time.perf_counter() - start, warmup)


def _store(out: Path, table: pd.DataFrame, config: dict) -> None:
    rows = [{"dataset": EVAL_DATASET, "case": r["modality"], "model": MODEL_NAME, "region": "all", "metric": k,
             "value": float(v), "unit": "ms" if k.endswith("_ms_mean") or k.endswith("_ms_max") else
             ("s" if k.startswith("request_s") else "")}
            for r in table.to_dict("records") for k, v in r.items() if k != "modality"]
    with ResultsStore(out) as store:
        run_id = store.start_run("ask-eval", config=config)
        frame = pd.DataFrame(rows)
        frame["run_id"] = run_id
        store.replace("metrics", frame, where={"dataset": [EVAL_DATASET]})
        store.finish_run(run_id, "ok", {"pairs": int(table.loc[0, "pairs"])})


#: Words that, with a model name of the store, make a request a question about a stored prediction.
MODEL_WORDS = frozenset({"model", "models", "predict", "predicted", "prediction", "predictions", "network", "output"})
#: Metrics quoted in a store answer (those present are shown).
STORE_METRICS = ("dice", "pred_volume", "gt_volume", "lesion_tp", "lesion_fp", "lesion_fn", "hd95", "pq", "aji")


def project_case(image: str | Path, project: ProjectConfig | str | Path) -> tuple[str, str] | None:
    """(dataset, case) of the project whose image file has the same bytes as ``image``, or None.

    Only files of the same size are hashed, so a request reads little more than the image itself.
    """
    from segaudit.instruct.ask.index import content_hash

    cfg = project if isinstance(project, ProjectConfig) else load_project(project)
    path = Path(image)
    size = path.stat().st_size
    digest = None
    for f in discover(cfg).files:
        if f.role != "image" or not f.exists or Path(f.path).stat().st_size != size:
            continue
        digest = digest or content_hash(path)
        if content_hash(f.path) == digest:
            return f.dataset, f.case
    return None


def store_answer(image: str | Path, instruction: str, project: ProjectConfig | str | Path,
                 run_dir: str | Path):
    """The answer to "what did model M predict" from the results store, or None when it is not such a question.

    It is one when the instruction names a model the store holds for this image's case (the image must be a case
    of the project, matched by content) and a word of :data:`MODEL_WORDS`. The answer quotes the stored metrics
    of that case-model (Dice, predicted and true volume or area, lesion counts...) per region.
    """
    from segaudit.instruct.ask import AskResult
    from segaudit.instruct.ask.understand import words

    ws = set(words(instruction))
    if not ws & MODEL_WORDS:
        return None
    case = project_case(image, project)
    if case is None:
        return None
    with ResultsStore(run_dir, read_only=True) as store:
        m = store.metrics(datasets=[case[0]])
    m = m[(m["case"] == case[1]) & (m["region"] != "confusion")]
    models = [mo for mo in sorted(set(m["model"])) if str(mo).lower() in ws or normalise(str(mo)) in normalise(
        instruction)]
    if not models:
        return None
    model = models[0]
    rows = m[(m["model"] == model) & (m["metric"].isin(STORE_METRICS))]
    meas = {f"{r.region}.{r.metric}": {"value": None if pd.isna(r.value) else float(r.value), "unit": r.unit or ""}
            for r in rows.itertuples()}
    parts = []
    for region, g in rows.groupby("region", sort=True):
        vals = dict(zip(g["metric"], g["value"], strict=True))
        bits = [f"Dice {vals['dice']:.3f}" if "dice" in vals else "",
                f"predicted {vals['pred_volume']:g}" if "pred_volume" in vals else "",
                f"ground truth {vals['gt_volume']:g}" if "gt_volume" in vals else ""]
        parts.append(f"{region}: " + ", ".join(b for b in bits if b))
    text = f"Model {model} on {case[0]}/{case[1]}: " + "; ".join(parts) + "."
    checks = {"goal": {"task": "describe", "target": f"prediction of {model}"},
              "assumption": {"source": f"results store {run_dir}"}, "image_shows": {"case": list(case)},
              "match": {"ok": True, "detail": "the image is a case of the project (same bytes)"}}
    return AskResult("answered", "from the results store (segaudit evaluate)", "describe", None, "", 0.0, checks,
                     measurements=meas, text=text, tool="results store", case=list(case))
