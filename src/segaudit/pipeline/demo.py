"""``segaudit demo``: the whole journey on the sample data bundled with the package.

The demo scans the bundled project (discovery + QC), evaluates every case-model (overlap, surface and
lesion-wise metrics) and extracts every case's features (intensity, texture, spatial, lesion, multimodal) into
one results store, and writes the HTML report beside it.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import pandas as pd

from segaudit.dataset.project import ProjectConfig, load_project
from segaudit.pipeline.evaluate import evaluate_project
from segaudit.pipeline.features import extract_project
from segaudit.pipeline.scan import ScanResult, scan_project


def demo_project_path() -> Path:
    """Path of the bundled demo project file (``segaudit/data/demo/segaudit.yaml``)."""
    return Path(str(files("segaudit").joinpath("data/demo/segaudit.yaml")))


def demo_project() -> ProjectConfig:
    """The bundled demo project, loaded and validated."""
    return load_project(demo_project_path())


def run_demo(out_dir: str | Path = "segaudit-demo", progress: bool = True, console=None,
             workers: int = 2) -> ScanResult:
    """Scan, evaluate, extract features and report on the bundled sample data in ``out_dir``; print what was found."""
    project = demo_project()
    if console is not None:
        console.print(f"segaudit demo: bundled sample data in {demo_project_path().parent}")
    result = scan_project(project, out_dir, progress=progress)
    if console is not None:
        from segaudit.cli import _print_findings, _print_summary

        _print_summary(result.summary, "Scan summary (bundled sample data)")
        _print_findings(result.qc, 25)
    # Worker processes, not Dask: the demo runs on the core install.
    ev = evaluate_project(project, out_dir, workers=workers, executor="processes", progress=progress)
    if console is not None:
        from segaudit.cli import _print_evaluation
        from segaudit.metrics.evaluate import EvaluationOptions

        # The same table as `segaudit evaluate`: coverage, both-empty cases set apart, units as stored.
        _print_evaluation(out_dir, [ds.name for ds in project.datasets],
                          EvaluationOptions.from_dict(project.raw.get("evaluate") if project.raw else None))
        for _, e in ev.errors.iterrows():
            console.print(f"  [yellow]{e.severity}[/] {e.dataset}/{e.case} {e.model}: {e.message}", soft_wrap=True)
    feats = extract_project(project, out_dir, workers=workers, executor="processes", progress=progress)
    if console is not None:
        from segaudit.cli import _print_summary

        _print_summary(feature_overview(feats.features), "Features: per dataset, ground truth (mean over cases)")
        shown = feats.errors[feats.errors.severity != "info"]
        for _, e in shown.iterrows():
            console.print(f"  [yellow]{e.severity}[/] {e.dataset}/{e.case}: {e.message}", soft_wrap=True)
    from segaudit.report.html import build_report

    report = build_report(out_dir, Path(out_dir) / "report.html", project, "segaudit demo: bundled sample data",
                          force=True)  # the demo's own folder: its previous report is replaced
    if console is not None:
        console.print(f"Results store: {Path(out_dir) / 'segaudit.duckdb'}")
        console.print(f"Report: {report.resolve()}")
        console.print(f"Export the tables with: segaudit export {out_dir} --format csv (or --format audit)")
    return result


def feature_overview(features: pd.DataFrame) -> pd.DataFrame:
    """One row per dataset: cases, feature rows, and the mean lesion size and count of its first region."""
    rows = []
    for ds, f in features.groupby("dataset", sort=True):
        gt = f[f.model.fillna("") == ""]
        les = gt[gt.group == "lesion"]
        region = "WT" if (les.source == "WT").any() else (les.source.iloc[0] if len(les) else "")
        pick = les[les.source == region].groupby("feature").value.mean()
        rows.append({"dataset": ds, "cases": f.case.nunique(), "rows": len(f), "region": region,
                     "volume": round(float(pick.get("volume", float("nan"))), 1),
                     "components": round(float(pick.get("n_components", float("nan"))), 2),
                     "nan_values": int(f.value.isna().sum())})
    return pd.DataFrame(rows)
