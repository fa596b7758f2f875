"""Does performance depend on a case property? Metric against a feature, and metric by metadata group.

Both take one value per case (a metric of one model and region) and one property per case (a feature from
the features table, or a metadata column), joined on (dataset, case). Undefined values are left out and
counted.

Sample sizes (:mod:`segaudit.analysis.minimums`): Spearman, its CI and the LOWESS trend need
``MIN_CORRELATION`` cases; a group's CI needs ``MIN_BOOTSTRAP_CI`` cases; Kruskal–Wallis uses only groups of at
least ``MIN_GROUP`` cases and needs two such groups. Below the minimum a result is NaN with a ``note``.

Which metadata columns are subgroups at all is decided by :func:`covariate_columns` (declared covariates, or
columns that look like one; never ids, URLs, DOIs, licences, paths or image sizes), and
:func:`subgroup_tests` corrects the p-values for testing several covariates (Holm).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from segaudit.analysis.compare import holm
from segaudit.analysis.minimums import MIN_BOOTSTRAP_CI, MIN_CORRELATION, MIN_GROUP, too_small
from segaudit.analysis.results import GroupTest, Trend
from segaudit.analysis.summary import bootstrap_ci, cluster_bootstrap_ci


def lowess(x, y, frac: float = 2 / 3, it: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Locally weighted linear regression (Cleveland's LOWESS, tricube weights, ``it`` robustness passes).

    Returns the sorted ``x`` and the fitted values; fewer than 3 points return them unchanged.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    n = x.size
    if n < 3:
        return x, y.copy()
    r = max(2, int(np.ceil(frac * n)))
    fit = np.empty(n)
    robust = np.ones(n)
    for _ in range(it + 1):
        for i in range(n):
            d = np.abs(x - x[i])
            h = np.partition(d, r - 1)[r - 1]
            w = np.clip(1 - (d / h) ** 3, 0, None) ** 3 if h > 0 else (d == 0).astype(float)
            w = w * robust
            sw = w.sum()
            if sw <= 0:
                fit[i] = y[i]
                continue
            mx, my = (w * x).sum() / sw, (w * y).sum() / sw
            vx = (w * (x - mx) ** 2).sum()
            beta = (w * (x - mx) * (y - my)).sum() / vx if vx > 0 else 0.0
            fit[i] = my + beta * (x[i] - mx)
        resid = y - fit
        s = np.median(np.abs(resid))
        if s == 0:
            break
        robust = np.clip(1 - (resid / (6 * s)) ** 2, 0, None) ** 2
    return x, fit


def metric_vs_feature(values: pd.DataFrame, level: float = 0.95, n_resamples: int = 2000, seed: int = 0) -> Trend:
    """Spearman correlation between ``metric`` and ``feature`` columns of a per-case table, with a bootstrap CI.

    Returns a :class:`~segaudit.analysis.results.Trend` (also readable as a dict): ``n``, ``n_dropped``,
    ``spearman_rho``, ``p`` (scipy's test of rho = 0, the test for a monotone
    trend), ``ci_low``/``ci_high`` (percentile bootstrap over cases), ``trend`` (a DataFrame x, fitted: the
    LOWESS curve, for plots; empty when there is no estimate) and ``note`` ('' or why there is no estimate:
    fewer than :data:`~segaudit.analysis.minimums.MIN_CORRELATION` cases, or a constant variable).

    With a ``subject`` column in which some cases share a subject (slices, time points), the CI resamples
    subjects (all cases of each drawn subject; ``resampled`` = ``"subjects"``, ``n_clusters``) and needs
    :data:`~segaudit.analysis.minimums.MIN_BOOTSTRAP_CI` subjects (else NaN, ``ci_note`` says why).
    """
    v = values[["metric", "feature"]].astype(float)
    ok = np.isfinite(v.metric) & np.isfinite(v.feature)
    x, y = v.feature[ok].to_numpy(), v.metric[ok].to_numpy()
    subj = values.subject[ok].astype(str).to_numpy() if "subject" in values.columns else np.arange(x.size)
    k = int(pd.unique(subj).size)
    out: dict[str, Any] = {"n": int(ok.sum()), "n_dropped": int((~ok).sum()),
                           "resampled": "subjects" if k < x.size else "cases", "n_clusters": k, "ci_note": ""}
    note = too_small(x.size, MIN_CORRELATION) or ("a constant variable: no correlation"
                                                  if np.ptp(x) == 0 or np.ptp(y) == 0 else "")
    if note:
        return Trend(**out, spearman_rho=np.nan, p=np.nan, ci_low=np.nan, ci_high=np.nan,
                     trend=pd.DataFrame({"x": [], "fitted": []}), note=note)
    res = stats.spearmanr(x, y)
    alpha = (1 - level) / 2
    tx, fitted = lowess(x, y)
    fit: dict[str, Any] = {"spearman_rho": float(res.statistic), "p": float(res.pvalue),
           "trend": pd.DataFrame({"x": tx, "fitted": fitted}), "note": ""}
    if k < x.size:
        out["ci_note"] = too_small(k, MIN_BOOTSTRAP_CI, "subjects") or ""
        lo, hi = (np.nan, np.nan) if out["ci_note"] else _cluster_rho_ci(x, y, subj, alpha, n_resamples, seed)
        return Trend(**out, **fit, ci_low=lo, ci_high=hi)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.size, size=(n_resamples, x.size))
    # Spearman's rho of every resample at once: Pearson correlation of the within-resample average ranks.
    rx = stats.rankdata(x[idx], axis=1)
    ry = stats.rankdata(y[idx], axis=1)
    rx -= rx.mean(axis=1, keepdims=True)
    ry -= ry.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        rhos = (rx * ry).sum(axis=1) / np.sqrt((rx * rx).sum(axis=1) * (ry * ry).sum(axis=1))
    rhos = rhos[np.isfinite(rhos)]
    lo, hi = np.quantile(rhos, [alpha, 1 - alpha]) if rhos.size else (np.nan, np.nan)
    return Trend(**out, **fit, ci_low=float(lo), ci_high=float(hi))


def _cluster_rho_ci(x, y, subj, alpha: float, n_resamples: int, seed: int) -> tuple[float, float]:
    """Percentile CI of Spearman's rho resampling whole subjects (every case of each drawn subject)."""
    codes = pd.factorize(pd.Series(subj))[0]
    members = [np.flatnonzero(codes == c) for c in range(codes.max() + 1)]
    rng = np.random.default_rng(seed)
    rhos = []
    for _ in range(n_resamples):
        idx = np.concatenate([members[i] for i in rng.integers(0, len(members), len(members))])
        rx, ry = stats.rankdata(x[idx]), stats.rankdata(y[idx])
        rx, ry = rx - rx.mean(), ry - ry.mean()
        den = np.sqrt((rx * rx).sum() * (ry * ry).sum())
        if den > 0:
            rhos.append((rx * ry).sum() / den)
    if not rhos:
        return (np.nan, np.nan)
    lo, hi = np.quantile(rhos, [alpha, 1 - alpha])
    return float(lo), float(hi)


