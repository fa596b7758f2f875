"""``segaudit ask`` and ``segaudit ask-eval``: thin shells over the ask library and its evaluation.

The library: :mod:`segaudit.instruct.ask` (one request) and :mod:`segaudit.pipeline.ask` (the holdout evaluation).
"""

from __future__ import annotations

import json
import math

from segaudit.cli.output import _print_summary, console
from segaudit.errors import SegauditError


def _index(args, progress: bool):
    from segaudit.instruct.ask import cached_index

    def note(s: str) -> None:
        console.print(f"  indexing {s}", soft_wrap=True)

    index, built = cached_index(args.project, cache_dir=args.index_dir, rebuild=args.rebuild_index,
                                progress=note if progress else None)
    return index, built


def cmd_ask(args) -> int:
    """Answer one instruction about one image (or build the index with ``--index``)."""
    from segaudit.instruct.ask import ask

    if args.index:
        index, built = _index(args, progress=not args.json)
        msg = (f"ask index of {index.project}: {len(index.targets)} target(s), modalities "
               f"{index.modality_counts} (leave-one-out accuracy {index.modality_loo_accuracy:.2f}), key "
               f"{index.key} ({f'built in {index.build_seconds:.1f} s' if built else 'cached, unchanged'})")
        if args.json:
            print(json.dumps({"key": index.key, "built": built, "targets": sorted(index.targets),
                              "modalities": index.modality_counts}))
        else:
            console.print(msg, soft_wrap=True)
        return 0
    if not args.image or args.instruction is None:
        raise SegauditError("segaudit ask needs IMAGE and \"INSTRUCTION\" (or --index to build the index)")
    res = None
    if args.run:
        from segaudit.pipeline.ask import store_answer

        res = store_answer(args.image, args.instruction, args.project, args.run)
    if res is None:
        index, _ = _index(args, progress=False)
        res = ask(args.image, args.instruction, index, out_dir=args.out)
    if args.json:
        print(json.dumps(res.to_dict(), default=float))
        return 0
    colour = {"answered": "green", "refused": "red", "clarify": "yellow"}[res.verdict]
    console.print(f"[{colour}]{res.verdict}[/]: {res.text or res.reason}", soft_wrap=True)
    if res.text:
        console.print(f"  reason: {res.reason}", soft_wrap=True)
    c = res.checks
    goal = c.get("goal") or {}
    console.print(f"  goal: {goal.get('task')} {goal.get('target')} (phrase '{goal.get('phrase')}', similarity "
                  f"{goal.get('target_similarity')})", soft_wrap=True)
    if c.get("assumption"):
        console.print(f"  assumption: {c['assumption']}", soft_wrap=True)
    shows = c.get("image_shows") or {}
    console.print(f"  image shows: {shows.get('modality')} (confidence {shows.get('confidence')})"
                  + (f", case {'/'.join(shows['case'])}" if shows.get("case") else ""), soft_wrap=True)
    console.print(f"  match: {(c.get('match') or {}).get('ok')}", soft_wrap=True)
    if res.tool:
        console.print(f"  tool: {res.tool}; count {res.count}; boxes {res.boxes[:5]}"
                      f"{' ...' if len(res.boxes) > 5 else ''}", soft_wrap=True)
    if res.mask:
        console.print(f"  mask: {res.mask}", soft_wrap=True)
    console.print("  timings: " + ", ".join(f"{k} {v}" for k, v in res.timings.items()), soft_wrap=True)
    return 0


def cmd_ask_eval(args) -> int:
    """Holdout evaluation of ``segaudit ask``: print the metrics table, store it."""
    import pandas as pd

    from segaudit.pipeline.ask import ask_eval

    def note(s: str) -> None:
        if not args.no_progress:
            console.print(f"  {s}", soft_wrap=True)

    res = ask_eval(args.project, args.out, holdout=args.holdout, seed=args.seed, progress=note)
    table = res.table.copy()
    shown = table.map(lambda v: round(v, 3) if isinstance(v, float) and not math.isnan(v) else v)
    _print_summary(pd.DataFrame(shown).T.reset_index().rename(columns={"index": "metric"}).pipe(
        lambda d: d.set_axis(["metric", *table["modality"]], axis=1).iloc[1:]), "ask-eval (holdout "
        f"{args.holdout}, seed {args.seed})")
    console.print(f"{len(res.pairs)} pair(s) in {res.seconds:.0f} s (request times exclude one untimed warm-up "
                  f"request of {res.warmup_seconds:.1f} s); table stored in {res.out_dir}/segaudit.duckdb "
                  f"(dataset ask-eval), pairs in {res.out_dir}/ask_eval_pairs.jsonl", soft_wrap=True)
    return 0
