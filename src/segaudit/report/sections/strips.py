"""Section 'Per-case Dice with quality bands'.

One strip plot of per-case Dice per dataset; both-empty cases are set apart and counted.
"""

from __future__ import annotations

import pandas as pd

from segaudit.analysis.summary import drop_both_empty
from segaudit.report import figures
from segaudit.report.inputs import ReportInputs
from segaudit.report.markup import note_html, png_html, why_html

#: The section's heading (``<h2>``) in the report.
TITLE = "Per-case Dice with quality bands"


def strips_html(m: pd.DataFrame) -> str:
    """Per-case Dice strip plots; both-empty cases are set apart (not drawn at 1.0) and counted."""
    kept, apart = drop_both_empty(m[m.metric.isin(["dice", "gt_empty", "pred_empty"])])
    parts = []
    for ds in sorted(kept[kept.metric == "dice"].dataset.unique()):
        a = apart[apart.dataset == ds]
        note = "" if a.empty else note_html(
            "Not drawn (both ground truth and prediction empty, set apart): "
            + ", ".join(f"{r.model}/{r.region} {int(r.n_both_empty)}" for r in a.itertuples()) + ".")
        parts.append(png_html(figures.strip_plot(kept, ds)) + note)
    return "".join(parts)


def render(inputs: ReportInputs) -> str:
    """The section's HTML: the strip plots, or why there are none."""
    return strips_html(inputs.m) or why_html("no Dice in this store")
