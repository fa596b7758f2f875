"""``segaudit prompt``: a promptable model (LiteMedSAM) with prompts simulated from the ground truth, scored."""

from __future__ import annotations

import sys
from pathlib import Path

from segaudit.cli.output import _print_step_errors, _print_summary, console
from segaudit.cli.project import _project_for
from segaudit.errors import ConfigError


def _words(text: str | None) -> tuple[str, ...]:
    return tuple(w.strip() for w in (text or "").split(",") if w.strip())


def _ci_text(mean: float, lo: float, hi: float) -> str:
    if mean != mean:
        return "–"
    return f"{mean:.3f} [{lo:.3f}, {hi:.3f}]" if lo == lo else f"{mean:.3f}"


def _readable(table):
    """The prompt summary as printed: Dice with CI and mean ± std as text, times rounded."""
    import pandas as pd

    return pd.DataFrame({
        "dataset": table.dataset, "model": table.model, "images": table.n_images,
        "image dice [95% CI]": [_ci_text(m, lo, hi) for m, lo, hi in zip(
            table.image_dice_mean, table.image_dice_ci_low, table.image_dice_ci_high, strict=True)],
        "objects": table.n_objects,
        "object dice mean ± std": [f"{m:.3f} ± {s:.3f}" for m, s in zip(table.object_dice_mean,
                                                                       table.object_dice_std.fillna(0), strict=True)],
        "median": table.object_dice_median.round(3), "pred IoU": table.predicted_iou_mean.round(3),
        "decode ms/prompt": table.decode_ms.round(1), "encode s/image": table.encode_s.round(2)})


def cmd_prompt(args) -> int:
    """Run ``segaudit prompt`` (:func:`segaudit.pipeline.prompt.prompt_project`) and print Dice per prompt kind."""
    from segaudit.analysis.prompting import prompt_summary, stability_summary
    from segaudit.cli.steps import _fingerprint, _print_resume, evaluation_options
    from segaudit.pipeline.prompt import DEFAULT_KINDS, PromptOptions, prompt_project
    from segaudit.store import ResultsStore

    project = _project_for(args)
    try:
        options = PromptOptions(kinds=_words(args.prompts) or DEFAULT_KINDS, robustness=_words(args.robustness),
                                seed=args.seed, max_clicks=args.max_clicks, shift_px=args.shift_px,
                                auto_grid=args.auto_grid, auto_prompts=args.auto_prompts,
                                auto_iou=args.auto_iou, auto_stability=args.auto_stability, tile=args.tile,
                                filter=args.filter, model=args.model, cache_dir=args.cache_dir,
                                embedding_cache=not args.no_embedding_cache, sequences=_words(args.sequences))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    res = prompt_project(project, args.out, options, evaluation_options(args, project), workers=args.workers,
                         scheduler=args.scheduler, force=args.force, progress=not args.no_progress,
                         executor=args.executor, argv=sys.argv, fingerprint=_fingerprint(args))
    for note in res.notes:
        console.print(f"[yellow]{note}[/]", soft_wrap=True)
    _print_resume(res.resume_notes)
    if res.skipped:
        console.print(f"{len(res.skipped)} case(s) already prompted with these settings were skipped (--force to "
                      "redo)")
    if res.prompted:
        console.print(f"{res.prompted} case(s) prompted; {res.embeddings_from_disk} image embedding(s) read from "
                      f"the disk cache", soft_wrap=True)
    with ResultsStore(args.out, read_only=True) as store:
        prompts = store.prompts()
        dice = store.metric_values(["dice"])
    table = prompt_summary(prompts, dice)
    if not table.empty:
        _print_summary(_readable(table), "Dice per prompt kind (image: the union of its masks, scored by evaluate, "
                                         "mean [95% CI]; object: each prompt against its component)")
    stab = stability_summary(prompts)
    if not stab.empty:
        _print_summary(stab.round(3), "Robustness: per-object Dice under each setting, paired with the default box")
    _print_step_errors(res.errors[res.errors.severity != "info"], with_model=False)
    if res.evaluation is not None:
        _print_step_errors(res.evaluation.errors, with_model=True)
    console.print(f"Results store: {Path(args.out) / 'segaudit.duckdb'}; masks under {Path(args.out) / 'prompt'}")
    return 0 if res.prompted or res.skipped else 1