def metric_by_group(values: pd.DataFrame, level: float = 0.95, n_resamples: int = 2000,
                    seed: int = 0, min_group: int = MIN_GROUP) -> tuple[pd.DataFrame, GroupTest]:
    """Metric by group (site, scanner, sex, age bin...).

    Per-group n, mean, median and bootstrap CI of the mean, a flag for groups whose CI excludes the overall mean, and a
    Kruskal–Wallis test across groups.

    A group's CI needs :data:`~segaudit.analysis.minimums.MIN_BOOTSTRAP_CI` cases (else NaN and ``note``
    "n too small"); only groups with a CI can be flagged. Kruskal–Wallis runs on the groups of at least
    ``min_group`` cases (:data:`~segaudit.analysis.minimums.MIN_GROUP`; smaller groups are listed with a note
    and left out of the test) and needs two of them.

    With a ``subject`` column in which cases share subjects (slices, time points), the subjects are the units:
    a group's size is its number of subjects, its CI resamples subjects (:func:`cluster_bootstrap_ci`) and
    Kruskal–Wallis compares subject means (``unit`` ``"subjects"``).

    ``values`` has columns ``metric`` and ``group`` (and optionally ``subject``). Returns (per-group table with
    ``n_subjects``, ``in_test`` and ``note``, :class:`~segaudit.analysis.results.GroupTest`
    with ``statistic``, ``p``, ``groups`` (groups tested),
    ``groups_too_small``, ``overall_mean``, ``unit``, ``note``).
    """
    cols = ["metric", "group"] + (["subject"] if "subject" in values.columns else [])
    v = values[cols].copy()
    v = v[np.isfinite(v.metric.astype(float)) & v.group.notna()]
    if "subject" not in v.columns:
        v["subject"] = np.arange(len(v)).astype(str)
    v["subject"] = v.subject.astype(str)
    clustered = v.subject.nunique() < len(v)
    overall = float(v.metric.mean()) if len(v) else np.nan
    rows = []
    samples = []
    for g, part in v.groupby("group", sort=True):
        m = part.metric.to_numpy(dtype=float)
        k = part.subject.nunique()
        if clustered:  # subjects are the units: CI resamples them, the test compares subject means
            lo, hi = cluster_bootstrap_ci(m, part.subject.to_numpy(), level, n_resamples, "percentile", seed)
            unit_values = part.groupby("subject").metric.mean().to_numpy(dtype=float)
        else:
            lo, hi = bootstrap_ci(m, level, n_resamples, "percentile", seed)
            unit_values = m
        unit = "subjects" if clustered else ""
        small = too_small(k, min_group, unit)
        rows.append({"group": g, "n": m.size, "n_subjects": k, "mean": m.mean(), "median": float(np.median(m)),
                     "ci_low": lo, "ci_high": hi,
                     "differs_from_overall": bool(np.isfinite(lo) and (lo > overall or hi < overall)),
                     "in_test": small is None,
                     "note": small or too_small(k, MIN_BOOTSTRAP_CI, unit) or ""})
        if small is None:
            samples.append(unit_values)
    tested = np.concatenate(samples) if samples else np.array([])
    test: dict[str, Any] = {"groups": len(samples), "groups_too_small": len(rows) - len(samples),
                            "overall_mean": overall, "statistic": np.nan, "p": np.nan, "note": "",
                            "unit": "subjects" if clustered else "cases"}
    if len(samples) < 2:
        test["note"] = (f"n too small: {len(samples)} group(s) of at least {min_group} cases "
                        f"({test['groups_too_small']} smaller group(s) left out); Kruskal–Wallis needs two")
    elif np.ptp(tested) == 0:
        test["note"] = "the metric is constant over the groups"
    else:
        kw = stats.kruskal(*samples)
        test.update({"statistic": float(kw.statistic), "p": float(kw.pvalue)})
    return pd.DataFrame(rows), GroupTest(**test)


