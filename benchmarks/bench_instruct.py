"""Records per second of ``segaudit.instruct.export_instructions`` on the bundled demo project.

    python benchmarks/bench_instruct.py [--per-image 44] [--lesion-slices 100] [--empty-slices 20] [--quick]

The headline row is one export of about 10k records (the issue's target: under a minute on 2 cores): the demo
project's datasets with images (BraTS 2020 volumes, fundus photos, brain-metastasis slices), 44 records per view
and up to 100 foreground + 20 lesion-free slices per volume. Peers measured in the same run: the same export with
the text rule instead of MiniLM, with every format, and the small default export (3 + 1 slices per volume).
Each row times a whole export (discovery, reading every mask, records, near-duplicate removal, writing, summary)
into a temporary folder; the sentence model is loaded once, before the first row, and its load time is printed.
Wall time on a shared machine depends on the other jobs: process CPU time is printed too.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from segaudit.instruct import SliceOptions, export_instructions
from segaudit.instruct.embed import default_deduper
from segaudit.pipeline.demo import demo_project_path


def _row(name: str, out: Path, fmt, per_image: int, slices: SliceOptions, use_model: bool) -> dict:
    w0, c0 = time.perf_counter(), time.process_time()
    res = export_instructions(demo_project_path(), out, format=fmt, per_image=per_image, slices=slices,
                              use_model=use_model)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    s, st = res.summary, res.stats
    return {"run": name, "views": s["views"], "records": s["records"], "wall": wall, "cpu": cpu,
            "rate": s["records"] / wall, "cpu_rate": s["records"] / cpu, "embedded": st.embedded_texts,
            "passes": st.planning_passes, "neg": s["negative_share"], "d2": s["distinct_2"],
            "dup": s["near_duplicate_rate"], "method": s["near_duplicate_method"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-image", type=int, default=44)
    ap.add_argument("--lesion-slices", type=int, default=100)
    ap.add_argument("--empty-slices", type=int, default=20)
    ap.add_argument("--quick", action="store_true", help="the headline row and the text-rule peer only")
    args = ap.parse_args()
    t0 = time.perf_counter()
    model = default_deduper(True)
    print(f"sentence model: {model.method}, loaded in {time.perf_counter() - t0:.1f} s")
    big = SliceOptions(2, args.lesion_slices, args.empty_slices)
    plan = [("10k jsonl, MiniLM", "jsonl", big, True), ("10k jsonl, text rule", "jsonl", big, False)]
    if not args.quick:
        plan += [("10k all formats, MiniLM", "all", big, True),
                 ("default slices jsonl, MiniLM", "jsonl", SliceOptions(), True)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, fmt, slices, use_model) in enumerate(plan):
            rows.append(_row(name, Path(tmp) / str(i), fmt, args.per_image, slices, use_model))
    head = (f"{'run':<30} {'views':>5} {'records':>7} {'wall s':>7} {'CPU s':>6} {'rec/s':>6} {'rec/CPU s':>9} "
            f"{'embedded':>8} {'passes':>6} {'neg':>5} {'dist-2':>6} {'dup':>6}")
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['run']:<30} {r['views']:>5} {r['records']:>7} {r['wall']:>7.1f} {r['cpu']:>6.1f} {r['rate']:>6.0f} "
              f"{r['cpu_rate']:>9.0f} {r['embedded']:>8} {r['passes']:>6} {r['neg']:>5.2f} {r['d2']:>6.3f} "
              f"{r['dup']:>6.3f}")
    print(f"(per image {args.per_image}; 10k rows: up to {args.lesion_slices} foreground + {args.empty_slices} "
          f"lesion-free slices per volume; embedded = texts run through MiniLM; dup = near-duplicate rate)")


if __name__ == "__main__":
    main()
