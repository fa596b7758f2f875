"""The ``segaudit`` command line: a thin shell over the Python API.

Verbs: ``init``, ``scan``, ``evaluate``, ``agree``, ``features``, ``compare``, ``flips``, ``report``, ``metrics``,
``export``, ``import-audit``, ``slices``, ``demo``.
Errors print as one line (``segaudit: error: ...``) and exit with status 2; ``--debug`` shows the traceback instead.
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


_COUNT_COLUMNS = {"cases", "subjects", "files", "missing", "errors", "warnings", "info", "rows", "nan", "gt_empty",
                  "pred_empty", "both_empty"}


def _is_count(col: str) -> bool:
    """Columns that hold counts (printed as integers even when the store sums them as floats)."""
    col = str(col)
    return col in _COUNT_COLUMNS or col == "n" or col.startswith("n_") or col.endswith(("_undefined", "_count"))


def _cell(value, count: bool) -> str:
    if count and isinstance(value, float) and value == value and float(value).is_integer():
        return str(int(value))
    return str(value)


def _print_summary(summary, title: str) -> None:
    table = Table(title=title, title_justify="left")
    counts = [_is_count(c) for c in summary.columns]
    for col in summary.columns:
        table.add_column(str(col), justify="right" if summary[col].dtype.kind in "iuf" else "left")
    for _, row in summary.iterrows():
        table.add_row(*[_cell(v, c) for v, c in zip(row.tolist(), counts, strict=True)])
    console.print(table)


def _print_findings(qc, limit: int, show_info: bool = False) -> None:
    if qc.empty:
        console.print("QC: no findings.")
        return
    order = {"error": 0, "warning": 1, "info": 2}
    shown = qc if show_info else qc[qc.severity != "info"]
    shown = shown.sort_values(by="severity", key=lambda s: s.map(order), kind="stable")
    if shown.empty:
        console.print(f"QC: {len(qc)} informational finding(s), no error or warning (--show-all lists them).")
        return
    what = "all severities" if show_info else "errors and warnings"
    console.print(f"QC findings ({what}; {len(shown)} in all):")
    colour = {"error": "red", "warning": "yellow", "info": "cyan"}
    for _, f in shown.head(limit).iterrows():
        console.print(f"  [{colour[f.severity]}]{f.severity:7}[/] {f.dataset}/{f.case} {f.check}: {f.message}",
                      soft_wrap=True)
    if len(shown) > limit:
        console.print(f"  ... {len(shown) - limit} more (see the qc table, or --show-all)")


def cmd_init(args) -> int:
    from segaudit.dataset import detect_layout, dump_project, relativize
    from segaudit.dataset.detect import UnknownLayoutError
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
    header = (f"# segaudit project proposed by `segaudit init {args.data_dir}`\n" + skeleton +
              "# Detected:\n" + "".join(f"#   {n}\n" for n in det.notes) +
              "# Edit freely: templates, labels, regions, metadata. Relative paths are relative to this file.\n")
    body = dump_project(project) if project["datasets"] else "datasets: {}\n"
    atomic_write_text(out, header + body)
    if not unknown:
        console.print(f"Detected layout(s): {', '.join(det.layouts)}")
    for n in det.notes:
        console.print(f"  {n}", soft_wrap=True)
    console.print(f"Wrote {out}" + (" (a skeleton: check its templates)" if unknown else ""))
    return 0


def cmd_scan(args) -> int:
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


def cmd_export(args) -> int:
    from segaudit.store import ResultsStore
    from segaudit.store.audit import export_audit_tables

    with ResultsStore(args.results, read_only=True) as store:
        out = args.out or Path(args.results) / "export"
        if args.format == "audit":
            res = export_audit_tables(store, out)
            paths = res.paths
            for ds, used in res.haus.items():
                console.print(f"{ds}: HAUS from {_HAUS_SOURCE.get(used, used)}", soft_wrap=True)
        elif args.format == "wide":
            paths = [export_wide(store, out)]
        else:
            paths = store.export(out, args.format)
    for p in paths:
        console.print(f"wrote {p}")
    return 0


_HAUS_SOURCE = {"hd": "hd (segaudit's symmetric Hausdorff distance, mm)",
                "hd_audit": "hd_audit (AUDIT's own HAUS, as imported)",
                None: "nothing: the store has neither hd nor hd_audit (column empty)"}


def export_wide(store, out: Path) -> Path:
    """The per-case wide table (one row per case and model) as ``per_case_wide.csv`` in ``out``."""
    from segaudit.analysis.per_case import per_case_table
    from segaudit.store import atomic_write_text

    metrics = store.query("SELECT dataset, \"case\", model, region, metric, value FROM metrics") \
        if "metrics" in store.tables() else None
    if metrics is None or metrics.empty:
        raise SegauditError(f"{store.directory}: no metrics in this store (run segaudit evaluate or import-audit)")
    return atomic_write_text(Path(out) / "per_case_wide.csv", per_case_table(metrics).to_csv(index=False))


def evaluation_options(args):
    """EvaluationOptions from the project's ``evaluate:`` section overridden by command-line flags."""
    from segaudit.metrics import EmptyPolicy, EvaluationOptions

    base = EvaluationOptions.from_dict(getattr(args, "_project_evaluate", None))
    changes = {}
    for flag, name in (("surface", "surface"), ("percentile", "percentile"), ("lesion_matching", "lesion_matching"),
                       ("dilation", "dilation"), ("min_lesion_volume", "min_lesion_volume"),
                       ("iou_threshold", "iou_threshold"), ("connectivity", "connectivity"),
                       ("unknown_labels", "unknown_labels")):
        if getattr(args, flag, None) is not None:
            changes[name] = getattr(args, flag)
    if args.tolerance:
        changes["tolerances"] = tuple(args.tolerance)
    if args.no_distances:
        changes["distances"] = False
    pol = base.policy
    if args.empty_both is not None or args.empty_distance is not None or args.penalty is not None:
        pol = EmptyPolicy(float(args.empty_both) if args.empty_both is not None else pol.both_empty,
                          pol.distance_both_empty, args.empty_distance or pol.distance_one_empty,
                          args.penalty if args.penalty is not None else pol.penalty)
    try:
        return base.with_changes(policy=pol, **changes)
    except ValueError as exc:
        raise SegauditError(str(exc)) from exc


