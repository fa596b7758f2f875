"""Feature-extraction speed on real 4-sequence BraTS cases (240x240x155), segaudit against its peers, 1 core.

    python benchmarks/bench_features.py [--repeat 3] [--audit-python /path/to/venv/bin/python]

Cases: BraTS20_Training_001 (demo data) and BraTS2024_SSA-00230-000 (tests/data), each t1, t1ce, t2, flair and
a ground truth. Every tool runs pinned to one CPU core with one BLAS thread, on the same files, in this run:

* **segaudit**: ``extract_case`` (reading every file once + all groups: spatial, intensity and texture over the
  brain and inside 6 labels/regions per sequence, lesion size/position/shape, multimodal), median of repeats;
* **AUDIT** (``pip install auditapp`` in a separate environment, passed with ``--audit-python``): its own
  ``extract_features`` with all four groups and ``cpu_cores: 1`` on a folder of the same files;
* **pyradiomics** (test dependency): first-order + GLCM over the brain of each sequence and the shape of the
  whole tumour (a subset of what segaudit computes), for scale.

Prints one table: tool, seconds per case, and how many times slower than segaudit.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import textwrap  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SEQUENCES = ("t1", "t1ce", "t2", "flair")
CASES = {
    "BraTS20_Training_001": REPO / "src/segaudit/data/demo/brats_audit/BraTS2020/BraTS2020_images",
    "BraTS2024_SSA-00230-000": REPO / "tests/data/brats_audit/BraTS2024_SSA/BraTS2024_SSA_images",
}

AUDIT_DRIVER = textwrap.dedent("""
    import json, sys, time
    from audit.features.main import extract_features
    from loguru import logger
    logger.remove()
    cfg = {"modality": "MRI", "formats": {"image": ".nii.gz", "segmentation": ".nii.gz"},
           "sequences": ["_t1", "_t2", "_t1ce", "_flair"], "labels": {"BKG": 0, "EDE": 3, "ENH": 1, "NEC": 2},
           "features": {"statistical": True, "texture": True, "spatial": True, "tumor": True},
           "preprocessing": {}, "cpu_cores": int(sys.argv[2])}
    t = time.perf_counter()
    df = extract_features(sys.argv[1], cfg, "bench")
    print(json.dumps({"seconds": time.perf_counter() - t, "rows": int(len(df)), "columns": int(df.shape[1])}))
