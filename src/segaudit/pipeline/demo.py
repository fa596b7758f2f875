"""The demo project: the sample data bundled with the package and its project file.

:func:`segaudit.demo.run_demo` runs the whole journey on it (it sits above the report, which it writes);
this module only says where the project is, so every layer from the pipeline up can use it.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from segaudit.dataset.project import ProjectConfig, load_project


def demo_project_path() -> Path:
    """Path of the bundled demo project file (``segaudit/data/demo/segaudit.yaml``)."""
    return Path(str(files("segaudit").joinpath("data/demo/segaudit.yaml")))


def demo_project() -> ProjectConfig:
    """The bundled demo project, loaded and validated."""
    return load_project(demo_project_path())
