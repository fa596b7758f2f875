"""The ``scan`` step: discover a project's files, check every case, and store cases, files and QC.

:func:`scan_project` is the Python API behind ``segaudit scan``. It reads each file once, never writes next to
the data, records every problem as a QC row and returns a :class:`ScanResult` with a summary per dataset.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from segaudit.dataset.discover import Discovery, discover
from segaudit.dataset.layouts import detect_layout
from segaudit.dataset.project import ProjectConfig, load_project, parse_project
from segaudit.errors import ConfigError
from segaudit.pipeline.parallel import process_pool, progress_bar
from segaudit.qc.checks import CaseQC, QCFinding, QCOptions, check_case, check_dataset
from segaudit.store.store import ResultsStore


@dataclass
class ScanResult:
    """Outcome of a scan: the discovery, the QC rows, the file facts and a per-dataset summary."""

    project: ProjectConfig
    discovery: Discovery
    qc: pd.DataFrame
    files: pd.DataFrame
    summary: pd.DataFrame
    run_id: str = ""


def resolve_project(target: str | Path) -> tuple[ProjectConfig, list[str]]:
    """A project from a YAML file, or auto-detected from a data folder (with the detection notes)."""
    target = Path(target)
    if target.is_dir():
        det = detect_layout(target)
        return parse_project(det.project, target.resolve()), det.notes
    if target.suffix.lower() in (".yaml", ".yml"):
        return load_project(target), []
    raise ConfigError(f"{target}: not a project file (.yaml) or a data folder")


def _check_one(args) -> CaseQC:
    ds, records, options = args
    return check_case(ds, records, options)


def scan_project(project: ProjectConfig, out_dir: str | Path | None = None, workers: int = 1,
                 progress: bool = True, argv: list[str] | None = None) -> ScanResult:
    """Discover and check every case of a project; write ``cases``, ``files`` and ``qc`` to the store.

    Parameters
    ----------
    project:
        From :func:`~segaudit.dataset.load_project` or :func:`resolve_project`.
    out_dir:
        Run directory for the results store; ``None`` keeps everything in memory.
    workers:
        Processes used to read and check cases (1 = in this process).
    progress:
        Show a progress bar on the terminal.

    Returns
    -------
    ScanResult
    """
    options = QCOptions.from_dict(project.raw.get("qc")) if project.raw else QCOptions()
    discovery = discover(project)
    jobs = []
    for ds in project.datasets:
        for case in [c for c in discovery.cases if c.dataset == ds.name]:
            jobs.append((ds, discovery.for_case(ds.name, case.case), options))

    results: list[CaseQC] = []
    bar = progress_bar(progress)
    with bar:
        task = bar.add_task("Checking cases", total=len(jobs))
        if workers > 1 and len(jobs) > 1:
            with process_pool(workers) as pool:
                for res in pool.map(_check_one, jobs, chunksize=1):
                    results.append(res)
                    bar.advance(task)
        else:
            for job in jobs:
                results.append(_check_one(job))
                bar.advance(task)

    findings: list[QCFinding] = [f for r in results for f in r.findings]
    for ds in project.datasets:
        findings += check_dataset(ds.name, [f for r in results for f in r.files if f.dataset == ds.name],
                                  spacing=ds.spacing)
    for issue in discovery.issues:
        findings.append(QCFinding(issue.dataset, issue.case, "metadata", "", issue.path, issue.check,
                                  issue.severity, issue.message))
    qc = pd.DataFrame([asdict(f) for f in findings],
                      columns=["dataset", "case", "role", "key", "path", "check", "severity", "message"])
    files = pd.DataFrame([asdict(f) for r in results for f in r.files]).drop(columns=["is_color"], errors="ignore")
    summary = scan_summary(project, discovery, qc)
    result = ScanResult(project, discovery, qc, files, summary)
    if out_dir is not None:
        result.run_id = write_scan(result, out_dir, argv)
    return result


def scan_summary(project: ProjectConfig, discovery: Discovery, qc: pd.DataFrame) -> pd.DataFrame:
    """One row per dataset: cases, sequences, models, files found/missing and QC counts by severity."""
    files = discovery.files_frame()
    rows = []
    for ds in project.datasets:
        f = files[files.dataset == ds.name]
        q = qc[qc.dataset == ds.name]
        seqs = sorted(f.loc[f.role == "image", "key"].unique())
        models = sorted(f.loc[f.role == "prediction", "key"].unique())
        rows.append({
            "dataset": ds.name,
            "cases": int((pd.Series([c.dataset for c in discovery.cases]) == ds.name).sum()),
            "subjects": len({c.subject for c in discovery.cases if c.dataset == ds.name and c.subject}),
            "sequences": ",".join(seqs),
            "models": ",".join(models),
            "files": int(f.exists.sum()),
            "missing": int((~f.exists.astype(bool)).sum()),
            "errors": int((q.severity == "error").sum()),
            "warnings": int((q.severity == "warning").sum()),
            "info": int((q.severity == "info").sum()),
        })
    return pd.DataFrame(rows)


def write_scan(result: ScanResult, out_dir: str | Path, argv: list[str] | None = None) -> str:
    """Store a scan's rows, replacing only the rows of the datasets it scanned.

    ``cases``, ``files`` and ``qc`` are written in one transaction: a failure part-way leaves the previous
    scan's rows of all three as they were (and the run ``interrupted``), never a mix of two scans.
    """
    datasets = [ds.name for ds in result.project.datasets]
    with ResultsStore(out_dir) as store:
        run_id = store.start_run("scan", result.project.config_hash, result.project.raw, argv)
        status = "interrupted"
        try:
            cases = result.discovery.cases_frame()
            cases["metadata"] = cases["metadata"].map(lambda m: json.dumps(m, default=str))
            where = {"dataset": datasets}
            store.replace_many([(table, frame.assign(run_id=run_id), where)
                                for table, frame in (("cases", cases), ("files", result.files), ("qc", result.qc))])
            status = "ok"
        finally:
            store.finish_run(run_id, status, {"summary": result.summary.to_dict(orient="records")})
    return run_id
