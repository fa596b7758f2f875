"""Section 'Segmentation error matrices': label-by-label confusion of each model, and its over-segmentation."""

from __future__ import annotations

import html

import pandas as pd

from segaudit.analysis.error_matrix import matrix_with_background_row, over_segmentation
from segaudit.metrics.evaluate import CONFUSION_REGION
from segaudit.report import figures
from segaudit.report.inputs import ReportInputs
from segaudit.report.markup import note_html, png_html, table_html, why_html

#: The section's heading (``<h2>``) in the report.
TITLE = "Segmentation error matrices"


def error_matrices_html(metrics: pd.DataFrame, imported: bool = False) -> str:
    """One row-normalised label-by-label matrix per dataset and model (with the background row).

    Then the over-segmentation warnings and the per-case foreground over-segmentation table; without confusion rows,
    why.
    """
    conf = metrics[metrics.region == CONFUSION_REGION]
    if conf.empty:
        return why_html("no label-by-label voxel counts in this store" + (
            ": tables imported from AUDIT hold per-region scores only, and AUDIT does not write which label a "
            "model gave each true voxel (run segaudit evaluate on the masks to get them)" if imported else
            " (segaudit evaluate writes them)"))
    cells = []
    for (ds, model), _ in conf.groupby(["dataset", "model"], sort=True):
        # Rows over every voxel of the true label (its 'background' column = missed voxels), plus the background
        # row as a share of each label's true volume: what the model labelled where there is nothing to find.
        mat = matrix_with_background_row(metrics, dataset=ds, model=model)
        if mat.size:
            cells.append(f'<div class="panel">{png_html(figures.matrix_plot(mat, f"{ds} / {model}"))}</div>')
    over = over_segmentation(metrics)
    fg = over[over.label == "foreground"]
    warn = fg[fg.fp_background_share > 1]
    table = fg[["dataset", "case", "model", "gt_volume", "pred_volume", "fp_background", "fp_background_share"]]
    table = table.rename(columns={"gt_volume": "true voxels", "pred_volume": "predicted voxels",
                                  "fp_background": "predicted where truth is background",
                                  "fp_background_share": "over-segmentation (× true volume)"})
    text = "".join("<p class='warn'>" + html.escape(
        f"{r.model} on {r.dataset}/{r.case} labels {r.fp_background:,.0f} voxels outside the true structure: "
        f"{r.fp_background_share:.1f}× its true volume ({r.gt_volume:,.0f} voxels).") + "</p>"
        for r in warn.itertuples())
    return note_html("Rows: share of each true label's voxels predicted as each label (columns), summed over cases; "
                     "the background column is the share missed. Last row: voxels predicted as each label where the "
                     "truth is background, as a multiple of that label's true volume (over-segmentation; above 1 the "
                     "model adds more than the whole true structure).") + "".join(cells) + text + note_html(
        "Over-segmentation of the whole foreground per case (all tumour labels together):") + table_html(table, 2)


def render(inputs: ReportInputs) -> str:
    """The section's HTML: the matrices and the over-segmentation table, or why there are none."""
    return error_matrices_html(inputs.metrics, bool(inputs.imported))
