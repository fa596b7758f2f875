"""Every store and analysis access the dashboard makes, as plain functions over a run directory.

Each function opens the run's DuckDB store read-only (:class:`~segaudit.store.store.ResultsStore`), runs one
query, closes it, and returns a DataFrame, a dict or a small dataclass. Nothing here imports Streamlit: the
pages wrap these functions in ``st.cache_data`` (see :mod:`segaudit.app.ui`), keyed by the store's
modification time (:func:`store_version`), so a re-run of ``segaudit evaluate`` shows up and an unrelated
interaction never re-queries.

All access to the store and to :mod:`segaudit.analysis` lives in this one module, so a change of a store reader
or an analysis return type is adapted here only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from segaudit.analysis import (
    compare_models,
    error_matrix,
    rank_models,
    ranking_table,
    subject_of,
    summarize,
    worst_best,
)
from segaudit.analysis.compare import higher_is_better
from segaudit.store.store import DB_NAME, ResultsStore

#: The region under which the voxel confusion counts are stored (metric ``"gt->pred"``).
CONFUSION = "confusion"
#: Bookkeeping metrics, not shown as metrics (they mark empty ground truths / predictions).
FLAGS = ("gt_empty", "pred_empty")
SEVERITIES = ("error", "warning", "info")


def _q(run_dir: str | Path, sql: str, params: list | None = None) -> pd.DataFrame:
    with ResultsStore(run_dir, read_only=True) as store:
        return store.query(sql, params)


def _has(run_dir: str | Path, table: str) -> bool:
    with ResultsStore(run_dir, read_only=True) as store:
        return table in store.tables()


def store_version(run_dir: str | Path) -> int:
    """Modification time (ns) of the run's database file: the cache key that changes when the store does.

    Raises :class:`~segaudit.errors.SegauditError` (through the store) when there is no store.
    """
    path = Path(run_dir) / DB_NAME
    return path.stat().st_mtime_ns if path.is_file() else 0


def table_counts(run_dir: str | Path) -> dict[str, int]:
    """Rows per table of the store (tables missing from an older or imported store are left out)."""
    with ResultsStore(run_dir, read_only=True) as store:
        return {t: int(store.query(f'SELECT count(*) AS n FROM "{t}"').n.iloc[0]) for t in store.tables()}


def datasets(run_dir: str | Path) -> list[str]:
    """Datasets with any case or metric row, sorted."""
    parts = []
    for t in ("cases", "metrics"):
        if _has(run_dir, t):
            parts.append(f"SELECT DISTINCT dataset FROM {t}")
    if not parts:
        return []
    return sorted(_q(run_dir, " UNION ".join(parts)).dataset.dropna().astype(str))


def models(run_dir: str | Path, dataset: str | None = None) -> list[str]:
    """Models with metric rows (in ``dataset`` when given), sorted."""
    if not _has(run_dir, "metrics"):
        return []
    sql = "SELECT DISTINCT model FROM metrics WHERE model IS NOT NULL AND model <> ''"
    params: list = []
    if dataset is not None:
        sql += " AND dataset = ?"
        params.append(dataset)
    return sorted(_q(run_dir, sql, params).model.astype(str))


def dataset_overview(run_dir: str | Path) -> pd.DataFrame:
    """One row per dataset.

    ``cases``, ``subjects`` (distinct known subjects; 0 when none is recorded), ``sequences`` (image keys,
    comma-separated), ``models`` (with metric rows) and ``metric_rows``.
    """
    names = datasets(run_dir)
    rows: dict[str, dict[str, Any]] = {
        d: {"dataset": d, "cases": 0, "subjects": 0, "sequences": "", "models": "", "metric_rows": 0} for d in names}
    if _has(run_dir, "cases"):
        for r in _q(run_dir, "SELECT dataset, count(DISTINCT \"case\") AS cases, count(DISTINCT NULLIF(subject, ''))"
                             " AS subjects FROM cases GROUP BY dataset").itertuples():
            rows[r.dataset].update(cases=int(r.cases), subjects=int(r.subjects))
    if _has(run_dir, "files"):
        for r in _q(run_dir, "SELECT dataset, string_agg(DISTINCT key, ', ' ORDER BY key) AS seq FROM files "
                             "WHERE role = 'image' GROUP BY dataset").itertuples():
            rows[r.dataset]["sequences"] = r.seq or ""
    if _has(run_dir, "metrics"):
        for r in _q(run_dir, "SELECT dataset, string_agg(DISTINCT model, ', ' ORDER BY model) AS models, "
                             "count(*) AS n, count(DISTINCT \"case\") AS cases FROM metrics GROUP BY dataset"
                    ).itertuples():
            rows[r.dataset].update(models=r.models or "", metric_rows=int(r.n))
            rows[r.dataset]["cases"] = max(rows[r.dataset]["cases"], int(r.cases))
    return pd.DataFrame(list(rows.values()), columns=["dataset", "cases", "subjects", "sequences", "models",
                                                      "metric_rows"])


def qc_findings(run_dir: str | Path, severities: list[str] | None = None, dataset_names: list[str] | None = None,
                checks: list[str] | None = None) -> pd.DataFrame:
    """QC findings, optionally only those with a severity, dataset and check in the given lists (None: all)."""
    if not _has(run_dir, "qc"):
        return pd.DataFrame(columns=["dataset", "case", "role", "key", "check", "severity", "message", "path"])
    sql = 'SELECT dataset, "case", role, key, "check", severity, message, path FROM qc WHERE true'
    params: list = []
    for col, values in (("severity", severities), ("dataset", dataset_names), ('"check"', checks)):
        if values is not None:
            sql += f" AND {col} IN (SELECT unnest(?::VARCHAR[]))"
            params.append(list(values))
    return _q(run_dir, sql + ' ORDER BY dataset, "case", "check"', params)


def qc_choices(run_dir: str | Path) -> dict[str, list[str]]:
    """The distinct severities, datasets and checks of the QC table (for the filters)."""
    if not _has(run_dir, "qc"):
        return {"severity": [], "dataset": [], "check": []}
    t = _q(run_dir, 'SELECT DISTINCT severity, dataset, "check" FROM qc')
    return {c: sorted(t[c].dropna().astype(str).unique()) for c in ("severity", "dataset", "check")}


def error_rows(run_dir: str | Path) -> pd.DataFrame:
    """The ``errors`` table: per-case failures and warnings of every step."""
    if not _has(run_dir, "errors"):
        return pd.DataFrame(columns=["step", "dataset", "case", "model", "severity", "message", "path"])
    return _q(run_dir, 'SELECT step, dataset, "case", model, severity, message, path FROM errors '
                       'ORDER BY step, dataset, "case"')


def run_provenance(run_dir: str | Path) -> pd.DataFrame:
    """One row per step run.

    Step, status, start and end times, duration (s), segaudit and Python versions, platform, the other package versions
    (``name version`` list), config hash and summary (as stored).
    """
    if not _has(run_dir, "runs"):
        return pd.DataFrame()
    t = _q(run_dir, "SELECT step, status, started_at, finished_at, segaudit_version, python_version, platform, "
                    "packages, config_hash, summary FROM runs ORDER BY started_at")
    t["seconds"] = (pd.to_datetime(t.finished_at) - pd.to_datetime(t.started_at)).dt.total_seconds()

    def pkgs(s) -> str:
        try:
            return ", ".join(f"{k} {v}" for k, v in json.loads(s).items() if v)
        except (TypeError, ValueError):
            return ""

    t["packages"] = t.packages.map(pkgs)
    return t


def stored_metric_names(run_dir: str | Path, dataset: str | None = None) -> list[str]:
    """Metrics with stored values (confusion counts and the empty flags left out), ``dice`` first."""
    if not _has(run_dir, "metrics"):
        return []
    sql = "SELECT DISTINCT metric FROM metrics WHERE region <> ? AND metric NOT IN (?, ?)"
    params: list = [CONFUSION, *FLAGS]
    if dataset is not None:
        sql += " AND dataset = ?"
        params.append(dataset)
    names = sorted(_q(run_dir, sql, params).metric.astype(str))
    return sorted(names, key=lambda m: (m != "dice", m))


def metric_rows(run_dir: str | Path, dataset: str | None = None, metric: str | None = None,
                model: str | None = None) -> pd.DataFrame:
    """Long metric rows (dataset, case, model, region, metric, value, unit), confusion counts left out.

    With ``metric``, the ``gt_empty``/``pred_empty`` flag rows of the same cases come along: the analysis uses
    them to set apart cases where ground truth and prediction are both empty.
    """
    sql = 'SELECT dataset, "case", model, region, metric, value, unit FROM metrics WHERE region <> ?'
    params: list = [CONFUSION]
    for col, val in (("dataset", dataset), ("model", model)):
        if val is not None:
            sql += f" AND {col} = ?"
            params.append(val)
    if metric is not None:
        sql += " AND metric IN (?, ?, ?)"
        params += [metric, *FLAGS]
    return _q(run_dir, sql + ' ORDER BY dataset, "case", model, region, metric', params)


def subjects(run_dir: str | Path) -> pd.DataFrame | None:
    """(dataset, case, subject) where a subject is known (:func:`segaudit.analysis.subject_of`), else None."""
    if not _has(run_dir, "cases"):
        return None
    return subject_of(_q(run_dir, 'SELECT dataset, "case", subject FROM cases'))


def summary(run_dir: str | Path, dataset: str, metric: str, n_resamples: int = 2000) -> pd.DataFrame:
    """:func:`segaudit.analysis.summarize` of one dataset's ``metric`` per model and region (bootstrap CIs,
    resampling subjects when cases share one).
    """
    rows = metric_rows(run_dir, dataset, metric)
    if not (rows.metric == metric).any():
        return pd.DataFrame()
    out = summarize(rows, n_resamples=n_resamples, subjects=subjects(run_dir))
    return out[out.metric == metric].reset_index(drop=True)


def better_is_higher(metric: str) -> bool:
    """Whether larger values of ``metric`` are better (Dice: yes; distances and error counts: no)."""
    return bool(higher_is_better(metric))


def values(run_dir: str | Path, dataset: str, metric: str) -> pd.DataFrame:
    """Per-case values of one metric in one dataset (dataset, case, model, region, value, unit)."""
    rows = metric_rows(run_dir, dataset, metric)
    return rows[rows.metric == metric].drop(columns="metric").reset_index(drop=True)


def worst_best_cases(run_dir: str | Path, dataset: str, metric: str, k: int = 5) -> pd.DataFrame:
    """:func:`segaudit.analysis.worst_best`: the k worst and best cases per model and region."""
    rows = metric_rows(run_dir, dataset, metric)
    rows = rows[rows.metric == metric]
    if rows.empty:
        return pd.DataFrame(columns=["dataset", "case", "model", "region", "value", "rank_kind", "rank"])
    return worst_best(rows, metric, k, higher_is_better(metric))


def has_confusion(run_dir: str | Path, dataset: str) -> bool:
    """Whether the store holds confusion rows for the dataset (``evaluate`` writes them)."""
    if not _has(run_dir, "metrics"):
        return False
    return bool(len(_q(run_dir, "SELECT 1 FROM metrics WHERE dataset = ? AND region = ? LIMIT 1",
                       [dataset, CONFUSION])))


def confusion(run_dir: str | Path, dataset: str, model: str, case: str | None = None, normalise: bool = False,
              background: bool = True) -> pd.DataFrame:
    """:func:`segaudit.analysis.error_matrix` from the stored confusion rows (never recomputed from files);
    summed over the dataset's cases, or one ``case``. ValueError when nothing is stored for the selection.
    """
    sql = 'SELECT dataset, "case", model, region, metric, value FROM metrics WHERE region = ? AND dataset = ? ' \
          'AND model = ?'
    params: list = [CONFUSION, dataset, model]
    if case is not None:
        sql += ' AND "case" = ?'
        params.append(case)
    rows = _q(run_dir, sql, params)
    return error_matrix(rows, normalise=normalise, background=background)


def pairwise(run_dir: str | Path, dataset: str, baseline: str, candidate: str, metric: str = "dice",
             aggregate: str = "per-region") -> pd.DataFrame:
    """:func:`segaudit.analysis.compare_models` of two models on one dataset (its test, reason, effect sizes,
    flips), per region or on the mean over regions; subjects resampled as the store's ``cases`` says.
    """
    rows = metric_rows(run_dir, dataset, metric)
    return compare_models(rows, baseline, candidate, metric, aggregate=aggregate, dataset=dataset,
                          subjects=subjects(run_dir))


def case_differences(run_dir: str | Path, dataset: str, baseline: str, candidate: str, metric: str,
                     region: str | None = None) -> pd.DataFrame:
    """Per-case ``candidate - baseline`` of ``metric`` (one ``region``, or the mean over regions when None).

    Columns case, baseline, candidate, difference; cases lacking either model's value are left out.
    """
    rows = values(run_dir, dataset, metric)
    rows = rows[rows.model.isin([baseline, candidate])]
    if region is not None:
        rows = rows[rows.region == region]
    wide = rows.groupby(["case", "model"]).value.mean().unstack("model").reindex(columns=[baseline, candidate])
    wide = wide.dropna()
    out = pd.DataFrame({"case": wide.index.astype(str), "baseline": wide[baseline].to_numpy(),
                        "candidate": wide[candidate].to_numpy()})
    out["difference"] = out.candidate - out.baseline
    return out.reset_index(drop=True)


@dataclass
class RankingView:
    """Multi-model ranking of one dataset.

    :func:`segaudit.analysis.rank_models` on :func:`segaudit.analysis.ranking_table` (missing predictions scored as
    worst).
    """

    ranks: pd.DataFrame
    friedman: Mapping[str, Any]  # a segaudit.analysis.Friedman, read as a mapping
    posthoc: pd.DataFrame
    policy: dict = field(default_factory=dict)


def ranking(run_dir: str | Path, dataset: str, metric: str = "dice") -> RankingView:
    """Friedman test, mean ranks, Nemenyi critical difference, post hoc table and rank stability."""
    rows = metric_rows(run_dir, dataset, metric)
    wide, info = ranking_table(rows, dataset, metric)
    ranks, fried, post = rank_models(wide, higher_is_better(metric))
    return RankingView(ranks, fried, post, info)


def case_ids(run_dir: str | Path, dataset: str) -> list[str]:
    """The dataset's case ids (from ``cases``, else from ``metrics``), sorted."""
    parts = [f'SELECT DISTINCT "case" FROM {t} WHERE dataset = ?' for t in ("cases", "metrics") if _has(run_dir, t)]
    if not parts:
        return []
    return sorted(_q(run_dir, " UNION ".join(parts), [dataset] * len(parts))["case"].astype(str))


