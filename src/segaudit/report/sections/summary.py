"""Section 'Metric summary'.

Per dataset, model × region rows with coverage and 'mean [BCa bootstrap CI]' of Dice, HD95, NSD and lesion F1, in the
units stored for the dataset.
"""

from __future__ import annotations

import html

import pandas as pd

from segaudit.analysis.minimums import MIN_BOOTSTRAP_CI
from segaudit.analysis.summary import subject_of, summarize
from segaudit.report.inputs import ReportInputs
from segaudit.report.markup import note_html, table_html

#: The section's heading (``<h2>``) in the report.
TITLE = "Metric summary"


SUMMARY_METRICS = {"dice": "Dice (0–1)", "hd95": "HD95 (mm)", "nsd@1mm": "NSD at 1 mm (0–1)",
                   "lesion_f1": "lesion F1 (0–1)"}


def metric_title(metric: str, dataset: str, units: pd.DataFrame | None) -> str:
    """Column title of a summary metric with the unit stored for it in this dataset (HD95 (px) for photos)."""
    title = SUMMARY_METRICS[metric]
    if units is None or units.empty or metric not in ("hd95", "nsd@1mm"):
        return title
    u = units[(units.dataset == dataset) & (units.metric == "hd95")].unit.dropna().unique()
    if not len(u):
        return title
    if metric == "nsd@1mm":  # the tolerance is in the grid's length unit: 1 px on photos
        return "NSD at 1 px (0–1)" if list(u) == ["px"] else title
    return f"HD95 ({'/'.join(sorted(u))})"


def summary_html(metrics: pd.DataFrame, cov: pd.DataFrame | None = None, cases: pd.DataFrame | None = None,
                 units: pd.DataFrame | None = None, penalties: dict[str, str] | None = None) -> str:
    """One compact table per dataset.

    Model × region rows, coverage, 'mean [CI]' per metric ('n too small' below the minimum); the CI resamples subjects
    when cases share one (``cases``: the store's cases table).

    A model that did not score every expected case is flagged in red with its missing and failed counts. HD95
    is titled with the unit stored for the dataset (px for photos); the dataset's empty-mask penalty is stated.
    """
    s = summarize(metrics[metrics.metric.isin([*SUMMARY_METRICS, "gt_empty", "pred_empty"])], n_resamples=1000,
                  subjects=subject_of(cases), coverage=cov)
    if s.empty:
        return note_html("No summary metric (Dice, HD95, NSD, lesion F1) in this store.")
    s = s.assign(cell=[("–" if pd.isna(r.mean) else f"{r.mean:.3f}"
                        + (f" [{r.ci_low:.3f}, {r.ci_high:.3f}]" if pd.notna(r.ci_low)
                           else " (n too small for a CI)" if r.ci_note else ""))
                       for r in s.itertuples()])
    parts = []
    for ds, g in s.groupby("dataset", sort=True):
        wide = g.pivot_table(index=["model", "region"], columns="metric", values="cell", aggfunc="first")
        wide = wide.reindex(columns=[m for m in SUMMARY_METRICS if m in wide.columns])
        wide.columns = [metric_title(c, ds, units) for c in wide.columns]
        d = g[g.metric == "dice"] if (g.metric == "dice").any() else g
        counts = d.groupby(["model", "region"]).agg(n=("n", "max"), both_empty=("n_both_empty", "max"),
                                                    undefined=("n_undefined", "max"),
                                                    resampled=("resampled", "first"),
                                                    units=("n_clusters", "max"))
        warn = ""
        if cov is not None and len(cov):
            c = cov[cov.dataset == ds].set_index("model")
            cols = {"n_expected": "expected", "n_scored": "scored", "n_missing": "missing", "n_failed": "failed"}
            cc = c[list(cols)].rename(columns=cols)
            counts = counts.join(cc, on="model")
            counts = counts[["expected", "scored", "missing", "failed", "n", "both_empty", "undefined", "resampled",
                             "units"]]
            bad = c[~c.complete.astype(bool)]
            warn = "".join(
                f"<p class='warn'>{html.escape(str(m))} scored {int(r.n_scored)} of {int(r.n_expected)} expected "
                f"cases ({int(r.n_missing)} missing, {int(r.n_failed)} failed: see 'Failed and missing "
                "predictions'). Its means cover only the scored cases; the comparison and the ranking score the "
                "others as empty predictions.</p>" for m, r in bad.iterrows())
        pen = (penalties or {}).get(ds)
        note = note_html(f"Distance when exactly one mask is empty: {pen}, the same for every case "
                         "of the dataset.") if pen else ""
        table = table_html(counts.join(wide).reset_index())
        parts.append(f"<h3>{html.escape(ds)}</h3>" + warn + note + table)
    return "".join(parts)


def render(inputs: ReportInputs) -> str:
    """The section's HTML: how the means and CIs are computed, then one table per dataset."""
    return note_html("Mean with BCa bootstrap 95 % CI over cases, or over subjects when cases share a subject "
                     "(slices, time points: resampled = subjects, units = subjects resampled); no CI below "
                     f"{MIN_BOOTSTRAP_CI} units (n too small). Cases where ground truth and prediction are both "
                     "empty are counted apart (both_empty) and left out; undefined values are counted, never "
                     "averaged.") \
        + summary_html(inputs.metrics, inputs.cov, inputs.cases, inputs.units, inputs.penalties)
