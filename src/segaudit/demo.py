"""``segaudit demo``: the whole journey on the sample data bundled with the package.

The demo scans the bundled project (discovery + QC), evaluates every case-model (overlap, surface and
lesion-wise metrics) and extracts every case's features (intensity, texture, spatial, lesion, multimodal) into
one results store, and writes the HTML report beside it. It chains the pipeline *and* the report, so it sits
above both (the README's Layers). The library returns each step's result (:class:`DemoResult`); printing them
is the command line's job (``segaudit demo``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from segaudit.dataset.project import ProjectConfig
from segaudit.pipeline.demo import demo_project
from segaudit.pipeline.evaluate import EvaluateResult, evaluate_project
from segaudit.pipeline.features import FeaturesResult, extract_project
from segaudit.pipeline.scan import ScanResult, scan_project
from segaudit.report import build_report

__all__ = ["DemoResult", "feature_overview", "run_demo"]


@dataclass
class DemoResult:
    """What :func:`run_demo` did: each step's result, the store's folder and the report written.

    Nothing is printed by the library; ``segaudit demo`` prints these (see :mod:`segaudit.cli`).
    """

    project: ProjectConfig
    out_dir: Path
    scan: ScanResult
    evaluation: EvaluateResult
    features: FeaturesResult
    report: Path

    @property
    def summary(self) -> pd.DataFrame:
        """The scan's per-dataset summary (:attr:`ScanResult.summary`)."""
        return self.scan.summary

    @property
    def qc(self) -> pd.DataFrame:
        """The scan's QC findings (:attr:`ScanResult.qc`)."""
        return self.scan.qc

    @property
    def store_path(self) -> Path:
        """The results store (``segaudit.duckdb``) in :attr:`out_dir`."""
        return self.out_dir / "segaudit.duckdb"


def run_demo(out_dir: str | Path = "segaudit-demo", progress: bool = True, workers: int = 2) -> DemoResult:
    """Scan, evaluate, extract features and report on the bundled sample data in ``out_dir``.

    Returns every step's result; prints nothing (the progress bars aside, when ``progress``).
    """
    project = demo_project()
    out_dir = Path(out_dir)
    scan = scan_project(project, out_dir, progress=progress)
    # Worker processes, not Dask: the demo runs on the core install.
    ev = evaluate_project(project, out_dir, workers=workers, executor="processes", progress=progress)
    feats = extract_project(project, out_dir, workers=workers, executor="processes", progress=progress)
    report = build_report(out_dir, out_dir / "report.html", project, "segaudit demo: bundled sample data",
                          force=True)  # the demo's own folder: its previous report is replaced
    return DemoResult(project, out_dir, scan, ev, feats, report)


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
