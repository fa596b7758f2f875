"""Modality attribution from declared predictions: one prediction per subset of the sequences (``subset_predictions``).

A model trained with modality dropout predicts with any subset of its input sequences; the project file declares,
per dataset, the file of each subset's prediction (:class:`segaudit.dataset.project.SubsetPredictions`). For every
case with ground truth, each subset's prediction is scored by ``evaluate``'s own engine
(:func:`segaudit.pipeline.evaluate.evaluate_case`, the model registered as ``NAME[subset]``, the project's encodings,
geometry policy and empty-case policy; only the overlap metrics are needed, so distances and lesion matching are
off), and per case and region (every label and region of the label map):

* ``subset`` rows: the Dice of each scored subset (``sequences`` joined by ``+``, ``''`` the empty set);
* ``shapley`` rows: each sequence's exact Shapley value over all ``2^k`` subsets
  (:func:`segaudit.models.attribution.shapley_values`; they sum to ``Dice(all) - Dice(none)``). When a subset is
  missing (not declared, its file absent or unreadable) or its Dice undefined, the value is NaN and ``note`` names
  the missing subsets: Shapley is not computable;
* ``drop_one`` rows: ``Dice(all) - Dice(all - {i})`` where both are scored, else NaN with the reason.

**The empty set.** Without a declared ``""`` prediction, the empty set predicts nothing: its prediction is the empty
mask, scored by the same engine, so its Dice is 0 where the region's ground truth is non-empty, and the empty-case
policy's value where it is empty too (``evaluate: {both_empty: ...}``: 1 by default, NaN with ``nan``).

**Empty ground truth.** In a case whose region has no ground truth, Dice measures only false alarms (1 when
nothing is predicted); the values are stored, with a note, and left out of the aggregates
(:func:`segaudit.analysis.prompting.attribution_summary`), as every view sets both-empty cases apart.

Rows carry ``source = 'declared'`` and are written by the step ``attribute-predictions``, so they never replace the
live attribution's rows (``source = 'live'``, step ``attribute``). A missing or broken prediction file is an error
row naming the file (the case's other subsets are still scored); a re-run skips cases done with the same settings
whose files are unchanged (:mod:`segaudit.pipeline.resume`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd

from segaudit.base.types import Executor
from segaudit.dataset.discover import discover
from segaudit.dataset.project import DatasetConfig, ProjectConfig, SubsetPredictions
from segaudit.errors import SegauditError
from segaudit.io.geometry import GridTolerance
from segaudit.metrics.evaluate import EvaluationOptions
from segaudit.models.attribution import shapley_values
from segaudit.pipeline.evaluate import CaseJob, build_jobs, evaluate_case
from segaudit.pipeline.parallel import run_step
from segaudit.pipeline.resume import (
    CaseRows,
    case_inputs,
    drop_vanished,
    fingerprint_inputs,
    present_cases,
    stale_jobs,
    vanished_cases,
)
from segaudit.store.store import ResultsStore

__all__ = ["SOURCE", "SubsetAttributeResult", "attribute_predictions_project", "subset_model_name",
           "subset_scoring_project"]

STEP = "attribute-predictions"
#: The ``attributions.source`` of these rows.
SOURCE = "declared"
STEP_TABLES = ("attributions", "errors", "inputs")
INPUT_ROLES = ("ground_truth", "prediction")


def subset_model_name(model: str, subset_name: str) -> str:
    """The name a subset's prediction is scored under: ``NAME[t1ce+flair]`` (``NAME[]`` for the empty set)."""
    return f"{model}[{subset_name}]"


def _all_subsets(players: list[str]) -> list[frozenset[str]]:
    return [frozenset(c) for r in range(len(players) + 1) for c in combinations(players, r)]


def subset_scoring_project(project: ProjectConfig) -> ProjectConfig:
    """The project whose only predictions are the declared subset predictions, as models ``NAME[subset]``.

    Each dataset keeps its ground truth, labels, encodings, spacing and geometry policy; images and instance maps
    are left out (not read). Datasets without ``subset_predictions`` or ground truth are dropped.
    """
    out = []
    for ds in project.datasets:
        if not ds.subset_predictions or not ds.ground_truth:
            continue
        preds: list[tuple[str, str]] = []
        models: list[str] = []
        encs: dict = {}
        regions: dict[str, str] = {}
        for sp in ds.subset_predictions:
            enc = sp.encoding or ds.encoding_for(sp.model)
            for subset, tpl in sp.subsets.items():
                name = subset_model_name(sp.model, sp.name(subset))
                preds.append((name, tpl))
                models.append(name)
                encs[name] = enc
                region = ds.prediction_region(sp.model)
                if region:
                    regions[name] = region
        out.append(replace(ds, images={}, instances=None, predictions=preds, models=models, model_encodings=encs,
                           prediction_encoding=None, prediction_regions=regions))
    return ProjectConfig(datasets=out, path=project.path, raw=project.raw, name=project.name)


