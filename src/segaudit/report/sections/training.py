"""Section 'Training curves'.

Training and validation curves from training-log CSVs (segaudit report --training-log).
"""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

from segaudit.analysis.training import read_training_log, training_summary
from segaudit.errors import SegauditError
from segaudit.report import figures
from segaudit.report.inputs import ReportInputs
from segaudit.report.markup import note_html, png_html, table_html, why_html

#: The section's heading (``<h2>``) in the report.
TITLE = "Training curves"


def training_html(logs: dict[str, str | Path]) -> str:
    """The curves of every readable training log (model -> CSV) and their summary table.

    A log that cannot be read is named with the reason, the others are still drawn.
    """
    frames, errors = [], []
    for model, path in logs.items():
        try:
            frames.append(read_training_log(path, model))
        except SegauditError as exc:
            errors.append(str(exc))
    parts = [f"<p class='warn'>Training log skipped: {html.escape(e)}</p>" for e in errors]
    if frames:
        log = pd.concat(frames, ignore_index=True)
        parts.insert(0, note_html("Solid: training, dashed: validation; star: best validation epoch; Dice-like curves "
                                  "on the bad/mid/good bands.") + png_html(figures.training_plot(log))
                     + table_html(training_summary(log), 4))
    return "".join(parts)


def render(inputs: ReportInputs) -> str:
    """The section's HTML: the curves and the summary table, or why there are none (no log given)."""
    if not inputs.training_logs:
        return why_html("no training log given (segaudit report --training-log MODEL=CSV)")
    return training_html(inputs.training_logs)
