"""Pipelines that chain the stages: ``scan`` (discovery + QC + store) and the ``demo``."""

from segaudit.pipeline.scan import ScanResult, resolve_project, scan_project

__all__ = ["ScanResult", "resolve_project", "scan_project"]
