"""Output verbs: ``report`` (HTML), ``export`` (CSV/Parquet/AUDIT/wide tables), ``import-audit``."""

from __future__ import annotations

import sys
from pathlib import Path

from segaudit.cli.output import console
from segaudit.errors import ConfigError, SegauditError


def cmd_export(args) -> int:
    """Run ``segaudit export``: write a store's tables as CSV/Parquet, one wide table, or AUDIT tables."""
    from segaudit.store import ResultsStore
    from segaudit.store.audit import export_audit_tables

    with ResultsStore(args.results, read_only=True) as store:
        out = args.out or Path(args.results) / "export"
        if args.format == "audit":
            res = export_audit_tables(store, out, force=args.force)
            paths = res.paths
            for ds, used in res.haus.items():
                console.print(f"{ds}: HAUS from {_HAUS_SOURCE.get(used, used)}", soft_wrap=True)
        elif args.format == "wide":
            paths = [export_wide(store, out, force=args.force)]
        else:
            paths = store.export(out, args.format, force=args.force)
    for p in paths:
        console.print(f"wrote {p}")
    return 0


_HAUS_SOURCE = {"hd": "hd (segaudit's symmetric Hausdorff distance, mm)",
                "hd_audit": "hd_audit (AUDIT's own HAUS, as imported)",
                None: "nothing: the store has neither hd nor hd_audit (column empty)"}


def export_wide(store, out: Path, force: bool = False) -> Path:
    """The per-case wide table (one row per case and model) as ``per_case_wide.csv`` in ``out``.

    An existing file of that name is replaced only when it is an earlier wide export and ``force`` is set.
    """
    from segaudit.analysis.per_case import per_case_table
    from segaudit.store import atomic_write_text
    from segaudit.store.outputs import check_output_file

    check_output_file(Path(out) / "per_case_wide.csv", ["dataset", "case", "model"], force, "export")

    metrics = store.metrics(ordered=False).drop(columns="unit")
    if metrics.empty:
        raise SegauditError(f"{store.directory}: no metrics in this store (run segaudit evaluate or import-audit)")
    return atomic_write_text(Path(out) / "per_case_wide.csv", per_case_table(metrics).to_csv(index=False))


def cmd_report(args) -> int:
    """Run ``segaudit report``: build the HTML report of a results store; returns the exit code."""
    from segaudit.dataset.project import load_project
    from segaudit.report.html import build_report

    project = load_project(args.project) if args.project else None
    logs = {}
    for item in args.training_log or []:
        model, sep, path = item.partition("=")
        logs[model if sep else Path(item).stem] = path if sep else item
    pairs = []
    for item in args.compare or []:
        base, sep, cand = item.partition(":")
        if not sep or not base or not cand:
            raise ConfigError(f"--compare {item!r}: write BASELINE:CANDIDATE (two model names)")
        pairs.append((base, cand))
    path = build_report(args.results, args.out, project, training_logs=logs, compare=pairs or None,
                        region=args.region, force=args.force)
    console.print(f"Report: {path.resolve()}")
    return 0


def cmd_import_audit(args) -> int:
    """Run ``segaudit import-audit``: load AUDIT metric and feature tables into a results store."""
    from segaudit.store.audit import import_audit

    counts = import_audit(args.out, args.metrics or [], args.features or [], args.dataset, argv=sys.argv)
    for table, n in counts.items():
        console.print(f"imported {n} {table} row(s) into {Path(args.out) / 'segaudit.duckdb'}")
    return 0
