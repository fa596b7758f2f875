"""Section 'Failed and missing predictions'.

Each model's expected cases it did not score, with the file and the reason from the store's errors table.
"""

from __future__ import annotations

import pandas as pd

from segaudit.analysis.coverage import failure_list
from segaudit.report.inputs import ReportInputs
from segaudit.report.markup import note_html, table_html, why_html

#: The section's heading (``<h2>``) in the report.
TITLE = "Failed and missing predictions"


def failed_predictions_html(cov: pd.DataFrame, errors: pd.DataFrame) -> str:
    """Each model's missing and failed cases, with the file and the reason from the ``errors`` table."""
    bad = cov[~cov.complete.astype(bool)] if len(cov) else cov
    fails = failure_list(errors)
    if bad.empty and fails.empty:
        return ""
    parts = [note_html("Cases a model was expected to score (its dataset has their ground truth) but did not: the "
                       "prediction is missing, or could not be read or scored. The reason comes from the errors "
                       "table.")]
    if len(bad):
        parts.append(table_html(bad[["dataset", "model", "n_expected", "n_scored", "n_missing", "n_failed",
                                 "missing_cases", "failed_cases"]]))
    if len(fails):
        parts.append(table_html(fails))
    return "".join(parts)


def render(inputs: ReportInputs) -> str:
    """The section's HTML: the coverage and failure tables, or why there is nothing to list."""
    return failed_predictions_html(inputs.cov, inputs.errors) \
        or why_html("every model scored every expected case, so there is no failure to list")
