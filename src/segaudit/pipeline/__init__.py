"""Pipelines that chain the stages: ``scan`` (discovery + QC + store), ``evaluate`` (metrics) and the ``demo``."""

from segaudit.pipeline.evaluate import EvaluateResult, evaluate_project
from segaudit.pipeline.scan import ScanResult, resolve_project, scan_project

__all__ = ["EvaluateResult", "ScanResult", "evaluate_project", "resolve_project", "scan_project"]