""")


def _pin_one_core() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def _jobs():
    from segaudit.dataset.labels import LabelMap
    from segaudit.dataset.project import DatasetConfig
    from segaudit.features.case import FeatureOptions
    from segaudit.pipeline.features import FeatureJob

    ds = DatasetConfig(name="bench", root=REPO, label_map=LabelMap.from_config(None, None, "audit", "benchmark"))
    jobs = []
    for case, root in CASES.items():
        files = [(s, str(root / case / f"{case}_{s}.nii.gz"), True) for s in SEQUENCES]
        jobs.append(FeatureJob(ds, case, files, (str(root / case / f"{case}_seg.nii.gz"), True), None, [],
                               FeatureOptions()))
    return jobs


def bench_segaudit(repeat: int) -> tuple[float, int]:
    from segaudit.pipeline.features import extract_case

    jobs = _jobs()
    extract_case(jobs[0])  # warm-up: imports, lookup tables
    times, rows = [], 0
    for _ in range(repeat):
        for job in jobs:
            t = time.perf_counter()
            out = extract_case(job)
            times.append(time.perf_counter() - t)
            assert not [e for e in out.errors if e["severity"] == "error"], out.errors
            rows = len(out.rows)
    return statistics.median(times), rows


def bench_pyradiomics() -> float | None:
    try:
        import SimpleITK as sitk
        from radiomics import featureextractor
    except ImportError:
        return None
    import numpy as np

    from segaudit.features.intensity import foreground_mask
    from segaudit.io import read_image, read_mask

    logging.getLogger("radiomics").setLevel(logging.ERROR)
    times = []
    for case, root in CASES.items():
        t = time.perf_counter()
        seg = read_mask(root / case / f"{case}_seg.nii.gz").array
        for s in SEQUENCES:
            img = read_image(root / case / f"{case}_{s}.nii.gz").array
            ex = featureextractor.RadiomicsFeatureExtractor(binCount=32)
            ex.disableAllFeatures()
            ex.enableFeatureClassByName("firstorder")
            ex.enableFeatureClassByName("glcm")
            ex.execute(sitk.GetImageFromArray(img.astype(np.float32)),
                       sitk.GetImageFromArray(foreground_mask(img).astype(np.uint8)))
        ex = featureextractor.RadiomicsFeatureExtractor()
        ex.disableAllFeatures()
        ex.enableFeatureClassByName("shape")
        wt = sitk.GetImageFromArray((seg > 0).astype(np.uint8))
        ex.execute(wt, wt)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench_audit(python: str, cores: int = 1) -> dict | None:
    with tempfile.TemporaryDirectory() as tmp:
        for case, root in CASES.items():
            (Path(tmp) / case).mkdir()
            for s in (*SEQUENCES, "seg"):
                os.symlink(root / case / f"{case}_{s}.nii.gz", Path(tmp) / case / f"{case}_{s}.nii.gz")
        driver = Path(tmp) / "driver.py"
        driver.write_text(AUDIT_DRIVER)
        cmd = [python, str(driver), tmp, str(cores)]
        if os.path.exists("/usr/bin/taskset") and cores == 1:
            cmd = ["taskset", "-c", str(min(os.sched_getaffinity(0))), *cmd]
        env = {**os.environ, "TQDM_DISABLE": "1"}
        r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp)
        if r.returncode != 0:
            print(f"AUDIT failed:\n{r.stderr[-2000:]}", file=sys.stderr)
            return None
        res = json.loads(r.stdout.strip().splitlines()[-1])
        res["per_case"] = res["seconds"] / len(CASES)
        return res


def bench_segaudit_project(workers: int) -> float:
    """End to end: ``extract_project`` of both cases into a fresh store with ``workers`` processes (wall s)."""
    import yaml

    from segaudit.dataset.project import load_project
    from segaudit.pipeline.features import extract_project

    with tempfile.TemporaryDirectory() as tmp:
        for case, root in CASES.items():
            (Path(tmp) / "data" / case).mkdir(parents=True)
            for s in (*SEQUENCES, "seg"):
                os.symlink(root / case / f"{case}_{s}.nii.gz", Path(tmp) / "data" / case / f"{case}_{s}.nii.gz")
        project = {"datasets": {"bench": {"root": str(Path(tmp) / "data"),
                                          "images": "{root}/{case}/{case}_{sequence}.nii.gz",
                                          "sequences": list(SEQUENCES),
                                          "ground_truth": "{root}/{case}/{case}_seg.nii.gz",
                                          "label_convention": "audit"}}}
        (Path(tmp) / "p.yaml").write_text(yaml.safe_dump(project))
        t = time.perf_counter()
        extract_project(load_project(Path(tmp) / "p.yaml"), Path(tmp) / "run", workers=workers,
                        executor="processes", progress=False)
        return time.perf_counter() - t


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--audit-python", default=os.environ.get("AUDIT_PYTHON"),
                    help="python of an environment with auditapp installed")
    args = ap.parse_args(argv)
    all_cores = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
    _pin_one_core()
    ours, rows = bench_segaudit(args.repeat)
    table = [("segaudit (all groups, reading included)", ours, f"{rows} features per case")]
    rad = bench_pyradiomics()
    if rad is not None:
        table.append(("pyradiomics (first-order + GLCM of 4 brains, WT shape)", rad, "a subset of segaudit's"))
    if args.audit_python:
        aud = bench_audit(args.audit_python)
        if aud is not None:
            table.append(("AUDIT extract_features (4 groups, cpu_cores 1)", aud["per_case"],
                          f"{aud['columns']} columns per case"))
    else:
        table.append(("AUDIT", float("nan"), "not run: pass --audit-python (pip install auditapp in a venv)"))
    print(f"\nFeature extraction, 4-sequence 240x240x155 BraTS cases ({len(CASES)}), 1 core")
    print(f"{'tool':58} {'s/case':>8} {'x segaudit':>11}  note")
    for name, sec, note in table:
        print(f"{name:58} {sec:8.2f} {sec / ours:11.1f}  {note}")
    if len(all_cores) >= 2:
        os.sched_setaffinity(0, all_cores)
        wall = bench_segaudit_project(workers=2)
        rows2 = [("segaudit features, 2 worker processes, store writes", wall)]
        if args.audit_python:
            aud2 = bench_audit(args.audit_python, cores=2)
            if aud2 is not None:
                rows2.append(("AUDIT extract_features, cpu_cores 2", aud2["seconds"]))
        print("\nBoth cases end to end on 2 cores (wall seconds)")
        for name, sec in rows2:
            print(f"{name:58} {sec:8.2f} {sec / wall:11.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