def _project_for(args):
    """The project of ``args.target`` (a project file or a data folder), limited to ``--dataset`` if given."""
    from segaudit.pipeline.scan import resolve_project

    project, notes = resolve_project(args.target)
    for n in notes:
        console.print(f"detected: {n}", soft_wrap=True)
    if args.dataset:
        project.datasets = [d for d in project.datasets if d.name in args.dataset]
    return project


def _print_step_errors(errors, with_model: bool) -> None:
    for _, e in errors.iterrows():
        colour = "red" if e.severity == "error" else "yellow"
        model = f" {e.model}" if with_model and e.model else ""
        console.print(f"  [{colour}]{e.severity:7}[/] {e.dataset}/{e.case}{model}: {e.message}", soft_wrap=True)


def _print_evaluation(run_dir, datasets: list[str], options) -> None:
    """Per dataset × model × region: coverage, then Dice and the robust HD with their bootstrap CIs.

    Both-empty cases are set apart and counted (the rule of every view); a model that did not score every
    expected case is printed in red with its missing and failed counts.
    """
    import numpy as np
    import pandas as pd

    from segaudit.analysis.coverage import coverage
    from segaudit.analysis.summary import summarize
    from segaudit.store import ResultsStore

    with ResultsStore(run_dir, read_only=True) as store:
        ph = ", ".join("?" * len(datasets)) or "NULL"
        metrics = store.query(f"SELECT dataset, \"case\", model, region, metric, value FROM metrics WHERE dataset "
                              f"IN ({ph}) AND region <> 'confusion' AND NOT starts_with(metric, 'agree_')",
                              list(datasets))
        errors = store.query(f"SELECT * FROM errors WHERE dataset IN ({ph})", list(datasets))
        files = store.query(f"SELECT * FROM files WHERE dataset IN ({ph})", list(datasets))
        units = store.units()
    hd = options.hd_name
    # The unit each dataset's distances really have (px for photos without a declared spacing).
    hd_units = units[units.metric == hd].groupby("dataset").unit.agg(lambda u: "/".join(sorted(set(u))))
    wanted = metrics[metrics.metric.isin(["dice", hd, "gt_empty", "pred_empty"])]
    cov = coverage(metrics, errors, files)
    if wanted.empty and cov.empty:
        return
    s = summarize(wanted, n_resamples=1000, coverage=cov)
    table = Table(title=f"Evaluation summary ({options.surface} surfaces; both-empty cases set apart)",
                  title_justify="left")
    for col in ("dataset", "model", "region", "expected", "scored", "missing", "failed", "n", "both empty",
                "dice mean [95% CI]", f"{hd} mean [95% CI]", f"{hd} unit"):
        table.add_column(col, justify="left" if col in ("dataset", "model", "region") else "right")

    def cell(r) -> str:
        if r is None or not np.isfinite(r["mean"]):
            return "–"
        ci = f" [{r['ci_low']:.3f}, {r['ci_high']:.3f}]" if np.isfinite(r["ci_low"]) else ""
        return f"{r['mean']:.3f}{ci}"

    for (ds, model, region), g in s.groupby(["dataset", "model", "region"], sort=True):
        by = {r["metric"]: r for r in g.to_dict("records")}
        first = next(iter(by.values()))
        d = by.get("dice")
        style = None if bool(first.get("complete", True)) else "red"
        table.add_row(ds, model, region, *[str(int(first[c])) if pd.notna(first.get(c)) else "–"
                                           for c in ("n_expected", "n_scored", "n_missing", "n_failed")],
                      str(int(d["n"])) if d else "–", str(int(d["n_both_empty"])) if d else "–",
                      cell(d), cell(by.get(hd)), hd_units.get(ds, ""), style=style)
    for r in cov[cov.n_scored == 0].itertuples():  # a model with nothing scored still gets its row
        table.add_row(r.dataset, r.model, "–", str(r.n_expected), "0", str(r.n_missing), str(r.n_failed),
                      "–", "–", "–", "–", style="red")
    console.print(table)
    bad = cov[~cov.complete.astype(bool)]
    for r in bad.itertuples():
        console.print(f"[red]{r.dataset}/{r.model}: scored {r.n_scored} of {r.n_expected} expected cases "
                      f"({r.n_missing} missing, {r.n_failed} failed); its means cover only the scored cases, "
                      "comparisons and rankings score the others as empty predictions (policy 'worst')[/]",
                      soft_wrap=True)


