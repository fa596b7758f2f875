"""The ``evaluate`` step: score every (dataset, case, model) of a project and store long metric rows.

:func:`evaluate_project` is the Python API behind ``segaudit evaluate``. Work is split per case (the ground
truth is read once and scored against every model's prediction). Each finished case is written to the store at
once, in one transaction (``metrics``, ``lesions`` and its ``errors`` rows), so an interrupted run keeps what it
finished and a re-run skips case-models already scored with the same settings (``force`` re-scores them).

A broken or missing file fails only its own case-model: the reason is stored in ``errors`` (with the path) and
the run goes on. Parallelism: worker processes, a local Dask cluster, or an existing Dask scheduler; the rows
are identical whichever is used (they are sorted before they are compared or exported).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from segaudit.dataset.discover import discover
from segaudit.dataset.project import DatasetConfig, ProjectConfig
from segaudit.errors import failure_message
from segaudit.io.geometry import GridTolerance, align_to
from segaudit.io.image import (
    format_vector,
    read_mask,
    read_probability,
    threshold_probability,
)
from segaudit.metrics.evaluate import EvaluationOptions, evaluate_pair, instance_region
from segaudit.pipeline.parallel import run_jobs
from segaudit.pipeline.scan import progress_bar
from segaudit.store.store import ResultsStore

KEY = ["dataset", "case", "model"]
METRIC_COLUMNS = ["dataset", "case", "model", "region", "metric", "value"]


@dataclass
class CaseJob:
    """One case to score: its ground truth and the predictions of the models still to do."""

    dataset: DatasetConfig
    case: str
    ground_truth: str | None
    gt_exists: bool
    instances: str | None
    predictions: list[tuple[str, str, bool]]  # model, path, exists
    options: EvaluationOptions
    missing_as_empty: bool = False
    resample: bool = False
    ignore_affine: bool = False
    tolerance: GridTolerance = field(default_factory=GridTolerance)

    @property
    def geometry(self) -> str:
        """The geometry policy for this job: a command-line opt-in overrides the dataset's ``geometry:``."""
        return "resample_nearest" if self.resample else "ignore_affine" if self.ignore_affine else \
            self.dataset.geometry


@dataclass
class CaseOutput:
    """What scoring one case produced (plain rows, cheap to send between processes)."""

    dataset: str
    case: str
    models: list[str]
    metrics: list[tuple] = field(default_factory=list)  # dataset, case, model, region, metric, value
    lesions: list[dict] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)  # model, path, message, severity


@dataclass
class EvaluateResult:
    """Outcome of an evaluation run."""

    run_id: str
    metrics: pd.DataFrame
    lesions: pd.DataFrame
    errors: pd.DataFrame
    summary: pd.DataFrame
    skipped: list[tuple[str, str, str]] = field(default_factory=list)


def evaluate_case(job: CaseJob) -> CaseOutput:
    """Score one case against every model of the job; never raises (failures become error rows)."""
    ds, opts = job.dataset, job.options
    out = CaseOutput(ds.name, job.case, [m for m, _, _ in job.predictions])

    def fail(model: str, path: str, message: str, severity: str = "error") -> None:
        out.errors.append({"model": model, "path": path, "message": message, "severity": severity})

    if not job.ground_truth or not job.gt_exists:
        for model, _, _ in job.predictions:
            fail(model, job.ground_truth or "", f"{job.ground_truth}: ground truth file not found")
        return out
    try:
        gt = read_mask(job.ground_truth, ds.mask_encoding)
        inst = read_mask(job.instances).array if job.instances else None
    except Exception as exc:  # noqa: BLE001 - any failure is this case's, recorded with its reason
        for model, _, _ in job.predictions:
            fail(model, job.ground_truth, failure_message(exc))
        return out
    spacing = ds.spacing or gt.spacing
    labels = dict(ds.label_map.labels) or None
    regions = dict(ds.label_map.regions)
    for model, path, exists in job.predictions:
        try:
            prob = None
            enc = ds.encoding_for(model)
            if not exists:
                if not job.missing_as_empty:
                    fail(model, path, f"{path}: prediction file not found")
                    continue
                fail(model, path, f"{path}: prediction file not found; scored as an empty prediction", "warning")
                pred_arr = np.zeros(gt.array.shape, dtype=np.uint8)
            else:
                if enc.kind == "probability":
                    pimg = read_probability(path, enc)
                    prob = pimg.array
                    pimg.array = threshold_probability(prob, enc)
                else:
                    pimg = read_mask(path, enc)
                # Full geometry (shape, spacing, origin, direction), not only the shape: see io.geometry.
                al = align_to(pimg, gt, job.geometry, "prediction", job.tolerance, ds.spacing)
                if al.severity:
                    fail(model, path, al.message, al.severity)
                if al.array is None:
                    continue
                if al.resampled and prob is not None:
                    prob = None  # a resampled soft map would need interpolation: skip soft metrics
                pred_arr = al.array
            if enc.kind == "instances":
                if inst is None:
                    fail(model, path, f"{path}: instance-map prediction but no ground-truth instance map for this "
                                      "case (declare 'instances'); PQ, AJI and AJI+ not computed", "warning")
                res = _evaluate_instance_prediction(gt.array, pred_arr, inst, spacing, labels, regions, opts)
            else:
                res = evaluate_pair(gt.array, pred_arr, spacing, labels, regions, opts, probability=prob,
                                    gt_instances=inst)
        except Exception as exc:  # noqa: BLE001
            msg = failure_message(exc)
            fail(model, path, msg if path in msg else f"{path}: {msg}")
            continue
        for note in res.notes:
            fail(model, path, f"{path}: {note}", "warning")
        out.metrics += [(ds.name, job.case, model, r, m, v) for r, m, v in res.rows]
        for region, les in res.lesions:
            out.lesions.append({
                "dataset": ds.name, "case": job.case, "model": model, "region": region, "source": les.source,
                "lesion_id": les.lesion_id, "volume": les.volume, "centroid": format_vector(les.centroid),
                "bbox": format_vector(les.bbox), "matched": les.matched, "dice": les.dice, "hd95": les.hd95,
                "counted": les.counted})
    return out