#: Column names that are never covariates: identifiers, links, licences, file names and paths, image
#: dimensions and file sizes, dates, splits and time points (whole words of a snake/camel-case name).
_NOT_COVARIATE_WORDS = {"id", "ids", "uid", "uuid", "case", "subject", "patient", "patientid", "dataset", "url",
                        "uri", "link", "href", "doi", "pmid", "license", "licence", "licenses", "copyright",
                        "attribution", "path", "file", "filename", "filepath", "mask", "image", "img", "name",
                        "width", "height", "depth", "size", "bytes", "filesize", "shape", "dims", "resolution",
                        "date", "time", "timestamp", "split", "fold", "timepoint", "slice", "tags", "md5", "sha",
                        "hash", "checksum", "mode"}
_NOT_COVARIATE_VALUE = (r"^(?:https?://|www\.|doi:|10\.\d{4,}/|cc[ -]by|/|[a-z]:\\)"
                        r"|\.(?:png|jpe?g|nii|gz|tiff?|dcm|csv)$")


#: A numeric column with more distinct values than this is a continuous covariate (Spearman), else categorical.
_MAX_LEVELS_NUMERIC = 5


def _name_words(col: str) -> set[str]:
    import re

    spaced = re.sub(r"(?<=[a-z])(?=[A-Z])", "_", str(col))
    words = {w for w in re.split(r"[^0-9a-zA-Z]+", spaced.lower()) if w}
    return words | {re.sub(r"\d+$", "", w) for w in words} | {re.sub(r"^v\d+", "", w) for w in words}


