"""Section 'Failure taxonomy': each dataset's failure classes per model, and whether the missed lesions are small."""

from __future__ import annotations

import html

import pandas as pd

from segaudit.analysis.failures import failed_lesion_sizes, failure_counts, failure_taxonomy
from segaudit.report import figures
from segaudit.report.inputs import ReportInputs, volume_units
from segaudit.report.markup import note_html, png_html, table_html, why_html

#: The section's heading (``<h2>``) in the report.
TITLE = "Failure taxonomy"


def failures_html(m: pd.DataFrame, lesions: pd.DataFrame, imported: bool = False,
                  units: pd.DataFrame | None = None) -> str:
    """Per dataset, the failure classes of each model as bars.

    Then the count and size of the missed and detected lesions (when the store has lesion rows). Without the metrics
    the taxonomy needs, which ones lack (``imported``: the store's metrics came from AUDIT tables).
    """
    missing = sorted({"dice", "gt_empty", "pred_empty", "tp"} - set(m.metric))
    if missing:
        return why_html(f"the taxonomy needs the metrics {', '.join(missing)}, which this store lacks" + (
            ": tables imported from AUDIT carry DICE, JACC, PREC, SENS, SPEC, HAUS and SIZE, not voxel counts "
            "or empty-mask flags (run segaudit evaluate on the masks)" if imported else " (run segaudit evaluate)"))
    counts = failure_counts(failure_taxonomy(m))
    parts = [f"<h3>{html.escape(ds)}</h3>" + png_html(figures.failure_bars(counts, ds))
             for ds in sorted(counts.dataset.unique())]
    if not lesions.empty:
        sizes = failed_lesion_sizes(lesions)
        if not sizes.empty:
            parts.append("<h3>Are the missed lesions small?</h3>" + note_html(
                "Ground-truth lesions (lesion-wise matching of segaudit evaluate) missed or detected by each model: "
                f"count and median volume [quartiles] in {volume_units(units)}.") + table_html(side_by_side(sizes)))
    return "".join(parts)


def side_by_side(sizes: pd.DataFrame) -> pd.DataFrame:
    """Missed and detected lesion sizes of one model and region on one row."""
    sizes = sizes.assign(size=[f"{r.median:.0f} [{r.q1:.0f}, {r.q3:.0f}]" for r in sizes.itertuples()])
    wide = sizes.pivot_table(index=["dataset", "model", "region"], columns="outcome", values=["n", "size"],
                             aggfunc="first")
    wide.columns = [f"{outcome} {'n' if what == 'n' else 'size'}" for what, outcome in wide.columns]
    order = [c for c in ("missed n", "missed size", "detected n", "detected size") if c in wide.columns]
    wide = wide[order]
    for col in ("missed n", "detected n"):
        if col in wide.columns:
            wide[col] = pd.to_numeric(wide[col]).fillna(0).astype(int)
    return wide.reset_index()


def render(inputs: ReportInputs) -> str:
    """The section's HTML: the failure bars and the missed-lesion sizes, or the metrics the taxonomy lacks."""
    return failures_html(inputs.m, inputs.lesions, bool(inputs.imported), inputs.units)
