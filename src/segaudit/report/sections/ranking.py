"""Section 'Model ranking': three or more models ranked per dataset (mean ranks, Friedman, Nemenyi, stability)."""

from __future__ import annotations

import html

import pandas as pd

from segaudit.analysis.ranking import rank_models, ranking_table
from segaudit.report import figures
from segaudit.report.inputs import ReportInputs
from segaudit.report.markup import note_html, png_html, table_html, why_html

#: The section's heading (``<h2>``) in the report.
TITLE = "Model ranking"


def ranking_html(m: pd.DataFrame, expected: pd.DataFrame | None = None) -> str:
    """Per dataset with three or more models.

    Mean ranks of the per-case Dice (averaged over regions), the Friedman test, the Nemenyi critical difference and rank
    stability; a plot and two tables. A dataset that cannot be ranked says why.
    """
    parts, why = [], []
    for ds in sorted(m.dataset.unique()):
        d = m[(m.dataset == ds) & (m.metric == "dice")]
        if d.model.nunique() < 3:
            why.append(f"{ds}: {d.model.nunique()} model(s); a ranking needs three or more scored on the same cases")
            continue
        wide, info = ranking_table(m[m.dataset == ds], ds, "dice", missing="worst", expected=expected)
        ranks, fried, post = rank_models(wide, n_resamples=500)
        if fried["n"] < 2:
            why.append(f"{ds}: {d.model.nunique()} models but {fried['n']} case(s) scored by all of them; a "
                       "ranking needs at least two shared cases")
            continue
        parts.append(f"<h3>{html.escape(ds)}</h3>")
        if fried["note"]:
            parts.append(note_html(f"Per case, Dice averaged over regions; {fried['n']} complete cases, {fried['k']} "
                                   f"models: mean ranks only, no Friedman test, critical difference or rank stability "
                                   f"({fried['note']})."))
            parts.append(table_html(ranks, 3))
            continue
        parts.append(note_html(f"Per case, Dice averaged over regions (AUDIT's per-subject aggregation); "
                               f"{fried['n']} complete cases, {fried['k']} models; {info['policy']}; "
                               f"{info['n_both_empty']} region value(s) where every model is both-empty set apart. "
                               f"Friedman chi² = {fried['statistic']:.2f}, p = {fried['p']:.3g}. Nemenyi critical "
                               f"difference of mean ranks: {fried['critical_difference']:.2f}. Rank stability = share "
                               "of 500 bootstrap resamples of the cases in which a model keeps its place."))
        parts.append(png_html(figures.rank_plot(ranks, fried["critical_difference"], f"{ds}: mean ranks")))
        parts.append(table_html(ranks, 3) + table_html(post, 4))
    return "".join(parts) + "".join(why_html(w) for w in why)


def render(inputs: ReportInputs) -> str:
    """The section's HTML: each dataset's ranking, or why it has none."""
    return ranking_html(inputs.m, inputs.expected) if inputs.has_dice else why_html("no Dice in this store")