def _evaluate_instance_prediction(gt: np.ndarray, pred_instances: np.ndarray, gt_instances: np.ndarray | None,
                                  spacing, labels: dict[str, int] | None, regions: dict[str, tuple[int, ...]],
                                  opts: EvaluationOptions):
    """Score a prediction that is an instance map (``prediction_encoding: {kind: instances}``).

    An instance map carries no class, so the pair is scored class-agnostically: the ground-truth foreground
    (every label) against the union of the predicted instances, in one region named by
    :func:`~segaudit.metrics.evaluate.instance_region` (the single label, the all-labels region such as
    CoNSeP's ``nuclei``, else ``foreground``). With a ground-truth instance map, PQ, AJI and AJI+ join it.
    """
    if labels is None:
        values = sorted(int(v) for v in np.unique(gt) if v != 0)
        labels = {f"label_{v}": v for v in values}
    name = instance_region(labels, regions) if labels else "foreground"
    return evaluate_pair((gt != 0).astype(np.uint8), (pred_instances != 0).astype(np.uint8), spacing, {name: 1}, {},
                         opts, gt_instances=gt_instances, pred_instances=pred_instances)


def build_jobs(project: ProjectConfig, options: EvaluationOptions, done: set[tuple[str, str, str]] | None = None,
               missing_as_empty: bool = False, resample: bool = False, ignore_affine: bool = False
               ) -> tuple[list[CaseJob], list[tuple]]:
    """One job per case with at least one model left to score; also the case-models skipped as done."""
    done = done or set()
    disc = discover(project)
    files = disc.files_frame()
    tolerance = GridTolerance.from_qc(project.raw.get("qc") if project.raw else None)
    jobs: list[CaseJob] = []
    skipped: list[tuple] = []
    for ds in project.datasets:
        if not ds.predictions or not ds.ground_truth:
            continue
        f = files[files.dataset == ds.name]
        for case, rows in f.groupby("case", sort=True):
            gt_rows = rows[rows.role == "ground_truth"]
            inst_rows = rows[(rows.role == "instances") & rows.exists.astype(bool)]
            preds = []
            for _, r in rows[rows.role == "prediction"].sort_values("key").iterrows():
                if (ds.name, str(case), r.key) in done:
                    skipped.append((ds.name, str(case), r.key))
                    continue
                preds.append((r.key, r.path, bool(r.exists)))
            if not preds:
                continue
            gt_path = gt_rows.path.iloc[0] if len(gt_rows) else None
            gt_exists = bool(gt_rows.exists.iloc[0]) if len(gt_rows) else False
            jobs.append(CaseJob(ds, str(case), gt_path, gt_exists,
                                inst_rows.path.iloc[0] if len(inst_rows) else None, preds, options,
                                missing_as_empty, resample, ignore_affine, tolerance))
    return jobs, skipped


