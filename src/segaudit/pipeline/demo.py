"""``segaudit demo``: the whole journey on the sample data bundled with the package.

Today the demo scans the bundled project (discovery + QC into a results store); later stages (evaluate,
features, report) extend it as they land.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from segaudit.dataset.project import ProjectConfig, load_project
from segaudit.pipeline.scan import ScanResult, scan_project


def demo_project_path() -> Path:
    """Path of the bundled demo project file (``segaudit/data/demo/segaudit.yaml``)."""
    return Path(str(files("segaudit").joinpath("data/demo/segaudit.yaml")))


def demo_project() -> ProjectConfig:
    """The bundled demo project, loaded and validated."""
    return load_project(demo_project_path())


def run_demo(out_dir: str | Path = "segaudit-demo", progress: bool = True, console=None) -> ScanResult:
    """Scan the bundled sample data into ``out_dir`` and print what was found."""
    project = demo_project()
    if console is not None:
        console.print(f"segaudit demo: bundled sample data in {demo_project_path().parent}")
    result = scan_project(project, out_dir, progress=progress)
    if console is not None:
        from segaudit.cli import _print_findings, _print_summary

        _print_summary(result.summary, "Scan summary (bundled sample data)")
        _print_findings(result.qc, 25)
        console.print(f"Results store: {Path(out_dir) / 'segaudit.duckdb'}")
        console.print(f"Export the tables with: segaudit export {out_dir} --format csv")
    return result
