"""``segaudit instruct export``: instruction-response records from a project's annotations."""

from __future__ import annotations

from segaudit.cli.output import console


def cmd_instruct_export(args) -> int:
    """Write the records (:func:`segaudit.instruct.export_instructions`) and print the diversity summary."""
    from segaudit.instruct import SliceOptions, export_instructions
    from segaudit.instruct.sampling import parse_quotas

    formats = args.format or ["jsonl"]
    res = export_instructions(args.target, args.out, format="all" if "all" in formats else formats,
                              per_image=args.per_image, negatives=args.negatives, seed=args.seed,
                              slices=SliceOptions(args.axis, args.lesion_slices, args.empty_slices),
                              use_model=not args.no_model, ontology_files=args.ontology or None,
                              template_files=args.templates or None, images=args.images,
                              quotas=parse_quotas(args.quota) if args.quota else None, rle=args.rle)
    s = res.summary
    console.print(f"{len(res.records)} record(s) from {s.get('views', '?')} view(s) in {res.seconds:.1f} s; "
                  f"negative share {s.get('negative_share', float('nan')):.2f}, distinct-2 "
                  f"{s.get('distinct_2', float('nan')):.2f}, near-duplicate rate "
                  f"{s.get('near_duplicate_rate', float('nan')):.3f} ({s.get('near_duplicate_method', '')})",
                  soft_wrap=True)
    for key, values in (s.get("quotas") or {}).items():
        got = ", ".join(f"{v or '-'} {c['achieved']}/{c['available']}" for v, c in values.items())
        console.print(f"quota {key}: {got} (kept/available)", soft_wrap=True, markup=False)
    for path in res.files:
        console.print(f"wrote {path}", soft_wrap=True)
    return 0
