"""Section 'Agreement between models (no ground truth needed)'.

Heatmaps of pairwise Dice, the per-model table (leave-one-out scores, STAPLE, volumes, outlier model) and the volume
spread, from the ``agree`` step's rows.
"""

from __future__ import annotations

import html

import pandas as pd

from segaudit.analysis.agreement import (
    agreement_matrix,
    agreement_metrics,
    agreement_regions,
    model_table,
    volume_table,
)
from segaudit.metrics.agreement import OUTLIER_MARGIN
from segaudit.report.agreement import agreement_heatmap
from segaudit.report.inputs import ReportInputs
from segaudit.report.markup import note_html, png_html, table_html

#: The section's heading (``<h2>``) in the report.
TITLE = "Agreement between models (no ground truth needed)"


def agreement_section(metrics: pd.DataFrame) -> str:
    """HTML of the agreement section for every dataset with ``agree`` rows ('' when there is none)."""
    a = agreement_metrics(metrics)
    parts = []
    for ds in sorted(a.dataset.unique()):
        regions = agreement_regions(a, ds)
        if not regions:
            continue
        n_cases = a[a.dataset == ds].case.nunique()
        parts.append(f"<h3>{html.escape(ds)}</h3>")
        parts.append(note_html(f"{n_cases} case(s). Pairwise Dice between models (mean over cases), per label/region; "
                               "a pair where both models are empty gets the empty-case policy's value (Dice 1 by "
                               "default), one empty model Dice 0."))
        figs = [png_html(agreement_heatmap(agreement_matrix(a, ds, r), f"{ds} / {r}: Dice")) for r in regions]
        parts.append("".join(f'<div class="panel">{f}</div>' for f in figs))
        table = model_table(a, ds)
        empty = table[table.volume == 0].groupby("region", sort=False).model.agg(", ".join)
        if len(empty):
            parts.append(note_html("Empty predictions (mean volume 0): " + "; ".join(
                f"{r}: {m}" for r, m in empty.items()) + ". Two empty models agree by the empty-case policy."))
        flagged = sorted(table[table.outlier].model.unique())
        if flagged:
            score = table[table.outlier].mean_loo_dice.iloc[0]
            median = table.drop_duplicates("model").mean_loo_dice.median()
            parts.append(f"<p class='warn'>Outlier model: {html.escape(flagged[0])} (mean leave-one-out Dice "
                         f"{score:.3f}, more than {OUTLIER_MARGIN:g} below the models' median {median:.3f}).</p>")
        else:
            parts.append(note_html(f"No outlier model: no model's mean leave-one-out Dice is more than "
                                   f"{OUTLIER_MARGIN:g} below the models' median (or fewer than three models)."))
        shown = table.rename(columns={"loo_hd95": "loo_hd95 (mm)", "volume": "volume (mm³)"})
        shown["staple_specificity"] = [("–" if pd.isna(v) else f"{v:.6f}") for v in shown.staple_specificity]
        parts.append(note_html("Per model: leave-one-out Dice and HD95 against the consensus of the other models "
                               "(so no model is judged against its own vote; HD95 is the penalty distance when "
                               "exactly one of the two is empty), STAPLE's sensitivity and specificity estimated "
                               "from all models (specificity over the whole image, hence close to 1), volume, and "
                               "its relative difference to the median of the models' volumes.")
                     + table_html(shown, 4))
        vols = volume_table(a, ds).rename(columns={"majority": "majority vote", "staple": "STAPLE"})
        parts.append(note_html("Volume spread across models per case (mm³; mm² in 2D): min, max, mean, median, "
                               "sample standard deviation and coefficient of variation, with the volumes of the "
                               "majority-vote and STAPLE consensus.") + table_html(vols, 3))
    return "".join(parts)


def render(inputs: ReportInputs) -> str:
    """The section's HTML, from the store's agreement rows."""
    return agreement_section(inputs.agreement)
