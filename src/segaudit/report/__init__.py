"""The HTML report of a run (:func:`build_report`) and its figures (matplotlib, written atomically as PNG)."""

from segaudit.report.figures import write_flips
from segaudit.report.page import build_report

__all__ = ["build_report", "write_flips"]
