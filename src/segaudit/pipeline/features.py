"""The ``features`` step: image, texture, spatial, lesion and multimodal features of every case, stored long.

:func:`extract_project` is the Python API behind ``segaudit features``. One job per case reads each file once
(sequences, ground truth, instance map, every model's prediction) and calls
:func:`segaudit.features.case.case_features`. Each finished case is written at once, in one transaction
(``features`` rows and its ``errors`` rows of step ``features``), so an interrupted run keeps what it finished
and a re-run skips cases already extracted with the same settings and unchanged files (``force`` re-extracts
them); a case whose files changed is re-extracted and the rows of cases gone from disk are dropped
(:mod:`segaudit.pipeline.resume`).

Bad input never stops the run and never silently drops a row: a missing or unreadable sequence is recorded
(warning) and the case's other features are still computed; a ground truth whose grid (shape, spacing, origin or
direction, QC's tolerances) differs from the images is recorded (error naming both geometries) and only its
lesion features are left out, unless the dataset's ``geometry:`` opts in (:mod:`segaudit.io.geometry`);
an RGB image is split into its channels (``<sequence>.red`` ...); NaN voxels, constant images and empty labels
are recorded as warnings.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from segaudit.base.types import Executor, Severity, Spacing
from segaudit.dataset.discover import discover
from segaudit.dataset.project import DatasetConfig, ProjectConfig
from segaudit.errors import failure_message
from segaudit.features.case import FeatureOptions, case_features
from segaudit.features.lesion import instance_features
from segaudit.io.geometry import GridTolerance, align_to
from segaudit.io.masks import read_mask, read_probability, threshold_probability
from segaudit.io.readers import Image, read_image
from segaudit.pipeline.parallel import run_step
from segaudit.pipeline.resume import case_inputs, inputs_frame, plan_resume, run_recorded
from segaudit.store.store import ResultsStore

FEATURE_COLUMNS = ["dataset", "case", "model", "source", "group", "feature", "value"]
#: Roles of the files a features job reads (its fingerprinted inputs) and the tables the step owns.
INPUT_ROLES = ("image", "ground_truth", "instances", "prediction")
STEP_TABLES = ("features", "errors", "inputs")
_CHANNELS = ("red", "green", "blue")


@dataclass
class FeatureJob:
    """One case: its files (path, exists) by role, and the settings."""

    dataset: DatasetConfig
    case: str
    images: list[tuple[str, str, bool]]  # sequence, path, exists
    ground_truth: tuple[str, bool] | None
    instances: tuple[str, bool] | None
    predictions: list[tuple[str, str, bool]]  # model, path, exists
    options: FeatureOptions
    geometry: str = "strict"  # see segaudit.io.geometry.GEOMETRY_MODES
    tolerance: GridTolerance = field(default_factory=GridTolerance)
    #: (role, key, path) of every file the job reads, fingerprinted before they are read (see pipeline.resume).
    inputs: tuple[tuple[str, str, str], ...] = ()
    fingerprint: str = "edge"


@dataclass
class FeatureOutput:
    """What extracting one case produced (plain rows, cheap to send between processes)."""

    dataset: str
    case: str
    rows: list[tuple] = field(default_factory=list)  # model, source, group, feature, value
    errors: list[dict] = field(default_factory=list)  # model, path, message, severity
    inputs: list[dict] = field(default_factory=list)  # role, key, path and the file's fingerprint


def extract_case(job: FeatureJob) -> FeatureOutput:
    """All features of one case; never raises (problems become error or warning rows naming the file)."""
    ds, opts = job.dataset, job.options
    out = FeatureOutput(ds.name, job.case)

    def note(path: str, message: str, severity: Severity = "warning", model: str = "") -> None:
        out.errors.append({"model": model, "path": path, "message": message, "severity": severity})

    images: dict[str, np.ndarray] = {}
    spacing: Spacing | None = ds.spacing
    orientation = ""
    ref_path = ""
    ref_img: Image | None = None  # the first readable sequence: the grid every mask is used on
    for seq, path, exists in job.images:
        if not exists:
            note(path, f"{path}: sequence {seq} not found; its features are missing, the others are computed")
            continue
        try:
            img = read_image(path)
        except Exception as exc:  # noqa: BLE001 - any failure is this file's, recorded with its reason
            note(path, f"{path}: sequence {seq} unreadable ({failure_message(exc)}); its features are missing", "error")
            continue
        arrays = {seq: img.array}
        if img.is_color or img.array.ndim == len(img.spacing) + 1:
            chans = [img.array[..., c] for c in range(img.array.shape[-1])]
            if all(np.array_equal(chans[0], c) for c in chans[1:]):
                arrays = {seq: chans[0]}  # a grey image saved as RGB (JPEG slices): one channel says it all
            else:
                # Colour channels are named after their colour; the volumes of a 4D file by their index.
                arrays = {f"{seq}.{_CHANNELS[c] if img.is_color and c < 3 else f'volume{c}'}": a
                          for c, a in enumerate(chans)}
                what = "colour image; features are computed per channel" if img.is_color else \
                    f"{img.array.ndim}D image (shape {tuple(img.array.shape)}); features are computed per volume"
                note(path, f"{path}: {what} ({', '.join(arrays)})", "info")
        first_shape = next(iter(images.values())).shape if images else None
        if first_shape is not None and img.shape != first_shape:
            note(path, f"{path}: sequence {seq} has shape {img.shape}, {ref_path} has {first_shape}; "
                       "left out", "error")
            continue
        if not images:
            ref_path, ref_img = path, img
            spacing = spacing or img.spacing
            orientation = img.orientation()
        images.update(arrays)

    gt = None
    gt_img: Image | None = None
    if job.ground_truth is not None:
        path, exists = job.ground_truth
        if not exists:
            note(path, f"{path}: ground truth not found; lesion features are missing", "error")
        else:
            try:
                m = read_mask(path, ds.mask_encoding)
                gt_img = m
                shape = next(iter(images.values())).shape if images else None
                if shape is not None and m.array.shape != shape and job.geometry != "resample_nearest":
                    note(path, f"{path}: ground truth shape {m.array.shape} differs from the image shape {shape} "
                               f"({ref_path}); lesion and per-label features are missing", "error")
                else:
                    gt = _on_grid(m, ref_img, job, "ground truth", note, "lesion and per-label features are "
                                  "missing")
                    spacing = spacing or m.spacing
            except Exception as exc:  # noqa: BLE001
                note(path, f"{path}: ground truth unreadable ({failure_message(exc)}); lesion features are missing",
                     "error")

    preds: dict[str, np.ndarray] = {}
    for model, path, exists in job.predictions:
        if not exists:
            note(path, f"{path}: prediction not found; its volume and count are missing", model=model)
            continue
        try:
            enc = ds.encoding_for(model)
            if enc.kind == "probability":
                pimg = read_probability(path, enc)
                pimg.array = threshold_probability(pimg.array, enc)
            elif enc.kind == "instances":
                # An instance map has no classes: its union is the one label's mask, else it has no per-label volume.
                single = list(ds.label_map.labels.values())
                if len(single) != 1:
                    note(path, f"{path}: instance-map prediction has no classes; no per-label volume", "info", model)
                    continue
                pimg = read_mask(path, enc)
                pimg.array = (pimg.array != 0).astype(np.uint8) * np.uint8(single[0])
            else:
                pimg = read_mask(path, enc)
            # Used with the images (distances from their centre of mass), else with the ground truth.
            arr = _on_grid(pimg, ref_img or gt_img, job, "prediction", note, "its volume and count are missing",
                           model)
            if arr is not None:
                preds[model] = arr
        except Exception as exc:  # noqa: BLE001
            note(path, f"{path}: prediction unreadable ({failure_message(exc)})", "error", model)

    if spacing is None:
        first = next(iter(images.values()), gt)  # an image's or else the ground truth's dimensionality
        if first is None:
            return out
        spacing = (1.0,) * first.ndim
    labels = dict(ds.label_map.labels) or None
    regions = dict(ds.label_map.regions)
    try:
        res = case_features(images, tuple(spacing), gt, labels, regions, preds, opts, orientation)
    except Exception as exc:  # noqa: BLE001
        note(ref_path, f"{ref_path or job.case}: feature extraction failed ({failure_message(exc)})", "error")
        return out
    for n in res.notes:
        note(ref_path, f"{job.case}: {n}")
    out.rows = [(m, s, g, f, v) for m, s, g, f, v in res.rows]

    if job.instances is not None and "lesion" in opts.groups:
        path, exists = job.instances
        if exists:
            try:
                inst = read_image(path).array
                names = {v: k for k, v in (labels or {}).items()}
                per_class = instance_features(inst, tuple(spacing)[:2], gt if gt is not None and
                                              gt.shape == inst.shape else None, names)
                for cls, feats in per_class.items():
                    out.rows += [("", f"instances/{cls}", "lesion", k, float(v)) for k, v in feats.items()]
            except Exception as exc:  # noqa: BLE001
                note(path, f"{path}: instance map unusable ({failure_message(exc)})", "error")
    return out


def extract_case_recorded(job: FeatureJob) -> FeatureOutput:
    """:func:`extract_case`, with the fingerprints of the job's files taken just before they are read."""
    return run_recorded(extract_case, job)


