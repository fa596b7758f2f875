"""The ``agree`` step: agreement between the models of every case, with or without ground truth.

:func:`agree_project` is the Python API behind ``segaudit agree``. For every dataset with predictions of at
least two models, each case's predictions are read once and compared with each other
(:func:`segaudit.metrics.agreement.agreement_rows`); no ground truth is read, so a project without one (five
models on new data) gets a useful result where ``evaluate`` has nothing to score.

Rows go into the store's one long ``metrics`` table (dataset, case, model, region, metric, value). Every metric
name starts with ``agree_``, so no view mistakes them for ground-truth metrics; ``region`` is the label or region
(a region identical to a label, like BraTS ``ET``, is stored once, under the label's name):

- model ``A~B`` (the two names sorted, each pair once): ``agree_dice``, ``agree_hd95``, A against B (symmetric);
- model ``A``: ``agree_loo_dice``, ``agree_loo_hd95``, A against the consensus of the *other* models (leave one
  out); ``agree_staple_sensitivity``, ``agree_staple_specificity``, STAPLE's estimate of A's p and q over all
  models; ``agree_volume``, A's volume in mm³ (mm² in 2D);
- models ``~majority`` and ``~staple``: ``agree_volume`` of the consensus of all models (strict majority; STAPLE
  W > 0.5); ``~staple`` also ``agree_staple_prior``, STAPLE's prior foreground probability.

(``hd95`` is the robust Hausdorff percentile of the evaluate options, ``hd<percentile>``.) The runs table records
the step as ``agree``; a failed or missing prediction is an ``errors`` row of step ``agree`` and leaves the case
scored on the others (at least two needed). Each case is written in one transaction
(:meth:`~segaudit.store.store.ResultsStore.replace_keyed` on dataset and case, step ``agree``, which never
deletes ``evaluate``'s rows); a re-run skips cases already done with the same settings and unchanged prediction
files (``force`` redoes them); a case whose files changed is redone and the rows of cases gone from disk are
dropped (:mod:`segaudit.pipeline.resume`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from segaudit.base.types import Executor, Severity
from segaudit.dataset.discover import discover
from segaudit.dataset.project import DatasetConfig, ProjectConfig
from segaudit.errors import ConfigError, failure_message
from segaudit.io.geometry import align_to
from segaudit.io.masks import read_mask, read_probability, threshold_probability
from segaudit.metrics.agreement import CONSENSUS_METHODS, agreement_rows
from segaudit.metrics.evaluate import EvaluationOptions
from segaudit.metrics.units import length_unit, metric_unit
from segaudit.pipeline.evaluate import METRIC_COLUMNS
from segaudit.pipeline.parallel import run_step
from segaudit.pipeline.resume import case_inputs, inputs_frame, plan_resume, run_recorded
from segaudit.store.store import ResultsStore

STEP = "agree"
KEY = ["dataset", "case"]
#: The tables whose rows the agree step owns (``metrics`` shared with evaluate, by run).
STEP_TABLES = ("metrics", "errors", "inputs")


@dataclass
class AgreeJob:
    """One case: the predictions of its models (model, path, exists) and the settings."""

    dataset: DatasetConfig
    case: str
    predictions: list[tuple[str, str, bool]]
    options: EvaluationOptions
    consensus: str = "majority"
    #: (role, key, path) of every file the job reads, fingerprinted before they are read (see pipeline.resume).
    inputs: tuple[tuple[str, str, str], ...] = ()
    fingerprint: str = "edge"


@dataclass
class AgreeOutput:
    """What comparing one case's models produced (plain rows)."""

    dataset: str
    case: str
    metrics: list[tuple] = field(default_factory=list)  # dataset, case, model, region, metric, value
    errors: list[dict] = field(default_factory=list)  # model, path, message, severity
    inputs: list[dict] = field(default_factory=list)  # role, key, path and the file's fingerprint


@dataclass
class AgreeResult:
    """Outcome of an ``agree`` run: the agreement rows and errors in the store, and what was not done."""

    run_id: str
    metrics: pd.DataFrame
    errors: pd.DataFrame
    skipped: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: Cases compared before with these settings, redone because their files changed (key -> why).
    changed: dict[tuple, str] = field(default_factory=dict)
    #: (dataset, case) whose rows were dropped because the case is no longer on disk.
    dropped: list[tuple[str, str]] = field(default_factory=list)
    #: What the run says about resumption, one sentence each.
    resume_notes: list[str] = field(default_factory=list)