def _attribution_table(summary, source: str):
    """The attribution summary of one source as printed: the report's table (Shapley and drop-one with CIs)."""
    from segaudit.report.sections.prompting import attribution_table

    return attribution_table(summary[summary.source == source])


def _print_left_out(summary, limit: int = 5) -> None:
    """The cases left out of each dataset's model, with the reason and the regions it applies to."""
    from rich.markup import escape

    for (ds, model), g in summary[summary.n_left_out > 0].groupby(["dataset", "model"], sort=True):
        regions: dict[str, list[str]] = {}
        for region, text in zip(g.region, g.left_out, strict=True):
            for reason in (r for r in text.split("; ") if r):
                if region not in regions.setdefault(reason, []):
                    regions[reason].append(region)
        lines = [f"{reason} ({', '.join(rs)})" for reason, rs in regions.items()]
        console.print(escape(f"  left out of {ds} {model}: " + "; ".join(lines[:limit])
                             + (f" ... {len(lines) - limit} more" if len(lines) > limit else "")), soft_wrap=True)


def cmd_attribute(args) -> int:
    """Run ``segaudit attribute`` and print the per-sequence table.

    Live (:func:`segaudit.pipeline.attribute.attribute_project`: LiteMedSAM with sequences removed) or, with
    ``--from-predictions``, from the project file's ``subset_predictions``
    (:func:`segaudit.pipeline.subset_attribution.attribute_predictions_project`).
    """
    from segaudit.analysis.prompting import attribution_summary
    from segaudit.store import ResultsStore

    if args.from_predictions and (args.sequences or args.limit or args.fill != "zero"):
        raise ConfigError("--sequences, --fill and --limit are settings of the live removal; --from-predictions "
                          "attributes every case from the subsets the project file declares")
    project = _project_for(args)
    if args.from_predictions:
        from segaudit.pipeline.subset_attribution import attribute_predictions_project

        res = attribute_predictions_project(project, args.out, force=args.force, progress=not args.no_progress,
                                            workers=args.workers, executor=args.executor, argv=sys.argv)
        source, title = "declared", ("Modality attribution from the declared subset predictions (each scored by "
                                     "evaluate): exact Shapley value and drop-one Dice loss per sequence, mean "
                                     "[95% CI] over cases")
    else:
        from segaudit.pipeline.attribute import attribute_project

        res = attribute_project(project, args.out, _words(args.sequences) or None, fill=args.fill,  # type: ignore[assignment]
                                cache_dir=args.cache_dir, force=args.force, progress=not args.no_progress,
                                workers=args.workers, executor=args.executor, argv=sys.argv, limit=args.limit)
        source, title = "live", ("Modality attribution (LiteMedSAM, one box on the key slice): exact Shapley "
                                 "value and drop-one Dice loss per sequence, mean [95% CI] over cases")
        declared = [ds.name for ds in project.datasets if ds.subset_predictions]
        if declared:
            console.print(f"{', '.join(declared)} declare(s) subset_predictions: segaudit attribute "
                          "--from-predictions attributes from them", soft_wrap=True)
    for note in res.notes:
        console.print(f"[yellow]{note}[/]", soft_wrap=True)
    if res.skipped:
        console.print(f"{len(res.skipped)} case(s) already attributed with these settings were skipped (--force "
                      "to redo)")
    with ResultsStore(args.out, read_only=True) as store:
        summary = attribution_summary(store.attributions())
    if not summary.empty and (summary.source == source).any():
        _print_summary(_attribution_table(summary, source), title)
        _print_left_out(summary[summary.source == source])
    _print_step_errors(res.errors, with_model=source == "declared")
    console.print(f"Results store: {Path(args.out) / 'segaudit.duckdb'}")
    return 0 if res.attributed or res.skipped else 1
