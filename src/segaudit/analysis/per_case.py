"""The per-case wide table: one row per (dataset, case, model), the main metrics of every region as columns.

This is the table a reader scans to find a case (``segaudit export RUN --format wide``, the report's per-case
table and the case ids of its strip plots all come from :func:`per_case_table`).
"""

from __future__ import annotations

import pandas as pd

#: The metrics of the wide table, in column order (those the store has; AUDIT imports have ``hd_audit``).
WIDE_METRICS = ("dice", "hd95", "hd_audit", "gt_volume", "pred_volume")


def per_case_table(metrics: pd.DataFrame, metrics_wanted: tuple[str, ...] = WIDE_METRICS) -> pd.DataFrame:
    """Long metric rows as one row per (dataset, case, model) with one column per metric and region.

    Parameters
    ----------
    metrics:
        The store's long rows (dataset, case, model, region, metric, value).
    metrics_wanted:
        Metrics to spread, in order; those absent from ``metrics`` are left out.

    Returns
    -------
    pandas.DataFrame
        Columns ``dataset, case, model``, then ``dice mean`` (the case's Dice averaged over its regions,
        AUDIT's per-subject aggregation; NaN regions skipped) when Dice is present, then ``<metric> <region>``
        for each metric (in ``metrics_wanted`` order) and region (sorted). Volumes are in the store's units
        (mm³, mm² in 2D). A (case, model) missing a value has NaN there; rows sorted by dataset, case, model.
        A value stored twice for one key keeps the first (the store's uniqueness check catches duplicates).
    """
    keys = ["dataset", "case", "model"]
    m = metrics[metrics.metric.isin(metrics_wanted)]
    if m.empty:
        return pd.DataFrame(columns=keys)
    # groupby + unstack, not pivot_table(dropna=False): that builds every dataset × case × model combination,
    # so each dataset listed the cases of all the others.
    wide = m.groupby([*keys, "metric", "region"], sort=True).value.first().unstack(["metric", "region"])
    order = [(mt, r) for mt in metrics_wanted for r in sorted(m.region.unique()) if (mt, r) in wide.columns]
    wide = wide.reindex(columns=order).dropna(axis=1, how="all")
    wide.columns = [f"{mt} {r}" for mt, r in wide.columns]
    out = wide.reset_index()
    if "dice" in set(m.metric):
        mean = m[m.metric == "dice"].groupby(keys).value.mean().rename("dice mean").reset_index()
        out = mean.merge(out, on=keys, how="right")[[*keys, "dice mean", *wide.columns]]
    return out.sort_values(keys, kind="stable").reset_index(drop=True)