def covariate_columns(meta: pd.DataFrame, declared: list[str] | None = None,
                      min_group: int = MIN_GROUP) -> tuple[dict[str, tuple[str, pd.Series]], pd.DataFrame]:
    """Which metadata columns are bias covariates, and why every other column is not.

    ``declared`` (the project's ``metadata: {covariates: [...]}``): exactly those columns, each used as
    categorical (its levels are groups) unless numeric with more than 5 distinct values. Otherwise a column is
    a covariate when it looks like one:

    - its name is not an identifier, link, licence, path, image size, date... (:data:`_NOT_COVARIATE_WORDS`)
      and its values are not URLs, DOIs, licence strings, paths or file names;
    - it is numeric (at least :data:`~segaudit.analysis.minimums.MIN_CORRELATION` cases and more than 5
      distinct values: analysed by Spearman correlation), or categorical with 2-12 levels each of at least
      ``min_group`` cases (a level with fewer cases cannot be tested, see :func:`metric_by_group`);
    - it is not unique per case (an identifier in disguise).

    Returns ``({column: (kind, values)}, excluded)`` where kind is ``"categorical"`` or ``"numeric"``, values are
    aligned with ``meta``'s rows, and ``excluded`` is a DataFrame (column, reason) of every other column.
    """
    meta_cols = [c for c in meta.columns if c not in ("dataset", "case", "subject", "timepoint")]
    chosen: dict[str, tuple[str, pd.Series]] = {}
    excluded = []
    n_cases = len(meta)
    for col in meta_cols:
        raw = meta[col]
        text = raw.dropna().astype(str).str.strip()
        text = text[text != ""]
        num = pd.to_numeric(raw, errors="coerce")
        numeric = len(text) > 0 and num.notna().sum() == len(text)
        if declared is not None:
            if col not in declared:
                excluded.append((col, "not declared in metadata: covariates"))
                continue
            many = numeric and num.nunique() > _MAX_LEVELS_NUMERIC
            chosen[col] = ("numeric", num) if many else ("categorical", raw.where(raw.notna()).astype(object))
            continue
        words = _name_words(col)
        if words & _NOT_COVARIATE_WORDS:
            excluded.append((col, f"name looks like {sorted(words & _NOT_COVARIATE_WORDS)[0]!r}, not a covariate"))
            continue
        if len(text) == 0:
            excluded.append((col, "no values"))
            continue
        if text.str.contains(_NOT_COVARIATE_VALUE, case=False, regex=True).mean() > 0.5:
            excluded.append((col, "values are links, DOIs, licences, paths or file names"))
            continue
        if numeric and (num.nunique() > _MAX_LEVELS_NUMERIC or num.nunique() == num.notna().sum()):
            note = too_small(int(num.notna().sum()), MIN_CORRELATION)
            if note:
                excluded.append((col, f"numeric, {note}"))
            else:
                chosen[col] = ("numeric", num)
            continue
        levels = text.value_counts()
        if levels.size == n_cases or (levels.size > 1 and levels.max() == 1):
            excluded.append((col, "a different value for every case (an identifier)"))
        elif not 2 <= levels.size <= 12:
            excluded.append((col, f"{levels.size} levels (a covariate has 2-12)"))
        elif levels.min() < min_group:
            excluded.append((col, f"level {levels.idxmin()!r} has {levels.min()} case(s) (< {min_group})"))
        else:
            chosen[col] = ("categorical", raw.where(raw.notna()).astype(object))
    return chosen, pd.DataFrame(excluded, columns=["column", "reason"])


def subgroup_tests(values: pd.DataFrame, meta: pd.DataFrame, covariates: dict[str, tuple[str, pd.Series]],
                   n_resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
    """One test per covariate of a per-case metric, Holm-corrected across the covariates.

    ``values``: columns ``case`` and ``metric`` (one model, one region; optionally ``subject``, then the
    subjects are the units, see :func:`metric_by_group`); ``meta``: the cases with their
    metadata (``case`` column, rows aligned with ``covariates``' values). Categorical covariates get
    Kruskal–Wallis (:func:`metric_by_group`), numeric ones Spearman (:func:`metric_vs_feature`). Returns one
    row per covariate: covariate, kind, test, n, groups, statistic, p, ``p_holm`` and note.

    Holm rather than Benjamini–Hochberg: the covariates are few (typically 2-8), so Holm's family-wise control
    costs little power, it holds under any dependence between the tests (sex, age and site are correlated),
    and each subgroup finding is read as a claim about that subgroup, where one false claim matters more than
    a false discovery rate.
    """
    rows = []
    for col, (kind, series) in covariates.items():
        keep = ["case", "metric"] + (["subject"] if "subject" in values.columns else [])
        t = values[keep].merge(pd.DataFrame({"case": meta.case.to_numpy(),
                                                           "cov": series.to_numpy()}), on="case")
        if kind == "numeric":
            res = metric_vs_feature(t.assign(feature=pd.to_numeric(t["cov"], errors="coerce")),
                                    n_resamples=n_resamples, seed=seed)
            rows.append({"covariate": col, "kind": kind, "test": "spearman", "n": res["n"], "groups": np.nan,
                         "statistic": res["spearman_rho"], "p": res["p"], "note": res["note"]})
        else:
            table, test = metric_by_group(t.rename(columns={"cov": "group"}), n_resamples=n_resamples, seed=seed)
            rows.append({"covariate": col, "kind": kind, "test": "kruskal-wallis",
                         "n": int(table.n[table.in_test].sum()) if len(table) else 0, "groups": test["groups"],
                         "statistic": test["statistic"], "p": test["p"], "note": test["note"]})
    out = pd.DataFrame(rows, columns=["covariate", "kind", "test", "n", "groups", "statistic", "p", "note"])
    out["p_holm"] = holm(out.p.to_numpy(dtype=float)) if len(out) else []
    return out