def _ignore_affine(args) -> bool:
    """``--ignore-affine``, refused together with ``--resample-nearest`` (resampling needs the affines)."""
    if args.ignore_affine and args.resample_nearest:
        raise SegauditError("--ignore-affine and --resample-nearest exclude each other: resampling goes through "
                            "the affines that --ignore-affine says are wrong")
    return bool(args.ignore_affine)


def _add_geometry_arguments(s, what: str) -> None:
    s.add_argument("--resample-nearest", action="store_true",
                   help=f"resample {what} on another grid (shape, spacing, origin or direction) into the reference's "
                        "physical space, nearest neighbour through the affines (default: an error row)")
    s.add_argument("--ignore-affine", action="store_true",
                   help=f"use same-shape {what} voxel by voxel whatever their headers say, recorded as a warning "
                        "(for data known to carry wrong headers, e.g. AUDIT ground truths at origin 0)")


def cmd_evaluate(args) -> int:
    from segaudit.pipeline.evaluate import evaluate_project

    project = _project_for(args)
    args._project_evaluate = project.raw.get("evaluate") if project.raw else None
    options = evaluation_options(args)
    res = evaluate_project(project, args.out, options, workers=args.workers, scheduler=args.scheduler,
                           force=args.force, progress=not args.no_progress, missing_as_empty=args.missing_as_empty,
                           resample=args.resample_nearest, executor=args.executor, argv=sys.argv,
                           ignore_affine=_ignore_affine(args), fingerprint=_fingerprint(args))
    _print_resume(res.resume_notes)
    if res.skipped:
        console.print(f"{len(res.skipped)} case-model(s) already scored with these settings were skipped "
                      "(--force to re-score)")
    for why in res.idle:
        console.print(f"[yellow]nothing to evaluate[/] {why}", soft_wrap=True)
    _print_evaluation(args.out, [ds.name for ds in project.datasets], options)
    _print_penalties(res.grids, options)
    _print_step_errors(res.errors, with_model=True)
    console.print(f"Results store: {Path(args.out) / 'segaudit.duckdb'}")
    return 0


