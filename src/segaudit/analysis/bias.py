"""Does performance depend on a case property? Metric against a feature, and metric by metadata group.

Both take one value per case (a metric of one model and region) and one property per case (a feature from
the features table, or a metadata column), joined on (dataset, case). Undefined values are left out and
counted.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from segaudit.analysis.summary import bootstrap_ci


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


def metric_vs_feature(values: pd.DataFrame, level: float = 0.95, n_resamples: int = 2000, seed: int = 0) -> dict:
    """Spearman correlation between ``metric`` and ``feature`` columns of a per-case table, with a bootstrap CI.

    Returns ``n``, ``n_dropped``, ``spearman_rho``, ``p`` (scipy's test of rho = 0, the test for a monotone
    trend), ``ci_low``/``ci_high`` (percentile bootstrap over cases) and ``trend`` (a DataFrame x, fitted: the
    LOWESS curve, for plots).
    """
    v = values[["metric", "feature"]].astype(float)
    ok = np.isfinite(v.metric) & np.isfinite(v.feature)
    x, y = v.feature[ok].to_numpy(), v.metric[ok].to_numpy()
    out = {"n": int(ok.sum()), "n_dropped": int((~ok).sum())}
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return {**out, "spearman_rho": np.nan, "p": np.nan, "ci_low": np.nan, "ci_high": np.nan,
                "trend": pd.DataFrame({"x": x, "fitted": y})}
    res = stats.spearmanr(x, y)
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
    alpha = (1 - level) / 2
    lo, hi = np.quantile(rhos, [alpha, 1 - alpha]) if rhos.size else (np.nan, np.nan)
    tx, fitted = lowess(x, y)
    return {**out, "spearman_rho": float(res.statistic), "p": float(res.pvalue), "ci_low": float(lo),
            "ci_high": float(hi), "trend": pd.DataFrame({"x": tx, "fitted": fitted})}


def metric_by_group(values: pd.DataFrame, level: float = 0.95, n_resamples: int = 2000,
                    seed: int = 0, min_flag_n: int = 5) -> tuple[pd.DataFrame, dict]:
    """Metric by group (site, scanner, sex, age bin...): per-group n, mean, median and bootstrap CI of the mean,
    a flag for groups whose CI excludes the overall mean, and a Kruskal–Wallis test across groups.

    Groups smaller than ``min_flag_n`` are never flagged: a percentile bootstrap of 2–4 values gives a CI far
    narrower than the real uncertainty.

    ``values`` has columns ``metric`` and ``group``. Returns (per-group table, test dict with ``statistic``,
    ``p``, ``groups``, ``overall_mean``).
    """
    v = values[["metric", "group"]].copy()
    v = v[np.isfinite(v.metric.astype(float)) & v.group.notna()]
    overall = float(v.metric.mean()) if len(v) else np.nan
    rows = []
    samples = []
    for g, part in v.groupby("group", sort=True):
        m = part.metric.to_numpy(dtype=float)
        lo, hi = bootstrap_ci(m, level, n_resamples, "percentile", seed)
        rows.append({"group": g, "n": m.size, "mean": m.mean(), "median": float(np.median(m)), "ci_low": lo,
                     "ci_high": hi, "differs_from_overall": bool(m.size >= min_flag_n and np.isfinite(lo)
                                                 and (lo > overall or hi < overall))})
        samples.append(m)
    test = {"groups": len(samples), "overall_mean": overall, "statistic": np.nan, "p": np.nan}
    if len(samples) >= 2 and all(s.size for s in samples) and np.ptp(v.metric.to_numpy(dtype=float)) > 0:
        kw = stats.kruskal(*samples)
        test.update({"statistic": float(kw.statistic), "p": float(kw.pvalue)})
    return pd.DataFrame(rows), test
