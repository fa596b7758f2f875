"""Section 'Metrics', shown in place of the ground-truth sections when the store holds no metric: why."""

from __future__ import annotations

from segaudit.report.inputs import ReportInputs
from segaudit.report.markup import why_html

#: The section's heading (``<h2>``) in the report.
TITLE = "Metrics"


def no_metrics_why(imported_features: bool) -> str:
    """Why a store has no metric, and what would provide one (``imported_features``: AUDIT feature tables)."""
    return why_html("no metric in this store, so no summary, comparison, ranking or failure analysis: " + (
        "the AUDIT tables imported are feature tables only (add AUDIT's metric table with import-audit "
        "--metrics)" if imported_features else "the project has no ground truth to score against, or segaudit "
        "evaluate has not run (give ground_truth: in the project and run segaudit evaluate)")
        + "; the image sections below still describe the data")


def render(inputs: ReportInputs) -> str:
    """The section's HTML: why there is no metric, and what would provide one."""
    return no_metrics_why(inputs.imported_features)