def _fingerprint(args) -> str:
    """The input-fingerprint mode of a step's re-run check: ``full`` with --full-hash, else ``edge``."""
    return "full" if getattr(args, "full_hash", False) else "edge"


def _print_resume(lines: list[str]) -> None:
    """What a step says about resumption: jobs redone because their files changed, cases dropped."""
    for line in lines:
        console.print(line, soft_wrap=True)


def _print_penalties(grids, options) -> None:
    """One line per dataset: the unit of its distances and the one empty-mask penalty all its cases get."""
    if options.policy.distance_one_empty != "penalty":
        return
    for name, g in grids.items():
        if g.penalty is not None:
            console.print(f"{name}: distances in {g.length_unit}; a case with one empty mask scores "
                          f"{g.penalty:.1f} {g.length_unit} ({g.source})", soft_wrap=True)


def cmd_agree(args) -> int:
    from segaudit.analysis.agreement import agreement_matrix, agreement_regions, model_table
    from segaudit.pipeline.agree import agree_project

    project = _project_for(args)
    args._project_evaluate = project.raw.get("evaluate") if project.raw else None
    base = evaluation_options(args)
    try:
        res = agree_project(project, args.out, base, consensus=args.consensus, workers=args.workers,
                            scheduler=args.scheduler, force=args.force, progress=not args.no_progress,
                            executor=args.executor, argv=sys.argv, fingerprint=_fingerprint(args))
    except ValueError as exc:
        raise SegauditError(str(exc)) from exc
    _print_resume(res.resume_notes)
    for note in res.notes:
        console.print(f"[yellow]{note}[/]", soft_wrap=True)
    if res.skipped:
        console.print(f"{len(res.skipped)} case(s) already compared with these settings were skipped "
                      "(--force to redo)")
    m = res.metrics
    for ds in sorted(m.dataset.unique()):
        for region in agreement_regions(m, ds):
            mat = agreement_matrix(m, ds, region).round(3)
            _print_summary(mat.reset_index(), f"{ds} / {region}: pairwise Dice (mean over cases)")
        table = model_table(m, ds).round(4)
        _print_summary(table, f"{ds}: per model (leave-one-out vs the {args.consensus} of the others, STAPLE, "
                              "volume mm3)")
        flagged = table[table.outlier].model.unique()
        console.print(f"{ds}: outlier model: {flagged[0]}" if len(flagged) else f"{ds}: no outlier model")
    _print_step_errors(res.errors, with_model=True)
    console.print(f"Results store: {Path(args.out) / 'segaudit.duckdb'}")
    return 0


def cmd_features(args) -> int:
    from segaudit.features.case import FeatureOptions
    from segaudit.pipeline.features import extract_project

    project = _project_for(args)
    try:
        base = FeatureOptions.from_dict(project.raw.get("features") if project.raw else None)
        options = base.with_changes(groups=tuple(args.groups) if args.groups else None, bin_count=args.bin_count,
                                    bin_width=args.bin_width, foreground=args.foreground)
        if args.no_shape:
            options = options.with_changes(shape=False)
    except (TypeError, ValueError) as exc:
        raise SegauditError(str(exc)) from exc
    res = extract_project(project, args.out, options, workers=args.workers, scheduler=args.scheduler,
                          force=args.force, progress=not args.no_progress, executor=args.executor, argv=sys.argv,
                          resample=args.resample_nearest, ignore_affine=_ignore_affine(args),
                          fingerprint=_fingerprint(args))
    _print_resume(res.resume_notes)
    if res.skipped:
        console.print(f"{len(res.skipped)} case(s) already extracted with these settings were skipped "
                      "(--force to re-extract)")
    f = res.features
    if not f.empty:
        summary = f.groupby(["dataset", "group"]).agg(cases=("case", "nunique"), rows=("value", "size"),
                                                      nan=("value", lambda v: int(v.isna().sum()))).reset_index()
        _print_summary(summary, "Features")
    _print_step_errors(res.errors[res.errors.severity != "info"], with_model=False)
    console.print(f"Results store: {Path(args.out) / 'segaudit.duckdb'}")
    return 0


