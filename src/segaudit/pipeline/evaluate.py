"""The ``evaluate`` step: score every (dataset, case, model) of a project and store long metric rows.

:func:`evaluate_project` is the Python API behind ``segaudit evaluate``. Work is split per case (the ground
truth is read once and scored against every model's prediction). Each finished case is written to the store at
once, in one transaction (``metrics``, ``lesions``, its ``errors`` rows and the fingerprints of the files it read),
so an interrupted run keeps what it finished and a re-run skips case-models already scored with the same settings
and unchanged files (``force`` re-scores them); a case-model whose files changed is re-scored, and the rows of
cases gone from disk are dropped (:mod:`segaudit.pipeline.resume`).

A broken or missing file fails only its own case-model: the reason is stored in ``errors`` (with the path) and
the run goes on. Parallelism: worker processes, a local Dask cluster, or an existing Dask scheduler; the rows
are identical whichever is used (they are sorted before they are compared or exported).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from segaudit.base.types import Executor, Severity
from segaudit.dataset.discover import discover
from segaudit.dataset.project import DatasetConfig, ProjectConfig
from segaudit.errors import failure_message
from segaudit.io.geometry import GridTolerance, align_to, format_vector, read_geometry
from segaudit.io.masks import read_mask, read_probability, threshold_probability
from segaudit.metrics.evaluate import EvaluationOptions, evaluate_pair, instance_region
from segaudit.metrics.policy import image_diagonal
from segaudit.metrics.units import length_unit, metric_unit
from segaudit.pipeline.parallel import run_step
from segaudit.pipeline.resume import case_inputs, inputs_frame, plan_resume, run_recorded
from segaudit.store.store import ResultsStore

KEY = ["dataset", "case", "model"]
#: The tables whose rows the evaluate step owns (per case-model; ``metrics`` shared with agree, by run).
STEP_TABLES = ("metrics", "lesions", "errors", "inputs")
METRIC_COLUMNS = ["dataset", "case", "model", "region", "metric", "value", "unit"]


@dataclass(frozen=True)
class DatasetGrid:
    """What one dataset's ground-truth grids share, computed before scoring.

    Attributes
    ----------
    dataset:
        Dataset name.
    length_unit:
        ``'mm'`` when every ground truth has a physical spacing (NIfTI, or ``spacing`` declared in the
        project), else ``'px'``.
    penalty:
        The one distance (in ``length_unit``) given to hd/hd95/assd/masd when exactly one mask is empty, for
        every case of the dataset: the declared ``evaluate: {penalty: ...}``, else the largest ground-truth
        image diagonal ``sqrt(sum((shape * spacing) ** 2))`` of the dataset. ``None`` when no ground truth
        could be read (each image then falls back to its own diagonal).
    source:
        How the penalty was chosen, in words (printed by the CLI and the report).
    sizes:
        Distinct ground-truth shapes seen (a mean over several sizes needs the common penalty).
    """

    dataset: str
    length_unit: str
    penalty: float | None
    source: str
    sizes: tuple[tuple[int, ...], ...] = ()


def dataset_grid(ds: DatasetConfig, gt_paths: Iterable[tuple[str, str]], declared: float | None) -> DatasetGrid:
    """The :class:`DatasetGrid` of a dataset from its ground-truth file headers (no voxel data read).

    Parameters
    ----------
    ds:
        The dataset (its declared ``spacing`` makes the grid physical, in mm per pixel).
    gt_paths:
        (case, path) of each existing ground-truth file; unreadable headers are skipped here (the case fails
        with its reason when it is scored).
    declared:
        The project's penalty (``evaluate: {penalty: ...}``), or None to use the largest diagonal.
    """
    best: tuple[float, str, tuple[int, ...]] | None = None
    physical = True
    sizes: set[tuple[int, ...]] = set()
    for case, path in gt_paths:
        try:
            geo = read_geometry(path)
        except Exception:  # noqa: BLE001 - reported when the case itself is scored
            continue
        spacing = ds.spacing if ds.spacing is not None and len(ds.spacing) == len(geo.shape) else geo.spacing
        physical &= geo.physical or ds.spacing is not None
        sizes.add(tuple(geo.shape))
        diag = image_diagonal(geo.shape, spacing)
        if best is None or diag > best[0]:
            best = (diag, case, tuple(geo.shape))
    unit = length_unit(physical and best is not None)
    if declared is not None:
        return DatasetGrid(ds.name, unit, float(declared), "declared in the project (evaluate: penalty)",
                           tuple(sorted(sizes)))
    if best is None:
        return DatasetGrid(ds.name, unit, None, "no readable ground truth: each image's own diagonal")
    diag, case, shape = best
    shape_txt = "×".join(str(n) for n in shape)
    return DatasetGrid(ds.name, unit, diag, f"the largest image diagonal of the dataset: case {case}, {shape_txt}",
                       tuple(sorted(sizes)))


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
    grid: DatasetGrid | None = None
    ignore_affine: bool = False
    tolerance: GridTolerance = field(default_factory=GridTolerance)
    #: (role, key, path) of every file the job reads, fingerprinted before they are read (see pipeline.resume).
    inputs: tuple[tuple[str, str, str], ...] = ()
    fingerprint: str = "edge"

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
    metrics: list[tuple] = field(default_factory=list)  # dataset, case, model, region, metric, value, unit
    lesions: list[dict] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)  # model, path, message, severity
    inputs: list[dict] = field(default_factory=list)  # role, key, path and the file's fingerprint


#: What :attr:`EvaluateResult.metrics`, ``lesions`` and ``errors`` read from the store (sorted as before).
RESULT_READERS = {
    "metrics": lambda store: store.metrics().drop(columns="unit"),
    "lesions": lambda store: store.lesions(),
    "errors": lambda store: store.errors("evaluate"),
    "scored": lambda store: store.scored_keys(),
}


@dataclass
class EvaluateResult:
    """Outcome of an evaluation run.

    The stored rows (``metrics``, ``lesions``, ``errors``) are not held in memory: each is read from the
    run's store the first time it is asked for (then kept), so a run over thousands of cases returns counts
    and a summary, and only a caller that wants every row (hundreds of thousands at 3000 cases) pays for it.
    They are the store's rows when first read (a later run into the same store is seen by a result not yet read).
    """

    run_id: str
    #: Run directory of the store the rows are read from.
    store_dir: Path
    summary: pd.DataFrame
    skipped: list[tuple[str, str, str]] = field(default_factory=list)
    grids: dict[str, DatasetGrid] = field(default_factory=dict)
    #: One sentence per dataset that had nothing to score, saying why (see :func:`nothing_to_score`).
    idle: list[str] = field(default_factory=list)
    #: Case-models scored before with these settings, re-scored because their files changed (key -> why).
    changed: dict[tuple, str] = field(default_factory=dict)
    #: (dataset, case) whose rows were dropped because the case is no longer on disk.
    dropped: list[tuple[str, str]] = field(default_factory=list)
    #: What the run says about resumption (re-scored, dropped, datasets left alone), one sentence each.
    resume_notes: list[str] = field(default_factory=list)
    _rows: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False, compare=False)

    def _read(self, what: str) -> pd.DataFrame:
        if what not in self._rows:
            with ResultsStore(self.store_dir, read_only=True) as store:
                self._rows[what] = RESULT_READERS[what](store)
        return self._rows[what]

    @property
    def metrics(self) -> pd.DataFrame:
        """Every metric row of the store (dataset, case, model, region, metric, value), sorted; read lazily."""
        return self._read("metrics")

    @property
    def lesions(self) -> pd.DataFrame:
        """Every lesion row of the store (without ``run_id``), sorted; read lazily."""
        return self._read("lesions")

    @property
    def errors(self) -> pd.DataFrame:
        """The store's ``evaluate`` error and warning rows (without ``run_id``), sorted; read lazily."""
        return self._read("errors")

    @property
    def scored(self) -> pd.DataFrame:
        """Distinct (dataset, case, model) with metric rows in the store: what a caller needs to count jobs."""
        return self._read("scored")


