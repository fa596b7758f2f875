"""Section 'Image intensities by sequence and site': per-case intensity statistics, one box per dataset (site)."""

from __future__ import annotations

import pandas as pd

from segaudit.analysis.image_overview import intensity_summary, intensity_table
from segaudit.report import figures
from segaudit.report.inputs import ReportInputs
from segaudit.report.markup import note_html, png_html, table_html, why_html

#: The section's heading (``<h2>``) in the report.
TITLE = "Image intensities by sequence and site"


def intensities_html(feats: pd.DataFrame) -> str:
    """Per-sequence intensity distributions across cases and sites (datasets)."""
    t = intensity_table(feats) if not feats.empty else pd.DataFrame()
    if t.empty:
        return why_html("no intensity features in this store: run segaudit features (group intensity) on a project "
                        "with images, or import AUDIT's feature table with import-audit --features")
    parts = [note_html("Each case's intensity statistics of each sequence (segaudit: over the image's foreground; "
                       "AUDIT: over voxels > 0), one box per dataset (site): median, quartiles, 1.5 IQR whiskers. A "
                       "site whose box sits apart was acquired or normalised differently.")]
    for origin, g in t.groupby("origin", sort=True):
        parts.append(png_html(figures.intensity_boxes(g, "mean", f"per-case mean intensity ({origin} features)")))
        summ = intensity_summary(g)
        summ = summ[summ.stat.isin(["mean", "p10", "median", "p90"])]
        wide = summ.assign(cell=[f"{r.median:.4g} [{r.q1:.4g}, {r.q3:.4g}]" for r in summ.itertuples()])
        wide = wide.pivot_table(index=["dataset", "sequence"], columns="stat", values="cell", aggfunc="first")
        wide = wide.reindex(columns=[c for c in ("p10", "mean", "median", "p90") if c in wide.columns])
        cases = summ.groupby(["dataset", "sequence"]).cases.max()
        parts.append(note_html(f"{origin}: median [quartiles] over cases of each per-case statistic.")
                     + table_html(wide.join(cases).reset_index()))
    return "".join(parts)


def render(inputs: ReportInputs) -> str:
    """The section's HTML: the boxes and median [quartiles] tables, or why there are none."""
    return intensities_html(inputs.features)