def cmd_flips(args) -> int:
    from segaudit.analysis.flips import run_flips

    res = run_flips(args.outcomes, args.baseline, args.candidate, args.truth, args.id_column, args.sample)
    if args.out:
        from segaudit.report.figures import write_flips

        write_flips(res, args.out, args.baseline, args.candidate)
    console.print(f"{res.n} items ({res.n_dropped} left out: an outcome missing)")
    diff = res.candidate_accuracy - res.baseline_accuracy
    console.print(f"accuracy {args.baseline}: {res.baseline_accuracy:.4f}   {args.candidate}: "
                  f"{res.candidate_accuracy:.4f}   difference {diff:+.4f}")
    _print_summary(res.groups.round(2), "Flips (sample of ids per group)")
    counts = res.groups.set_index("group").n
    discordant = int(counts["flip_to_correct"] + counts["flip_to_incorrect"])
    console.print(f"exact McNemar test on the {discordant} discordant items: p = {res.p:.4g}")
    for f in res.files:
        console.print(f"wrote {f}")
    return 0


def cmd_compare(args) -> int:
    import numpy as np

    from segaudit.analysis.compare import compare_models
    from segaudit.analysis.coverage import expected_cases
    from segaudit.analysis.summary import subject_of
    from segaudit.store import ResultsStore

    with ResultsStore(args.results, read_only=True) as store:
        metrics = store.query("SELECT dataset, \"case\", model, region, metric, value FROM metrics")
        errors = store.read("errors")
        files = store.read("files")
        cases = store.read("cases") if "cases" in store.tables() else None
    regions = args.region or None
    try:
        res = compare_models(metrics, args.baseline, args.candidate, args.metric, regions, args.aggregate,
                             args.dataset, args.threshold, missing=args.missing,
                             expected=expected_cases(metrics, errors, files), subjects=subject_of(cases))
    except ValueError as exc:
        raise SegauditError(str(exc)) from exc
    first = res.iloc[0]
    imputed = {m: int(first[f"n_imputed_{k}"]) for k, m in (("baseline", args.baseline),
                                                            ("candidate", args.candidate))}
    if args.missing == "worst":
        console.print("missing-prediction policy 'worst': a case a model lacks is scored as an empty prediction "
                      f"(cases scored so: {', '.join(f'{m} {n}' for m, n in imputed.items())})", soft_wrap=True)
    else:
        console.print("missing-prediction policy 'exclude': paired on the cases both models have "
                      f"({max(imputed.values())} case(s) dropped because a model lacks them)", soft_wrap=True)
    for _, r in res.iterrows():
        console.print(f"[bold]{r.metric} / {r.region}[/]: n = {r.n} paired {r.unit} ({r.n_dropped} dropped: a "
                      f"value undefined; {r.n_both_empty} both-empty for both models, set apart)"
                      + (", each subject's cases averaged first" if r.unit == "subjects" else ""), soft_wrap=True)
        ci = f"95 % CI {r.ci_low:+.4f} to {r.ci_high:+.4f}" if np.isfinite(r.ci_low) else f"CI: {r.ci_note}"
        console.print(f"  mean {r.baseline} = {r.mean_baseline:.4f}, {r.candidate} = {r.mean_candidate:.4f}; "
                      f"difference {r.mean_diff:+.4f} ({ci}), "
                      f"improvement {r.relative_improvement_pct:+.2f} %", soft_wrap=True)
        if np.isfinite(r.p):
            console.print(f"  test: {r.test}, because {r.reason}: p = {r.p:.4g} (Holm over {len(res)} test(s): "
                          f"{r.p_holm:.4g}); Cohen's d_z = {r.cohens_dz:.3f}, rank-biserial = "
                          f"{r.rank_biserial:.3f}", soft_wrap=True)
        else:
            console.print(f"  test: none, {r.reason}", soft_wrap=True)
        console.print(f"  flips at {r.pass_threshold:g}: to pass {r.n_flip_to_correct}, to fail "
                      f"{r.n_flip_to_incorrect}, pass-pass {r.n_correct_correct}, fail-fail "
                      f"{r.n_incorrect_incorrect}; exact McNemar p = {r.mcnemar_p:.4g}; sign test p = "
                      f"{r.sign_p:.4g}", soft_wrap=True)
        if r.note:
            console.print(f"  [yellow]note[/]: {r.note}", soft_wrap=True)
    if args.cases:
        wanted = [c.strip() for c in args.cases.split(",") if c.strip()]
        wide = cases_side_by_side(metrics, wanted, args.baseline, args.candidate, args.metric, regions,
                                  args.aggregate, args.dataset)
        title = "Per case, mean over regions" if args.aggregate == "mean-over-regions" else "Per case"
        _print_summary(wide.round(4), title)
    return 0