def nothing_to_score(project: ProjectConfig) -> list[str]:
    """Why ``evaluate`` skips a dataset: no ground truth or no predictions declared (one sentence each)."""
    out = []
    for ds in project.datasets:
        if not ds.ground_truth and ds.predictions:
            out.append(f"{ds.name}: no ground truth declared, so there is nothing to score the predictions "
                       "against; compare the models with each other without ground truth (segaudit agree)")
        elif not ds.predictions and ds.ground_truth:
            out.append(f"{ds.name}: no predictions declared (add predictions: with a {{model}} template); "
                       "scan and features still apply")
        elif not ds.predictions:
            out.append(f"{ds.name}: neither ground truth nor predictions declared (images only: scan and "
                       "features apply)")
    return out


def evaluate_case(job: CaseJob) -> CaseOutput:
    """Score one case against every model of the job; never raises (failures become error rows)."""
    ds, opts = job.dataset, job.options
    if job.grid is not None and job.grid.penalty is not None:
        # One penalty for the whole dataset, so means over images of different sizes stay comparable.
        opts = opts.with_changes(policy=replace(opts.policy, penalty=job.grid.penalty))
    out = CaseOutput(ds.name, job.case, [m for m, _, _ in job.predictions])

    def fail(model: str, path: str, message: str, severity: Severity = "error") -> None:
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
    unit = length_unit(gt.physical or ds.spacing is not None)
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
            only = ds.scored_region(model)
            if enc.kind == "instances":
                if inst is None:
                    fail(model, path, f"{path}: instance-map prediction but no ground-truth instance map for this "
                                      "case (declare 'instances'); PQ, AJI and AJI+ not computed", "warning")
                res = _evaluate_instance_prediction(gt.array, pred_arr, inst, spacing, labels, regions, opts)
            elif only is not None:  # a region mask on one side: score that region only
                res = evaluate_pair(region_only(gt.array, ds, only, ds.ground_truth_region is not None),
                                    region_only(pred_arr, ds, only, ds.prediction_region(model) is not None),
                                    spacing, {only: 1}, {}, opts, probability=prob, gt_instances=inst)
            else:
                res = evaluate_pair(gt.array, pred_arr, spacing, labels, regions, opts, probability=prob,
                                    gt_instances=inst)
        except Exception as exc:  # noqa: BLE001
            msg = failure_message(exc)
            fail(model, path, msg if path in msg else f"{path}: {msg}")
            continue
        for note in res.notes:
            # A note about the ground truth's values names the ground-truth file, not the prediction.
            about = job.ground_truth if note.startswith("ground truth") else path
            fail(model, about, f"{about}: {note}", "warning")
        out.metrics += [(ds.name, job.case, model, r, m, v, metric_unit(m, unit, gt.ndim, r))
                        for r, m, v in res.rows]
        for region, les in res.lesions:
            out.lesions.append({
                "dataset": ds.name, "case": job.case, "model": model, "region": region, "source": les.source,
                "lesion_id": les.lesion_id, "volume": les.volume, "centroid": format_vector(les.centroid),
                "bbox": format_vector(les.bbox), "matched": les.matched, "dice": les.dice, "hd95": les.hd95,
                "counted": les.counted})
    return out


