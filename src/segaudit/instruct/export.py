"""``export_instructions``: a project's annotations -> instruction records in every format, with a diversity summary.

Near-duplicates: within one image (view) no two instructions have cosine similarity >= 0.95 under the bundled
MiniLM (``instruct`` extra) or, without it, equal normalised text; ``summary.json`` names the rule used.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from segaudit.dataset import ProjectConfig, discover, load_project, parse_project
from segaudit.instruct.diversity import write_report
from segaudit.instruct.embed import NEAR_DUPLICATE_COSINE, default_deduper
from segaudit.instruct.formats import FORMATS, write_atomic, write_format
from segaudit.instruct.generate import GenerationStats, view_records
from segaudit.instruct.images import IMAGE_FORMATS, export_images
from segaudit.instruct.language import load_ontology, load_templates
from segaudit.instruct.paraphrase import CachedParaphraser, Paraphraser
from segaudit.instruct.record import Record, view_targets
from segaudit.instruct.rle import uncompressed
from segaudit.instruct.sampling import Quotas, apply_quotas, record_strata
from segaudit.instruct.views import SliceOptions, iter_views

#: At most this many planning passes before generation embeds the remaining misses one at a time.
PLANNING_PASSES = 8
RLE_FORMS = ("compressed", "uncompressed")
#: Planning stops once a pass misses fewer texts than this: another pass (~1 s on 10k records) would cost more
#: than embedding the few misses left one at a time in the real pass.
PLANNING_MIN_MISSES = 64


@dataclass
class ExportResult:
    """Records, files written, the diversity summary and the time taken (seconds)."""

    records: list[Record]
    files: list[Path]
    summary: dict
    seconds: float = 0.0
    stats: GenerationStats = field(default_factory=GenerationStats)


def distinct_n(texts: list[str], n: int = 2) -> float:
    """Distinct-n: distinct word n-grams / all word n-grams over the texts (lower case; 0.0 when there are none)."""
    grams = [tuple(ws[i:i + n]) for t in texts for ws in [t.lower().split()] for i in range(len(ws) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def diversity_summary(records: list[Record], stats: GenerationStats, method: str, n_templates: dict[str, int]) -> dict:
    """Counts per stratum and task, distinct-1/2 (corpus, and mean per view), near-duplicate rate, negative share,
    template usage, size bins.

    ``near_duplicate_rate`` is the share of generated candidates rejected as near-duplicates of an instruction
    already kept for the same image (kept records have none by construction: ``kept_near_duplicates`` = 0).
    """
    texts = [r.instruction for r in records]
    by_view: dict[str, list[str]] = {}
    for r in records:
        by_view.setdefault(r.id.rsplit("/", 1)[0], []).append(r.instruction)
    per_view = [distinct_n(v, 2) for v in by_view.values() if sum(len(t.split()) - 1 for t in v) > 0]
    per_stratum: dict[str, dict[str, dict[str, int]]] = {}
    for r in records:
        for key, val in record_strata(r).items():
            if key != "task":
                per_stratum.setdefault(key, {}).setdefault(val, Counter())[r.task] += 1
    sizes: dict[str, Counter] = {}
    for r in records:
        for t in r.targets:
            sizes.setdefault(t.name, Counter())[t.size_bin or "empty"] += 1
    used = Counter(r.template for r in records)
    by_task_used: dict[str, int] = Counter(tid.rsplit("-", 1)[0] for tid in used)
    n = max(len(records), 1)
    return {
        "records": len(records), "views": stats.views,
        "tasks": dict(sorted(Counter(r.task for r in records).items())),
        "negatives": dict(sorted(Counter(r.negative for r in records if r.negative).items())),
        "negative_share": round(sum(1 for r in records if r.negative) / n, 4),
        "per_stratum": {k: {v: dict(sorted(c.items())) for v, c in sorted(d.items())}
                        for k, d in sorted(per_stratum.items())},
        "distinct_1": round(distinct_n(texts, 1), 4), "distinct_2": round(distinct_n(texts, 2), 4),
        "distinct_2_per_view": round(float(np.mean(per_view)) if per_view else 0.0, 4),
        "near_duplicate_method": method, "near_duplicate_cosine": NEAR_DUPLICATE_COSINE,
        "candidates": stats.candidates, "near_duplicates_removed": stats.near_duplicates_removed,
        "near_duplicate_rate": round(stats.near_duplicates_removed / max(stats.candidates, 1), 4),
        "kept_near_duplicates": 0, "dropped_slots": stats.dropped_slots,
        "template_usage": dict(sorted(used.items())),
        "templates_used": {t: f"{by_task_used.get(t, 0)}/{k}" for t, k in sorted(n_templates.items())},
        "register": dict(sorted(Counter(r.register for r in records).items())),
        "paraphrased": sum(1 for r in records if r.paraphrase),
        "mask_size_bins": {k: dict(sorted(c.items())) for k, c in sorted(sizes.items())},
    }


def _project(project_or_run) -> ProjectConfig:
    """A project from a ProjectConfig, a YAML file, a run folder (its ``project.yaml``/``segaudit.yaml``) or a data
    folder (auto-detected layout).
    """
    if isinstance(project_or_run, ProjectConfig):
        return project_or_run
    path = Path(project_or_run)
    if path.is_dir():
        for name in ("project.yaml", "segaudit.yaml"):
            if (path / name).is_file():
                return load_project(path / name)
        from segaudit.dataset import detect_layout  # noqa: PLC0415 - only for data folders

        return parse_project(detect_layout(path).project, path.resolve())
    return load_project(path)


def generate_records(project: ProjectConfig, per_image: int = 4, negatives: float = 0.25, seed: int = 0,
                     slices: SliceOptions | None = None, use_model: bool = True,
                     ontology_files: list | None = None, template_files: list | None = None,
                     modalities: dict[str, str] | None = None, deduper=None, paraphraser=None):
    """(records, stats, deduper, template counts) of a project; see :func:`export_instructions`."""
    if not 0.0 <= negatives <= 1.0:
        raise ValueError(f"negatives must be a share in [0, 1], got {negatives}")
    if per_image < 1:
        raise ValueError(f"per_image must be >= 1, got {per_image}")
    ontology = load_ontology(ontology_files)
    bank = load_templates(template_files)
    dedup = deduper or default_deduper(use_model)
    para = None
    if paraphraser is not None:
        if not isinstance(paraphraser, Paraphraser):
            raise TypeError("paraphraser must have a 'name' and a 'paraphrase(text, *, task, target, modality, n, "
                            "seed)' method (segaudit.instruct.paraphrase.Paraphraser)")
        para = CachedParaphraser(paraphraser)
    # Targets once per view; the pixel arrays are dropped (a zero-stride stand-in keeps the shape).
    prepared = []
    for view in iter_views(project, discover(project), ontology, slices, modalities):
        found = view_targets(view)
        light = replace(view, labels=np.broadcast_to(np.zeros(1, bool), view.labels.shape), instances=None)
        prepared.append((light, found))

    def run(d) -> tuple[list[Record], GenerationStats]:
        st, recs_all = GenerationStats(), []
        usage: dict[str, int] = {}
        for light, found in prepared:
            recs, g = view_records(light, ontology, bank, d, per_image, negatives, seed, usage, found, para)
            st.views += 1
            st.candidates += g.candidates
            st.near_duplicates_removed += g.removed
            st.dropped_slots += per_image - len(recs)
            recs_all.extend(recs)
        return recs_all, st

    passes = 0
    if hasattr(dedup, "cached_only"):
        # Planning passes (embed.CachedOnlyDeduper): each embeds the texts the last one could not judge, in
        # large batches; after 3-4 passes the real pass below embeds at most a few dozen texts one at a time.
        for _ in range(PLANNING_PASSES):
            plan = dedup.cached_only()
            run(plan)
            passes += 1
            if plan.missed:
                dedup.prefetch(plan.missed)
            if len(set(plan.missed)) < PLANNING_MIN_MISSES:
                break
    records, stats = run(dedup)
    stats.records = len(records)
    stats.planning_passes = passes
    stats.embedded_texts = getattr(dedup, "embedded", 0)
    stats.model_calls = getattr(dedup, "model_calls", 0)
    stats.per_task = dict(Counter(r.task for r in records))
    return records, stats, dedup, {t: len(v) for t, v in bank.items()}


def export_instructions(project_or_run, out_dir: str | Path, format: str | list[str] = "jsonl",  # noqa: A002
                        per_image: int = 4, negatives: float = 0.25, seed: int = 0,
                        slices: SliceOptions | None = None, use_model: bool = True,
                        ontology_files: list | None = None, template_files: list | None = None,
                        modalities: dict[str, str] | None = None, images: str | None = None,
                        quotas: Quotas | None = None, report: bool = True, paraphraser=None,
                        rle: str = "compressed") -> ExportResult:
    """Write instruction-response records of a project's ground truth in one or more formats.

    Parameters
    ----------
    project_or_run:
        A :class:`~segaudit.dataset.ProjectConfig`, a project YAML, a run folder holding ``project.yaml`` or
        ``segaudit.yaml``, or a data folder (layout detected).
    out_dir:
        Output folder; each format writes its own file(s) (:mod:`segaudit.instruct.formats`) plus ``summary.json``.
    format:
        One of :data:`~segaudit.instruct.formats.FORMATS`, a list of them, or ``"all"``.
    per_image:
        Records per view (2D image or chosen slice); fewer when no non-duplicate phrasing is found.
    negatives:
        Expected share of negatives (absent target, other modality, off-task request) per view with targets;
        views without any target give negatives only. The achieved share is in the summary.
    seed:
        Random seed: the same seed, data and options give byte-identical files.
    slices:
        How volumes become slices (:class:`~segaudit.instruct.views.SliceOptions`).
    use_model:
        Use the bundled MiniLM for near-duplicates when installed (else normalised-text equality).
    ontology_files, template_files:
        Extra ontology / template YAML files merged into the shipped ones.
    modalities:
        Dataset -> modality name, overriding the ontology's guess from the label names.
    images:
        ``"png"`` or ``"jpeg"``: also write each record's image under ``out_dir/images`` (slices of volumes
        windowed, the window recorded; :mod:`segaudit.instruct.images`) and reference those files in every
        format. None (default): records point at the original files.
    quotas:
        Stratified caps, e.g. ``{"task": 200, "dataset": {"chest": 100}}`` (:mod:`segaudit.instruct.sampling`);
        rare strata are filled first, the achieved counts are in the summary (``quotas``).
    report:
        Also write the diversity report ``report.html`` (:mod:`segaudit.instruct.diversity`).
    paraphraser:
        Optional plug-in that rephrases instructions (a local or remote LLM;
        :class:`~segaudit.instruct.paraphrase.Paraphraser`). Never required; None (default) uses the templates only.
    rle:
        ``"compressed"`` (default: COCO's string form, what ``pycocotools.mask.encode`` gives) or
        ``"uncompressed"`` (the run-length list of ``iscrowd`` annotations) for every mask in every format.
    """
    t0 = time.perf_counter()
    formats = list(FORMATS) if format == "all" else [format] if isinstance(format, str) else list(format)
    if rle not in RLE_FORMS:
        raise ValueError(f"unknown RLE form {rle!r}; choose from {', '.join(RLE_FORMS)}")
    if images is not None and images not in IMAGE_FORMATS:
        raise ValueError(f"unknown image format {images!r}; choose from {', '.join(IMAGE_FORMATS)}")
    for f in formats:
        if f not in FORMATS:
            raise ValueError(f"unknown format {f!r}; choose from {', '.join(FORMATS)} or 'all'")
    project = _project(project_or_run)
    records, stats, dedup, n_templates = generate_records(project, per_image, negatives, seed, slices, use_model,
                                                          ontology_files, template_files, modalities,
                                                          paraphraser=paraphraser)
    generated = len(records)
    quota_report = None
    if quotas:
        records, quota_report = apply_quotas(records, quotas, seed)
    if rle == "uncompressed":
        records = [replace(r, targets=[replace(t, rle=uncompressed(t.rle)) for t in r.targets]) for r in records]
    out_dir = Path(out_dir)
    files: list[Path] = []
    if images is not None:
        files += export_images(records, out_dir, images)
    for f in formats:
        files += write_format(records, out_dir, f)
    summary = diversity_summary(records, stats, dedup.method, n_templates)
    summary["records_generated"] = generated
    if quota_report is not None:
        summary["quotas"] = quota_report
    summary["settings"] = {"formats": formats, "per_image": per_image, "negatives": negatives, "seed": seed,
                           "slices": (slices or SliceOptions()).__dict__, "images": images,
                           "quotas": quotas or {},
                           "paraphraser": getattr(paraphraser, "name", None), "rle": rle}
    files.append(write_atomic(out_dir / "summary.json",
                              (json.dumps(summary, sort_keys=True, indent=1) + "\n").encode("utf-8")))
    if report:
        files.append(write_report(out_dir / "report.html", summary, records, load_templates(template_files),
                                  f"Instruction data: {project.name}"))
    return ExportResult(records, files, summary, time.perf_counter() - t0, stats)