def _on_grid(mask: Image, ref: Image | None, job: FeatureJob, what: str, note, missing: str,
             model: str = "") -> np.ndarray | None:
    """``mask``'s labels on ``ref``'s grid under the job's geometry policy (:func:`segaudit.io.geometry.align_to`).

    Differences are recorded (an error naming both geometries, saying what is ``missing``, or a warning when
    resampled / the affine ignored); returns None when the mask cannot be used. No reference: used as it is.
    """
    if ref is None:
        return mask.array
    al = align_to(mask, ref, job.geometry, what, job.tolerance, job.dataset.spacing)
    if al.severity:
        note(mask.path, al.message + (f"; {missing}" if al.array is None else ""), al.severity, model)
    return al.array


def _spec(rows: pd.DataFrame, role: str) -> tuple[str, bool] | None:
    r = rows[rows.role == role]
    return (str(r.path.iloc[0]), bool(r.exists.iloc[0])) if len(r) else None


def build_jobs(project: ProjectConfig, options: FeatureOptions, done: set[tuple[str, str]] | None = None,
               geometry: str | None = None, disc=None, fingerprint: str = "edge"
               ) -> tuple[list[FeatureJob], list[tuple[str, str]], pd.DataFrame]:
    """One job per case not yet extracted; also the cases skipped as done and the discovered cases frame.

    ``geometry`` (a :data:`~segaudit.io.geometry.GEOMETRY_MODES` value) overrides every dataset's ``geometry:``.
    ``disc``: the project's :class:`~segaudit.dataset.discover.Discovery` (made here when not given);
    ``fingerprint``: the digest mode of the jobs' input fingerprints.
    """
    done = done or set()
    tolerance = GridTolerance.from_qc(project.raw.get("qc") if project.raw else None)
    disc = disc if disc is not None else discover(project)
    files = disc.files_frame()
    inputs = case_inputs(files, INPUT_ROLES)
    jobs: list[FeatureJob] = []
    skipped: list[tuple[str, str]] = []
    for ds in project.datasets:
        f = files[files.dataset == ds.name]
        for case, rows in f.groupby("case", sort=True):
            if (ds.name, str(case)) in done:
                skipped.append((ds.name, str(case)))
                continue
            imgs = rows[rows.role == "image"]
            rank = {s: i for i, s in enumerate(ds.sequences)}
            imgs = imgs.iloc[np.argsort([rank.get(k, len(rank)) for k in imgs.key], kind="stable")]
            preds = rows[rows.role == "prediction"].sort_values("key")
            jobs.append(FeatureJob(ds, str(case), [(r.key or "image", r.path, bool(r.exists))
                                                   for r in imgs.itertuples()],
                                   _spec(rows, "ground_truth"), _spec(rows, "instances"),
                                   [(r.key, r.path, bool(r.exists)) for r in preds.itertuples()], options,
                                   geometry or ds.geometry, tolerance, tuple(inputs.get((ds.name, str(case)), [])),
                                   fingerprint))
    return jobs, skipped, disc.cases_frame()


