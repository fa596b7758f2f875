"""Dataset description and discovery: project files, path templates, layout presets, label conventions."""

from segaudit.dataset.discover import CaseRecord, Discovery, FileRecord, discover, discover_dataset
from segaudit.dataset.labels import LABEL_CONVENTIONS, LabelConvention, LabelMap
from segaudit.dataset.layouts import Detection, detect_layout, relativize
from segaudit.dataset.project import DatasetConfig, ProjectConfig, dump_project, load_project, parse_project

__all__ = [
    "LABEL_CONVENTIONS",
    "CaseRecord",
    "DatasetConfig",
    "Detection",
    "Discovery",
    "FileRecord",
    "LabelConvention",
    "LabelMap",
    "ProjectConfig",
    "detect_layout",
    "discover",
    "discover_dataset",
    "dump_project",
    "load_project",
    "parse_project",
    "relativize",
]
