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
    longitudinal_volumes,
    metric_by_group,
    metric_vs_feature,
    rank_mean_disagreement,
    rank_models,
    ranking_table,
    subject_of,
    summarize,
    worst_best,
)
from segaudit.analysis.cohorts import cases_with_metadata
from segaudit.analysis.compare import higher_is_better
from segaudit.app.explore import ColumnKinds, Embedding, column_kinds, embed_table
from segaudit.store.store import DB_NAME, ResultsStore

#: The region under which the voxel confusion counts are stored (metric ``"gt->pred"``).
CONFUSION = "confusion"
#: Bookkeeping metrics, not shown as metrics (they mark empty ground truths / predictions).
FLAGS = ("gt_empty", "pred_empty")
SEVERITIES = ("error", "warning", "info")


def _read(run_dir: str | Path, reader: str, *args, **kwargs):
    """``ResultsStore.<reader>(*args, **kwargs)`` on the run's store opened read-only (then closed)."""
    with ResultsStore(run_dir, read_only=True) as store:
        return getattr(store, reader)(*args, **kwargs)


def _metrics(run_dir: str | Path, dataset: str | None = None, ordered: bool = True) -> pd.DataFrame:
    return _read(run_dir, "metrics", [dataset] if dataset is not None else None, ordered=ordered)


def store_version(run_dir: str | Path) -> int:
    """Modification time (ns) of the run's database file: the cache key that changes when the store does.

    Raises :class:`~segaudit.errors.SegauditError` (through the store) when there is no store.
    """
    path = Path(run_dir) / DB_NAME
    return path.stat().st_mtime_ns if path.is_file() else 0


def table_counts(run_dir: str | Path) -> dict[str, int]:
    """Rows per table of the store (tables missing from an older or imported store are left out)."""
    return _read(run_dir, "row_counts")


def _keys(run_dir: str | Path) -> pd.DataFrame:
    """(dataset, case, model) of the cases table (model None) and of the scored metric rows."""
    with ResultsStore(run_dir, read_only=True) as store:
        cases = store.cases(ordered=False)[["dataset", "case"]].assign(model=None)
        return pd.concat([cases, store.scored_keys()], ignore_index=True)


def datasets(run_dir: str | Path) -> list[str]:
    """Datasets with any case or metric row, sorted."""
    return sorted(_keys(run_dir).dataset.dropna().astype(str).unique())


def models(run_dir: str | Path, dataset: str | None = None) -> list[str]:
    """Models with metric rows (in ``dataset`` when given), sorted."""
    k = _read(run_dir, "scored_keys", [dataset] if dataset is not None else None)
    return sorted(m for m in k.model.dropna().astype(str).unique() if m)


def dataset_overview(run_dir: str | Path) -> pd.DataFrame:
    """One row per dataset.

    ``cases``, ``subjects`` (distinct known subjects; 0 when none is recorded), ``sequences`` (image keys,
    comma-separated), ``models`` (with metric rows) and ``metric_rows``.
    """
    with ResultsStore(run_dir, read_only=True) as store:
        cases, files, metrics = store.cases(ordered=False), store.files(), store.metrics(ordered=False)
    names = sorted(set(cases.dataset.dropna().astype(str)) | set(metrics.dataset.dropna().astype(str)))
    rows = []
    for d in names:
        c, f, m = cases[cases.dataset == d], files[files.dataset == d], metrics[metrics.dataset == d]
        subj = c.subject.dropna().astype(str)
        models_ = sorted(x for x in m.model.dropna().astype(str).unique() if x)
        rows.append({"dataset": d, "cases": max(c.case.nunique(), m.case.nunique()),
                     "subjects": int(subj[subj != ""].nunique()),
                     "sequences": ", ".join(sorted(f[f.role == "image"].key.dropna().astype(str).unique())),
                     "models": ", ".join(models_), "metric_rows": len(m)})
    return pd.DataFrame(rows, columns=["dataset", "cases", "subjects", "sequences", "models", "metric_rows"])


def qc_findings(run_dir: str | Path, severities: list[str] | None = None, dataset_names: list[str] | None = None,
                checks: list[str] | None = None) -> pd.DataFrame:
    """QC findings, optionally only those with a severity, dataset and check in the given lists (None: all)."""
    qc = _read(run_dir, "qc")
    keep = np.ones(len(qc), dtype=bool)
    for col, values in (("severity", severities), ("dataset", dataset_names), ("check", checks)):
        if values is not None:
            keep &= qc[col].isin(list(values)).to_numpy()
    return qc[keep].reset_index(drop=True)


