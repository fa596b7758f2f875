"""Readers of the ``agree`` step's rows: agreement matrices, the per-model table, volume spread, the outlier.

Input is the store's long ``metrics`` table; only rows whose metric starts with ``agree_`` are read (see
:mod:`segaudit.pipeline.agree` for their naming), so a store that also holds ground-truth metrics is fine.
Means are over cases: a pair's, a model's or a region's values on every case where it has one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from segaudit.metrics.agreement import (
    AGREEMENT_PREFIX,
    OUTLIER_MARGIN,
    PAIR_SEPARATOR,
    is_agreement_metric,
    outlier_model,
    volume_spread,
)

PER_MODEL = {"agree_loo_dice": "loo_dice", "agree_loo_hd95": "loo_hd95",
             "agree_staple_sensitivity": "staple_sensitivity", "agree_staple_specificity": "staple_specificity",
             "agree_volume": "volume"}


def agreement_metrics(metrics: pd.DataFrame) -> pd.DataFrame:
    """The agreement rows of a long metrics table (metric names starting with ``agree_``)."""
    if metrics.empty or "metric" not in metrics:
        return metrics.iloc[0:0]
    return metrics[metrics.metric.map(is_agreement_metric)]


def has_agreement(metrics: pd.DataFrame) -> bool:
    """True when the table holds pairwise agreement rows."""
    return not metrics.empty and bool((metrics.metric == f"{AGREEMENT_PREFIX}dice").any())


def _pairs(metrics: pd.DataFrame, dataset: str, metric: str) -> pd.DataFrame:
    m = metrics[(metrics.dataset == dataset) & (metrics.metric == metric)
                & metrics.model.str.contains(PAIR_SEPARATOR, regex=False) & ~metrics.model.str.startswith("~")]
    ab = m.model.str.split(PAIR_SEPARATOR, n=1, expand=True)
    return m.assign(a=ab[0], b=ab[1]) if len(m) else m.assign(a=[], b=[])


def agreement_matrix(metrics: pd.DataFrame, dataset: str, region: str, metric: str = "agree_dice") -> pd.DataFrame:
    """Model × model matrix of a pairwise agreement metric for one dataset and label/region.

    Each cell is the mean over cases of the pair's value (``agree_dice`` in [0, 1] or ``agree_hd95`` in mm);
    NaN/inf values are left out of the mean. The matrix is symmetric; the diagonal is NaN (a model is not
    compared with itself). Rows and columns are the models, sorted.
    """
    p = _pairs(metrics, dataset, metric)
    p = p[(p.region == region) & np.isfinite(p.value)]
    models = sorted(set(p.a) | set(p.b))
    mat = pd.DataFrame(np.nan, index=models, columns=models)
    for (a, b), g in p.groupby(["a", "b"]):
        mat.loc[a, b] = mat.loc[b, a] = float(g.value.mean())
    mat.index.name = mat.columns.name = "model"
    return mat


def agreement_regions(metrics: pd.DataFrame, dataset: str) -> list[str]:
    """The labels/regions with pairwise rows in a dataset, in the order they were stored (labels, then regions)."""
    p = _pairs(metrics, dataset, "agree_dice")
    return list(dict.fromkeys(p.region))


def model_table(metrics: pd.DataFrame, dataset: str, margin: float = OUTLIER_MARGIN) -> pd.DataFrame:
    """One row per model and label/region: its mean leave-one-out scores, STAPLE p/q and volume, and the outlier flag.

    Columns: ``model``, ``region``, ``n`` (cases), ``loo_dice``, ``loo_hd95`` (mm), ``staple_sensitivity``,
    ``staple_specificity``, ``volume`` (mean over cases, mm³; mm² in 2D), ``volume_vs_median`` ((volume - median
    of the models' volumes) / median, per case then averaged; NaN where the median is 0), ``mean_loo_dice``
    (the model's leave-one-out Dice averaged over cases and regions) and ``outlier`` (True for the model
    :func:`segaudit.metrics.agreement.outlier_model` names from ``mean_loo_dice``, with ``margin``).
    """
    cols = ["model", "region", "n", *PER_MODEL.values(), "volume_vs_median", "mean_loo_dice", "outlier"]
    m = metrics[(metrics.dataset == dataset) & metrics.metric.isin(PER_MODEL)
                & ~metrics.model.str.contains(PAIR_SEPARATOR, regex=False)]
    if m.empty:
        return pd.DataFrame(columns=cols)
    wide = m.pivot_table(index=["model", "region", "case"], columns="metric", values="value", aggfunc="first")
    wide = wide.reindex(columns=list(PER_MODEL)).rename(columns=PER_MODEL).reset_index()
    median = wide.groupby(["region", "case"]).volume.transform("median")
    wide["volume_vs_median"] = np.where(median > 0, (wide.volume - median) / median.where(median > 0), np.nan)
    finite = wide.replace([np.inf, -np.inf], np.nan)
    out = finite.groupby(["model", "region"], sort=False).agg(
        n=("case", "nunique"), **{c: (c, "mean") for c in [*PER_MODEL.values(), "volume_vs_median"]}).reset_index()
    score = finite.groupby("model").loo_dice.mean()
    out["mean_loo_dice"] = out.model.map(score)
    flagged = outlier_model(score.to_dict(), margin)
    out["outlier"] = out.model == flagged
    return out.sort_values(["model", "region"], kind="stable").reset_index(drop=True)[cols]


def volume_table(metrics: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """Per case and label/region: the spread of the models' volumes (:func:`~segaudit.metrics.agreement.volume_spread`).

    Columns: ``case``, ``region``, ``n`` (models), ``min``, ``max``, ``mean``, ``median``, ``std``, ``cv`` (mm³,
    mm² in 2D; cv unitless), plus ``majority`` and ``staple``: the volumes of the two consensus masks.
    """
    m = metrics[(metrics.dataset == dataset) & (metrics.metric == "agree_volume")]
    models = m[~m.model.str.contains(PAIR_SEPARATOR, regex=False)]
    rows = []
    for (case, region), g in models.groupby(["case", "region"], sort=False):
        s = volume_spread(g.value.to_numpy())
        cons = m[(m.case == case) & (m.region == region)].set_index("model").value
        rows.append({"case": case, "region": region, "n": s.n, "min": s.min, "max": s.max, "mean": s.mean,
                     "median": s.median, "std": s.std, "cv": s.cv, "majority": cons.get("~majority", np.nan),
                     "staple": cons.get("~staple", np.nan)})
    return pd.DataFrame(rows, columns=["case", "region", "n", "min", "max", "mean", "median", "std", "cv",
                                       "majority", "staple"])