@dataclass
class FeaturesResult:
    """Outcome of a features run: every stored feature row of the project's datasets, and the problems."""

    run_id: str
    features: pd.DataFrame
    errors: pd.DataFrame
    skipped: list[tuple[str, str]] = field(default_factory=list)
    #: Cases extracted before with these settings, re-extracted because their files changed (key -> why).
    changed: dict[tuple, str] = field(default_factory=dict)
    #: (dataset, case) whose rows were dropped because the case is no longer on disk.
    dropped: list[tuple[str, str]] = field(default_factory=list)
    #: What the run says about resumption, one sentence each.
    resume_notes: list[str] = field(default_factory=list)


def extract_project(project: ProjectConfig, out_dir: str | Path, options: FeatureOptions | None = None,
                    workers: int = 1, scheduler: str | None = None, force: bool = False, progress: bool = True,
                    executor: Executor = "auto", argv: list[str] | None = None, resample: bool = False,
                    ignore_affine: bool = False, fingerprint: str = "edge") -> FeaturesResult:
    """Extract the features of every case of a project into the store's ``features`` table.

    Parameters
    ----------
    project:
        The project; every dataset with images, ground truth or instance maps contributes.
    out_dir:
        Run directory of the results store.
    options:
        Default: the project's ``features:`` section, else :class:`FeatureOptions`.
    workers, scheduler, executor:
        Parallelism, as for :func:`segaudit.pipeline.evaluate.evaluate_project`.
    force:
        Re-extract cases already stored with the same settings.
    resample, ignore_affine:
        How a ground truth or prediction on another grid than the images (shape, spacing, origin, direction
        beyond QC's tolerances) is used, overriding every dataset's ``geometry:`` (see
        :mod:`segaudit.io.geometry`): resampled with nearest neighbour through the affines, or used voxel by
        voxel; by default such a mask is refused with an error row.
    fingerprint:
        ``"edge"`` or ``"full"``: how a case's files are recognised on a re-run, as for
        :func:`segaudit.pipeline.evaluate.evaluate_project`.
    """
    if options is None:
        options = FeatureOptions.from_dict(project.raw.get("features") if project.raw else None)
    geometry = "resample_nearest" if resample else "ignore_affine" if ignore_affine else None
    fhash = project.settings_hash(options=options.to_dict(), **({"geometry": geometry} if geometry else {}))
    names = [ds.name for ds in project.datasets]
    disc = discover(project)
    files = disc.files_frame()
    with ResultsStore(out_dir) as store:
        done = set() if force else store.completed("features", "features", fhash, ["dataset", "case"])
        plan = plan_resume(store, "features", ["dataset", "case"], STEP_TABLES, done, files, INPUT_ROLES, names,
                           fingerprint)
        done -= set(plan.changed)
        jobs, skipped, cases = build_jobs(project, options, done, geometry, disc, fingerprint)

        def start(rid: str) -> None:
            plan.drop(store)
            _ensure_cases(store, cases, rid)

        run_id = run_step(store, "features", fhash, {"project": project.raw, "options": options.to_dict()}, argv,
                          extract_case_recorded, jobs, _write_case, "Extracting features",
                          summary=lambda: {"cases": len(jobs), "skipped": len(skipped), **plan.counts()},
                          start=start, progress=progress, workers=workers, scheduler=scheduler, executor=executor)
        feats = store.features(names)
        errors = store.errors("features", names)
    return FeaturesResult(run_id, feats, errors, skipped, plan.changed, plan.dropped,
                          plan.lines("case(s)", "re-extracted"))