def evaluate_case_recorded(job: CaseJob) -> CaseOutput:
    """:func:`evaluate_case`, with the fingerprints of the job's files taken just before they are read."""
    return run_recorded(evaluate_case, job)


def region_only(array: np.ndarray, ds: DatasetConfig, region: str, is_region_mask: bool) -> np.ndarray:
    """A 0/1 mask of one region: any non-zero voxel of a region mask file, else the region's labels.

    Used when the project declares ``ground_truth_region`` or ``prediction_region``: one side (or both) is a
    binary mask of a region (whole tumour...), so only that region can be compared.
    """
    if is_region_mask:
        return (array != 0).astype(np.uint8)
    return np.isin(array, ds.region_values(region)).astype(np.uint8)


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


#: Roles of the files an evaluate job reads (its fingerprinted inputs).
INPUT_ROLES = ("ground_truth", "instances", "prediction")


def build_jobs(project: ProjectConfig, options: EvaluationOptions, done: set[tuple[str, str, str]] | None = None,
               missing_as_empty: bool = False, resample: bool = False,
               grids: dict[str, DatasetGrid] | None = None, ignore_affine: bool = False,
               files: pd.DataFrame | None = None, fingerprint: str = "edge") -> tuple[list[CaseJob], list[tuple]]:
    """One job per case with at least one model left to score; also the case-models skipped as done.

    ``grids`` (from :func:`dataset_grids`) gives each dataset's unit and common empty-mask penalty; computed
    here when not given. ``files``: discovery's files frame (discovered here when not given); ``fingerprint``:
    the digest mode of the jobs' input fingerprints.
    """
    done = done or set()
    if files is None:
        files = discover(project).files_frame()
    inputs = case_inputs(files, INPUT_ROLES)
    tolerance = GridTolerance.from_qc(project.raw.get("qc") if project.raw else None)
    jobs: list[CaseJob] = []
    skipped: list[tuple] = []
    grids = grids if grids is not None else dataset_grids(project, options, files)
    for ds in project.datasets:
        if not ds.predictions or not ds.ground_truth:
            continue
        for case, rows in _case_files(files, ds.name):
            gt_rows = [r for r in rows if r[0] == "ground_truth"]
            inst_rows = [r for r in rows if r[0] == "instances" and r[3]]
            preds = []
            for _, key, path, exists in sorted((r for r in rows if r[0] == "prediction"), key=lambda r: r[1]):
                if (ds.name, case, key) in done:
                    skipped.append((ds.name, case, key))
                    continue
                preds.append((key, path, exists))
            if not preds:
                continue
            gt_path = gt_rows[0][2] if gt_rows else None
            gt_exists = gt_rows[0][3] if gt_rows else False
            models = {m for m, _, _ in preds}
            reads = tuple(i for i in inputs.get((ds.name, case), []) if i[0] != "prediction" or i[1] in models)
            jobs.append(CaseJob(ds, case, gt_path, gt_exists, inst_rows[0][2] if inst_rows else None, preds,
                                options, missing_as_empty, resample, grids.get(ds.name), ignore_affine, tolerance,
                                reads, fingerprint))
    return jobs, skipped


