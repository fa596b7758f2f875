"""Analysis verbs: ``compare`` (paired test of two models), ``flips`` (any outcome CSV), ``metrics``."""

from __future__ import annotations

from segaudit.cli.output import _print_summary, console


def cmd_flips(args) -> int:
    """Run ``segaudit flips``: the pass/fail flip table of two models' outcomes; returns the exit code."""
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
    """Run ``segaudit compare``: the paired test of two models on a store's metrics; returns the exit code."""
    import numpy as np

    from segaudit.analysis.compare import compare_models
    from segaudit.analysis.coverage import expected_cases
    from segaudit.analysis.summary import subject_of
    from segaudit.store import ResultsStore

    with ResultsStore(args.results, read_only=True) as store:
        metrics = store.metrics(ordered=False).drop(columns="unit")
        errors = store.read("errors")
        files = store.read("files")
        cases = store.read("cases") if "cases" in store.tables() else None
    regions = args.region or None
    res = compare_models(metrics, args.baseline, args.candidate, args.metric, regions, args.aggregate,
                         args.dataset, args.threshold, missing=args.missing,
                         expected=expected_cases(metrics, errors, files), subjects=subject_of(cases))
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
    """The listed cases' values of both models side by side.

    Per region, or (``mean-over-regions``) each case's mean over its regions (the value the comparison above tested),
    with the difference.
    """
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


def cmd_metrics(args) -> int:
    """Run ``segaudit metrics --explain``: print every metric's definition, units and empty-case values."""
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