def _read_prediction(ds: DatasetConfig, model: str, path: str):
    enc = ds.encoding_for(model)
    if enc.kind == "probability":
        img = read_probability(path, enc)
        img.array = threshold_probability(img.array, enc)
        return img
    return read_mask(path, enc)


def agree_case(job: AgreeJob) -> AgreeOutput:
    """Compare the models of one case; never raises (failures become error rows)."""
    ds = job.dataset
    out = AgreeOutput(ds.name, job.case)

    def fail(model: str, path: str, message: str, severity: Severity = "error") -> None:
        out.errors.append({"model": model, "path": path, "message": message, "severity": severity})

    maps, ref = {}, None
    for model, path, exists in job.predictions:
        if not exists:
            fail(model, path, f"{path}: prediction file not found; left out of the agreement")
            continue
        try:
            img = _read_prediction(ds, model, path)
        except Exception as exc:  # noqa: BLE001 - a broken file fails only its own model
            msg = failure_message(exc)
            fail(model, path, msg if path in msg else f"{path}: {msg}")
            continue
        if ref is None:
            ref = img
        else:
            # Full geometry (shape, spacing, origin, direction) under the dataset's geometry policy.
            al = align_to(img, ref, ds.geometry, f"prediction of {model}", spacing=ds.spacing)
            if al.array is None:
                fail(model, path, f"{al.message}; left out of the agreement")
                continue
            if al.severity:
                fail(model, path, al.message, al.severity)
            img.array = al.array
        maps[model] = img.array
    if len(maps) < 2:
        fail("", "", f"{len(maps)} readable prediction(s): agreement needs at least two models")
        return out
    assert ref is not None  # the first readable prediction, and there are at least two
    spacing = ds.spacing or ref.spacing
    labels = dict(ds.label_map.labels)
    if not labels:  # no label map declared: every non-zero value present, as evaluate does
        values = sorted({int(v) for a in maps.values() for v in pd.unique(a.ravel())} - {0})
        labels = {f"label_{v}": v for v in values}
    try:
        res = agreement_rows(maps, spacing, labels, dict(ds.label_map.regions), job.options, job.consensus)
    except Exception as exc:  # noqa: BLE001
        fail("", "", failure_message(exc))
        return out
    for note in res.notes:
        fail("", "", note, "warning")
    length = length_unit(ref.physical or ds.spacing is not None)
    out.metrics = [(ds.name, job.case, m, r, me, v, agreement_unit(me, length, ref.array.ndim))
                   for m, r, me, v in res.rows]
    return out


def agree_case_recorded(job: AgreeJob) -> AgreeOutput:
    """:func:`agree_case`, with the fingerprints of the job's files taken just before they are read."""
    return run_recorded(agree_case, job)


def build_agree_jobs(project: ProjectConfig, options: EvaluationOptions, consensus: str = "majority",
                     done: dict[tuple[str, str], set[str]] | None = None, files: pd.DataFrame | None = None,
                     fingerprint: str = "edge") -> tuple[list[AgreeJob], list[tuple], list[str]]:
    """One job per case with two or more models; also the cases skipped as done and notes on datasets left out.

    ``done`` maps (dataset, case) to the models already compared there with the same settings: a case is skipped
    only when those are exactly the models whose files exist now (a new or repaired prediction redoes it).
    ``files``: discovery's files frame (discovered here when not given); ``fingerprint``: the digest mode of
    the jobs' input fingerprints.
    """
    done = done or {}
    files = files if files is not None else discover(project).files_frame()
    inputs = case_inputs(files, ("prediction",))
    jobs: list[AgreeJob] = []
    skipped: list[tuple] = []
    notes: list[str] = []
    for ds in project.datasets:
        f = files[(files.dataset == ds.name) & (files.role == "prediction")]
        if not ds.predictions or f.empty:
            notes.append(f"dataset {ds.name}: no predictions, nothing to compare")
            continue
        if f.key.nunique() < 2:
            notes.append(f"dataset {ds.name}: predictions of one model only ({f.key.iloc[0]}); agreement needs "
                         "at least two")
            continue
        for case, rows in f.groupby("case", sort=True):
            preds = [(r.key, r.path, bool(r.exists)) for r in rows.sort_values("key").itertuples()]
            if done.get((ds.name, str(case))) == {m for m, _, e in preds if e}:
                skipped.append((ds.name, str(case)))
                continue
            jobs.append(AgreeJob(ds, str(case), preds, options, consensus,
                                 tuple(inputs.get((ds.name, str(case)), [])), fingerprint))
    return jobs, skipped, notes


