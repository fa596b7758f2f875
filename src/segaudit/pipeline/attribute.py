"""The ``attribute`` step: which MRI sequences LiteMedSAM's answer relies on, per case (exact Shapley values).

For every case of a multi-sequence dataset with ground truth, the key slice of the foreground (largest area
along the last array axis) is built as a 3-channel image from up to three chosen sequences; every subset of them is
kept in turn (the others replaced by ``fill``), the model gets one box around the slice's ground truth, and the
Dice of each subset, each sequence's exact Shapley value and its drop-one loss are stored in the ``attributions``
table (:func:`segaudit.models.attribution.sequence_slice_attribution`). A re-run skips cases done with the same
settings whose files are unchanged (:mod:`segaudit.pipeline.resume`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from segaudit.base.types import Executor
from segaudit.dataset.discover import discover
from segaudit.dataset.project import DatasetConfig, ProjectConfig
from segaudit.errors import SegauditError, failure_message
from segaudit.io.masks import MaskEncoding, read_mask
from segaudit.io.readers import read_image
from segaudit.pipeline.parallel import run_step
from segaudit.pipeline.prompt import _region_name
from segaudit.pipeline.resume import CaseRows, case_inputs, fingerprint_inputs, stale_jobs
from segaudit.store.store import ResultsStore

__all__ = ["DEFAULT_SEQUENCES", "AttributeResult", "attribute_case", "attribute_project", "chosen_sequences"]

STEP = "attribute"
#: Sequences preferred for the three channels (BraTS names), in this order, when present.
DEFAULT_SEQUENCES = ("t1ce", "t2", "flair")
MODEL = "litemedsam/box"


def chosen_sequences(ds: DatasetConfig, wanted: tuple[str, ...] | None = None) -> list[str]:
    """The (up to three) sequences of a dataset that make the channels.

    ``wanted`` if given, else the defaults present, else its first three.
    """
    if wanted:
        missing = [s for s in wanted if s not in ds.sequences]
        if missing:
            raise SegauditError(f"{ds.name}: no sequence(s) {', '.join(missing)} (has {', '.join(ds.sequences)})")
        if len(wanted) > 3:
            raise SegauditError("at most three sequences make a 3-channel slice")
        return list(wanted)
    have = [s for s in DEFAULT_SEQUENCES if s in ds.sequences]
    return have if len(have) >= 2 else ds.sequences[:3]


@dataclass
class AttributeJob:
    dataset: str
    case: str
    sequences: dict[str, str]  # sequence -> path
    ground_truth: str
    mask_encoding: MaskEncoding
    region: str
    fill: str
    cache_dir: str | None
    inputs: tuple[tuple[str, str, str], ...] = ()


@dataclass
class AttributeOutput(CaseRows):
    """One case of the live attribution step (rows of ``attributions``)."""


_MODEL: dict[str, object] = {}


def attribute_case(job: AttributeJob) -> AttributeOutput:
    """Attribution of one case (module docstring); never raises (a failure is an error row)."""
    from segaudit.models.attribution import sequence_slice_attribution
    from segaudit.models.propagate import key_slice

    out = AttributeOutput(job.dataset, job.case)
    out.inputs = fingerprint_inputs(job.inputs)
    try:
        if str(job.cache_dir) not in _MODEL:
            from segaudit.models.litemedsam import LiteMedSAM

            _MODEL[str(job.cache_dir)] = LiteMedSAM(cache_dir=job.cache_dir)
        model = _MODEL[str(job.cache_dir)]
        gt = np.asarray(read_mask(job.ground_truth, job.mask_encoding).array) != 0
        if gt.ndim != 3:
            raise SegauditError(f"{job.ground_truth}: a {gt.ndim}D mask; attribute needs 3D volumes")
        z = key_slice(gt, axis=2)
        if z is None:
            raise SegauditError(f"{job.ground_truth}: empty ground truth, no slice to prompt")
        slices = {}
        for seq, path in job.sequences.items():
            arr = np.asarray(read_image(path).array)
            if arr.shape[:3] != gt.shape:
                raise SegauditError(f"{path}: shape {arr.shape} differs from the ground truth's {gt.shape}")
            slices[seq] = arr[:, :, z].astype(np.float32)
        scores, phi, drop = sequence_slice_attribution(model, slices, gt[:, :, z], fill=job.fill)  # type: ignore[arg-type]
        base = {"dataset": job.dataset, "case": job.case, "model": MODEL, "region": job.region, "fill": job.fill,
                "slice": int(z), "source": "live"}
        for subset, v in scores.items():
            out.rows.append({**base, "method": "subset", "sequences": "+".join(s for s in slices if s in subset),
                             "value": v})
        out.rows += [{**base, "method": "shapley", "sequences": s, "value": v} for s, v in phi.items()]
        out.rows += [{**base, "method": "drop_one", "sequences": s, "value": v} for s, v in drop.items()]
    except Exception as exc:  # noqa: BLE001 - any failure is this case's, recorded with its reason
        out.rows = []
        out.errors.append({"model": MODEL, "path": "", "severity": "error", "message": failure_message(exc)})
    return out


def _write(store: ResultsStore, res: AttributeOutput, run_id: str) -> None:
    res.write(store, "attributions", STEP, run_id)


@dataclass
class AttributeResult:
    """Run id, cases attributed and skipped, the error rows of the step, and why datasets were left out."""

    run_id: str
    attributed: int
    skipped: list[tuple[str, str]]
    errors: pd.DataFrame
    notes: list[str]


def attribute_project(project: ProjectConfig, out_dir: str | Path, sequences: tuple[str, ...] | None = None,
                      fill: str = "zero", cache_dir: str | None = None, force: bool = False, progress: bool = True,
                      workers: int = 1, executor: Executor = "auto", argv: list[str] | None = None,
                      limit: int | None = None) -> AttributeResult:
    """Attribute every case of the multi-sequence datasets with ground truth (module docstring).

    ``sequences``: the channel sequences (default :func:`chosen_sequences`); ``fill``: ``zero`` or ``mean``;
    ``limit``: at most this many cases per dataset (8 encodings each), in case order.
    """
    if fill not in ("zero", "mean"):
        raise SegauditError(f"fill must be 'zero' or 'mean', got {fill!r}")
    keep, notes = [], []
    for ds in project.datasets:
        if len(ds.sequences) < 2 or not ds.ground_truth:
            notes.append(f"{ds.name}: needs two or more sequences and ground truth; left out")
        else:
            keep.append(ds)
    if not keep:
        raise SegauditError("nothing to attribute: " + "; ".join(notes))
    sub = ProjectConfig(datasets=keep, path=project.path, raw=project.raw, name=project.name)
    files = discover(sub).files_frame()
    settings = {"sequences": list(sequences or ()), "fill": fill, "limit": limit}
    ohash = project.settings_hash(attribute=settings)
    by_case = case_inputs(files, ("image", "ground_truth"))
    jobs, skipped = [], []
    with ResultsStore(out_dir) as store:
        done = set() if force else store.completed("attributions", STEP, ohash, ["dataset", "case"])
        stale = stale_jobs(store, STEP, ["dataset", "case"], {k: by_case[k] for k in done if k in by_case})
        done -= set(stale.changed)
        for ds in keep:
            seqs = chosen_sequences(ds, sequences)
            region, _ = _region_name(ds)
            f = files[(files.dataset == ds.name) & files.exists.astype(bool)]
            n = 0
            for case, rows in f.groupby("case", sort=True):
                paths = {r.key: r.path for r in rows[rows.role == "image"].itertuples() if r.key in seqs}
                gt = rows[rows.role == "ground_truth"]
                if len(paths) < len(seqs) or gt.empty:
                    continue
                if limit is not None and n >= limit:
                    break
                n += 1
                if (ds.name, str(case)) in done:
                    skipped.append((ds.name, str(case)))
                    continue
                jobs.append(AttributeJob(ds.name, str(case), {s: str(paths[s]) for s in seqs},
                                         str(gt.path.iloc[0]), ds.mask_encoding, region, fill, cache_dir,
                                         tuple(by_case.get((ds.name, str(case)), []))))
        run_id = run_step(store, STEP, ohash, {"project": project.raw, "attribute": settings}, argv, attribute_case,
                          jobs, _write, "Attributing sequences", progress=progress, workers=workers,
                          executor=executor)
        errors = store.errors(STEP)
    return AttributeResult(run_id, len(jobs), skipped, errors, notes)