def qc_choices(run_dir: str | Path) -> dict[str, list[str]]:
    """The distinct severities, datasets and checks of the QC table (for the filters)."""
    t = _read(run_dir, "qc")
    return {c: sorted(t[c].dropna().astype(str).unique()) for c in ("severity", "dataset", "check")}


def error_rows(run_dir: str | Path) -> pd.DataFrame:
    """The ``errors`` table: per-case failures and warnings of every step."""
    t = _read(run_dir, "errors")
    return t[["step", "dataset", "case", "model", "severity", "message", "path"]].sort_values(
        ["step", "dataset", "case"], kind="stable").reset_index(drop=True)


def run_provenance(run_dir: str | Path) -> pd.DataFrame:
    """One row per step run.

    Step, status, start and end times, duration (s), segaudit and Python versions, platform, the other package versions
    (``name version`` list), config hash and summary (as stored).
    """
    t = _read(run_dir, "runs")
    if t.empty:
        return pd.DataFrame()
    t = t[["step", "status", "started_at", "finished_at", "segaudit_version", "python_version", "platform",
           "packages", "config_hash", "summary"]].reset_index(drop=True)
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
    m = _metrics(run_dir, dataset, ordered=False)
    names = sorted(m[(m.region != CONFUSION) & ~m.metric.isin(FLAGS)].metric.dropna().astype(str).unique())
    return sorted(names, key=lambda m: (m != "dice", m))


def metric_rows(run_dir: str | Path, dataset: str | None = None, metric: str | None = None,
                model: str | None = None) -> pd.DataFrame:
    """Long metric rows (dataset, case, model, region, metric, value, unit), confusion counts left out.

    With ``metric``, the ``gt_empty``/``pred_empty`` flag rows of the same cases come along: the analysis uses
    them to set apart cases where ground truth and prediction are both empty.
    """
    m = _metrics(run_dir, dataset)
    keep = (m.region != CONFUSION).to_numpy(copy=True)
    if model is not None:
        keep &= (m.model == model).to_numpy()
    if metric is not None:
        keep &= m.metric.isin([metric, *FLAGS]).to_numpy()
    return m[keep].reset_index(drop=True)


def subjects(run_dir: str | Path) -> pd.DataFrame | None:
    """(dataset, case, subject) where a subject is known (:func:`segaudit.analysis.subject_of`), else None."""
    c = _read(run_dir, "cases", ordered=False)
    if c.empty:
        return None
    return subject_of(c[["dataset", "case", "subject"]])


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
    return bool((_metrics(run_dir, dataset, ordered=False).region == CONFUSION).any())


def confusion(run_dir: str | Path, dataset: str, model: str, case: str | None = None, normalise: bool = False,
              background: bool = True) -> pd.DataFrame:
    """:func:`segaudit.analysis.error_matrix` from the stored confusion rows (never recomputed from files);
    summed over the dataset's cases, or one ``case``. ValueError when nothing is stored for the selection.
    """
    m = _metrics(run_dir, dataset, ordered=False)  # stored order: the cells in label order
    keep = (m.region == CONFUSION) & (m.model == model)
    if case is not None:
        keep &= m.case == case
    rows = m[keep][["dataset", "case", "model", "region", "metric", "value"]].reset_index(drop=True)
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
    #: Why the best mean rank and the best mean are different models ('' when they are the same one).
    disagreement: str = ""


def ranking(run_dir: str | Path, dataset: str, metric: str = "dice") -> RankingView:
    """Friedman test, mean ranks, Nemenyi critical difference, post hoc table and rank stability."""
    rows = metric_rows(run_dir, dataset, metric)
    wide, info = ranking_table(rows, dataset, metric)
    ranks, fried, post = rank_models(wide, higher_is_better(metric))
    return RankingView(ranks, fried, post, info, rank_mean_disagreement(wide, higher_is_better(metric), metric))


def case_ids(run_dir: str | Path, dataset: str) -> list[str]:
    """The dataset's case ids (from ``cases``, else from ``metrics``), sorted."""
    k = _keys(run_dir)
    return sorted(k[k.dataset == dataset].case.dropna().astype(str).unique())


