"""Records per second of ``segaudit.instruct.export_instructions`` on the bundled demo project.

    python benchmarks/bench_instruct.py [--per-image 40] [--format jsonl|all] [--no-model] [--repeat 1]

Times the whole export (discovery, reading every mask, records, near-duplicate removal, writing, summary) into a
temporary folder, and prints the summary's diversity numbers.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from segaudit.instruct import export_instructions
from segaudit.pipeline.demo import demo_project_path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-image", type=int, default=40)
    ap.add_argument("--format", default="jsonl")
    ap.add_argument("--no-model", action="store_true", help="normalised-text dedup instead of MiniLM")
    ap.add_argument("--repeat", type=int, default=1, help="exports with seeds 0..repeat-1 (more records)")
    args = ap.parse_args()
    total, seconds = 0, 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.repeat):
            t0 = time.perf_counter()
            res = export_instructions(demo_project_path(), Path(tmp) / str(seed), format=args.format,
                                      per_image=args.per_image, seed=seed, use_model=not args.no_model)
            seconds += time.perf_counter() - t0
            total += len(res.records)
        s = res.summary
    keys = ("views", "records", "tasks", "negative_share", "distinct_2", "near_duplicate_rate",
            "near_duplicate_method", "templates_used")
    print(json.dumps({k: s[k] for k in keys}, indent=1))
    print(f"{total} records in {seconds:.1f} s: {total / seconds:.0f} records/s "
          f"(format {args.format}, per image {args.per_image}, {args.repeat} export(s))")


if __name__ == "__main__":
    main()
