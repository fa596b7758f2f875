"""Benchmark: ``segaudit scan`` and ``segaudit evaluate`` on thousands of small synthetic 3D cases.

    python benchmarks/bench_scale.py [--cases 3000] [--shape 24] [--workers 1] [--keep DIR]

Writes ``--cases`` synthetic cases (a ground truth of up to three labelled ellipsoids and one model's shifted,
trimmed prediction, ``--shape``³ voxels of 1 mm, gzipped NIfTI; see ``tests/robustness/generators.py``) to a
temporary folder, runs ``segaudit scan`` then ``segaudit evaluate`` on them as separate processes, and prints
one table: cases, wall and CPU seconds of each step, and the peak resident memory of each step (its process and
any worker it waited for, from ``wait4`` in a small launcher process, so this process's own memory never counts:
see ``generators.run_measured``). Also checks that every case-model was scored. Issue 13's baseline
(3000 cases, 2-core machine): scan 47 s, evaluate 2 min 17 s, peak memory < 0.5 GB.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from robustness.generators import run_measured, stored_count, write_synthetic_dataset  # noqa: E402


def bench(root: Path, cases: int, shape: int, workers: int) -> dict:
    """Generate, scan and evaluate ``cases`` cases under ``root``; the measured figures of each step."""
    t = time.perf_counter()
    proj = write_synthetic_dataset(root / "data", cases, (shape, shape, shape))
    gen_s = time.perf_counter() - t
    run_dir = root / "run"
    scan = run_measured("scan", proj, "--out", run_dir, "--no-progress", log_dir=root / "logs_scan")
    if scan.returncode:
        raise SystemExit(f"scan failed ({scan.returncode}):\n{scan.stderr}")
    ev = run_measured("evaluate", proj, "--out", run_dir, "--no-progress", "--workers", workers,
                      log_dir=root / "logs_evaluate")
    if ev.returncode:
        raise SystemExit(f"evaluate failed ({ev.returncode}):\n{ev.stderr}")
    scored = stored_count(run_dir, 'SELECT count(DISTINCT "case" || \'/\' || model) FROM metrics')
    return {"generate": gen_s, "scan": scan, "evaluate": ev, "scored": scored}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=3000)
    ap.add_argument("--shape", type=int, default=24, help="edge of the cubic volumes, voxels (default 24)")
    ap.add_argument("--workers", type=int, default=1, help="evaluate --workers (default 1)")
    ap.add_argument("--keep", type=Path, help="write the data and the store here instead of a temporary folder")
    args = ap.parse_args(argv)
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        res = bench(args.keep, args.cases, args.shape, args.workers)
    else:
        with tempfile.TemporaryDirectory(prefix="segaudit-bench-scale-") as tmp:
            res = bench(Path(tmp), args.cases, args.shape, args.workers)
    scan, ev = res["scan"], res["evaluate"]
    print(f"{args.cases} synthetic cases of {args.shape}^3 voxels, 1 model, evaluate --workers {args.workers} "
          f"(data written in {res['generate']:.1f} s; {os.cpu_count()} CPUs seen)")
    print()
    print("| cases | scan s (CPU s) | evaluate s (CPU s) | peak RSS MB (scan / evaluate) | case-models scored |")
    print("|---|---|---|---|---|")
    print(f"| {args.cases} | {scan.seconds:.1f} ({scan.cpu_seconds:.1f}) | {ev.seconds:.1f} ({ev.cpu_seconds:.1f}) | "
          f"{scan.peak_rss_mb:.0f} / {ev.peak_rss_mb:.0f} | {res['scored']} |")
    print("| 3000 (issue 13 baseline) | 47 | 137 | < 512 | |")
    return 0 if res["scored"] == args.cases else 1


if __name__ == "__main__":
    sys.exit(main())