def case_metrics(run_dir: str | Path, dataset: str, case: str) -> pd.DataFrame:
    """One case's metric rows as a model × region table per metric (columns model, region, metric, value,
    unit), confusion counts left out.
    """
    m = _metrics(run_dir, dataset)
    m = m[(m.case == case) & (m.region != CONFUSION)]
    return m[["model", "region", "metric", "value", "unit"]].reset_index(drop=True)


def case_lesions(run_dir: str | Path, dataset: str, case: str) -> pd.DataFrame:
    """One case's lesions (model, region, source, lesion_id, volume, matched, dice, centroid as a tuple of
    voxel indices, or None when unknown).
    """
    t = _read(run_dir, "lesions", [dataset])
    t = t[t.case == case][["model", "region", "source", "lesion_id", "volume", "matched", "dice", "hd95",
                           "centroid"]].reset_index(drop=True)
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
    t = _read(run_dir, "files", [dataset])
    t = t[(t.case == case) & t["exists"].fillna(False).astype(bool) & t.readable.fillna(True).astype(bool)]
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


# ---------------------------------------------------------------------------------------------- explorer, bias
def cases_frame(run_dir: str | Path, dataset: str | None = None) -> pd.DataFrame:
    """The cases (dataset, case, subject, timepoint) with their metadata expanded into columns."""
    c = _read(run_dir, "cases", [dataset] if dataset is not None else None)
    if c.empty:
        return pd.DataFrame(columns=["dataset", "case", "subject", "timepoint"])
    return cases_with_metadata(c).reset_index(drop=True)


def feature_name(model, group: str, source: str, feature: str) -> str:
    """A wide feature column's name: ``<group>:<source>:<feature>``, prefixed ``<model>:`` for a prediction's."""
    return (f"{model}:" if model else "") + f"{group}:{source}:{feature}"


def features_wide(run_dir: str | Path, dataset: str | None = None) -> pd.DataFrame:
    """The stored features, one row per (dataset, case), one column per :func:`feature_name` (float)."""
    f = _read(run_dir, "features", [dataset] if dataset is not None else None)
    if f.empty:
        return pd.DataFrame(columns=["dataset", "case"])
    model = f.model.fillna("").astype(str)
    col = np.where(model == "", "", model + ":") + f.group.astype(str) + ":" + f.source.astype(str) + ":" + \
        f.feature.astype(str)
    wide = f.assign(column=col).pivot_table(index=["dataset", "case"], columns="column", values="value",
                                            aggfunc="first", dropna=False).reset_index()
    wide.columns.name = None
    return wide


def properties(run_dir: str | Path, dataset: str | None = None) -> pd.DataFrame:
    """One row per case of ``dataset`` (None: every dataset): its metadata columns, then every feature column
    (:func:`features_wide`).
    """
    cases = cases_frame(run_dir, dataset)
    feats = features_wide(run_dir, dataset)
    if feats.empty:
        return cases
    if cases.empty:
        return feats
    return cases.merge(feats, on=["dataset", "case"], how="outer").sort_values(["dataset", "case"]) \
        .reset_index(drop=True)


def property_columns(run_dir: str | Path, dataset: str | None = None) -> ColumnKinds:
    """:func:`segaudit.app.explore.column_kinds` of the dataset's :func:`properties` table."""
    return column_kinds(properties(run_dir, dataset))


def case_metric(run_dir: str | Path, dataset: str, model: str, metric: str, region: str | None = None
                ) -> pd.DataFrame:
    """One value per case (columns case, metric): ``metric`` of ``model`` on ``region``, or the mean over regions."""
    v = values(run_dir, dataset, metric)
    v = v[v.model == model]
    if region is not None:
        v = v[v.region == region]
    return v.groupby("case", as_index=False).value.mean().rename(columns={"value": "metric"})


def _with_subjects(run_dir: str | Path, t: pd.DataFrame, dataset: str) -> pd.DataFrame:
    subj = subjects(run_dir)
    if subj is None or "subject" not in subj.columns:
        return t
    s = subj[subj.dataset == dataset][["case", "subject"]].drop_duplicates("case")
    return t.merge(s, on="case", how="left").assign(subject=lambda d: d.subject.fillna(d.case).astype(str))


