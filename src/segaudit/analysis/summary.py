"""Summaries of long metric rows: central tendency, spread and bootstrap confidence intervals per group.

Input is the store's long ``metrics`` table (dataset, case, model, region, metric, value). The flags
``gt_empty``/``pred_empty`` that ``evaluate`` writes for every region decide which cases are "both empty": their
similarity values (1 by policy) and distances (0) say nothing about a model's skill, so they are counted in
``n_both_empty`` and left out of the statistics by default instead of inflating the means. Undefined values
(NaN, inf) are never dropped silently: they are counted in ``n_undefined``.

Confidence intervals need :data:`~segaudit.analysis.minimums.MIN_BOOTSTRAP_CI` independent units; below that
they are NaN with a ``ci_note`` ("n too small (n=3 < 10)"). When cases share a subject (slices of one patient,
time points of one patient) the units are subjects and the bootstrap resamples subjects (``resampled``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from segaudit.analysis.minimums import MIN_BOOTSTRAP_CI, too_small

GROUP = ["dataset", "model", "region", "metric"]
#: Most values one bootstrap batch holds (resamples × sample size): 4 MB of float64.
BATCH_VALUES = 2**19
FLAGS = ("gt_empty", "pred_empty", "gt_voxels", "pred_voxels", "tp", "fp", "fn", "tn")


def with_empty_flags(metrics: pd.DataFrame) -> pd.DataFrame:
    """Metric rows (flags removed) with boolean columns ``gt_empty``, ``pred_empty`` and ``both_empty``.

    Cases without flag rows (e.g. imported AUDIT tables) get False.
    """
    m = metrics
    key = ["dataset", "case", "model", "region"]
    flags = m[m.metric.isin(["gt_empty", "pred_empty"])].pivot_table(index=key, columns="metric", values="value",
                                                                       aggfunc="first")
    rows = m[~m.metric.isin(FLAGS)].copy()
    if flags.empty:
        rows["gt_empty"] = rows["pred_empty"] = False
    else:
        flags = flags.reindex(columns=["gt_empty", "pred_empty"]).fillna(0).astype(bool).reset_index()
        rows = rows.merge(flags, on=key, how="left")
        rows[["gt_empty", "pred_empty"]] = rows[["gt_empty", "pred_empty"]].fillna(False).astype(bool)
    rows["both_empty"] = rows.gt_empty & rows.pred_empty
    return rows


def drop_both_empty(metrics: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Value rows without the both-empty (dataset, case, model, region) values, and how many were set apart.

    The one rule every view applies (summary, strip plots, worst/best panels, comparisons, rankings): a case
    where ground truth and prediction are both empty scores the policy's both-empty value (Dice 1 by the
    default :class:`~segaudit.metrics.policy.EmptyPolicy`, NaN under ``--empty-both nan``), which says nothing
    about a model's skill; it is set apart and counted, never drawn or averaged as a success. Returns the kept
    rows (flag rows removed) and per (dataset, model, region) the count ``n_both_empty``.
    """
    rows = with_empty_flags(metrics)
    apart = rows[rows.both_empty].drop_duplicates(["dataset", "case", "model", "region"])
    counts = apart.groupby(["dataset", "model", "region"]).size().rename("n_both_empty").reset_index()
    kept = rows[~rows.both_empty].drop(columns=["gt_empty", "pred_empty", "both_empty"])
    return kept.reset_index(drop=True), counts