def case_metrics(run_dir: str | Path, dataset: str, case: str) -> pd.DataFrame:
    """One case's metric rows as a model × region table per metric (columns model, region, metric, value,
    unit), confusion counts left out.
    """
    if not _has(run_dir, "metrics"):
        return pd.DataFrame(columns=["model", "region", "metric", "value", "unit"])
    return _q(run_dir, 'SELECT model, region, metric, value, unit FROM metrics WHERE dataset = ? AND "case" = ? '
                       "AND region <> ? ORDER BY model, region, metric", [dataset, case, CONFUSION])


def case_lesions(run_dir: str | Path, dataset: str, case: str) -> pd.DataFrame:
    """One case's lesions (model, region, source, lesion_id, volume, matched, dice, centroid as a tuple of
    voxel indices, or None when unknown).
    """
    if not _has(run_dir, "lesions"):
        return pd.DataFrame(columns=["model", "region", "source", "lesion_id", "volume", "matched", "dice",
                                     "centroid"])
    t = _q(run_dir, 'SELECT model, region, source, lesion_id, volume, matched, dice, hd95, centroid FROM lesions '
                    'WHERE dataset = ? AND "case" = ? ORDER BY model, region, source, lesion_id', [dataset, case])
    t["centroid"] = t.centroid.map(parse_tuple)
    return t


