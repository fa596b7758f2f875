"""Quality bands and a failure taxonomy of case-level results: which cases fail, and how.

One vocabulary: every (dataset, case, model, region) gets exactly one class (``failure`` column), decided in
this order by its empty flags, its overlap and its Dice band (:data:`DEFAULT_BANDS`, the same bands the strip
plots and training curves draw):

================  ==========================================================================
``both_empty``    nothing to find and nothing predicted (correct rejection; not a skill score)
``false_alarm``   the ground truth is empty, the prediction is not
``miss``          the prediction is empty, the ground truth is not
``disjoint``      both non-empty, no overlapping voxel (tp = 0)
``bad``           overlap, Dice below the low cut (0.4)
``mid``           overlap, low cut <= Dice < high cut (0.6)
``good``          Dice at or above the high cut
``undefined``     both non-empty with overlap but Dice undefined (NaN)
================  ==========================================================================

A case is therefore never "partial" and "bad" at once: the bands *are* the classes of overlapping cases.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

FAILURE_CLASSES = ("good", "mid", "bad", "disjoint", "miss", "false_alarm", "both_empty", "undefined")
KEY = ["dataset", "case", "model", "region"]
DEFAULT_BANDS = {"dice": (0.4, 0.6)}


def quality_band(values, cuts: tuple[float, float], higher_is_better: bool = True) -> np.ndarray:
    """``bad``/``mid``/``good`` per value for cuts ``(low, high)``: bad < low <= mid < high <= good.

    With ``higher_is_better=False`` (distances) the order flips: good < low <= mid < high <= bad. NaN values get
    ``undefined``.
    """
    v = np.asarray(values, dtype=float)
    low, high = cuts
    names = np.array(["bad", "mid", "good"] if higher_is_better else ["good", "mid", "bad"], dtype=object)
    out = names[np.searchsorted([low, high], v, side="right")]
    out[np.isnan(v)] = "undefined"
    return out


def case_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per (dataset, case, model, region) with the metrics as columns (``dice``, ``tp``, flags...)."""
    wide = metrics.pivot_table(index=KEY, columns="metric", values="value", aggfunc="first").reset_index()
    wide.columns.name = None
    return wide


def failure_taxonomy(metrics: pd.DataFrame, bands: tuple[float, float] | None = None) -> pd.DataFrame:
    """The case table with one ``failure`` class per row (see the module docstring).

    ``bands``: the Dice cuts (low, high) of ``bad``/``mid``/``good`` (default ``DEFAULT_BANDS["dice"]``).
    Needs the ``gt_empty``, ``pred_empty``, ``tp`` and ``dice`` metrics that ``evaluate`` writes.
    """
    t = case_table(metrics)
    missing = {"gt_empty", "pred_empty", "tp", "dice"} - set(t.columns)
    if missing:
        raise ValueError(f"failure taxonomy needs the metrics {sorted(missing)} (run segaudit evaluate)")
    ge, pe = t.gt_empty.astype(bool), t.pred_empty.astype(bool)
    band = quality_band(t.dice, bands or DEFAULT_BANDS["dice"])
    t["failure"] = np.select([ge & pe, ge & ~pe, ~ge & pe, t.tp == 0], ["both_empty", "false_alarm", "miss",
                                                                        "disjoint"], default=band)
    return t


def failure_counts(taxonomy: pd.DataFrame, by: list[str] | None = None) -> pd.DataFrame:
    """Counts and percentages of each failure class per group (default dataset × model × region)."""
    by = by or ["dataset", "model", "region"]
    counts = taxonomy.groupby([*by, "failure"]).size().rename("n").reset_index()
    counts["percent"] = 100 * counts.n / counts.groupby(by).n.transform("sum")
    return counts


def worst_best(metrics: pd.DataFrame, metric: str = "dice", k: int = 5, higher_is_better: bool = True,
               by: list[str] | None = None) -> pd.DataFrame:
    """The ``k`` worst and ``k`` best cases per group by one metric (undefined values listed as worst).

    Returns rows with ``rank_kind`` ``worst``/``best`` and ``rank`` 1..k.
    """
    by = by or ["dataset", "model", "region"]
    m = metrics[metrics.metric == metric].copy()
    m["_key"] = m.value.fillna(-np.inf if higher_is_better else np.inf)
    out = []
    for _, g in m.groupby(by, sort=True):
        asc = g.sort_values("_key", ascending=higher_is_better, kind="stable")
        worst = asc.head(k).assign(rank_kind="worst", rank=range(1, min(k, len(asc)) + 1))
        best = asc.iloc[::-1].head(k).assign(rank_kind="best", rank=range(1, min(k, len(asc)) + 1))
        out += [worst, best]
    res = pd.concat(out, ignore_index=True) if out else m.assign(rank_kind=[], rank=[])
    return res.drop(columns="_key")


def failed_lesion_sizes(lesions: pd.DataFrame) -> pd.DataFrame:
    """Size distribution of missed ground-truth lesions against detected ones, per dataset × model × region.

    ``lesions`` is the store's ``lesions`` table; returns n, median and quartiles of volume (mm³) for
    ``missed`` (ground-truth lesions not matched) and ``detected`` lesions.
    """
    gt = lesions[(lesions.source == "gt") & lesions.counted.fillna(True).astype(bool)].copy()
    gt["outcome"] = np.where(gt.matched.astype(bool), "detected", "missed")
    g = gt.groupby(["dataset", "model", "region", "outcome"]).volume
    return pd.DataFrame({"n": g.size(), "median": g.median(), "q1": g.quantile(0.25),
                         "q3": g.quantile(0.75)}).reset_index()