def _case_files(files: pd.DataFrame, dataset: str) -> list[tuple[str, list[tuple[str, str, str, bool]]]]:
    """(case, [(role, key, path, exists), ...]) of one dataset in case order, rows in the frame's order.

    Plain tuples from one pass over the columns: a pandas group per case (filtered three times, iterated
    row by row) cost milliseconds per case, most of a no-op re-run at thousands of cases.
    """
    f = files[files.dataset == dataset]
    by: dict[str, list[tuple[str, str, str, bool]]] = {}
    for case, role, key, path, exists in zip(f.case, f.role, f.key, f.path, f.exists.astype(bool), strict=True):
        by.setdefault(str(case), []).append((role, key, path, bool(exists)))
    return sorted(by.items())


def dataset_grids(project: ProjectConfig, options: EvaluationOptions,
                  files: pd.DataFrame | None = None) -> dict[str, DatasetGrid]:
    """:func:`dataset_grid` of every dataset with ground truth and predictions (``files``: discovery's frame)."""
    if files is None:
        files = discover(project).files_frame()
    out = {}
    for ds in project.datasets:
        if not ds.predictions or not ds.ground_truth:
            continue
        f = files[(files.dataset == ds.name) & (files.role == "ground_truth") & files.exists.astype(bool)]
        out[ds.name] = dataset_grid(ds, zip(f.case.astype(str), f.path, strict=True), options.policy.penalty)
    return out