def cases_side_by_side(metrics, cases: list[str], baseline: str, candidate: str, metric: str, regions,
                       aggregate: str, dataset: str | None = None):
    """The listed cases' values of both models side by side: per region, or (``mean-over-regions``) each
    case's mean over its regions (the value the comparison above tested), with the difference."""
    from segaudit.analysis.compare import mean_over_regions

    sub = metrics[(metrics.metric == metric) & metrics.case.isin(cases) & metrics.model.isin([baseline, candidate])]
    if dataset:
        sub = sub[sub.dataset == dataset]
    if regions:
        sub = sub[sub.region.isin(regions)]
    if aggregate == "mean-over-regions":
        sub = mean_over_regions(sub)
    wide = sub.pivot_table(index=["case", "region"], columns="model", values="value", aggfunc="first")
    wide = wide.reindex(columns=[baseline, candidate])
    wide["difference"] = wide[candidate] - wide[baseline]
    return wide.reset_index()


def cmd_report(args) -> int:
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
            raise SegauditError(f"--compare {item!r}: write BASELINE:CANDIDATE (two model names)")
        pairs.append((base, cand))
    path = build_report(args.results, args.out, project, training_logs=logs, compare=pairs or None,
                        region=args.region, force=args.force)
    console.print(f"Report: {path.resolve()}")
    return 0


def cmd_metrics(args) -> int:
    from segaudit.metrics import explain_table

    if not args.explain:
        console.print("use --explain to print every metric's definition, units and empty-case values")
        return 0
    import pandas as pd

    table = pd.DataFrame(explain_table())
    _print_summary(table, "Metrics: definition, units and value when a mask is empty (default policy)")
    console.print("Policy flags: --empty-both 1|nan, --empty-distance penalty|nan|inf, --penalty DISTANCE "
                  "(default penalty: the largest image diagonal of the dataset, in mm, or px for photos without "
                  "a declared spacing).", soft_wrap=True)
    if args.results:
        from segaudit.store import ResultsStore

        with ResultsStore(args.results, read_only=True) as store:
            units = store.units()
        if units.empty:
            console.print(f"{args.results}: no metric units stored (written by an older segaudit, or imported)")
        else:
            _print_summary(units, f"Units stored in {args.results}")
    return 0


def cmd_import_audit(args) -> int:
    from segaudit.store.audit import import_audit

    counts = import_audit(args.out, args.metrics or [], args.features or [], args.dataset, argv=sys.argv)
    for table, n in counts.items():
        console.print(f"imported {n} {table} row(s) into {Path(args.out) / 'segaudit.duckdb'}")
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