def bootstrap_ci(values: np.ndarray, level: float = 0.95, n_resamples: int = 2000, method: str = "BCa",
                 seed: int = 0, min_n: int = MIN_BOOTSTRAP_CI) -> tuple[float, float]:
    """Bootstrap confidence interval of the mean (``method`` ``"BCa"`` or ``"percentile"``, scipy.stats.bootstrap).

    Fewer than ``min_n`` values (default :data:`~segaudit.analysis.minimums.MIN_BOOTSTRAP_CI`): NaN bounds
    (:func:`ci_note` gives the reason). A constant sample: ``(mean, mean)``.
    """
    v = np.asarray(values, dtype=float)
    if v.size < max(2, min_n):
        return (np.nan, np.nan)
    if np.all(v == v[0]):
        return (float(v[0]), float(v[0]))
    res = stats.bootstrap((v,), np.mean, confidence_level=level, n_resamples=n_resamples, method=method,
                          random_state=np.random.default_rng(seed), vectorized=True,
                          batch=bootstrap_batch(v.size, n_resamples))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def bootstrap_batch(n: int, n_resamples: int, values: int = BATCH_VALUES) -> int:
    """Resamples per batch for ``scipy.stats.bootstrap`` so that one batch holds at most ``values`` values.

    Without a batch, scipy draws every resample at once (``n_resamples × n``) and, for BCa, every jackknife
    sample at once (``n × (n - 1)``, quadratic: 150 MB at 3000 cases); batches give the same interval (the
    same random stream, drawn in pieces) in bounded memory.

    >>> bootstrap_batch(3000, 1000)
    174
    >>> bootstrap_batch(20, 1000)
    1000
    """
    return max(1, min(n_resamples, values // max(1, n)))


def _ratio_of_sums(sums, counts, axis=-1):
    return sums.sum(axis=axis) / counts.sum(axis=axis)


def cluster_bootstrap_ci(values, clusters, level: float = 0.95, n_resamples: int = 2000, method: str = "BCa",
                         seed: int = 0, min_clusters: int = MIN_BOOTSTRAP_CI) -> tuple[float, float]:
    """Cluster (subject-level) bootstrap CI of the mean of ``values``, resampling whole ``clusters``.

    Definition: draw the clusters (subjects) with replacement, keep every value of each drawn cluster, and take
    the mean over all kept values; the CI is the ``method`` interval (``"BCa"`` or ``"percentile"``,
    scipy.stats.bootstrap on the per-cluster sums and counts, paired) of that resampled mean. This is the
    bootstrap for values that are not independent within a subject (2D slices of one patient, time points):
    resampling single cases would treat 9 slices of one patient as 9 patients and give too narrow an interval.
    With one value per cluster it equals :func:`bootstrap_ci` exactly (same seed).

    Fewer than ``min_clusters`` clusters: NaN bounds. All values equal: ``(mean, mean)``.
    """
    v = np.asarray(values, dtype=float)
    c = pd.factorize(pd.Series(np.asarray(clusters, dtype=object)))[0]
    k = int(c.max()) + 1 if c.size else 0
    if k < max(2, min_clusters):
        return (np.nan, np.nan)
    if np.all(v == v[0]):
        return (float(v[0]), float(v[0]))
    sums = np.bincount(c, weights=v, minlength=k)
    counts = np.bincount(c, minlength=k).astype(float)
    res = stats.bootstrap((sums, counts), _ratio_of_sums, paired=True, confidence_level=level,
                          n_resamples=n_resamples, method=method, random_state=np.random.default_rng(seed),
                          vectorized=True, batch=bootstrap_batch(k, n_resamples))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def ci_note(n: int, n_clusters: int | None = None, min_n: int = MIN_BOOTSTRAP_CI) -> str:
    """Why a bootstrap CI is missing ('' when it is not): the count that decides is subjects when clustered."""
    if n_clusters is not None and n_clusters < n:
        return too_small(n_clusters, min_n, "subjects") or ""
    return too_small(n, min_n) or ""


def subject_of(cases: pd.DataFrame | None) -> pd.DataFrame | None:
    """(dataset, case, subject) rows of the store's ``cases`` table where a subject is known, else None."""
    if cases is None or cases.empty or "subject" not in cases.columns:
        return None
    s = cases[cases.subject.notna() & (cases.subject.astype(str) != "")][["dataset", "case", "subject"]]
    return s.drop_duplicates(["dataset", "case"]) if len(s) else None


def summarize(metrics: pd.DataFrame, by: list[str] | None = None, level: float = 0.95, n_resamples: int = 2000,
              include_both_empty: bool = False, seed: int = 0, subjects: pd.DataFrame | None = None,
              coverage: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per group (default dataset × model × region × metric): n, mean, std, median, q1, q3, iqr, bootstrap CIs.

    Columns: ``n`` (finite values used), ``n_undefined`` (NaN or infinite values, not used),
    ``n_both_empty`` (cases where ground truth and prediction are both empty: left out unless
    ``include_both_empty``), ``mean``, ``std`` (ddof 1), ``median``, ``q1``, ``q3``, ``iqr``, ``ci_low``/``ci_high``
    (BCa bootstrap of the mean) and ``ci_pct_low``/``ci_pct_high`` (percentile bootstrap), ``resampled``
    (``"subjects"`` when ``subjects`` maps cases to subjects and some share one: the cluster bootstrap of
    :func:`cluster_bootstrap_ci`; else ``"cases"``), ``n_clusters`` (independent units resampled) and
    ``ci_note`` (``"n too small (n=3 < 10)"`` when there are fewer than
    :data:`~segaudit.analysis.minimums.MIN_BOOTSTRAP_CI` units and the CI is NaN; '' otherwise).
    ``subjects``: (dataset, case, subject) rows, e.g. :func:`subject_of` of the store's ``cases`` table; cases
    without a subject are their own subject. Deterministic (``seed``). With ``coverage``
    (:func:`segaudit.analysis.coverage.coverage`) every row also carries its model's ``n_expected``,
    ``n_scored``, ``n_missing``, ``n_failed`` and ``complete``, so a model that delivered half its cases cannot
    read as a perfect one.
    """
    by = by or GROUP
    rows = with_empty_flags(metrics)
    if subjects is not None and len(subjects):
        rows = rows.merge(subjects[["dataset", "case", "subject"]].astype({"subject": str}),
                          on=["dataset", "case"], how="left")
    else:
        rows = rows.assign(subject=np.nan)
    rows["subject"] = rows.subject.where(rows.subject.notna(), "case:" + rows.case.astype(str))
    out = []
    for key, g in rows.groupby(by, sort=True, dropna=False):
        both = g.both_empty
        used = g if include_both_empty else g[~both]
        v = used.value.to_numpy(dtype=float)
        fin = np.isfinite(v)
        finite = v[fin]
        clusters = used.subject.to_numpy()[fin]
        k = int(pd.unique(clusters).size)
        rec = dict(zip(by, key if isinstance(key, tuple) else (key,), strict=True))
        rec.update({"n": int(finite.size), "n_undefined": int(v.size - finite.size),
                    "n_both_empty": int(both.sum())})
        if finite.size:
            q1, med, q3 = np.percentile(finite, [25, 50, 75])
            rec.update({"mean": float(finite.mean()), "std": float(finite.std(ddof=1)) if finite.size > 1
                        else np.nan, "median": float(med), "q1": float(q1), "q3": float(q3),
                        "iqr": float(q3 - q1)})
        else:
            rec.update(dict.fromkeys(("mean", "std", "median", "q1", "q3", "iqr"), np.nan))
        if k < finite.size:  # some cases share a subject: resample subjects
            rec["ci_low"], rec["ci_high"] = cluster_bootstrap_ci(finite, clusters, level, n_resamples, "BCa", seed)
            rec["ci_pct_low"], rec["ci_pct_high"] = cluster_bootstrap_ci(finite, clusters, level, n_resamples,
                                                                         "percentile", seed)
            rec["resampled"] = "subjects"
        else:
            rec["ci_low"], rec["ci_high"] = bootstrap_ci(finite, level, n_resamples, "BCa", seed)
            rec["ci_pct_low"], rec["ci_pct_high"] = bootstrap_ci(finite, level, n_resamples, "percentile", seed)
            rec["resampled"] = "cases"
        rec["n_clusters"] = k
        rec["ci_note"] = ci_note(int(finite.size), k)
        out.append(rec)
    res = pd.DataFrame(out)
    if coverage is not None and len(res) and {"dataset", "model"} <= set(res.columns):
        cols = ["dataset", "model", "n_expected", "n_scored", "n_missing", "n_failed", "complete"]
        res = res.merge(coverage[cols], on=["dataset", "model"], how="left")
    return res