def evaluate_project(project: ProjectConfig, out_dir: str | Path, options: EvaluationOptions | None = None,
                     workers: int = 1, scheduler: str | None = None, force: bool = False, progress: bool = True,
                     missing_as_empty: bool = False, resample: bool = False, executor: Executor = "auto",
                     argv: list[str] | None = None, ignore_affine: bool = False,
                     fingerprint: str = "edge") -> EvaluateResult:
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
    fingerprint:
        How the files of a case-model are recognised on a re-run (:mod:`segaudit.pipeline.resume`): ``"edge"``
        (size, modification time, a hash of the first and last 64 KiB) or ``"full"`` (a hash of every byte).
        A case-model whose files changed is re-scored; rows of cases gone from disk are dropped.
    """
    if options is None:
        options = EvaluationOptions.from_dict(project.raw.get("evaluate") if project.raw else None)
    settings = {"missing_as_empty": missing_as_empty, "resample": resample,
                **({"ignore_affine": True} if ignore_affine else {})}  # absent when off: old runs still resume
    files = discover(project).files_frame()
    grids = dataset_grids(project, options, files)
    penalties = {name: {"penalty": g.penalty, "unit": g.length_unit, "source": g.source} for name, g in grids.items()}
    # The data-derived penalties are part of the settings: new images of another size re-score the dataset.
    ohash = project.settings_hash(options=options.to_dict(), penalties=penalties, **settings)
    datasets = [ds.name for ds in project.datasets]
    with ResultsStore(out_dir) as store:
        done = set() if force else store.completed("metrics", "evaluate", ohash, KEY)
        # A case-model reads the case's ground truth (and instance map) and its own model's prediction.
        plan = plan_resume(store, "evaluate", KEY, STEP_TABLES, done, files, INPUT_ROLES, datasets, fingerprint,
                           reads=lambda k, ins: [i for i in ins if i[0] != "prediction" or i[1] == k[2]])
        done -= set(plan.changed)
        jobs, skipped = build_jobs(project, options, done, missing_as_empty, resample, grids, ignore_affine, files,
                                   fingerprint)
        n_models = sum(len(j.predictions) for j in jobs)
        summary = pd.DataFrame()

        def run_summary() -> dict:
            nonlocal summary
            summary = with_units(store, _summary_from_store(store, datasets, options.hd_name), options.hd_name)
            return {"case_models": n_models, "skipped": len(skipped), **plan.counts(),
                    "summary": summary.to_dict(orient="records"),
                    "empty_distance": penalties}

        run_id = run_step(store, "evaluate", ohash, {"project": project.raw, "options": options.to_dict(), **settings},
                          argv, evaluate_case_recorded, jobs, _write_case, "Scoring case-models", total=n_models,
                          advance=lambda res: len(res.models), summary=run_summary,
                          start=lambda rid: plan.drop(store),
                          progress=progress, workers=workers, scheduler=scheduler, executor=executor)
    # The rows stay in the store (read lazily by the result): no all-rows frames at the end of a large run.
    return EvaluateResult(run_id, Path(out_dir), summary, skipped, grids, nothing_to_score(project),
                          plan.changed, plan.dropped, plan.lines("case-model(s)", "re-scored"))


def _write_case(store: ResultsStore, res: CaseOutput, run_id: str) -> None:
    keys = pd.DataFrame([(res.dataset, res.case, m) for m in res.models], columns=KEY)
    metrics = pd.DataFrame(res.metrics, columns=METRIC_COLUMNS)
    metrics["run_id"] = run_id
    lesions = pd.DataFrame(res.lesions)
    if len(lesions):
        lesions["run_id"] = run_id
    errors = pd.DataFrame([{"step": "evaluate", "dataset": res.dataset, "case": res.case, **e, "run_id": run_id}
                           for e in res.errors])
    # Each case-model records the files it read: the ground truth (and instance map) and its own prediction.
    inputs = inputs_frame([{"step": "evaluate", "dataset": res.dataset, "case": res.case, "model": m, **i,
                            "run_id": run_id}
                           for m in res.models for i in res.inputs if i["role"] != "prediction" or i["key"] == m])
    store.replace_keyed({"metrics": metrics, "lesions": lesions, "errors": errors, "inputs": inputs}, keys,
                        step="evaluate")


def _summary_from_store(store: ResultsStore, datasets: Iterable[str], hd: str = "hd95") -> pd.DataFrame:
    """Per dataset/model/region: n case-models, mean Dice and robust HD with their counts of undefined values.

    ``hd`` is the stored name of the robust HD (``EvaluationOptions.hd_name``: ``hd95``, ``hd90``, ...); the
    columns are named after it (``hd90_mean``, ``hd90_undefined``).
    """
    return store.metric_summary(list(datasets), hd)


def with_units(store: ResultsStore, summary: pd.DataFrame, hd: str = "hd95") -> pd.DataFrame:
    """``summary`` with an ``<hd>_unit`` column after ``<hd>_mean``: the stored unit of each dataset's robust HD.

    ``mm`` on physical grids, ``px`` for photos without a declared spacing; ``''`` where the store holds no
    unit (rows written before units were recorded). ``hd`` as in :func:`_summary_from_store`.
    """
    mean, unit = f"{hd}_mean", f"{hd}_unit"
    if summary.empty or mean not in summary.columns:
        return summary
    units = store.metric_units(hd, unit)
    out = summary.merge(units, on="dataset", how="left")
    out[unit] = out[unit].fillna("")
    cols = list(summary.columns)
    cols.insert(cols.index(mean) + 1, unit)
    return out[cols]
