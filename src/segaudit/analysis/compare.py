"""Comparing two models on the same cases: paired tests on the differences, effect sizes, flips.

The unit of analysis is the case: both models must have a value for it (pairs with a missing or undefined
value on either side are counted in ``n_dropped``, never silently averaged away). Normality is checked on the
*paired differences* (Shapiro–Wilk), which is what the paired t-test assumes; when it is rejected the
Wilcoxon signed-rank test is the one reported. Both tests are always computed so a reader can see both.

Sample sizes (:mod:`segaudit.analysis.minimums`): fewer than ``MIN_PAIRED_TEST`` pairs get no test ("n too
small"); with fewer than ``MIN_SHAPIRO`` pairs normality is not tested and the Wilcoxon test is the default;
the CI of the mean difference needs ``MIN_BOOTSTRAP_CI`` pairs. When cases share a subject (slices, time
points), :func:`compare_models` averages each subject's differences first: the subjects are the pairs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from segaudit.analysis.minimums import MIN_BOOTSTRAP_CI, MIN_PAIRED_TEST, MIN_SHAPIRO, too_small
from segaudit.analysis.results import FlipTable, PairedTest
from segaudit.errors import ConfigError

LOWER_IS_BETTER = ("hd", "hd95", "assd", "masd", "hd_audit", "volume_difference", "relative_volume_error",
                   "lesion_hd95", "brier", "lesion_fp", "lesion_fn", "fp", "fn")


def higher_is_better(metric: str) -> bool:
    """Whether larger values of a metric are better (distances, errors, losses and false counts are not).

    Case-insensitive; any name containing ``loss`` or ``error`` (training curves: ``loss``, ``dice_loss``) is
    lower-is-better.
    """
    m = metric.lower()
    # Lesion-wise and agreement distances follow their base metric (lesion_hd90, agree_loo_hd95 are distances).
    for prefix in ("lesion_", "agree_loo_", "agree_"):
        if m.startswith(prefix) and m[len(prefix):].startswith(("hd", "assd", "masd")):
            m = m[len(prefix):]
    return not (m in LOWER_IS_BETTER or m.startswith(("hd", "assd", "masd")) or "loss" in m or "error" in m)


def holm(pvalues) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values (step-down, monotone, capped at 1; NaN kept as NaN)."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    q = p[ok]
    m = q.size
    if m == 0:
        return out
    order = np.argsort(q, kind="stable")
    adj = np.maximum.accumulate((m - np.arange(m)) * q[order])
    res = np.empty(m)
    res[order] = np.minimum(adj, 1.0)
    out[ok] = res
    return out


def rank_biserial(d: np.ndarray) -> float:
    """Matched-pairs rank-biserial correlation: (W+ - W-) / (W+ + W-) over the non-zero differences."""
    d = np.asarray(d, dtype=float)
    d = d[d != 0]
    if d.size == 0:
        return 0.0
    r = stats.rankdata(np.abs(d))
    plus, minus = r[d > 0].sum(), r[d < 0].sum()
    return float((plus - minus) / (plus + minus))


def paired_test(baseline, candidate, alpha: float = 0.05, level: float = 0.95, better: str = "higher",
                unit: str = "") -> PairedTest:
    """Paired comparison of two vectors of per-case values (same order, same cases).

    Returns a :class:`~segaudit.analysis.results.PairedTest` (also readable as a dict): ``n``, ``n_dropped``,
    ``mean_baseline``, ``mean_candidate``, ``mean_diff`` (candidate -
    baseline) with its t-based ``ci_low``/``ci_high`` (NaN below ``MIN_BOOTSTRAP_CI`` pairs, ``ci_note`` says
    why), ``median_diff``, ``improvement`` (in the metric's good
    direction), ``relative_improvement_pct`` (of the baseline mean), ``ratio`` (candidate/baseline mean),
    ``shapiro_p`` (normality of the differences; NaN below ``MIN_SHAPIRO`` pairs), ``t_p`` (paired t-test),
    ``wilcoxon_p``, ``test`` and ``p`` (the one chosen; ``"none"`` and NaN below ``MIN_PAIRED_TEST`` pairs),
    ``reason`` (why, in words), ``cohens_dz`` (mean/std of differences), ``rank_biserial``. All differences
    zero: both p-values are 1. ``unit`` names what a pair is in the reasons (``"subjects"``; default cases).
    """
    a = np.asarray(baseline, dtype=float)
    b = np.asarray(candidate, dtype=float)
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    d = b - a
    n = int(d.size)
    sign = 1.0 if better == "higher" else -1.0
    out: dict[str, Any] = {"n": n, "n_dropped": int((~ok).sum()), "mean_baseline": float(a.mean()) if n else np.nan,
           "mean_candidate": float(b.mean()) if n else np.nan, "mean_diff": float(d.mean()) if n else np.nan,
           "median_diff": float(np.median(d)) if n else np.nan}
    out["improvement"] = sign * out["mean_diff"]
    base = out["mean_baseline"]
    out["relative_improvement_pct"] = 100 * out["improvement"] / abs(base) if n and base else np.nan
    out["ratio"] = out["mean_candidate"] / base if n and base else np.nan
    sd = float(d.std(ddof=1)) if n > 1 else np.nan
    ci_reason = too_small(n, MIN_BOOTSTRAP_CI, unit)
    if ci_reason is None:
        half = stats.t.ppf(0.5 + level / 2, n - 1) * sd / np.sqrt(n)
        out["ci_low"], out["ci_high"] = out["mean_diff"] - half, out["mean_diff"] + half
    else:
        out["ci_low"] = out["ci_high"] = np.nan
    out["ci_note"] = ci_reason or ""
    out["cohens_dz"] = out["mean_diff"] / sd if n > 1 and sd > 0 else (0.0 if n > 1 else np.nan)
    out["rank_biserial"] = rank_biserial(d) if n else np.nan
    few = too_small(n, MIN_PAIRED_TEST, unit)
    if few:
        out.update({"shapiro_p": np.nan, "t_p": np.nan, "wilcoxon_p": np.nan, "test": "none", "p": np.nan,
                    "reason": f"{few}: a paired test needs at least {MIN_PAIRED_TEST} pairs (with fewer the "
                              "exact Wilcoxon test cannot reach p < 0.05)"})
        return PairedTest(**out)
    if np.all(d == 0):
        out.update({"shapiro_p": np.nan, "t_p": 1.0, "wilcoxon_p": 1.0, "test": "none", "p": 1.0,
                    "reason": "the two models give identical values on every case"})
        return PairedTest(**out)
    out["shapiro_p"] = float(stats.shapiro(d).pvalue) if n >= MIN_SHAPIRO and np.ptp(d) > 0 else np.nan
    out["t_p"] = float(stats.ttest_rel(b, a).pvalue) if sd > 0 else (0.0 if d.mean() != 0 else 1.0)
    out["wilcoxon_p"] = float(stats.wilcoxon(d).pvalue)
    if n < MIN_SHAPIRO:
        out.update({"test": "wilcoxon", "p": out["wilcoxon_p"],
                    "reason": f"with {n} pairs normality cannot be checked (Shapiro-Wilk needs at least "
                              f"{MIN_SHAPIRO}), so the Wilcoxon signed-rank test, which does not assume it"})
    elif np.isnan(out["shapiro_p"]):
        out.update({"test": "wilcoxon", "p": out["wilcoxon_p"],
                    "reason": "the differences are all equal: normality cannot be checked, so the rank test"})
    elif out["shapiro_p"] >= alpha:
        out.update({"test": "paired t-test", "p": out["t_p"],
                    "reason": f"the paired differences look normal (Shapiro-Wilk p = {out['shapiro_p']:.3g} >= "
                              f"{alpha}), so the paired t-test on their mean"})
    else:
        out.update({"test": "wilcoxon", "p": out["wilcoxon_p"],
                    "reason": f"the paired differences are not normal (Shapiro-Wilk p = {out['shapiro_p']:.3g} "
                              f"< {alpha}), so the Wilcoxon signed-rank test"})
    return PairedTest(**out)


def mcnemar_exact(flip_to_correct: int, flip_to_incorrect: int) -> float:
    """Two-sided exact McNemar p-value: a binomial test of the discordant pairs against 1/2."""
    n = flip_to_correct + flip_to_incorrect
    if n == 0:
        return 1.0
    return float(stats.binomtest(min(flip_to_correct, flip_to_incorrect), n, 0.5).pvalue)


def flip_table(baseline_ok, candidate_ok, ids=None, sample: int = 5, seed: int = 0) -> FlipTable:
    """Per-case outcome flips between two predictors (booleans: correct / pass).

    Returns a :class:`~segaudit.analysis.results.FlipTable` (also readable as a dict): ``groups`` (a DataFrame:
    group, n, percent, sample ids) for ``flip_to_correct`` (baseline wrong,
    candidate right), ``flip_to_incorrect``, ``correct_correct`` and ``incorrect_incorrect``;
    ``baseline_accuracy``, ``candidate_accuracy``, ``n`` and the exact McNemar ``p``.
    """
    a = np.asarray(baseline_ok, dtype=bool)
    b = np.asarray(candidate_ok, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"baseline and candidate have different lengths ({a.size} vs {b.size})")
    ids = np.asarray(ids if ids is not None else np.arange(a.size))
    groups = {"flip_to_correct": ~a & b, "flip_to_incorrect": a & ~b, "correct_correct": a & b,
              "incorrect_incorrect": ~a & ~b}
    rng = np.random.default_rng(seed)
    rows = []
    for name, sel in groups.items():
        members = ids[sel]
        pick = members if members.size <= sample else rng.choice(members, sample, replace=False)
        rows.append({"group": name, "n": int(sel.sum()), "percent": 100 * sel.mean() if a.size else np.nan,
                     "sample_ids": ", ".join(map(str, pick))})
    n10, n01 = int(groups["flip_to_correct"].sum()), int(groups["flip_to_incorrect"].sum())
    return FlipTable(groups=pd.DataFrame(rows), n=int(a.size),
                     baseline_accuracy=float(a.mean()) if a.size else np.nan,
                     candidate_accuracy=float(b.mean()) if a.size else np.nan, p=mcnemar_exact(n10, n01))


def mean_over_regions(metrics: pd.DataFrame) -> pd.DataFrame:
    """Each (dataset, case, model)'s mean over its regions, as rows of region ``"mean"``.

    AUDIT's per-subject aggregation. Undefined (NaN) region values are skipped by the mean.
    """
    return metrics.groupby(["dataset", "case", "model"], as_index=False).value.mean().assign(region="mean")


def default_pass_threshold(metric: str, values) -> float:
    """The flip table's pass threshold when none is given.

    0.5 for a similarity metric on [0, 1] (Dice, IoU, NSD, F1...), else a ValueError: a distance or count has units (mm,
    px, lesions) and no default pass level, so the Dice default must never be applied to it (0.5 mm of HD95 would fail
    almost every case).
    """
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if higher_is_better(metric) and (v.size == 0 or (v.min() >= 0 and v.max() <= 1)):
        return 0.5
    raise ConfigError(f"comparing {metric!r} needs an explicit pass threshold in the metric's own units for the "
                     f"flip table (e.g. --threshold 10 for 'pass when {metric} <= 10'); the Dice default 0.5 "
                     f"applies only to similarity metrics between 0 and 1")


def _per_subject(wide: pd.DataFrame, subjects: pd.DataFrame | None) -> tuple[pd.DataFrame, str]:
    """Each subject's mean of the paired cases (both values finite) when some subjects have several cases."""
    if subjects is None or subjects.empty:
        return wide, "cases"
    sub = subjects.drop_duplicates(["dataset", "case"]).set_index(["dataset", "case"]).subject
    w = wide[np.isfinite(wide).all(axis=1)]
    subj = pd.Series(sub.reindex(w.index).to_numpy(), index=w.index, dtype=object)
    subj = subj.where(subj.notna(), pd.Series([f"case:{c}" for c in w.index], index=w.index))
    if subj.nunique() == len(subj):
        return wide, "cases"
    per = w.groupby([w.index.get_level_values("dataset"), subj.to_numpy()]).mean()
    dropped = len(wide) - len(w)  # pairs with a missing side stay visible as dropped (NaN rows)
    if dropped:
        per = pd.concat([per, pd.DataFrame(np.nan, index=range(dropped), columns=wide.columns)])
    return per, "subjects"
