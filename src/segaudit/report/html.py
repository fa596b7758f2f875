"""``segaudit report``: one self-contained HTML file (figures inlined as PNG data, no network) from a store.

Sections, each shown only when the store has what it needs: overview and QC, splits (with the patient-level
leakage check), metric summary with bootstrap CIs, per-case strip plots with quality bands, failure taxonomy,
error matrices, a pairwise comparison of the first two models of each dataset with the test explained in
words, a ranking of three or more models (Friedman, Nemenyi), bias (Dice against lesion size, Dice by
metadata group), agreement between models (without ground truth), longitudinal volumes, training curves (when logs
are given) and image panels (ground truth and prediction over the image, TP/FP/FN colours) for the worst and best
cases (when the project is given).

A section that cannot be drawn says why in the report instead of failing the whole report.

This module is the report's entry point and keeps its historical names; the code lives in
:mod:`segaudit.report.page` (the page), :mod:`segaudit.report.sections` (one module per section),
:mod:`segaudit.report.panels` (image panels), :mod:`segaudit.report.inputs` (what is read from the store) and
:mod:`segaudit.report.markup` (HTML helpers, the stylesheet ``report.css`` as package data).
"""

from __future__ import annotations

from segaudit.report.inputs import penalty_notes, stored_units
from segaudit.report.markup import load_css
from segaudit.report.markup import note_html as _note  # noqa: F401 - the old private names, for code not yet moved
from segaudit.report.markup import png_html as _png  # noqa: F401
from segaudit.report.markup import table_html as _table  # noqa: F401
from segaudit.report.markup import why_html as _why  # noqa: F401
from segaudit.report.page import GENERATOR, build_report, check_report_target
from segaudit.report.panels import panel_region
from segaudit.report.sections.comparison import ALL_PAIRS_MAX_MODELS, default_pairs
from segaudit.report.sections.summary import SUMMARY_METRICS

__all__ = ["ALL_PAIRS_MAX_MODELS", "CSS", "GENERATOR", "SUMMARY_METRICS", "build_report", "check_report_target",
           "default_pairs", "panel_region", "penalty_notes", "stored_units"]

#: The report's stylesheet (package data ``segaudit/report/report.css``).
CSS = load_css()
