"""Pipelines that chain the stages over a project and write the results store.

``scan`` (discovery + QC), ``evaluate`` (metrics), ``agree`` (agreement between models), ``features`` and the slice
export.
"""

from segaudit.pipeline.agree import AgreeResult, agree_project
from segaudit.pipeline.evaluate import EvaluateResult, evaluate_project
from segaudit.pipeline.features import FeaturesResult, extract_project, features_table
from segaudit.pipeline.scan import ScanResult, resolve_project, scan_project
from segaudit.pipeline.slices import SliceExport, export_project_slices

__all__ = ["AgreeResult", "EvaluateResult", "FeaturesResult", "ScanResult", "SliceExport", "agree_project",
           "evaluate_project", "export_project_slices", "extract_project", "features_table", "resolve_project",
           "scan_project"]
