"""Layout detection: kept as an import path; the layouts live in :mod:`segaudit.dataset.layouts`, one each."""

from segaudit.dataset.layouts import (
    LAYOUTS,
    LONGITUDINAL_PATTERNS,
    SUBJECT_COLUMNS,
    Detection,
    Layout,
    UnknownLayoutError,
    detect_layout,
    infer_longitudinal,
    propose_skeleton,
    relativize,
)

__all__ = [
    "LAYOUTS",
    "LONGITUDINAL_PATTERNS",
    "SUBJECT_COLUMNS",
    "Detection",
    "Layout",
    "UnknownLayoutError",
    "detect_layout",
    "infer_longitudinal",
    "propose_skeleton",
    "relativize",
]
