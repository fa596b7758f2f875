"""Several models on the same cases: Friedman test, mean ranks, post hoc pairs and rank stability.

Sample sizes (:mod:`segaudit.analysis.minimums`): the Friedman test, the Nemenyi critical difference and p-values
and the rank stability need ``MIN_RANKING`` complete cases, the pairwise Wilcoxon tests ``MIN_PAIRED_TEST``;
below that the mean ranks are still given but the statistics are NaN and ``friedman["note"]`` says why.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from scipy import stats

from segaudit.analysis.compare import holm
from segaudit.analysis.minimums import MIN_PAIRED_TEST, MIN_RANKING, too_small
from segaudit.analysis.results import Friedman, Ranking


def _rank_se(k: int, n: int) -> float:
    """Standard error of a difference of mean ranks under the null (Nemenyi): sqrt(k(k+1) / (6n))."""
    return float(np.sqrt(k * (k + 1) / (6 * n)))


def _places(mean_ranks: np.ndarray) -> np.ndarray:
    """1-based place of each model by mean rank (ties keep column order)."""
    place = np.empty(mean_ranks.size, dtype=int)
    place[np.argsort(mean_ranks, kind="stable")] = np.arange(1, mean_ranks.size + 1)
    return place


def nemenyi_critical_difference(k: int, n: int, alpha: float = 0.05) -> float:
    """Nemenyi critical difference of mean ranks for k models on n cases: q_alpha * sqrt(k(k+1) / (6n)).

    ``q_alpha`` is the studentized range quantile (k groups, infinite degrees of freedom) divided by sqrt(2)
    (Demšar 2006). Two models whose mean ranks differ by more than this differ at level ``alpha``. NaN for
    k < 2 or n < 1.
    """
    if k < 2 or n < 1:
        return np.nan
    q = stats.studentized_range.ppf(1 - alpha, k, np.inf) / np.sqrt(2)
    return float(q * _rank_se(k, n))


def rank_models(table: pd.DataFrame, higher_is_better: bool = True, n_resamples: int = 1000,
                seed: int = 0, alpha: float = 0.05) -> Ranking:
    """Rank k models on n cases (``table``: rows = cases, columns = models; incomplete cases are dropped).

    Returns
    -------
    A :class:`~segaudit.analysis.results.Ranking`, which unpacks as ``ranks, friedman, posthoc``:

    ranks:
        Per model: mean rank (1 = best, ties averaged), mean value, and ``rank_stability``: the share of
        bootstrap resamples of the cases in which the model keeps its rank (by mean rank).
    friedman:
        A :class:`~segaudit.analysis.results.Friedman` (also readable as a dict): ``statistic``, ``p``,
        ``n`` (complete cases), ``k``, ``critical_difference`` (Nemenyi, at
        ``alpha``) and ``note`` ('' or "n too small (n=5 < 10)": then statistic, p, critical difference,
        rank stability and the Nemenyi p-values are NaN).
    posthoc:
        Every pair: Wilcoxon signed-rank p, its Holm-adjusted p (``p_holm``), the mean-rank difference and
        the Nemenyi p (``nemenyi_p``: studentized range of the mean-rank difference, already corrected for
        the k(k-1)/2 comparisons).
    """
    t = table.dropna()
    values = t.to_numpy(dtype=float)
    models = list(t.columns)
    n, k = values.shape
    ranks = stats.rankdata(-values if higher_is_better else values, axis=1)
    mean_ranks = ranks.mean(axis=0)
    place = _places(mean_ranks)
    note = too_small(n, MIN_RANKING) or ""
    rng = np.random.default_rng(seed)
    keep = np.zeros(k)
    for _ in range(n_resamples if not note else 0):
        idx = rng.integers(0, n, n)
        keep += _places(ranks[idx].mean(axis=0)) == place
    out_ranks = pd.DataFrame({"model": models, "mean_rank": mean_ranks, "place": place,
                              "mean": values.mean(axis=0),
                              "rank_stability": keep / n_resamples if not note else np.nan})
    friedman = {"n": n, "k": k, "statistic": np.nan, "p": np.nan, "note": note,
                "critical_difference": nemenyi_critical_difference(k, n, alpha) if not note else np.nan}
    if not note and k >= 3:
        res = stats.friedmanchisquare(*values.T)
        friedman.update({"statistic": float(res.statistic), "p": float(res.pvalue)})
    pairs = []
    for i, j in itertools.combinations(range(k), 2):
        d = values[:, j] - values[:, i]
        if n < MIN_PAIRED_TEST:
            p = np.nan
        else:
            p = float(stats.wilcoxon(d).pvalue) if np.any(d != 0) else 1.0
        diff = abs(mean_ranks[i] - mean_ranks[j])
        q = diff / _rank_se(k, n) if n and not note else np.nan
        pairs.append({"model_a": models[i], "model_b": models[j], "wilcoxon_p": p, "rank_difference": diff,
                      "nemenyi_p": float(stats.studentized_range.sf(q * np.sqrt(2), k, np.inf))
                      if np.isfinite(q) else np.nan})
    post = pd.DataFrame(pairs)
    if len(post):
        post["p_holm"] = holm(post.wilcoxon_p)
    return Ranking(out_ranks.sort_values("place").reset_index(drop=True), Friedman(**friedman), post)


def ranking_table(metrics: pd.DataFrame, dataset: str, metric: str = "dice", models: list[str] | None = None,
                  missing: str = "worst", expected: pd.DataFrame | None = None,
                  aggregate: str = "mean-over-regions", region: str | None = None) -> tuple[pd.DataFrame, dict]:
    """The cases × models table :func:`rank_models` ranks, under the missing-prediction policy.

    ``missing="worst"`` (the default for rankings, as BraTS ranks) scores a case a model lacks as an empty
    prediction, so a submission with failed cases cannot rank first by leaving them out; ``"exclude"`` keeps
    only the cases every model has. Cases where every model is both-empty are set apart (a tie by
    construction). ``aggregate="mean-over-regions"`` averages each case's regions (AUDIT's per-subject
    aggregation); ``"per-region"`` ranks on ``region``.

    Returns the wide table and a dict ``policy`` (the sentence of
    :meth:`~segaudit.analysis.coverage.MissingFilled.describe`), ``n_imputed`` (per model) and ``n_both_empty``.
    """
    from segaudit.analysis.compare import mean_over_regions, set_apart_both_empty
    from segaudit.analysis.coverage import expected_cases, fill_missing

    rows = metrics[(metrics.dataset == dataset) & metrics.metric.isin([metric, "gt_empty", "pred_empty"])]
    if region is not None:
        rows = rows[rows.region == region]
    if models is None:
        models = sorted(rows[rows.metric == metric].model.unique())
    if expected is None:
        expected = expected_cases(rows[rows.metric == metric])
    expected = expected[expected.dataset == dataset]
    filled = fill_missing(rows, models, missing, expected)
    kept, apart = set_apart_both_empty(filled.metrics, models)
    values = kept[kept.metric == metric]
    if aggregate == "mean-over-regions":
        values = mean_over_regions(values)
    elif aggregate != "per-region":
        raise ValueError(f"aggregate must be 'per-region' or 'mean-over-regions', not {aggregate!r}")
    wide = values.set_index(["case", "model"]).value.unstack("model")
    wide = wide.reindex(columns=models)
    info = {"policy": filled.describe(), "n_imputed": filled.imputed.groupby("model").n.sum().to_dict(),
            "n_both_empty": int(apart.n_both_empty.sum()) if len(apart) else 0}
    return wide, info


def rank_mean_disagreement(table: pd.DataFrame, higher_is_better: bool = True, metric: str = "value") -> str:
    """A sentence explaining why the best mean rank and the best mean are different models ('' when they agree).

    ``table`` as for :func:`rank_models` (cases × models; incomplete cases dropped). Mean ranks count how often a
    model beats the others on a case, whatever the margin; a mean weighs the margins, so a model that wins most
    cases by a little but loses a few by a lot can rank first and still have the lower mean. Both are computed
    correctly; the sentence gives the head-to-head count and the differences that explain it.
    """
    t = table.dropna()
    if t.shape[0] == 0 or t.shape[1] < 2:
        return ""
    values = t.to_numpy(dtype=float)
    ranks = stats.rankdata(-values if higher_is_better else values, axis=1).mean(axis=0)
    means = values.mean(axis=0)
    by_rank = int(np.argmin(ranks))
    by_mean = int(np.argmax(means) if higher_is_better else np.argmin(means))
    if by_rank == by_mean:
        return ""
    a, b = str(t.columns[by_rank]), str(t.columns[by_mean])
    sign = 1.0 if higher_is_better else -1.0
    d = sign * (values[:, by_rank] - values[:, by_mean])  # > 0: the rank leader is better on that case
    wins, losses = int((d > 0).sum()), int((d < 0).sum())
    worst = float(d.min())
    better = "higher" if higher_is_better else "lower"
    return (f"{a} has the best mean rank but {b} the best mean {metric}: not a contradiction. {a} is better than "
            f"{b} on {wins} of {len(d)} cases ({losses} worse), by a median of {np.median(d):.3g}, so it ranks first; "
            f"but where it loses it loses by more (down to {worst:.3g}), so {b}'s mean is {better} "
            f"({means[by_mean]:.4g} vs {means[by_rank]:.4g}). Ranks count wins per case, means weigh the margins.")