def evaluate_project(project: ProjectConfig, out_dir: str | Path, options: EvaluationOptions | None = None,
                     workers: int = 1, scheduler: str | None = None, force: bool = False, progress: bool = True,
                     missing_as_empty: bool = False, resample: bool = False, executor: str = "auto",
                     argv: list[str] | None = None, ignore_affine: bool = False) -> EvaluateResult:
    """Score every case-model of a project and write ``metrics``, ``lesions`` and ``errors`` to the store.

    Parameters
    ----------
    project:
        The project (datasets without predictions or ground truth are skipped).
    out_dir:
        Run directory of the results store.
    options:
        Metric settings; default: the project's ``evaluate:`` section, else :class:`EvaluationOptions`.
    workers:
        Parallel workers: > 1 starts a local Dask cluster of that many processes when Dask is installed
        (``executor="processes"`` forces a process pool).
    scheduler:
        Address of a running Dask scheduler (``tcp://host:8786``); overrides ``workers``.
    force:
        Re-score case-models already in the store with the same settings.
    missing_as_empty:
        Score a missing prediction file as an empty prediction (recorded as a warning) instead of failing it.
    resample:
        Resample a prediction on another grid (shape, spacing, origin or direction beyond QC's tolerances)
        into the ground truth's physical space with nearest neighbour through the affines (a warning is
        recorded) instead of failing it; overrides every dataset's ``geometry:``.
    ignore_affine:
        Score a same-shape prediction voxel by voxel whatever its header says (a warning is recorded), for
        data known to carry wrong headers; overrides every dataset's ``geometry:``.
    """
    if options is None:
        options = EvaluationOptions.from_dict(project.raw.get("evaluate") if project.raw else None)
    settings = {"missing_as_empty": missing_as_empty, "resample": resample,
                **({"ignore_affine": True} if ignore_affine else {})}  # absent when off: old runs still resume
    ohash = project.settings_hash(options=options.to_dict(), **settings)
    datasets = [ds.name for ds in project.datasets]
    with ResultsStore(out_dir) as store:
        done = set() if force else store.completed("metrics", "evaluate", ohash, KEY)
        jobs, skipped = build_jobs(project, options, done, missing_as_empty, resample, ignore_affine)
        run_id = store.start_run("evaluate", ohash, {"project": project.raw, "options": options.to_dict(),
                                                      **settings}, argv)
        n_models = sum(len(j.predictions) for j in jobs)
        bar = progress_bar(progress)
        status = "ok"
        try:
            with bar:
                task = bar.add_task("Scoring case-models", total=n_models)
                for res in run_jobs(evaluate_case, jobs, workers, scheduler, executor):
                    _write_case(store, res, run_id)
                    bar.advance(task, len(res.models))
        except BaseException:
            status = "interrupted"
            raise
        finally:
            summary = _summary_from_store(store, datasets)
            store.finish_run(run_id, status, {"case_models": n_models, "skipped": len(skipped),
                                              "summary": summary.to_dict(orient="records")})
        metrics = store.query("SELECT dataset, \"case\", model, region, metric, value FROM metrics "
                              "ORDER BY dataset, \"case\", model, region, metric")
        lesions = store.query("SELECT * EXCLUDE (run_id) FROM lesions ORDER BY dataset, \"case\", model, region, "
                              "source, lesion_id")
        errors = store.query("SELECT * EXCLUDE (run_id) FROM errors WHERE step = 'evaluate' "
                             "ORDER BY dataset, \"case\", model")
    return EvaluateResult(run_id, metrics, lesions, errors, summary, skipped)


def _write_case(store: ResultsStore, res: CaseOutput, run_id: str) -> None:
    keys = pd.DataFrame([(res.dataset, res.case, m) for m in res.models], columns=KEY)
    metrics = pd.DataFrame(res.metrics, columns=METRIC_COLUMNS)
    metrics["run_id"] = run_id
    lesions = pd.DataFrame(res.lesions)
    if len(lesions):
        lesions["run_id"] = run_id
    errors = pd.DataFrame([{"step": "evaluate", "dataset": res.dataset, "case": res.case, **e, "run_id": run_id}
                           for e in res.errors])
    store.replace_keyed({"metrics": metrics, "lesions": lesions, "errors": errors}, keys, step="evaluate")


def _summary_from_store(store: ResultsStore, datasets: Iterable[str]) -> pd.DataFrame:
    """Per dataset/model/region: n case-models, mean Dice and HD95 with their counts of undefined values."""
    names = list(datasets)
    if not names:
        return pd.DataFrame()
    ph = ", ".join("?" * len(names))
    return store.query(
        f"""SELECT dataset, model, region, count(DISTINCT "case") AS n,
                   avg(value) FILTER (WHERE metric = 'dice' AND NOT isnan(value)) AS dice_mean,
                   count(*) FILTER (WHERE metric = 'dice' AND isnan(value)) AS dice_undefined,
                   avg(value) FILTER (WHERE metric = 'hd95' AND NOT isnan(value) AND NOT isinf(value)) AS hd95_mean,
                   count(*) FILTER (WHERE metric = 'hd95' AND (isnan(value) OR isinf(value))) AS hd95_undefined,
                   sum(value) FILTER (WHERE metric = 'gt_empty') AS gt_empty
            FROM metrics WHERE dataset IN ({ph}) AND region <> 'confusion' GROUP BY dataset, model, region
            ORDER BY dataset, model, region""", names)