def _ensure_cases(store: ResultsStore, cases: pd.DataFrame, run_id: str) -> None:
    """Write the ``cases`` rows (subject, timepoint, metadata) of datasets that ``scan`` has not stored yet."""
    if cases.empty:
        return
    have = set(store.cases().dataset)
    new = cases[~cases.dataset.isin(have)].copy()
    if new.empty:
        return
    new["metadata"] = new["metadata"].map(lambda m: json.dumps(m, default=str))
    new["run_id"] = run_id
    store.replace("cases", new, {"dataset": sorted(new.dataset.unique())})


def _write_case(store: ResultsStore, res: FeatureOutput, run_id: str) -> None:
    keys = pd.DataFrame([(res.dataset, res.case)], columns=["dataset", "case"])
    feats = pd.DataFrame([(res.dataset, res.case, *r) for r in res.rows], columns=FEATURE_COLUMNS)
    feats["run_id"] = run_id
    errors = pd.DataFrame([{"step": "features", "dataset": res.dataset, "case": res.case, **e, "run_id": run_id}
                           for e in res.errors])
    inputs = inputs_frame([{"step": "features", "dataset": res.dataset, "case": res.case, "model": "", **i,
                            "run_id": run_id} for i in res.inputs])
    store.replace_keyed({"features": feats, "errors": errors, "inputs": inputs}, keys, step="features")


def features_table(out_dir: str | Path, wide: bool = False, metadata: bool = True) -> pd.DataFrame:
    """The stored features, long or wide (one row per case), with the cases' metadata columns beside them.

    Wide columns are named ``<group>:<source>:<feature>`` (prefixed ``<model>:`` for prediction features).
    Metadata columns (from the project's metadata table, plus ``subject`` and ``timepoint``) keep their names.
    """
    with ResultsStore(out_dir, read_only=True) as store:
        feats = store.features()
        cases = store.cases(ordered=False) if metadata else pd.DataFrame()
    if wide:
        model = feats.model.fillna("")
        feats = feats.assign(column=np.where(model == "", "", model + ":") + feats.group + ":" + feats.source
                             + ":" + feats.feature)
        feats = feats.pivot_table(index=["dataset", "case"], columns="column", values="value",
                                  aggfunc="first", dropna=False).reset_index()
        feats.columns.name = None
    if metadata and not cases.empty:
        meta = pd.json_normalize([json.loads(m) if isinstance(m, str) and m else {} for m in cases.metadata])
        meta.index = cases.index
        cases = pd.concat([cases.drop(columns="metadata"), meta], axis=1).drop_duplicates(["dataset", "case"])
        feats = feats.merge(cases, on=["dataset", "case"], how="left")
    return feats
