"""Section 'Longitudinal volumes': whole-tumour volume per time point, ground truth against each model."""

from __future__ import annotations

import pandas as pd

from segaudit.analysis.cohorts import longitudinal_volumes
from segaudit.report import figures
from segaudit.report.inputs import ReportInputs
from segaudit.report.markup import note_html, png_html, table_html, why_html

#: The section's heading (``<h2>``) in the report.
TITLE = "Longitudinal volumes"


def longitudinal_html(cases: pd.DataFrame, feats: pd.DataFrame, units: pd.DataFrame | None = None) -> str:
    """Whole-tumour volume per subject and time point, true against predicted, with growth from the previous time point.

    A plot and a table (volume unit from ``units``). Without subjects, time points or volumes, why.
    """
    if not (cases.subject.notna() & cases.timepoint.notna()).any():
        return why_html("no case has a subject and a time point: declare longitudinal: in the project file, or import "
                        "an AUDIT feature table whose longitudinal_id column is filled (it gives the subject; "
                        "time_point the time point)")
    lon = longitudinal_volumes(cases, feats)
    if lon.empty or not lon.pred_volume.notna().any():
        return why_html("the cases with a subject and a time point have no true and predicted whole-tumour (WT) "
                        "volumes: run segaudit features (group lesion) with the predictions, or import AUDIT's metric "
                        "table (SIZE) and feature table (lesion_size_whole)")
    t = lon[["dataset", "subject", "timepoint", "model", "true_volume", "pred_volume", "relative_error",
             "true_growth", "pred_growth"]]
    vol = None
    if units is not None and not units.empty:
        per_ds = units[units.metric == "gt_volume"].drop_duplicates("dataset").set_index("dataset").unit
        if t.dataset.isin(per_ds.index).all():
            vol = t.dataset.map(per_ds)
    if vol is not None and vol.nunique() > 1:  # several units in one table: a column says which
        t = t.assign(unit=vol.to_numpy())
        label = ""
    else:
        u = vol.iloc[0] if vol is not None and len(vol) else "mm³"
        label = f" ({u})"
    t = t.rename(columns={"true_volume": f"true volume{label}", "pred_volume": f"predicted volume{label}",
                          "relative_error": "relative error", "true_growth": f"true growth{label}",
                          "pred_growth": f"predicted growth{label}"})
    return note_html("Whole-tumour volume per time point, ground truth against each model; growth is the change from "
                     "the subject's previous time point. Volumes in the same unit on both sides (mm³ on physical "
                     "grids, pixel areas for photos without a declared spacing).") \
        + png_html(figures.longitudinal_plot(lon)) + table_html(t, 2)


def render(inputs: ReportInputs) -> str:
    """The section's HTML: the volume plot and table, or why there is none."""
    if inputs.cases.empty or inputs.features.empty:
        return why_html("no cases or no features in this store: longitudinal volumes need subjects with time "
                        "points and lesion volumes")
    return longitudinal_html(inputs.cases, inputs.features, inputs.units)
