"""Section 'Datasets and QC'.

Per dataset, its cases, subjects, files (missing ones counted) and QC findings by severity.
"""

from __future__ import annotations

import pandas as pd

from segaudit.report.inputs import ReportInputs
from segaudit.report.markup import table_html, why_html

#: The section's heading (``<h2>``) in the report.
TITLE = "Datasets and QC"


def overview_html(cases: pd.DataFrame, files: pd.DataFrame, qc: pd.DataFrame, imported: bool = False) -> str:
    """One row per dataset.

    Cases, subjects ('–' without subject ids), files and missing files, QC findings per severity. Without a scan, why
    (``imported``: the store holds AUDIT tables, which have no file list).
    """
    if cases.empty:
        return why_html("no scan in this store" + (": its tables were imported from AUDIT, which has no file list or "
                                               "QC (run segaudit scan on the data folder for them)" if imported
                                               else " (run segaudit scan)"))
    ov = cases.groupby("dataset").agg(cases=("case", "nunique"), subjects=("subject", "nunique")).reset_index()
    ov["subjects"] = [n if n else "–" for n in ov.subjects]  # 0 means no subject ids, not zero subjects
    if not files.empty:
        fc = files.groupby("dataset").agg(files=("path", "size"), missing=("exists", lambda s: int((~s).sum())))
        ov = ov.merge(fc.reset_index(), on="dataset", how="left")
    if not qc.empty:
        q = qc.pivot_table(index="dataset", columns="severity", values="check", aggfunc="size", fill_value=0)
        ov = ov.merge(q.reset_index(), on="dataset", how="left")
        ov[list(q.columns)] = ov[list(q.columns)].fillna(0).astype(int)  # no QC finding is 0 findings
    return table_html(ov)


def render(inputs: ReportInputs) -> str:
    """The section's HTML: the overview table, or why there is none (no scan in the store)."""
    return overview_html(inputs.cases, inputs.files, inputs.qc, inputs.imported_features)
