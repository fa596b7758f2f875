"""Benchmark: segaudit's metrics engine against the peers, measured side by side in one run, on 1 core.

    python benchmarks/bench_metrics.py [--data DIR] [--scale 200] [--repeat 3]

Prints one table. Rows, per BraTS case-model (3 labels ENH/NEC/EDE + 2 regions WT/TC):

* segaudit, all metrics incl. reading the two files: overlap + surface (hd, hd95, assd, masd, nsd) +
  lesion-wise (BraTS rule), from the file paths;
* segaudit, all metrics on arrays already in memory;
* DeepMind surface-distance alone on the same 5 masks (``compute_surface_distances`` + HD95 + ASD + surface
  Dice), masks prepared beforehand;
* MONAI alone on the same 5 masks (HD95 + ASSD, voxel borders), tensors prepared beforehand;

then the throughput row: ``--scale`` case-models (the real cases replicated by symlinks) evaluated end to end by
``segaudit evaluate`` with 2 Dask workers. Peers need ``pip install -e '.[test]'``; a missing peer is reported,
not faked. Data: the full public sample set when SEGAUDIT_SAMPLE_DATA or --data points at it, else the cases
bundled with the repository.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from segaudit.io import read_mask  # noqa: E402
from segaudit.metrics import EvaluationOptions, evaluate_pair  # noqa: E402

LABELS = {"ENH": 1, "NEC": 2, "EDE": 3}
REGIONS = {"WT": (1, 2, 3), "TC": (1, 2)}
MASKS = [(1,), (2,), (3,), (1, 2, 3), (1, 2)]
REPO = Path(__file__).resolve().parents[1]


def find_pairs(roots: list[Path]) -> list[tuple[str, Path, Path]]:
    pairs = []
    for root in roots:
        for pred in sorted(root.glob("*/*_seg/*/*/*_pred.nii.gz")):
            case, ds = pred.parent.name, pred.parents[3].name
            gt = root / ds / f"{ds}_images" / case / f"{case}_seg.nii.gz"
            if gt.is_file():
                pairs.append((f"{case}/{pred.parents[1].name}", gt, pred))
    return pairs


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def segaudit_from_files(gt_path, pred_path, opts):
    gt, pred = read_mask(gt_path), read_mask(pred_path)
    return evaluate_pair(gt.array, pred.array, gt.spacing, LABELS, REGIONS, opts)


def deepmind(masks, spacing):
    import surface_distance as sd

    for g, p in masks:
        if g.any() and p.any():  # the package fails on empty masks with numpy 2 (np.Inf)
            r = sd.compute_surface_distances(g, p, spacing)
            sd.compute_robust_hausdorff(r, 95)
            sd.compute_average_surface_distance(r)
            sd.compute_surface_dice_at_tolerance(r, 1.0)


def monai(tensors, spacing):
    from monai.metrics import compute_average_surface_distance, compute_hausdorff_distance

    for yp, yt in tensors:
        compute_hausdorff_distance(yp, yt, include_background=True, percentile=95, spacing=list(spacing))
        compute_average_surface_distance(yp, yt, include_background=True, symmetric=True, spacing=list(spacing))


def replicate(pairs, n: int, dest: Path) -> Path:
    """An AUDIT-layout tree with n case-models: each real case-model linked under new case names."""
    k = 0
    while k < n:
        for _, gt, pred in pairs:
            if k >= n:
                break
            case = f"rep{k:04d}"
            model = "model"  # one model per replica case: the tree holds exactly n case-models
            (dest / "images" / case).mkdir(parents=True, exist_ok=True)
            (dest / "seg" / model / case).mkdir(parents=True, exist_ok=True)
            gl = dest / "images" / case / f"{case}_seg.nii.gz"
            if not gl.exists():
                gl.symlink_to(gt.resolve())
            (dest / "seg" / model / case / f"{case}_pred.nii.gz").symlink_to(pred.resolve())
            k += 1
    return dest


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", help="folder holding brats_audit/ (default: SEGAUDIT_SAMPLE_DATA, else bundled)")
    ap.add_argument("--scale", type=int, default=200, help="case-models for the throughput row (0 skips it)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3, help="timings are the best of this many runs")
    args = ap.parse_args(argv)

    data = args.data or os.environ.get("SEGAUDIT_SAMPLE_DATA")
    roots = [Path(data) / "brats_audit"] if data else [REPO / "src/segaudit/data/demo/brats_audit",
                                                         REPO / "tests/data/brats_audit"]
    pairs = find_pairs(roots)
    if not pairs:
        print("no BraTS case-models found", file=sys.stderr)
        return 1
    opts = EvaluationOptions()
    try:
        import torch

        torch.set_num_threads(1)
        have_monai = __import__("importlib").util.find_spec("monai") is not None
    except ImportError:
        torch, have_monai = None, False
    have_dm = __import__("importlib").util.find_spec("surface_distance") is not None

    # Warm-up: imports and the surfel table.
    segaudit_from_files(pairs[0][1], pairs[0][2], opts)
    surf_only = EvaluationOptions(lesion_matching="none")
    rows = {"files": [], "arrays": [], "surface": [], "deepmind": [], "monai": []}
    per_case = []
    for name, gt_path, pred_path in pairs:
        t_files = best_of(lambda g=gt_path, p=pred_path: segaudit_from_files(g, p, opts), args.repeat)
        gt, pred = read_mask(gt_path), read_mask(pred_path)
        sp = gt.spacing
        t_arrays = best_of(lambda g=gt, p=pred, sp=sp: evaluate_pair(g.array, p.array, sp, LABELS, REGIONS, opts),
                           args.repeat)
        t_surf = best_of(lambda g=gt, p=pred, sp=sp: evaluate_pair(g.array, p.array, sp, LABELS, REGIONS,
                                                                      surf_only),
                         args.repeat)
        masks = [(np.isin(gt.array, v), np.isin(pred.array, v)) for v in MASKS]
        t_dm = best_of(lambda m=masks, sp=sp: deepmind(m, sp), args.repeat) if have_dm else float("nan")
        if have_monai:
            tensors = [(torch.from_numpy(p[None, None].astype(np.float32)),
                        torch.from_numpy(g[None, None].astype(np.float32))) for g, p in masks if g.any() and p.any()]
            t_mo = best_of(lambda t=tensors, sp=sp: monai(t, sp), args.repeat)
        else:
            t_mo = float("nan")
        for key, t in zip(rows, (t_files, t_arrays, t_surf, t_dm, t_mo), strict=True):
            rows[key].append(t)
        per_case.append((name, t_files, t_arrays, t_surf, t_dm, t_mo))

    print(f"\nsegaudit metrics benchmark: {len(pairs)} real BraTS case-models, 1 thread, best of {args.repeat}")
    print(f"{'case-model':44} {'segaudit+read':>14} {'segaudit':>10} {'no lesions':>11} {'DeepMind SD':>12} "
          f"{'MONAI':>10}")
    for name, a, b, c, d, e in per_case:
        print(f"{name:44} {a:14.3f} {b:10.3f} {c:11.3f} {d:12.3f} {e:10.3f}")
    print()
    header = f"{'tool (per case-model, 5 masks)':58} {'median s':>9} {'max s':>8} {'time / segaudit':>16}"
    print(header)
    print("-" * len(header))
    med = {k: statistics.median(v) for k, v in rows.items()}
    mx = {k: max(v) for k, v in rows.items()}
    labels = {"files": "segaudit: all metrics + lesion-wise, incl. reading 2 files",
              "arrays": "segaudit: all metrics + lesion-wise, arrays in memory",
              "surface": "segaudit: overlap + surface metrics (no lesion-wise), arrays",
              "deepmind": "DeepMind surface-distance: HD95+ASD+NSD only",
              "monai": "MONAI: HD95+ASSD only"}
    for k, label in labels.items():
        ref = "surface" if k in ("deepmind", "monai") else "arrays"
        ratio = statistics.median([a / b for a, b in zip(rows[k], rows[ref], strict=True)])
        note = "(vs the no-lesion row)" if ref == "surface" else ""
        print(f"{label:58} {med[k]:9.3f} {mx[k]:8.3f} {ratio:13.1f}x {note}")

    if args.scale:
        from segaudit.dataset import parse_project
        from segaudit.pipeline.evaluate import evaluate_project

        with tempfile.TemporaryDirectory() as tmp:
            root = replicate(pairs, args.scale, Path(tmp) / "rep")
            project = parse_project({"datasets": {"rep": {
                "root": str(root), "ground_truth": "{root}/images/{case}/{case}_seg.nii.gz",
                "predictions": "{root}/seg/{model}/{case}/{case}_pred.nii.gz", "label_convention": "audit",
                "regions": {"WT": ["ENH", "NEC", "EDE"], "TC": ["ENH", "NEC"]}}}}, Path(tmp))
            for executor in ("processes", "dask"):
                t = time.perf_counter()
                res = evaluate_project(project, Path(tmp) / f"out-{executor}", opts, workers=args.workers,
                                       executor=executor, progress=False)
                wall = time.perf_counter() - t
                n = res.metrics.groupby(["case", "model"]).ngroups
                label = f"segaudit evaluate: {n} case-models, {args.workers} {executor} workers, end to end"
                print(f"{label:58} {wall:9.1f} s total, {wall / max(n, 1):.3f} s per case-model, "
                      f"{len(res.errors)} errors")
    return 0


if __name__ == "__main__":
    sys.exit(main())
