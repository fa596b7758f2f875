"""Section 'Worst and best cases'.

Image panels of each dataset's worst and best case-models by Dice (:mod:`segaudit.report.panels`).
"""

from __future__ import annotations

import pandas as pd

from segaudit.report.inputs import ReportInputs
from segaudit.report.markup import note_html, why_html
from segaudit.report.panels import panels_html

#: The section's heading (``<h2>``) in the report.
TITLE = "Worst and best cases"


def worst_best_html(project, m: pd.DataFrame, imported: set[str], region: str | None) -> str:
    """The colour legend and the panels (:func:`segaudit.report.panels.panels_html`).

    Without Dice or without a project, why (``imported``: datasets whose metrics came from AUDIT tables, which have
    no files).
    """
    if m.empty or not (m.metric == "dice").any():
        return why_html("no Dice in this store to rank cases by")
    if project is None:
        if imported and imported >= set(m.dataset):
            return why_html(f"the metrics of {', '.join(sorted(imported))} were imported from AUDIT tables, which hold "
                            "scores but no images or masks; to see the cases, give --project with the images, ground "
                            "truth and predictions (and run segaudit evaluate on them)")
        return why_html("no project given: segaudit report RUN --project PROJECT.yaml draws the worst and best cases "
                        "from its image and mask files")
    return note_html("Green = true positive, red = false positive, blue = false negative. Each panel is cropped "
                     "around the ground truth and the prediction (3D: the slice with most wrong voxels).") \
        + panels_html(project, m, region=region)


def render(inputs: ReportInputs) -> str:
    """The section's HTML: the colour legend and the panels, or why there are none."""
    return worst_best_html(inputs.project, inputs.m, inputs.imported, inputs.region)