def bias_trend(run_dir: str | Path, dataset: str, model: str, metric: str, region: str | None, feature: str,
               n_resamples: int = 1000) -> tuple[pd.DataFrame, Any]:
    """Metric against a feature or numeric metadata column: the per-case points (case, metric, feature) and
    :func:`segaudit.analysis.metric_vs_feature` (Spearman with a bootstrap CI, LOWESS trend).
    """
    props = properties(run_dir, dataset)
    t = case_metric(run_dir, dataset, model, metric, region).merge(
        props[["case", feature]].rename(columns={feature: "feature"}), on="case")
    t["feature"] = pd.to_numeric(t.feature, errors="coerce")
    t = _with_subjects(run_dir, t, dataset)
    return t, metric_vs_feature(t, n_resamples=n_resamples)


def bias_groups(run_dir: str | Path, dataset: str, model: str, metric: str, region: str | None, column: str,
                n_resamples: int = 1000) -> tuple[pd.DataFrame, pd.DataFrame, Any]:
    """Metric by a grouping column: the per-case points (case, metric, group), and
    :func:`segaudit.analysis.metric_by_group`'s per-group table (flagged groups: ``differs_from_overall``) and
    Kruskal-Wallis test.
    """
    props = properties(run_dir, dataset)
    t = case_metric(run_dir, dataset, model, metric, region).merge(
        props[["case", column]].rename(columns={column: "group"}), on="case")
    t = t[t.group.notna()].assign(group=lambda d: d.group.astype(str))
    t = _with_subjects(run_dir, t, dataset)
    table, test = metric_by_group(t, n_resamples=n_resamples)
    return t, table, test


# ---------------------------------------------------------------------------------------------- longitudinal
def volume_regions(run_dir: str | Path, dataset: str) -> list[str]:
    """Regions with a stored ground-truth volume in ``dataset`` (``WT`` first)."""
    f = _read(run_dir, "features", [dataset])
    f = f[(f.group == "lesion") & (f.feature == "volume") & (f.model.fillna("") == "")
          & ~f.source.astype(str).str.startswith("instances/")]
    return sorted(f.source.astype(str).unique(), key=lambda r: (r != "WT", r))


def longitudinal(run_dir: str | Path, dataset: str, region: str = "WT") -> pd.DataFrame:
    """:func:`segaudit.analysis.longitudinal_volumes` of one dataset: per subject, time point and model the true
    and predicted volume (mm³), growth and relative error; empty when no case has a subject and time point.
    """
    with ResultsStore(run_dir, read_only=True) as store:
        cases, feats = store.cases([dataset]), store.features([dataset])
    if cases.empty or feats.empty:
        return pd.DataFrame(columns=["dataset", "subject", "timepoint", "case", "model", "true_volume",
                                     "pred_volume", "relative_error", "true_growth", "pred_growth"])
    return longitudinal_volumes(cases, feats, region)


# ---------------------------------------------------------------------------------------------- one case
def case_qc(run_dir: str | Path, dataset: str, case: str) -> pd.DataFrame:
    """The QC findings of one case (role, key, check, severity, message)."""
    qc = _read(run_dir, "qc", [dataset])
    return qc[qc.case == case][["role", "key", "check", "severity", "message"]].reset_index(drop=True)


def case_errors(run_dir: str | Path, dataset: str, case: str) -> pd.DataFrame:
    """The ``errors`` rows of one case (step, model, severity, message)."""
    e = _read(run_dir, "errors", None, [dataset])
    return e[e.case == case][["step", "model", "severity", "message"]].reset_index(drop=True)


def case_embedding(run_dir: str | Path, dataset: str | None, columns: tuple[str, ...], method: str = "PCA",
                   seed: int = 0) -> tuple[pd.DataFrame, Embedding]:
    """:func:`segaudit.app.explore.embed_table` of the dataset's cases over ``columns`` (standardised): the
    cases with their ``x``, ``y`` (and every property column, for colouring) and the embedding's record.
    """
    props = properties(run_dir, dataset)
    emb = embed_table(props, list(columns), method, seed)
    out = props.loc[emb.index].assign(x=emb.coords[:, 0], y=emb.coords[:, 1]).reset_index(drop=True)
    return out, emb