def parse_tuple(text) -> tuple[float, ...] | None:
    """``"(1.5, 2, 3)"`` -> ``(1.5, 2.0, 3.0)``; None for missing or malformed text."""
    if text is None or (isinstance(text, float) and np.isnan(text)):
        return None
    try:
        return tuple(float(v) for v in str(text).strip("()[] ").split(",") if v.strip())
    except ValueError:
        return None


@dataclass
class CaseFiles:
    """The files of one case as the store's ``files`` table records them (only these may be read)."""

    images: dict[str, str] = field(default_factory=dict)
    ground_truth: str | None = None
    predictions: dict[str, str] = field(default_factory=dict)

    def all_paths(self) -> list[str]:
        """Every recorded path."""
        return [*self.images.values(), *([self.ground_truth] if self.ground_truth else []),
                *self.predictions.values()]


def case_files(run_dir: str | Path, dataset: str, case: str) -> CaseFiles:
    """Existing, readable files of one case from the ``files`` table.

    Images by sequence key, the ground truth, predictions by model. A case id not in the store gives an empty
    :class:`CaseFiles` (nothing is read from a path typed by a user).
    """
    out = CaseFiles()
    if not _has(run_dir, "files"):
        return out
    t = _q(run_dir, 'SELECT role, key, path FROM files WHERE dataset = ? AND "case" = ? AND "exists" '
                    "AND coalesce(readable, true) ORDER BY role, key", [dataset, case])
    for r in t.itertuples():
        if r.role == "image":
            out.images[str(r.key or "image")] = str(r.path)
        elif r.role == "ground_truth":
            out.ground_truth = str(r.path)
        elif r.role == "prediction":
            out.predictions[str(r.key)] = str(r.path)
    return out


@dataclass
class DatasetDisplay:
    """What the viewer needs from a project's dataset: mask encodings, label and region values."""

    mask_encoding: object
    prediction_encoding: object
    model_encodings: dict[str, object]
    labels: dict[str, int]
    regions: dict[str, tuple[int, ...]]


def dataset_display(project_path: str | Path | None, dataset: str) -> DatasetDisplay | None:
    """The encodings, labels and regions of ``dataset`` in the project file; None without a project or when the
    project has no such dataset (then the viewer shows no images).
    """
    if not project_path:
        return None
    from segaudit.dataset.project import load_project

    project = load_project(project_path)
    ds = next((d for d in project.datasets if d.name == dataset), None)
    if ds is None:
        return None
    labels = {str(k): int(v) for k, v in dict(ds.label_map.labels).items()}
    regions = {str(k): tuple(int(x) for x in v) for k, v in dict(ds.label_map.regions).items()}
    return DatasetDisplay(ds.mask_encoding, ds.pred_encoding, dict(ds.model_encodings), labels, regions)


def model_encoding(display: DatasetDisplay, model: str):
    """The encoding of one model's predictions (the dataset's prediction encoding when not listed)."""
    return display.model_encodings.get(model) or display.prediction_encoding
