"""Section 'Per-case table': one folded wide table per dataset, a row per case and model, worst first."""

from __future__ import annotations

import html

import pandas as pd

from segaudit.analysis.per_case import per_case_table
from segaudit.report.inputs import ReportInputs
from segaudit.report.markup import note_html, table_html, why_html

#: The section's heading (``<h2>``) in the report.
TITLE = "Per-case table"


def per_case_html(m: pd.DataFrame) -> str:
    """The per-case wide table of each dataset (:func:`segaudit.analysis.per_case.per_case_table`), folded."""
    t = per_case_table(m)
    if t.empty:
        return why_html("no Dice, HD95 or volume in this store")
    parts = [note_html("One row per case and model: Dice averaged over regions, then each region's Dice, HD95 (mm; "
                       "hd_audit: AUDIT's own HAUS, voxels), true and predicted volumes (mm³, mm² in 2D). The same "
                       "table as `segaudit export RUN --format wide`.")]
    for ds, g in t.groupby("dataset", sort=True):
        g = g.drop(columns="dataset").dropna(axis=1, how="all").sort_values(["dice mean", "case"]
                                                                             if "dice mean" in g else ["case"])
        parts.append(f"<details><summary>{html.escape(str(ds))}: {g.case.nunique()} cases × "
                     f"{g.model.nunique()} model(s), worst first</summary>{table_html(g, 3)}</details>")
    return "".join(parts)


def render(inputs: ReportInputs) -> str:
    """The section's HTML: the per-case tables, or why there are none."""
    return per_case_html(inputs.m)
