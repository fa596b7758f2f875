"""The ``segaudit`` command line: a thin shell over the Python API.

Verbs: ``init``, ``scan``, ``export``, ``demo``. Errors print as one line (``segaudit: error: ...``) and exit
with status 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from segaudit import __version__
from segaudit.errors import SegauditError

# A wide console when piped (CI logs, files) so tables keep whole paths and names.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)


def _print_summary(summary, title: str) -> None:
    table = Table(title=title, title_justify="left")
    for col in summary.columns:
        table.add_column(col, justify="right" if summary[col].dtype.kind in "iuf" else "left")
    for _, row in summary.iterrows():
        table.add_row(*[str(v) for v in row.tolist()])
    console.print(table)


def _print_findings(qc, limit: int) -> None:
    if qc.empty:
        console.print("QC: no findings.")
        return
    order = {"error": 0, "warning": 1, "info": 2}
    shown = qc[qc.severity != "info"].sort_values(by="severity", key=lambda s: s.map(order), kind="stable")
    if shown.empty:
        console.print(f"QC: {len(qc)} informational finding(s), no error or warning.")
        return
    console.print(f"QC findings (errors and warnings; {len(shown)} in all):")
    colour = {"error": "red", "warning": "yellow"}
    for _, f in shown.head(limit).iterrows():
        console.print(f"  [{colour[f.severity]}]{f.severity:7}[/] {f.dataset}/{f.case} {f.check}: {f.message}",
                      soft_wrap=True)
    if len(shown) > limit:
        console.print(f"  ... {len(shown) - limit} more (see the qc table, or --show-all)")


def cmd_init(args) -> int:
    from segaudit.dataset import detect_layout, dump_project, relativize
    from segaudit.store import atomic_write_text

    det = detect_layout(args.data_dir)
    out = Path(args.out)
    if out.exists() and not args.force:
        raise SegauditError(f"{out}: already exists (use --force to overwrite)")
    data_dir = Path(args.data_dir).resolve()
    if out.resolve().is_relative_to(data_dir) and not args.force:
        raise SegauditError(f"{out}: refusing to write into the data folder {data_dir} (it may be read-only); "
                            "choose another --out")
    project = relativize(det.project, out.resolve().parent)
    header = (f"# segaudit project proposed by `segaudit init {args.data_dir}`\n"
              "# Detected:\n" + "".join(f"#   {n}\n" for n in det.notes) +
              "# Edit freely: templates, labels, regions, metadata. Relative paths are relative to this file.\n")
    atomic_write_text(out, header + dump_project(project))
    console.print(f"Detected layout(s): {', '.join(det.layouts)}")
    for n in det.notes:
        console.print(f"  {n}", soft_wrap=True)
    console.print(f"Wrote {out}")
    return 0


def cmd_scan(args) -> int:
    from segaudit.pipeline.scan import resolve_project, scan_project

    project, notes = resolve_project(args.target)
    for n in notes:
        console.print(f"detected: {n}", soft_wrap=True)
    result = scan_project(project, args.out, workers=args.workers, progress=not args.no_progress,
                          argv=sys.argv)
    _print_summary(result.summary, "Scan summary")
    _print_findings(result.qc, 10_000 if args.show_all else args.max_findings)
    if args.out:
        console.print(f"Results store: {Path(args.out) / 'segaudit.duckdb'}")
    return 0


def cmd_export(args) -> int:
    from segaudit.store import ResultsStore

    with ResultsStore(args.results, read_only=True) as store:
        paths = store.export(args.out or Path(args.results) / "export", args.format)
    for p in paths:
        console.print(f"wrote {p}")
    return 0


def cmd_slices(args) -> int:
    from segaudit.pipeline.scan import resolve_project
    from segaudit.pipeline.slices import export_project_slices

    project, _ = resolve_project(args.target)
    if args.dataset:
        project.datasets = [d for d in project.datasets if d.name in args.dataset]
    method = None if args.norm == "none" else args.norm
    res = export_project_slices(project, args.out, args.axis, method, args.format, args.nonempty,
                                progress=not args.no_progress)
    console.print(f"wrote {len(res.written)} file(s) under {args.out}")
    for ds, case, reason in res.skipped:
        console.print(f"  [yellow]skipped[/] {ds}/{case}: {reason}", soft_wrap=True)
    return 0


def cmd_demo(args) -> int:
    from segaudit.pipeline.demo import run_demo

    run_demo(args.out, progress=not args.no_progress, console=console)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="segaudit", description=__doc__.split("\n")[0])
    p.add_argument("--version", action="version", version=f"segaudit {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("init", help="propose a project file for a data folder")
    s.add_argument("data_dir")
    s.add_argument("--out", default="segaudit.yaml", help="project file to write (default ./segaudit.yaml)")
    s.add_argument("--force", action="store_true", help="overwrite an existing file")
    s.set_defaults(func=cmd_init)

    s = sub.add_parser("scan", help="discover files, run QC, store the results")
    s.add_argument("target", help="project file (.yaml) or a data folder (layout auto-detected)")
    s.add_argument("--out", help="results directory (DuckDB store); omit to only print")
    s.add_argument("--workers", type=int, default=1, help="processes reading cases (default 1)")
    s.add_argument("--max-findings", type=int, default=25, help="QC lines printed (default 25)")
    s.add_argument("--show-all", action="store_true", help="print every error and warning")
    s.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    s.set_defaults(func=cmd_scan)

    s = sub.add_parser("export", help="write every table of a results store to CSV or Parquet")
    s.add_argument("results", help="results directory")
    s.add_argument("--format", choices=["csv", "parquet"], default="csv")
    s.add_argument("--out", help="output folder (default RESULTS/export)")
    s.set_defaults(func=cmd_export)

    s = sub.add_parser("slices", help="export normalised image/mask slices (PNG or .npz) for training")
    s.add_argument("target", help="project file (.yaml) or a data folder")
    s.add_argument("--out", required=True, help="output folder")
    s.add_argument("--axis", type=int, default=2, help="array axis to slice along (default 2)")
    s.add_argument("--norm", choices=["zscore", "minmax", "percentile", "none"], default="zscore")
    s.add_argument("--format", choices=["npz", "png"], default="npz")
    s.add_argument("--nonempty", action="store_true", help="only slices with ground-truth foreground")
    s.add_argument("--dataset", action="append", help="only this dataset (repeatable)")
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(func=cmd_slices)

    s = sub.add_parser("demo", help="run segaudit on the bundled sample data")
    s.add_argument("--out", default="segaudit-demo", help="results directory (default ./segaudit-demo)")
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(func=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (SegauditError, OSError) as exc:
        if args.debug:
            raise
        print(f"segaudit: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("segaudit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