@dataclass
class SubsetScoring:
    """One model's subsets of one case: the evaluate job of its declared subsets, the empty set's if undeclared."""

    spec: SubsetPredictions
    scoring: CaseJob
    empty: CaseJob | None


@dataclass
class SubsetCaseJob:
    """One case: every declared model's subset scoring, and the files the case reads."""

    dataset: str
    case: str
    models: list[SubsetScoring]
    inputs: tuple[tuple[str, str, str], ...] = ()


@dataclass
class SubsetCaseOutput(CaseRows):
    """One case of the declared-subset attribution step (rows of ``attributions``)."""


def _subset_of(spec: SubsetPredictions, model: str) -> frozenset[str] | None:
    for subset in _all_subsets(spec.sequences):
        if subset_model_name(spec.model, spec.name(subset)) == model:
            return subset
    return None


def attribute_subset_case(job: SubsetCaseJob) -> SubsetCaseOutput:
    """Score a case's subset predictions and compute Shapley and drop-one per region (module docstring).

    Never raises: a file that cannot be scored is an error row of its subset (``NAME[subset]``) naming the file.
    """
    out = SubsetCaseOutput(job.dataset, job.case, inputs=fingerprint_inputs(job.inputs))
    for m in job.models:
        _attribute_model(job, m, out)
    return out


def _names(spec: SubsetPredictions, subsets: list[frozenset[str]]) -> str:
    return ", ".join(repr(spec.name(s)) for s in subsets)


def _attribute_model(job: SubsetCaseJob, m: SubsetScoring, out: SubsetCaseOutput) -> None:
    spec = m.spec
    dice: dict[tuple[str, frozenset[str]], float] = {}
    gt_empty: dict[str, bool] = {}
    for cj, synthetic in ((m.scoring, False), (m.empty, True)):
        if cj is None or not cj.predictions:
            continue
        res = evaluate_case(cj)
        for e in res.errors:
            if synthetic and e["severity"] == "warning" and "scored as an empty prediction" in e["message"]:
                continue  # the undeclared empty set is the empty prediction by definition, not a missing file
            out.errors.append(e)
        for _, _, model, region, metric, value, _ in res.metrics:
            subset = _subset_of(spec, model)
            if subset is None:
                continue
            if metric == "dice":
                dice[(region, subset)] = float(value)
            elif metric == "gt_empty":
                gt_empty[region] = gt_empty.get(region, False) or bool(value)
    players = spec.sequences
    full = frozenset(players)
    base = {"dataset": job.dataset, "case": job.case, "model": spec.model, "source": SOURCE}
    shapley_missing: dict[str, list[str]] = {}
    for region in sorted({r for r, _ in dice}):
        scores = {s: v for (r, s), v in dice.items() if r == region}
        for subset, v in sorted(scores.items(), key=lambda kv: (len(kv[0]), spec.name(kv[0]))):
            out.rows.append({**base, "region": region, "method": "subset", "sequences": spec.name(subset),
                             "value": v, "note": None})
        empty_note = (f"ground truth of {region} empty in this case: Dice by the empty-case policy (false alarms "
                      "only); left out of the aggregates") if gt_empty.get(region) else None
        missing = [s for s in _all_subsets(players) if s not in scores]
        undefined = [s for s in _all_subsets(players) if s in scores and not np.isfinite(scores[s])]
        if missing or undefined:
            why: str | None = "Shapley not computable: " + "; ".join(
                ([f"subset(s) {_names(spec, missing)} not scored (not declared, or the file failed)"]
                 if missing else [])
                + ([f"Dice undefined for subset(s) {_names(spec, undefined)}"] if undefined else []))
            phi = dict.fromkeys(players, float("nan"))
        else:
            why = None
            phi = shapley_values(players, scores)
        for seq in players:
            out.rows.append({**base, "region": region, "method": "shapley", "sequences": seq, "value": phi[seq],
                             "note": why or empty_note})
            pair = [full, full - {seq}]
            lacking = [s for s in pair if s not in scores]
            undef = [s for s in pair if s in scores and not np.isfinite(scores[s])]
            if lacking or undef:
                drop = float("nan")
                note: str | None = "drop-one not defined: " + "; ".join(
                    ([f"subset(s) {_names(spec, lacking)} not scored"] if lacking else [])
                    + ([f"Dice undefined for {_names(spec, undef)}"] if undef else []))
            else:
                drop, note = scores[full] - scores[full - {seq}], empty_note
            out.rows.append({**base, "region": region, "method": "drop_one", "sequences": seq, "value": drop,
                             "note": note})
        if why:
            shapley_missing.setdefault(why, []).append(region)
    for why, regions in shapley_missing.items():
        out.errors.append({"model": spec.model, "path": "", "severity": "warning",
                           "message": f"{why} (region(s) {', '.join(regions)})"})