def set_apart_both_empty(rows: pd.DataFrame, models: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Drop the (dataset, case, region) values where every one of ``models`` is both-empty.

    A case with nothing to find that every model leaves empty scores the policy's both-empty value (Dice 1,
    distance 0) for all of them: a tie by construction that says nothing about skill, so every comparison and
    ranking sets it apart (and counts it) instead of averaging it in. ``rows`` are long metric rows with the
    ``gt_empty``/``pred_empty`` flag rows. Returns the value rows kept (flags removed) and the per
    (dataset, region) count ``n_both_empty`` of cases set apart.
    """
    from segaudit.analysis.summary import with_empty_flags

    flagged = with_empty_flags(rows)
    flagged = flagged[flagged.model.isin(models)]
    per = flagged.groupby(["dataset", "case", "region"]).agg(both=("both_empty", "all"),
                                                              k=("model", "nunique"))
    apart = per[per.both & (per.k == len(models))].reset_index()[["dataset", "case", "region"]]
    kept = flagged.merge(apart.assign(_apart=True), on=["dataset", "case", "region"], how="left")
    kept = kept[kept["_apart"].isna()].drop(columns=["_apart", "gt_empty", "pred_empty", "both_empty"])
    counts = apart.groupby(["dataset", "region"]).size().rename("n_both_empty").reset_index()
    return kept.reset_index(drop=True), counts


def sign_test(d) -> float:
    """Two-sided exact sign test of paired differences: binomial test of the positive among non-zero ones."""
    d = np.asarray(d, dtype=float)
    d = d[np.isfinite(d) & (d != 0)]
    if d.size == 0:
        return 1.0
    return float(stats.binomtest(int((d > 0).sum()), int(d.size), 0.5).pvalue)


def zero_difference_note(d, mean_diff: float, wilcoxon_p: float, sign_p: float, mcnemar_p: float,
                         alpha: float = 0.05) -> str:
    """Words for a reader when many zero differences make the mean, the sign test and Wilcoxon disagree.

    Wilcoxon's signed-rank test (zero differences dropped, Wilcox's method) and the sign test only look at
    the cases where the models differ; the mean and McNemar's test of pass/fail flips weigh every case. With
    many ties (both models perfect or both failing) a large mean difference can come from a few cases that
    flip from failure to success, which the rank test may call insignificant. Empty when nothing disagrees.
    """
    d = np.asarray(d, dtype=float)
    d = d[np.isfinite(d)]
    if d.size == 0:
        return ""
    zeros = int((d == 0).sum())
    verdicts = {name: p < alpha for name, p in (("Wilcoxon", wilcoxon_p), ("sign test", sign_p),
                                                 ("McNemar", mcnemar_p)) if np.isfinite(p)}
    disagree = len(set(verdicts.values())) > 1
    many_zeros = d.size >= 10 and zeros / d.size >= 0.25
    if not many_zeros and not disagree:
        return ""
    sig = [k for k, v in verdicts.items() if v]
    not_sig = [k for k, v in verdicts.items() if not v]
    parts = []
    if many_zeros:
        parts.append(f"{zeros} of {d.size} paired differences are exactly zero; the rank tests use only the "
                     f"{d.size - zeros} cases where the models differ, while the mean difference ({mean_diff:+.4g}) "
                     "weighs every case")
    if disagree:
        parts.append(f"the tests disagree at {alpha}: significant {', '.join(sig)}; not significant "
                     f"{', '.join(not_sig)}. Wilcoxon and the sign test weigh every case that differs, McNemar "
                     "only the cases that cross the pass threshold, so a few large flips can move the mean while "
                     "most cases change little (or the reverse): read the per-case differences before concluding")
    text = "; ".join(parts)
    text = text[:1].upper() + text[1:]
    return text + "."


def missing_metric_message(metrics: pd.DataFrame, metric: str) -> str:
    """Why ``metric`` cannot be compared.

    It is not in the store, and the metrics it has instead (an imported AUDIT table has ``hd_audit``, not ``hd95``).
    """
    have = sorted(metrics.metric.dropna().unique())
    return f"no metric {metric} in this store; it has: {', '.join(have) or 'no metric at all'}"


def compare_models(metrics: pd.DataFrame, baseline: str, candidate: str, metric: str = "dice",
                   regions: list[str] | None = None, aggregate: str = "per-region", dataset: str | None = None,
                   threshold: float | None = None, alpha: float = 0.05, missing: str = "worst",
                   expected: pd.DataFrame | None = None, subjects: pd.DataFrame | None = None) -> pd.DataFrame:
    """Paired comparison of two models per region (Holm-corrected across regions) or on the mean over regions.

    ``aggregate="mean-over-regions"`` averages each case's regions first (AUDIT's per-subject aggregation).
    ``threshold`` defines pass/fail for the flip columns, in the metric's units: similarity metrics pass at or
    above it (default 0.5 for metrics on [0, 1]), distances and counts at or below it (no default: a
    ValueError asks for one, see :func:`default_pass_threshold`). ``missing`` is the missing-prediction policy
    (:mod:`segaudit.analysis.coverage`: ``worst`` scores a case a model lacks as an empty prediction,
    ``exclude`` pairs on the cases both have); ``expected`` the (dataset, case) pairs with a ground truth
    (default: every case any model was scored on). Cases where both models are both-empty are set apart
    (:func:`set_apart_both_empty`) and counted in ``n_both_empty``. ``subjects`` ((dataset, case, subject) rows,
    the store's ``cases`` table): when cases share a subject, each subject's paired cases are averaged first and
    the test runs on subjects (``unit`` ``"subjects"``, ``n_clusters``); flips stay per case. Returns one row per
    region (or ``region="mean"``) with :func:`paired_test`'s fields, ``p_holm``, the flip counts, ``sign_p``,
    ``n_zero_diff``, ``note`` (when zero differences make the tests disagree), ``missing_policy`` and
    ``n_imputed_baseline``/``n_imputed_candidate``.
    """
    from segaudit.analysis.coverage import expected_cases, fill_missing

    if not (metrics.metric == metric).any():
        raise ConfigError(missing_metric_message(metrics, metric))
    have = set(metrics[metrics.metric == metric].model.dropna())
    for name in (baseline, candidate):
        if name not in have:
            raise ConfigError(f"no {metric!r} rows for model {name!r} (models: {', '.join(sorted(have)) or 'none'})")
    rows_in = metrics[metrics.metric.isin([metric, "gt_empty", "pred_empty"])]
    if dataset:
        rows_in = rows_in[rows_in.dataset == dataset]
    if regions:
        rows_in = rows_in[rows_in.region.isin(regions)]
    if rows_in[rows_in.metric == metric].empty:
        raise ConfigError(f"no {metric!r} rows for models {baseline!r} and {candidate!r}")
    if expected is None:
        expected = expected_cases(rows_in[rows_in.metric == metric])
    if dataset:
        expected = expected[expected.dataset == dataset]
    filled = fill_missing(rows_in, [baseline, candidate], missing, expected)
    imputed = filled.imputed.groupby("model").n.sum()
    kept, apart = set_apart_both_empty(filled.metrics, [baseline, candidate])
    m = kept[kept.metric == metric]
    n_apart = apart.groupby("region").n_both_empty.sum()
    if aggregate == "mean-over-regions":
        m = mean_over_regions(m)
        n_apart = pd.Series({"mean": int(apart.n_both_empty.sum())})
    elif aggregate != "per-region":
        raise ConfigError(f"aggregate must be 'per-region' or 'mean-over-regions', not {aggregate!r}")
    better = "higher" if higher_is_better(metric) else "lower"
    thr = threshold if threshold is not None else default_pass_threshold(metric, m.value)
    rows = []
    all_regions = ["mean"] if aggregate == "mean-over-regions" else sorted(
        filled.metrics[filled.metrics.metric == metric].region.unique())
    for region in all_regions:
        g = m[m.region == region]
        # unstack, not pivot_table: a NaN value must stay a (dropped, counted) pair, not vanish with its case.
        wide = g.set_index(["dataset", "case", "model"]).value.unstack("model")
        wide = wide.reindex(columns=[baseline, candidate])
        paired, unit = _per_subject(wide, subjects)
        res = paired_test(paired[baseline], paired[candidate], alpha=alpha, better=better,
                          unit="" if unit == "cases" else unit).to_dict()
        res["unit"] = unit
        res["n_clusters"] = res["n"]
        both = wide.dropna()
        ok_a = both[baseline] >= thr if better == "higher" else both[baseline] <= thr
        ok_b = both[candidate] >= thr if better == "higher" else both[candidate] <= thr
        flips = flip_table(ok_a.to_numpy(), ok_b.to_numpy())
        counts = flips["groups"].set_index("group").n
        d = (both[candidate] - both[baseline]).to_numpy()
        sp = sign_test(d)
        rows.append({"region": region, "metric": metric, "baseline": baseline, "candidate": candidate, **res,
                     **{f"n_{k}": int(v) for k, v in counts.items()}, "mcnemar_p": flips["p"],
                     "pass_threshold": thr, "sign_p": sp, "n_zero_diff": int((d == 0).sum()),
                     "n_both_empty": int(n_apart.get(region, 0)),
                     "note": zero_difference_note(d, res["mean_diff"], res["wilcoxon_p"], sp, flips["p"], alpha),
                     "missing_policy": missing, "n_imputed_baseline": int(imputed.get(baseline, 0)),
                     "n_imputed_candidate": int(imputed.get(candidate, 0))})
    out = pd.DataFrame(rows)
    out["p_holm"] = holm(out.p)
    return out
