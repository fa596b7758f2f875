"""Dashboard speed on about 100k metric rows, measured in headless Debian Chromium.

The store: AUDIT's real BraTS 2024 UCSD table (200 cases, four models; ``segaudit.store.audit.import_audit``)
replicated under new case ids to ``--rows`` metric rows, plus one scanned and evaluated 3D BraTS case with its
four sequences (tests/data/brats_audit/BraTS2024_SSA) for the viewer. The app is started with
``segaudit.app.launch.start_app`` and driven with Playwright; each timing is from the action to the expected
text on the page (the explorer's IQR filter on the imported table's predicted volumes among them). Prints a
table (seconds) and the server's resident memory.

    PYTHONPATH=src python benchmarks/bench_app.py [--rows 100000] [--out /tmp/bench-app]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UCSD = ROOT / "tests/data/audit_outputs/metrics/BraTS_2024_by_site/extracted_information_UCSD.csv"
SSA = ROOT / "tests/data/brats_audit/BraTS2024_SSA"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
TARGETS = {"first page ready": 2.0, "page switch": 1.0, "filter change": 0.3, "explorer filter change": 0.3,
           "viewer slice change": 0.15, "viewer next-slice button": 0.15}
#: The explorer's default feature on the imported UCSD table (the first ``:WT:volume`` column).
EXPLORER_FEATURE = ("BraTS25_1", "WT", "volume")


def build(out: Path, rows: int) -> tuple[Path, Path]:
    """The run directory and project file of the benchmark store (rebuilt when missing)."""
    import yaml

    from segaudit.dataset.project import load_project
    from segaudit.metrics import EvaluationOptions
    from segaudit.pipeline.evaluate import evaluate_project
    from segaudit.pipeline.scan import scan_project
    from segaudit.store.audit import import_audit
    from segaudit.store.store import ResultsStore

    run, project_file = out / "run", out / "segaudit.yaml"
    if (run / "segaudit.duckdb").is_file() and project_file.is_file():
        return run, project_file
    out.mkdir(parents=True, exist_ok=True)
    project_file.write_text(yaml.safe_dump({"name": "bench-app", "datasets": {"BraTS2024_SSA": {
        "root": str(SSA), "images": "{root}/BraTS2024_SSA_images/{case}/{case}_{sequence}.nii.gz",
        "sequences": ["t1", "t1ce", "t2", "flair"],
        "ground_truth": "{root}/BraTS2024_SSA_images/{case}/{case}_seg.nii.gz",
        "predictions": "{root}/BraTS2024_SSA_seg/{model}/{case}/{case}_pred.nii.gz",
        "label_convention": "audit", "geometry": "ignore_affine"}}}))
    project = load_project(project_file)
    scan_project(project, run, progress=False)
    evaluate_project(project, run, EvaluationOptions(lesion_matching="brats"), progress=False)
    import_audit(run, [UCSD])
    with ResultsStore(run) as store:
        base = int(store.query("SELECT count(*) AS n FROM metrics WHERE dataset = 'UCSD'").n[0])
        total = int(store.query("SELECT count(*) AS n FROM metrics").n[0])
        copy = 1
        while total < rows:  # the same rows under new case ids: a bigger cohort of the same distribution
            store.con.execute("INSERT INTO metrics SELECT dataset, \"case\" || ?, model, region, metric, value, "
                              "run_id, unit FROM metrics WHERE dataset = 'UCSD' AND \"case\" NOT LIKE '%-copy%'",
                              [f"-copy{copy}"])
            total += base
            copy += 1
    return run, project_file


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(page, action, text: str, timeout: float = 60_000) -> float:
    t = time.perf_counter()
    action(page)
    page.get_by_text(text, exact=False).first.wait_for(timeout=timeout)
    return time.perf_counter() - t


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--out", type=Path, default=Path("/tmp/bench-app"))
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    import psutil
    from playwright.sync_api import sync_playwright

    from segaudit.app.launch import start_app

    t0 = time.perf_counter()
    run, project = build(args.out, args.rows)
    import duckdb

    con = duckdb.connect(str(run / "segaudit.duckdb"), read_only=True)
    n_rows = con.execute("SELECT count(*) FROM metrics").fetchone()[0]
    n_qc = con.execute("SELECT count(*) FROM qc").fetchone()[0]
    sev = con.execute("SELECT severity, count(*) FROM qc GROUP BY 1 ORDER BY 1").fetchall()
    vol = con.execute("SELECT value FROM features WHERE dataset = 'UCSD' AND model = ? AND source = ? AND "
                      "feature = ? AND isfinite(value)", list(EXPLORER_FEATURE)).df().value.to_numpy()
    con.close()
    import numpy as np

    q1, q3 = np.percentile(vol, [25, 75])
    iqr_kept = int(((vol >= q1 - 1.5 * (q3 - q1)) & (vol <= q3 + 1.5 * (q3 - q1))).sum())
    print(f"store: {n_rows} metric rows, {n_qc} QC findings (built in {time.perf_counter() - t0:.1f} s)")
    port = free_port()
    proc = start_app(run, project, "127.0.0.1", port, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    results: dict[str, list[float]] = {k: [] for k in TARGETS}
    try:
        for _ in range(240):
            try:
                if urllib.request.urlopen(f"{base}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.5)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            # Warm-up: the first visit imports the page modules and fills the caches once.
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(base + "/")
            page.get_by_text("findings shown").first.wait_for(timeout=120_000)
            for i in range(args.repeat):
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                results["first page ready"].append(timed(page, lambda pg: pg.goto(base + "/"),
                                                         f"{n_qc} of {n_qc} findings shown"))
                page.locator('[data-testid="stMultiSelect"]').first.wait_for()
                # Filter change: drop the first severity from the QC filter.
                kept = n_qc - sev[0][1]
                results["filter change"].append(timed(
                    page, lambda pg: pg.get_by_role("button", name=f"Remove {sev[0][0]}").first.click(),
                    f"{kept} of {n_qc} findings shown"))
                results["page switch"].append(timed(
                    page, lambda pg: pg.get_by_role("link", name="Performance").click(), "Best mean"))
                # Explorer filter change: the IQR outlier filter on the univariate view.
                page.goto(f"{base}/explorer?dataset=UCSD&view=Univariate")
                page.get_by_text(f"{len(vol)} of {len(vol)} cases with a value shown").first.wait_for(timeout=60_000)
                page.locator('[data-testid="stSelectbox"]').filter(has_text="Outlier filter").click()
                results["explorer filter change"].append(timed(
                    page, lambda pg: pg.get_by_role("option", name="IQR", exact=True).click(),
                    f"{iqr_kept} of {len(vol)} cases with a value shown"))
                page.goto(f"{base}/case_viewer?dataset=BraTS2024_SSA&case=BraTS2024_SSA-00230-000&model=nnUnet"
                          f"&axis=axial&slice={60 + i}")
                page.get_by_text(f"axial slice {60 + i} (").first.wait_for(timeout=60_000)
                page.get_by_role("slider").first.focus()
                results["viewer slice change"].append(timed(
                    page, lambda pg: pg.keyboard.press("ArrowRight"), f"axial slice {61 + i} ("))
                results["viewer next-slice button"].append(timed(
                    page, lambda pg: pg.get_by_role("button", name="Next slice").click(), f"axial slice {62 + i} ("))
                page.close()
            browser.close()
        rss = psutil.Process(proc.pid).memory_info().rss
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    print(f"{'step':24} {'median s':>9} {'max s':>7} {'target s':>9}")
    for k, v in results.items():
        print(f"{k:24} {statistics.median(v):9.3f} {max(v):7.3f} {TARGETS[k]:9.2f}")
    print(f"server memory (RSS): {rss / 2**20:.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