@dataclass
class SubsetAttributeResult:
    """Run id, cases attributed and skipped, the step's error rows, and why datasets were left out."""

    run_id: str
    attributed: int
    skipped: list[tuple[str, str]]
    errors: pd.DataFrame
    notes: list[str]


def _write(store: ResultsStore, res: SubsetCaseOutput, run_id: str) -> None:
    res.write(store, "attributions", STEP, run_id)


def attribute_predictions_project(project: ProjectConfig, out_dir: str | Path,
                                  evaluation: EvaluationOptions | None = None, force: bool = False,
                                  progress: bool = True, workers: int = 1, executor: Executor = "auto",
                                  argv: list[str] | None = None) -> SubsetAttributeResult:
    """Attribution from the declared subset predictions of every dataset that has them (module docstring).

    Parameters
    ----------
    project:
        The project; datasets without ``subset_predictions`` or ground truth are left out (a note says why).
    out_dir:
        Run directory of the results store (rows in ``attributions`` with ``source = 'declared'``).
    evaluation:
        Metric settings (default: the project's ``evaluate:`` section); distances and lesion matching are turned
        off (Dice does not depend on them). The empty-case policy decides the Dice of empty masks.
    force:
        Redo cases already attributed with these settings.

    Raises
    ------
    SegauditError
        When no dataset declares ``subset_predictions`` with ground truth.
    """
    notes = [f"{ds.name}: " + ("declares no subset_predictions" if not ds.subset_predictions else
                               "has no ground truth to score the subset predictions against") + "; left out"
             for ds in project.datasets if not (ds.subset_predictions and ds.ground_truth)]
    scoring = subset_scoring_project(project)
    if not scoring.datasets:
        raise SegauditError("nothing to attribute from predictions: " + "; ".join(notes)
                            + " (declare subset_predictions: {model: NAME, subsets: {SUBSET: TEMPLATE}} under a "
                              "dataset)")
    if evaluation is None:
        evaluation = EvaluationOptions.from_dict(project.raw.get("evaluate") if project.raw else None)
    opts = evaluation.with_changes(distances=False, lesion_matching="none")
    files = discover(scoring).files_frame()
    names = [ds.name for ds in scoring.datasets]
    settings = {"options": opts.to_dict()}
    ohash = project.settings_hash(attribute_predictions=settings)
    by_case = case_inputs(files, INPUT_ROLES)
    tolerance = GridTolerance.from_qc(project.raw.get("qc") if project.raw else None)
    jobs: list[SubsetCaseJob] = []
    skipped: list[tuple[str, str]] = []
    with ResultsStore(out_dir) as store:
        done = set() if force else store.completed("attributions", STEP, ohash, ["dataset", "case"])
        stale = stale_jobs(store, STEP, ["dataset", "case"], {k: by_case[k] for k in done if k in by_case})
        done -= set(stale.changed)
        gone, vnotes = vanished_cases(store, STEP, list(STEP_TABLES), present_cases(files, names))
        notes += vnotes
        case_jobs, _ = build_jobs(scoring, opts, files=files)
        for ds in scoring.datasets:
            for cj in (j for j in case_jobs if j.dataset.name == ds.name):
                key = (ds.name, cj.case)
                if not cj.gt_exists:
                    continue  # scan and evaluate report the missing ground truth
                if key in done:
                    skipped.append(key)
                    continue
                jobs.append(_case_job(ds, cj, tolerance, tuple(by_case.get(key, []))))
        run_id = run_step(store, STEP, ohash, {"project": project.raw, "attribute_predictions": settings}, argv,
                          attribute_subset_case, jobs, _write, "Attributing from subset predictions",
                          start=lambda rid: drop_vanished(store, STEP, list(STEP_TABLES), gone),
                          progress=progress, workers=workers, executor=executor)
        errors = store.errors(STEP, names)
    return SubsetAttributeResult(run_id, len(jobs), skipped, errors, notes)


def _case_job(ds: DatasetConfig, cj: CaseJob, tolerance: GridTolerance,
              inputs: tuple[tuple[str, str, str], ...]) -> SubsetCaseJob:
    """The case's evaluate job split by declared model, plus each model's empty-set job when it is not declared."""
    models = []
    for spec in ds.subset_predictions:
        mine = {subset_model_name(spec.model, spec.name(s)) for s in spec.subsets}
        scoring = replace(cj, predictions=[p for p in cj.predictions if p[0] in mine], tolerance=tolerance)
        empty = None
        if frozenset() not in spec.subsets:
            name = subset_model_name(spec.model, "")
            enc = spec.encoding or ds.encoding_for(spec.model)
            eds = replace(cj.dataset, model_encodings={**cj.dataset.model_encodings, name: enc})
            empty = replace(cj, dataset=eds, predictions=[(name, "", False)], missing_as_empty=True,
                            tolerance=tolerance)
        models.append(SubsetScoring(spec, scoring, empty))
    return SubsetCaseJob(ds.name, cj.case, models, inputs)