def _add_step_arguments(s: argparse.ArgumentParser, force_help: str) -> None:
    """Arguments every per-case step shares: target, store, parallelism, resumption, dataset filter, progress."""
    s.add_argument("target", help="project file (.yaml) or a data folder")
    s.add_argument("--out", required=True, help="results directory (DuckDB store)")
    s.add_argument("--workers", type=int, default=1, help="parallel workers (> 1: a local Dask cluster)")
    s.add_argument("--scheduler", help="address of a running Dask scheduler, e.g. tcp://host:8786")
    s.add_argument("--executor", choices=["auto", "processes", "dask"], default="auto",
                   help="how --workers run (auto: Dask when installed, else processes)")
    s.add_argument("--force", action="store_true", help=force_help)
    s.add_argument("--full-hash", action="store_true",
                   help="recognise unchanged input files on a re-run by a hash of every byte (default: size, "
                        "modification time and a hash of the first and last 64 KiB)")
    s.add_argument("--dataset", action="append", help="only this dataset (repeatable)")
    s.add_argument("--no-progress", action="store_true")


def build_parser() -> argparse.ArgumentParser:
    from segaudit.features.case import GROUPS

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
    s.add_argument("--show-all", action="store_true", help="print every finding, informational ones included")
    s.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    s.set_defaults(func=cmd_scan)

    s = sub.add_parser("evaluate", help="score every case-model: overlap, surface, lesion-wise metrics")
    _add_step_arguments(s, "re-score case-models already in the store")
    s.add_argument("--surface", choices=["surfel", "voxel"], help="surface definition (default surfel)")
    s.add_argument("--tolerance", type=float, action="append", help="NSD tolerance in mm (repeatable; default 1)")
    s.add_argument("--percentile", type=float, help="robust Hausdorff percentile (default 95)")
    s.add_argument("--lesion-matching", choices=["brats", "hungarian", "none"], help="default brats")
    s.add_argument("--dilation", type=int, help="ground-truth dilation of the brats rule, voxels (default 3)")
    s.add_argument("--min-lesion-volume", type=float, help="lesions <= this volume (mm3) are not counted")
    s.add_argument("--iou-threshold", type=float, help="IoU a hungarian match must exceed (default 0.5)")
    s.add_argument("--connectivity", type=int, help="component connectivity: 6/18/26 (3D), 4/8 (2D)")
    s.add_argument("--empty-both", choices=["1", "nan"], help="similarity metrics when both masks are empty")
    s.add_argument("--empty-distance", choices=["penalty", "nan", "inf"],
                   help="distance metrics when one mask is empty (default penalty)")
    s.add_argument("--penalty", type=float, help="penalty distance in mm (px for photos without a declared "
                   "spacing); default: the largest image diagonal of the dataset")
    s.add_argument("--unknown-labels", choices=["background", "error"], help="values not in the label map")
    s.add_argument("--no-distances", action="store_true", help="skip surface-distance metrics")
    s.add_argument("--missing-as-empty", action="store_true", help="score a missing prediction as empty")
    _add_geometry_arguments(s, "predictions")
    s.set_defaults(func=cmd_evaluate)

    s = sub.add_parser("agree", help="agreement between models, no ground truth needed: pairs, STAPLE, consensus")
    _add_step_arguments(s, "redo cases already compared in the store")
    s.add_argument("--consensus", choices=["majority", "staple"], default="majority",
                   help="consensus of the other models in the leave-one-out scores (default majority)")
    s.add_argument("--surface", choices=["surfel", "voxel"], help="surface definition (default surfel)")
    s.add_argument("--percentile", type=float, help="robust Hausdorff percentile (default 95)")
    s.add_argument("--empty-both", choices=["1", "nan"], help="Dice when both models are empty (default 1)")
    s.add_argument("--empty-distance", choices=["penalty", "nan", "inf"],
                   help="distance when one model is empty (default penalty)")
    s.add_argument("--penalty", type=float, help="penalty distance in mm (default: the image diagonal)")
    s.set_defaults(func=cmd_agree, tolerance=None, no_distances=False)

    s = sub.add_parser("features", help="extract intensity, texture, spatial, lesion and multimodal features")
    _add_step_arguments(s, "re-extract cases already in the store")
    s.add_argument("--groups", nargs="+", choices=list(GROUPS), help="feature groups (default all)")
    s.add_argument("--bin-count", type=int, help="texture quantisation: fixed bin count (default 32)")
    s.add_argument("--bin-width", type=float, help="texture quantisation: fixed bin width instead")
    s.add_argument("--foreground", choices=["auto", "nonzero", "positive"],
                   help="brain/foreground: auto (differs from the corner value, holes filled), nonzero (!= 0) or "
                        "positive (> 0, AUDIT's intensity region)")
    s.add_argument("--no-shape", action="store_true", help="skip mesh shape descriptors of labels")
    _add_geometry_arguments(s, "masks")
    s.set_defaults(func=cmd_features)

    s = sub.add_parser("flips", help="flip analysis of two predictors' per-item outcomes (any CSV)")
    s.add_argument("outcomes", help="CSV with one row per item")
    s.add_argument("--baseline", required=True, help="column of the baseline's outcome (or answer)")
    s.add_argument("--candidate", required=True, help="column of the candidate's outcome (or answer)")
    s.add_argument("--truth", help="column of the true answer (outcome = answer equals truth)")
    s.add_argument("--id-column", help="column of the item ids (default: the first column)")
    s.add_argument("--sample", type=int, default=5, help="ids listed per group")
    s.add_argument("--out", help="folder for flips.csv and flips.png")
    s.set_defaults(func=cmd_flips)

    s = sub.add_parser("compare", help="paired comparison of two models in a results store")
    s.add_argument("results", help="results directory (DuckDB store)")
    s.add_argument("--baseline", required=True)
    s.add_argument("--candidate", required=True)
    s.add_argument("--metric", default="dice")
    s.add_argument("--region", action="append", help="region(s) to compare (repeatable; default all)")
    s.add_argument("--aggregate", choices=["per-region", "mean-over-regions"], default="per-region")
    s.add_argument("--dataset", help="only this dataset")
    s.add_argument("--threshold", type=float, help="pass/fail threshold of the flip table, in the metric's units "
                   "(default 0.5 for Dice-like metrics on 0-1; required for distances such as hd95)")
    s.add_argument("--cases", help="comma-separated case ids to list")
    s.add_argument("--missing", choices=["worst", "exclude"], default="worst",
                   help="a case one model lacks (missing or failed prediction): 'worst' scores it as an empty "
                        "prediction, as BraTS does (default); 'exclude' pairs on the cases both models have")
    s.set_defaults(func=cmd_compare)

    s = sub.add_parser("report", help="write a self-contained HTML report of a results store")
    s.add_argument("results", help="results directory (DuckDB store)")
    s.add_argument("--out", default="report.html", help="HTML file to write (default report.html)")
    s.add_argument("--project", help="project file, for image panels of the worst and best cases")
    s.add_argument("--force", action="store_true", help="replace an existing segaudit report at --out (never "
                                                        "any other file)")
    s.add_argument("--training-log", action="append", metavar="[MODEL=]CSV",
                   help="training log (epoch, train_*, val_* columns) to plot; repeatable")
    s.add_argument("--compare", action="append", metavar="BASELINE:CANDIDATE",
                   help="model pair to compare (repeatable; default: every pair up to 4 models, else the "
                        "top-ranked against each other)")
    s.add_argument("--region", help="region the worst/best panels show (default: each dataset's worst)")
    s.set_defaults(func=cmd_report)

    s = sub.add_parser("metrics", help="explain the metrics: definitions, units, empty-case values")
    s.add_argument("--explain", action="store_true", help="print the table")
    s.add_argument("--results", help="results directory: also print the unit each stored metric has")
    s.set_defaults(func=cmd_metrics)

    s = sub.add_parser("import-audit", help="read AUDIT metric/feature CSVs into a results store")
    s.add_argument("--metrics", nargs="+", help="AUDIT metric CSV(s)")
    s.add_argument("--features", nargs="+", help="AUDIT feature CSV(s)")
    s.add_argument("--dataset", help="dataset name (default: from each file name)")
    s.add_argument("--out", required=True, help="results directory")
    s.set_defaults(func=cmd_import_audit)

    s = sub.add_parser("export", help="write every table of a results store to CSV/Parquet, or AUDIT metric CSVs")
    s.add_argument("results", help="results directory")
    s.add_argument("--format", choices=["csv", "parquet", "audit", "wide"], default="csv",
                   help="csv/parquet: every table; audit: AUDIT metric CSVs; wide: per_case_wide.csv, one row "
                        "per case and model")
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
