"""Section 'Splits'.

Each dataset's split overview and the patient-level leakage check (a subject with cases in two splits).
"""

from __future__ import annotations

import html

import pandas as pd

from segaudit.analysis.cohorts import split_leakage, split_overview
from segaudit.report.inputs import ReportInputs
from segaudit.report.markup import note_html, table_html, why_html

#: The section's heading (``<h2>``) in the report.
TITLE = "Splits"


def split_columns(meta: pd.DataFrame, project) -> dict[str, str]:
    """Dataset -> the metadata column holding its split (the project's ``split_column``, else ``split``)."""
    out = {}
    for ds, g in meta.groupby("dataset"):
        col = "split"
        if project is not None:
            spec = next((d.metadata for d in project.datasets if d.name == ds), None)
            col = spec.split_column if spec is not None else col
        if col in g.columns and g[col].notna().any():
            out[ds] = col
    return out


def splits_html(meta: pd.DataFrame, feats: pd.DataFrame, project) -> str:
    """``meta``: the cases with their metadata expanded into columns (:func:`cases_with_metadata`)."""
    parts = []
    if not split_columns(meta, project):
        return why_html("no split column in the cases' metadata: add a 'split' column to the dataset's metadata "
                        "table or name yours with metadata: split_column in the project file")
    for ds, col in split_columns(meta, project).items():
        c = meta[meta.dataset == ds]
        ov = split_overview(c, feats if not feats.empty else pd.DataFrame(
            columns=["dataset", "case", "model", "source", "group", "feature", "value"]), col)
        leak = split_leakage(c, col)
        parts.append(f"<h3>{html.escape(ds)} (column {html.escape(col)})</h3>" + table_html(ov))
        if leak.empty:
            parts.append(note_html("No subject has cases in two splits (no patient-level leakage)."))
        else:
            parts.append(f"<p class='warn'>Patient-level leakage: {len(leak)} subject(s) have cases in more than "
                         "one split.</p>" + table_html(leak))
    return "".join(parts)


def render(inputs: ReportInputs) -> str:
    """The section's HTML: per dataset with a split column, its overview and leakage check, or why not."""
    return splits_html(inputs.meta, inputs.features, inputs.project) if not inputs.cases.empty else \
        why_html("no cases table in this store (run segaudit scan)")
