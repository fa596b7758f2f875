"""``segaudit demo``: runs :func:`segaudit.demo.run_demo` and prints what it returns."""

from __future__ import annotations

from segaudit.cli.output import _print_findings, _print_summary, console
from segaudit.cli.steps import _print_evaluation


def cmd_demo(args) -> int:
    """Run ``segaudit demo``: the bundled project through evaluate, features and the report."""
    from segaudit.demo import feature_overview, run_demo
    from segaudit.metrics.evaluate import EvaluationOptions
    from segaudit.pipeline.demo import demo_project_path

    console.print(f"segaudit demo: bundled sample data in {demo_project_path().parent}")
    res = run_demo(args.out, progress=not args.no_progress)
    _print_summary(res.scan.summary, "Scan summary (bundled sample data)")
    _print_findings(res.scan.qc, 25)
    # The same table as `segaudit evaluate`: coverage, both-empty cases set apart, units as stored.
    _print_evaluation(args.out, [ds.name for ds in res.project.datasets],
                      EvaluationOptions.from_dict(res.project.section("evaluate")))
    for _, e in res.evaluation.errors.iterrows():
        console.print(f"  [yellow]{e.severity}[/] {e.dataset}/{e.case} {e.model}: {e.message}", soft_wrap=True)
    _print_summary(feature_overview(res.features.features), "Features: per dataset, ground truth (mean over cases)")
    shown = res.features.errors[res.features.errors.severity != "info"]
    for _, e in shown.iterrows():
        console.print(f"  [yellow]{e.severity}[/] {e.dataset}/{e.case}: {e.message}", soft_wrap=True)
    console.print(f"Results store: {res.store_path}")
    console.print(f"Report: {res.report.resolve()}")
    console.print(f"Export the tables with: segaudit export {args.out} --format csv (or --format audit)")
    console.print(f"Open the dashboard with: segaudit app {args.out} --project {demo_project_path()}", soft_wrap=True)
    return 0
