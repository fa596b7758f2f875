"""What the report's sections read: the store's tables, read once, and the frames derived from them.

:func:`read_inputs` opens a results store read-only and returns a :class:`ReportInputs`; every section module of
:mod:`segaudit.report.sections` renders from that record alone, so a section can be drawn (and tested) on its own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from segaudit.analysis.agreement import agreement_metrics
from segaudit.analysis.cohorts import cases_with_metadata
from segaudit.analysis.coverage import coverage, expected_cases
from segaudit.io.masks import MaskEncoding
from segaudit.metrics.evaluate import CONFUSION_REGION
from segaudit.pipeline.ask import EVAL_DATASET as ASK_EVAL_DATASET
from segaudit.store.store import ResultsStore


@dataclass(frozen=True)
class ReportInputs:
    """Everything a report section may draw from, for one results store.

    Attributes
    ----------
    run_dir : Path
        The run folder holding the store (``segaudit.duckdb``).
    metrics : pandas.DataFrame
        Every row of the ``metrics`` table (dataset, case, model, region, metric, value), the label-by-label
        confusion rows and the model-vs-model agreement rows included; empty when the store has none.
    m : pandas.DataFrame
        The ground-truth metrics: ``metrics`` without the confusion region and the agreement rows.
    agreement : pandas.DataFrame
        The agreement rows (``segaudit agree``; no ground truth), empty when there are none.
    cases, files, qc, features, lesions, errors : pandas.DataFrame
        The store's tables of those names, empty when the store lacks one.
    meta : pandas.DataFrame
        ``cases`` with its metadata JSON expanded into columns (:func:`cases_with_metadata`), parsed once.
    cov : pandas.DataFrame
        Each model's coverage of the expected cases (:func:`segaudit.analysis.coverage.coverage`); empty
        without ground-truth metrics.
    expected : pandas.DataFrame or None
        The cases each dataset's models were expected to score; None without ground-truth metrics.
    units : pandas.DataFrame or None
        (dataset, metric, unit) as stored (:func:`stored_units`); None when the store has no metrics table.
    penalties : dict of str to str
        Dataset -> the empty-mask distance penalty sentence (:func:`penalty_notes`).
    imported : set of str
        Datasets whose metrics came from ``segaudit import-audit``.
    imported_features : bool
        True when some ``import-audit`` run wrote to the store (AUDIT tables: no files behind them).
    project : ProjectConfig or None
        The project, for image panels and declared split and covariate columns.
    training_logs : dict of str to str or Path, or None
        Model -> training-log CSV.
    compare : list of (str, str) or None
        (baseline, candidate) pairs to compare; None for the default pairs.
    region : str or None
        The region the image panels show; None for each dataset's worst.
    prompts : pandas.DataFrame
        The ``prompts`` table (``segaudit prompt``; :meth:`ResultsStore.prompts`), empty when there are none.
    attributions : pandas.DataFrame
        The ``attributions`` table (``segaudit attribute``), empty when there are none.
    mask_encodings : dict of str to MaskEncoding
        Dataset -> how its ground-truth files are encoded (``mask_encoding:``), to read them as the steps did:
        from ``project`` when given, else from the project file recorded by the latest ``prompt`` run
        (:func:`recorded_mask_encodings`). A dataset absent here is read with the default encoding.
    """

    run_dir: Path
    metrics: pd.DataFrame
    m: pd.DataFrame
    agreement: pd.DataFrame
    cases: pd.DataFrame
    files: pd.DataFrame
    qc: pd.DataFrame
    features: pd.DataFrame
    lesions: pd.DataFrame
    errors: pd.DataFrame
    meta: pd.DataFrame
    cov: pd.DataFrame
    expected: pd.DataFrame | None
    units: pd.DataFrame | None
    penalties: dict[str, str] = field(default_factory=dict)
    imported: set[str] = field(default_factory=set)
    imported_features: bool = False
    project: object | None = None
    training_logs: dict[str, str | Path] | None = None
    compare: list[tuple[str, str]] | None = None
    region: str | None = None
    prompts: pd.DataFrame = field(default_factory=pd.DataFrame)
    attributions: pd.DataFrame = field(default_factory=pd.DataFrame)
    mask_encodings: dict[str, MaskEncoding] = field(default_factory=dict)

    @property
    def has_dice(self) -> bool:
        """True when the ground-truth metrics hold a Dice."""
        return not self.m.empty and bool((self.m.metric == "dice").any())


def read_inputs(run_dir: str | Path, project=None, training_logs: dict[str, str | Path] | None = None,
                compare: list[tuple[str, str]] | None = None, region: str | None = None) -> ReportInputs:
    """Read a results store (read-only) into the :class:`ReportInputs` of its report.

    A table the store lacks is read as an empty frame; the derived frames (ground-truth metrics, coverage,
    expected cases, parsed metadata) are computed once here for all sections.
    """
    with ResultsStore(run_dir, read_only=True) as store:
        tables = set(store.tables())
        metrics = store.metrics(ordered=False).drop(columns="unit") if "metrics" in tables else pd.DataFrame()
        cases = store.read("cases") if "cases" in tables else pd.DataFrame()
        files = store.read("files") if "files" in tables else pd.DataFrame()
        qc = store.read("qc") if "qc" in tables else pd.DataFrame()
        feats = store.read("features") if "features" in tables else pd.DataFrame()
        lesions = store.read("lesions") if "lesions" in tables else pd.DataFrame()
        errors = store.read("errors") if "errors" in tables else pd.DataFrame()
        units = stored_units(store) if "metrics" in tables else None
        penalties = penalty_notes(store.read("runs")) if "runs" in tables else {}
        imported = imported_datasets(store)
        imported_features = not store.runs("import-audit").empty
        prompts = store.prompts()
        attributions = store.attributions()
        encodings = recorded_mask_encodings(store.runs("prompt")) if len(prompts) else {}
    for ds in getattr(project, "datasets", None) or []:
        encodings[ds.name] = ds.mask_encoding
    m = metrics[metrics.region != CONFUSION_REGION] if not metrics.empty else metrics
    agreement = agreement_metrics(m)
    m = m.drop(agreement.index)  # model-vs-model rows (segaudit agree) never enter the ground-truth sections
    if not m.empty:  # nor do segaudit ask-eval's scores (its own report section reads them from ``metrics``)
        m = m[m["dataset"] != ASK_EVAL_DATASET]
    cov = coverage(m, errors, files) if not m.empty else pd.DataFrame()
    expected = expected_cases(m, errors, files) if not m.empty else None
    meta = cases_with_metadata(cases) if not cases.empty else cases  # metadata JSON parsed once for all sections
    return ReportInputs(run_dir=Path(run_dir), metrics=metrics, m=m, agreement=agreement, cases=cases, files=files,
                        qc=qc, features=feats, lesions=lesions, errors=errors, meta=meta, cov=cov,
                        expected=expected, units=units, penalties=penalties, imported=imported,
                        imported_features=imported_features, project=project, training_logs=training_logs,
                        compare=compare, region=region, prompts=prompts,
                        attributions=attributions, mask_encodings=encodings)


def recorded_mask_encodings(runs: pd.DataFrame) -> dict[str, MaskEncoding]:
    """Dataset -> ground-truth :class:`MaskEncoding` from the project files recorded in ``runs.config``.

    Runs in order, so the latest run's declaration wins; a config that is not JSON, or an entry that is not a
    valid encoding, is passed over (that dataset is then read with the default encoding).
    """
    out: dict[str, MaskEncoding] = {}
    for text in runs.get("config", pd.Series(dtype=object)).dropna():
        try:
            datasets = (json.loads(text).get("project") or {}).get("datasets") or {}
        except (ValueError, AttributeError):
            continue
        for name, entry in datasets.items() if isinstance(datasets, dict) else []:
            try:
                out[str(name)] = MaskEncoding.from_dict((entry or {}).get("mask_encoding"))
            except (TypeError, ValueError, AttributeError):
                continue
    return out


def stored_units(store: ResultsStore) -> pd.DataFrame:
    """(dataset, metric, unit) of a store's metrics; empty for stores written before units were recorded."""
    return store.units()


def penalty_notes(runs: pd.DataFrame) -> dict[str, str]:
    """Dataset -> 'one empty mask scores P unit (how P was chosen)' from the latest evaluate run that says."""
    out: dict[str, str] = {}
    if runs.empty:
        return out
    for summary in runs[runs.step == "evaluate"].sort_values("started_at").summary.dropna():
        try:
            pen = json.loads(summary).get("empty_distance") or {}
        except (TypeError, ValueError):
            continue
        for ds, p in pen.items():
            if p.get("penalty") is not None:
                out[ds] = f"{p['penalty']:.1f} {p['unit']} ({p['source']})"
    return out


def imported_datasets(store: ResultsStore) -> set[str]:
    """Datasets whose metrics came from ``segaudit import-audit`` (AUDIT tables: no files behind them)."""
    return store.step_datasets("import-audit")


def volume_units(units: pd.DataFrame | None) -> str:
    """'mm³ (mm² in 2D)', or the units the store really holds for gt_volume ('px2' for photos)."""
    if units is None or units.empty:
        return "mm³ (mm² in 2D)"
    u = sorted(units[units.metric == "gt_volume"].unit.dropna().unique())
    return ", ".join(u) if u else "mm³ (mm² in 2D)"