def agree_project(project: ProjectConfig, out_dir: str | Path, options: EvaluationOptions | None = None,
                  consensus: str = "majority", workers: int = 1, scheduler: str | None = None, force: bool = False,
                  progress: bool = True, executor: Executor = "auto", argv: list[str] | None = None,
                  fingerprint: str = "edge") -> AgreeResult:
    """Compare the models of every case of a project and write the agreement rows to the store.

    Parameters
    ----------
    project:
        The project; datasets with predictions of fewer than two models are left out (said in ``notes``).
    out_dir:
        Run directory of the results store (may already hold ``evaluate`` results: they are kept).
    options:
        Distance settings (surface, percentile, empty-case policy); default: the project's ``evaluate:``
        section, else :class:`EvaluationOptions`. Lesion matching is never run.
    consensus:
        Consensus of the other models in the leave-one-out scores: ``"majority"`` or ``"staple"``.
    workers, scheduler, executor:
        Parallelism, as for :func:`segaudit.pipeline.evaluate.evaluate_project`.
    force:
        Redo cases already compared with the same settings.
    fingerprint:
        ``"edge"`` or ``"full"``: how a case's prediction files are recognised on a re-run, as for
        :func:`segaudit.pipeline.evaluate.evaluate_project`.
    """
    if consensus not in CONSENSUS_METHODS:
        raise ConfigError(f"consensus must be one of {CONSENSUS_METHODS}, not {consensus!r}")
    if options is None:
        options = EvaluationOptions.from_dict(project.raw.get("evaluate") if project.raw else None)
    ohash = project.settings_hash(options=options.to_dict(), consensus=consensus, step=STEP)
    files = discover(project).files_frame()
    with ResultsStore(out_dir) as store:
        done = {} if force else _done_models(store, ohash)
        plan = plan_resume(store, STEP, KEY, STEP_TABLES, list(done), files, ("prediction",),
                           [ds.name for ds in project.datasets], fingerprint)
        for k in plan.changed:
            done.pop(k, None)
        jobs, skipped, notes = build_agree_jobs(project, options, consensus, done, files, fingerprint)
        run_id = run_step(store, STEP, ohash, {"project": project.raw, "options": options.to_dict(),
                                               "consensus": consensus}, argv, agree_case_recorded, jobs, _write_case,
                          "Comparing models", summary=lambda: {"cases": len(jobs), "skipped": len(skipped),
                                                               **plan.counts(), "notes": notes},
                          start=lambda rid: plan.drop(store),
                          progress=progress, workers=workers, scheduler=scheduler, executor=executor)
        names = sorted({j.dataset.name for j in jobs} | {d for d, _ in skipped})
        metrics = store.metrics(names, step=STEP).drop(columns="unit")
        errors = store.errors(STEP, names)
    return AgreeResult(run_id, metrics, errors, skipped, notes, plan.changed, plan.dropped,
                       plan.lines("case(s)", "compared again"))


def _done_models(store: ResultsStore, config_hash: str) -> dict[tuple[str, str], set[str]]:
    """(dataset, case) -> the models with agreement rows written by ``agree`` runs of these settings."""
    rows = store.step_models(STEP, config_hash, "agree_volume")
    out: dict[tuple[str, str], set[str]] = {}
    for r in rows.itertuples():
        out.setdefault((r.dataset, r.case), set()).add(r.model)
    return out


def agreement_unit(metric: str, length: str, ndim: int) -> str:
    """Unit of an ``agree_*`` row.

    The unit of the metric it is built on (``agree_hd95`` -> mm or px, ``agree_volume`` -> mm3/px2, Dice and STAPLE's
    sensitivity/specificity/prior dimensionless).
    """
    base = metric.removeprefix("agree_").removeprefix("loo_")
    if base == "volume":
        return f"{length}{ndim}"
    return metric_unit(base, length, ndim)


def _write_case(store: ResultsStore, res: AgreeOutput, run_id: str) -> None:
    keys = pd.DataFrame([(res.dataset, res.case)], columns=KEY)
    metrics = pd.DataFrame(res.metrics, columns=METRIC_COLUMNS)
    metrics["run_id"] = run_id
    errors = pd.DataFrame([{"step": STEP, "dataset": res.dataset, "case": res.case, **e, "run_id": run_id}
                           for e in res.errors])
    inputs = inputs_frame([{"step": STEP, "dataset": res.dataset, "case": res.case, "model": "", **i,
                            "run_id": run_id} for i in res.inputs])
    store.replace_keyed({"metrics": metrics, "errors": errors, "inputs": inputs}, keys, step=STEP)
