"""Per-case steps: ``evaluate``, ``agree`` and ``features``, their options, summaries and exit status."""

from __future__ import annotations

import sys
from pathlib import Path

from rich.table import Table

from segaudit.cli.output import _print_step_errors, _print_summary, console
from segaudit.cli.project import _project_for
from segaudit.errors import ConfigError


def evaluation_options(args, project=None):
    """EvaluationOptions from the project's ``evaluate:`` section overridden by command-line flags.

    The section is checked when the project was loaded, the flags by the parser.
    """
    from segaudit.metrics import EmptyPolicy, EvaluationOptions

    base = EvaluationOptions.from_dict(project.section("evaluate") if project is not None else None)
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
    return base.with_changes(policy=pol, **changes)


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
        hd = options.hd_name
        # Only the four metrics summarised, and the scored keys for the coverage (which reads nothing else):
        # at 3000 cases the whole table is ~300,000 rows that the summary never looks at.
        wanted = store.metric_values(["dice", hd, "gt_empty", "pred_empty"], list(datasets))
        keys = store.scored_keys(list(datasets))
        errors = store.errors(datasets=list(datasets))
        files = store.files(list(datasets))
        units = store.units()
    # The unit each dataset's distances really have (px for photos without a declared spacing).
    hd_units = units[units.metric == hd].groupby("dataset").unit.agg(lambda u: "/".join(sorted(set(u))))
    cov = coverage(keys, errors, files)
    if wanted.empty and cov.empty:
        return
    # Nothing scored at all (every case-model failed): only the coverage rows below are printed.
    s = summarize(wanted, n_resamples=1000, coverage=cov) if not wanted.empty else pd.DataFrame(
        columns=["dataset", "model", "region", "metric"])
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
        raise ConfigError("--ignore-affine and --resample-nearest exclude each other: resampling goes through "
                            "the affines that --ignore-affine says are wrong")
    return bool(args.ignore_affine)


def every_job_failed(results, errors, keys: list[str], datasets: list[str], skipped) -> tuple[int, str] | None:
    """(jobs, first reason) when a step's run had jobs and every one failed, else None.

    A job (one ``keys`` tuple: dataset, case[, model]) of this run is a key of ``results`` or of an
    error-severity row of ``errors`` in ``datasets`` that was not ``skipped`` (already done: not run now); it
    failed when it has an error row and no result row. Warnings never make a job fail.
    """
    bad = errors[(errors.severity == "error") & errors.dataset.isin(datasets)] if len(errors) else errors
    done = results[results.dataset.isin(datasets)] if len(results) else results
    ok = {tuple(map(str, k)) for k in done[keys].drop_duplicates().itertuples(index=False)} if len(done) else set()
    failed = {tuple(map(str, k)) for k in bad[keys].fillna("").itertuples(index=False)} if len(bad) else set()
    skipped = {tuple(map(str, k)) for k in skipped}
    jobs = (ok | failed) - skipped
    if not jobs or jobs - (failed - ok):
        return None
    return len(jobs), str(bad.message.iloc[0])


def _fail_if_all_failed(res_rows, errors, keys: list[str], project, skipped, what: str) -> int:
    """Exit status of a step: 1, with a one-line reason on stderr, when every job of the run failed."""
    verdict = every_job_failed(res_rows, errors, keys, [ds.name for ds in project.datasets], skipped)
    if verdict is None:
        return 0
    n, first = verdict
    print(f"segaudit: error: every one of the {n} {what} of this run failed (first: {first})", file=sys.stderr)
    return 1


def cmd_evaluate(args) -> int:
    """Run ``segaudit evaluate``: score every prediction of a project into its store."""
    from segaudit.pipeline.evaluate import evaluate_project

    project = _project_for(args)
    options = evaluation_options(args, project)
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
    # The scored keys, not every metric row: all the verdict needs (res.metrics reads the whole table).
    return _fail_if_all_failed(res.scored, res.errors, ["dataset", "case", "model"], project, res.skipped,
                               "case-model(s)")


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
    """Run ``segaudit agree``: agreement between models' predictions, without ground truth."""
    from segaudit.analysis.agreement import agreement_matrix, agreement_regions, model_table
    from segaudit.pipeline.agree import agree_project

    project = _project_for(args)
    base = evaluation_options(args, project)
    res = agree_project(project, args.out, base, consensus=args.consensus, workers=args.workers,
                        scheduler=args.scheduler, force=args.force, progress=not args.no_progress,
                        executor=args.executor, argv=sys.argv, fingerprint=_fingerprint(args))
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
    return _fail_if_all_failed(res.metrics, res.errors, ["dataset", "case"], project, res.skipped, "case(s)")


def cmd_features(args) -> int:
    """Run ``segaudit features``: extract image, ground-truth and prediction features into the store."""
    from segaudit.features.case import FeatureOptions
    from segaudit.pipeline.features import extract_project

    project = _project_for(args)
    options = FeatureOptions.from_dict(project.section("features")).with_changes(
        groups=tuple(args.groups) if args.groups else None, bin_count=args.bin_count, bin_width=args.bin_width,
        foreground=args.foreground)
    if args.no_shape:
        options = options.with_changes(shape=False)
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
    return _fail_if_all_failed(res.features, res.errors, ["dataset", "case"], project, res.skipped, "case(s)")
