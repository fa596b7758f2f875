"""The report's agreement section (no ground truth needed): heatmaps of pairwise Dice, the per-model table, volumes.

:func:`agreement_heatmap` returns a matplotlib Figure (as the functions of :mod:`segaudit.report.figures`);
:func:`agreement_section` is the HTML of the section, built from the ``agree`` step's rows.
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

from segaudit.analysis.agreement import (  # noqa: F401 - agreement_metrics is re-exported for html.py
    agreement_matrix,
    agreement_metrics,
    agreement_regions,
    model_table,
    volume_table,
)
from segaudit.metrics.agreement import OUTLIER_MARGIN
from segaudit.report.figures import pyplot


def agreement_heatmap(mat: pd.DataFrame, title: str, metric: str = "agree_dice"):
    """Heatmap of a model × model agreement matrix, each cell annotated ('–' on the diagonal and for no value).

    Dice on a fixed 0–1 scale (dark = agree); distances (mm) from 0 to the matrix's largest finite value, reversed
    so that dark still means agreement.
    """
    plt = pyplot()
    n = len(mat)
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * max(n, 2), 0.8 + 0.6 * max(n, 2)))
    values = mat.to_numpy(dtype=float)
    finite = values[np.isfinite(values)]
    if metric.endswith("dice"):
        im = ax.imshow(values, cmap="Blues", vmin=0, vmax=1)
    else:
        im = ax.imshow(values, cmap="Blues_r", vmin=0, vmax=float(finite.max()) if finite.size else 1.0)
    ax.set_xticks(range(n), mat.columns, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(n), mat.index, fontsize=7)
    for i in range(n):
        for j in range(n):
            v = values[i, j]
            dark = np.isfinite(v) and im.norm(v) > 0.6  # white text on the dark (agreeing) cells
            ax.text(j, i, "–" if not np.isfinite(v) else (f"{v:.2f}" if metric.endswith("dice") else f"{v:.1f}"),
                    ha="center", va="center", fontsize=7, color="white" if dark else "black")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    ax.set_title(title, fontsize=8)
    return fig


def agreement_section(metrics: pd.DataFrame) -> str:
    """HTML of the agreement section for every dataset with ``agree`` rows ('' when there is none)."""
    from segaudit.report.html import _note, _png, _table  # the report's own helpers (html imports this module)

    a = agreement_metrics(metrics)
    parts = []
    for ds in sorted(a.dataset.unique()):
        regions = agreement_regions(a, ds)
        if not regions:
            continue
        n_cases = a[a.dataset == ds].case.nunique()
        parts.append(f"<h3>{html.escape(ds)}</h3>")
        parts.append(_note(f"{n_cases} case(s). Pairwise Dice between models (mean over cases), per label/region; "
                           "a pair where both models are empty gets the empty-case policy's value (Dice 1 by "
                           "default), one empty model Dice 0."))
        figs = [_png(agreement_heatmap(agreement_matrix(a, ds, r), f"{ds} / {r}: Dice")) for r in regions]
        parts.append("".join(f'<div class="panel">{f}</div>' for f in figs))
        table = model_table(a, ds)
        empty = table[table.volume == 0].groupby("region", sort=False).model.agg(", ".join)
        if len(empty):
            parts.append(_note("Empty predictions (mean volume 0): " + "; ".join(
                f"{r}: {m}" for r, m in empty.items()) + ". Two empty models agree by the empty-case policy."))
        flagged = sorted(table[table.outlier].model.unique())
        if flagged:
            score = table[table.outlier].mean_loo_dice.iloc[0]
            median = table.drop_duplicates("model").mean_loo_dice.median()
            parts.append(f"<p class='warn'>Outlier model: {html.escape(flagged[0])} (mean leave-one-out Dice "
                         f"{score:.3f}, more than {OUTLIER_MARGIN:g} below the models' median {median:.3f}).</p>")
        else:
            parts.append(_note(f"No outlier model: no model's mean leave-one-out Dice is more than "
                               f"{OUTLIER_MARGIN:g} below the models' median (or fewer than three models)."))
        shown = table.rename(columns={"loo_hd95": "loo_hd95 (mm)", "volume": "volume (mm³)"})
        shown["staple_specificity"] = [("–" if pd.isna(v) else f"{v:.6f}") for v in shown.staple_specificity]
        parts.append(_note("Per model: leave-one-out Dice and HD95 against the consensus of the other models (so no "
                           "model is judged against its own vote; HD95 is the penalty distance when exactly one of "
                           "the two is empty), STAPLE's sensitivity and specificity estimated from all models "
                           "(specificity over the whole image, hence close to 1), volume, and its relative "
                           "difference to the median of the models' volumes.") + _table(shown, 4))
        vols = volume_table(a, ds).rename(columns={"majority": "majority vote", "staple": "STAPLE"})
        parts.append(_note("Volume spread across models per case (mm³; mm² in 2D): min, max, mean, median, sample "
                           "standard deviation and coefficient of variation, with the volumes of the majority-vote "
                           "and STAPLE consensus.") + _table(vols, 3))
    return "".join(parts)
