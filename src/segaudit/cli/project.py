"""Project verbs: ``init`` (propose a project file), ``scan`` (discovery and QC), ``slices`` (export)."""

from __future__ import annotations

import sys
from pathlib import Path

from segaudit.cli.output import _print_findings, _print_summary, console
from segaudit.errors import SegauditError


def cmd_init(args) -> int:
    """Run ``segaudit init``: detect a folder's layout and write a project file for it."""
    from segaudit.dataset import detect_layout, dump_project, relativize
    from segaudit.dataset.layouts import UnknownLayoutError
    from segaudit.dataset.project import PROJECT_FILE_VERSION
    from segaudit.store import atomic_write_text

    unknown = False
    try:
        det = detect_layout(args.data_dir)
    except UnknownLayoutError as exc:  # not a bare error: write what could be inferred, to be checked
        det, unknown = exc.skeleton, True
        console.print(f"[yellow]No known layout[/] in {args.data_dir}; found:", soft_wrap=True)
    out = Path(args.out)
    if out.exists() and not args.force:
        raise SegauditError(f"{out}: already exists (use --force to overwrite)")
    data_dir = Path(args.data_dir).resolve()
    if out.resolve().is_relative_to(data_dir) and not args.force:
        raise SegauditError(f"{out}: refusing to write into the data folder {data_dir} (it may be read-only); "
                            "choose another --out")
    project = relativize(det.project, out.resolve().parent)
    skeleton = ("# SKELETON: no known layout was recognised. The templates below are inferred from the files\n"
                "# found (common prefixes/suffixes across the case folders); check every one, then run\n"
                "# `segaudit scan` on this file. Keys: see the README's project-file table.\n") if unknown else ""
    header = (f"# segaudit project proposed by `segaudit init {_one_line(str(args.data_dir))}`\n" + skeleton +
              "# Detected:\n" + "".join(f"#   {_one_line(n)}\n" for n in det.notes) +
              "".join(f"# WARNING: {_one_line(w)}\n" for w in det.warnings) +
              "# Edit freely: templates, labels, regions, metadata. Relative paths are relative to this file.\n")
    body = (f"version: {PROJECT_FILE_VERSION}\n"  # the project-file format, checked when the file is loaded
            + (dump_project(project) if project["datasets"] else "datasets: {}\n"))
    atomic_write_text(out, header + body)
    if not unknown:
        console.print(f"Detected layout(s): {', '.join(det.layouts)}")
    for n in det.notes:
        console.print(f"  {n}", soft_wrap=True)
    console.print(f"Wrote {out}" + (" (a skeleton: check its templates)" if unknown else ""))
    for w in det.warnings:  # on stderr too, so a scripted init does not pass them by
        print(f"segaudit: warning: {w}", file=sys.stderr)
    return 0


def _one_line(text: str) -> str:
    """Text for one YAML comment line: a folder name with a line break cannot end the comment and inject keys."""
    return " ".join(text.splitlines())


def cmd_scan(args) -> int:
    """Run ``segaudit scan``: discover and check a project's cases and files; with ``--out``, record them in a store."""
    from segaudit.pipeline.scan import resolve_project, scan_project

    project, notes = resolve_project(args.target)
    for n in notes:
        console.print(f"detected: {n}", soft_wrap=True)
    result = scan_project(project, args.out, workers=args.workers, progress=not args.no_progress,
                          argv=sys.argv)
    _print_summary(result.summary, "Scan summary")
    _print_findings(result.qc, 10_000 if args.show_all else args.max_findings, show_info=args.show_all)
    if args.out:
        console.print(f"Results store: {Path(args.out) / 'segaudit.duckdb'}")
    return 0


def _project_for(args):
    """The project of ``args.target`` (a project file or a data folder), limited to ``--dataset`` if given."""
    from segaudit.pipeline.scan import resolve_project

    project, notes = resolve_project(args.target)
    for n in notes:
        console.print(f"detected: {n}", soft_wrap=True)
    if args.dataset:
        project.datasets = [d for d in project.datasets if d.name in args.dataset]
    return project


def cmd_slices(args) -> int:
    """Run ``segaudit slices``: export PNG slices of a project's images, ground truth and predictions."""
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
