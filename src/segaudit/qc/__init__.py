"""Quality control: per case and file checks with a severity and a message naming the file and reason."""

from segaudit.qc.checks import SEVERITIES, CaseQC, FileInfo, QCFinding, QCOptions, check_case

__all__ = ["SEVERITIES", "CaseQC", "FileInfo", "QCFinding", "QCOptions", "check_case"]
