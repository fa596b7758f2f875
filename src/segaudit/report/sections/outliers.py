"""Section 'Feature outliers': cases whose image or ground-truth features lie outside Tukey's fences."""

from __future__ import annotations

import pandas as pd

from segaudit.analysis.image_overview import iqr_outliers
from segaudit.report.inputs import ReportInputs
from segaudit.report.markup import note_html, table_html, why_html

#: The section's heading (``<h2>``) in the report.
TITLE = "Feature outliers"


def outliers_html(feats: pd.DataFrame, top: int = 25) -> str:
    """Cases whose image or ground-truth features are outliers by the IQR rule."""
    own = feats[feats.model.fillna("").eq("")] if not feats.empty else feats
    if own.empty:
        return why_html("no image or ground-truth features in this store (predicted volumes are not judged): run "
                        "segaudit features, or import AUDIT's feature table with import-audit --features")
    o = iqr_outliers(own)
    if o.empty:
        return note_html("No feature value of any case lies outside Q1 − 1.5 IQR to Q3 + 1.5 IQR of its dataset "
                         "(features with fewer than 8 cases are not judged).")
    per_case = (o.groupby(["dataset", "case"]).agg(outlying_features=("feature", "size"))
                .reset_index().sort_values("outlying_features", ascending=False, kind="stable"))
    return (note_html("Tukey's rule per dataset and feature: a value below Q1 − 1.5 IQR or above Q3 + 1.5 IQR of the "
                      "dataset's cases is an outlier (features with fewer than 8 cases are not judged). Cases with "
                      "the most outlying features first; then the farthest values (beyond the fence, in IQRs).")
            + table_html(per_case.head(top)) + table_html(o.head(top), 4))


def render(inputs: ReportInputs) -> str:
    """The section's HTML: the outlying cases and values, or that there are none, or why not judged."""
    return outliers_html(inputs.features)
