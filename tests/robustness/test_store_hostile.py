"""The store under kills and careless use (issue 13): nothing half-written, nothing left running, no orphans.

Real processes are killed with SIGKILL at real moments (a run started, an export writing, workers scoring);
the store is a real DuckDB file, the data the bundled real masks and slices.
"""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest
import yaml

import segaudit
from segaudit.dataset import load_project
from segaudit.errors import SegauditError
from segaudit.io.atomic import atomic_write_text
from segaudit.metrics import EvaluationOptions
from segaudit.pipeline.evaluate import evaluate_project
from segaudit.pipeline.features import extract_project
from segaudit.pipeline.scan import resolve_project, scan_project, write_scan
from segaudit.store import ResultsStore
from segaudit.store.audit import read_audit_metrics

SRC = Path(segaudit.__file__).resolve().parents[1]  # subprocesses run the code this test imports
ENV = {**os.environ, "PYTHONPATH": str(SRC)}
posix_only = pytest.mark.skipif(os.name != "posix", reason="SIGKILL and process trees: POSIX")


def _python(code: str, *args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code, *args], env=ENV, **kw)


def _segaudit(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "segaudit", *args], env=ENV, **kw)


def _gone(p: psutil.Process) -> bool:
    try:
        return p.status() == psutil.STATUS_ZOMBIE  # dead, waiting for a reaper that may never come
    except psutil.NoSuchProcess:
        return True


# ---------------------------------------------------------------- a run left `running` by a dead process
@posix_only
def test_run_of_a_killed_process_is_marked_interrupted_on_next_open(tmp_path):
    run = tmp_path / "run"
    code = ("import os, signal, sys\nfrom segaudit.store import ResultsStore\n"
            "s = ResultsStore(sys.argv[1])\nprint(s.start_run('evaluate'), flush=True)\n"
            "os.kill(os.getpid(), signal.SIGKILL)\n")
    p = _python(code, str(run), stdout=subprocess.PIPE, text=True)
    run_id = p.stdout.readline().strip()
    assert p.wait(timeout=120) == -signal.SIGKILL
    with ResultsStore(run, read_only=True) as store:  # a reader changes nothing
        assert store.read("runs").set_index("run_id").status[run_id] == "running"
    with ResultsStore(run) as store:
        assert store.orphaned_runs == [run_id]
        runs = store.read("runs").set_index("run_id")
        mine = store.start_run("scan")  # this process's own run is left alone by a second open
    assert runs.status[run_id] == "interrupted"
    assert int(runs.pid[run_id]) == p.pid
    assert f"process {p.pid} is gone" in runs.summary[run_id]
    with ResultsStore(run) as store:
        assert store.read("runs").set_index("run_id").status[mine] == "running"


# ---------------------------------------------------------------- workers die with their parent
@posix_only
def test_killing_evaluate_kills_its_process_workers(tmp_path, demo_data):
    src = demo_data / "brats_audit" / "LUMIERE"
    root = tmp_path / "data"
    # Four real 3D cases, each with the two LUMIERE models' predictions under 12 model names: one job (a case,
    # every model) lasts many seconds, so a worker is busy long after its parent is killed.
    originals = sorted(p.name for p in (src / "LUMIERE_images").iterdir())
    for i in range(4):
        case, new = originals[i % 3], f"Patient-{i:03d}"
        (root / "gt" / new).mkdir(parents=True)
        shutil.copy(src / "LUMIERE_images" / case / f"{case}_seg.nii.gz", root / "gt" / new / "seg.nii.gz")
        for k in range(12):
            model = ("nnUnet", "SegResNet")[k % 2]
            (root / f"m{k:02d}" / new).mkdir(parents=True)
            shutil.copy(src / "LUMIERE_seg" / model / case / f"{case}_pred.nii.gz",
                        root / f"m{k:02d}" / new / "pred.nii.gz")
    proj = tmp_path / "segaudit.yaml"
    proj.write_text(yaml.safe_dump({"datasets": {"L": {
        "root": str(root), "ground_truth": "{root}/gt/{case}/seg.nii.gz",
        "predictions": "{root}/{model}/{case}/pred.nii.gz", "label_convention": "audit"}}}))
    run = tmp_path / "run"
    p = _segaudit("evaluate", str(proj), "--out", str(run), "--workers", "2", "--executor", "processes",
                  "--no-progress", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    parent = psutil.Process(p.pid)
    deadline = time.monotonic() + 180
    workers: list[psutil.Process] = []
    while time.monotonic() < deadline and len(workers) < 2 and p.poll() is None:
        workers = [c for c in parent.children(recursive=True) if c.is_running()]
        time.sleep(0.05)
    assert len(workers) >= 2, "the pool never started"
    time.sleep(1.0)  # the workers are scoring
    assert p.poll() is None, "the run finished before it could be killed"
    p.kill()
    assert p.wait(timeout=30) == -signal.SIGKILL
    # 0.2 s on a quiet machine; the limit is generous because a starved worker checks for its parent late
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not all(_gone(w) for w in workers):
        time.sleep(0.05)
    alive = [w.pid for w in workers if not _gone(w)]
    for pid in alive:  # do not leave them behind whatever the outcome
        os.kill(pid, signal.SIGKILL)
    assert alive == [], f"workers {alive} outlived their killed parent by 30 s"
    # And the run the killed process left `running` is `interrupted` once the store is opened again.
    with ResultsStore(run) as store:
        runs = store.read("runs")
    assert runs[runs.step == "evaluate"].status.tolist() == ["interrupted"]


# ---------------------------------------------------------------- a killed export
def _big_store(run: Path, rows: int = 800_000) -> None:
    with ResultsStore(run) as store:
        store.con.execute("INSERT INTO metrics SELECT 'ds', 'case-' || (i // 40), 'm', 'r', 'metric-' || (i % 40), "
                          "random(), NULL, 'mm' FROM range(?) t(i)", [rows])


def _kill_export_while_it_writes_metrics(run: Path, out: Path) -> list[str] | None:
    """Start `segaudit export`, SIGKILL it the moment its metrics temporary appears; return what it left (None:
    it finished before it could be killed)."""
    p = _segaudit("export", str(run), "--out", str(out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    # Kill on sight of the hidden temporary (not after a fixed sleep): on a loaded machine a sleep let the whole
    # export finish before the kill, and the test then had nothing partial to look at.
    while time.monotonic() < deadline and p.poll() is None and not any(
            n.startswith(".segaudit-tmp.") and "metrics" in n for n in os.listdir(out)):
        time.sleep(0.002)
    if p.poll() is not None:
        return None
    p.kill()
    p.wait(timeout=30)
    return sorted(os.listdir(out))


@posix_only
def test_killed_export_leaves_no_visible_partial_file_and_the_next_run_cleans_up(tmp_path):
    run, out = tmp_path / "run", tmp_path / "export"
    _big_store(run)
    out.mkdir()
    left: list[str] = []
    for _attempt in range(5):  # the export or its rename can still win the race against the kill: try again
        got = _kill_export_while_it_writes_metrics(run, out)
        left = sorted(os.listdir(out)) if got is None else got
        visible = [n for n in left if not n.startswith(".")]
        assert not [n for n in visible if n.startswith("tmp_")], left  # no partial result in sight
        if "metrics.csv" in visible:  # the kill came after its atomic rename: it must be whole
            assert len(pd.read_csv(out / "metrics.csv")) == 800_000
        for n in visible:  # whatever is visible is a whole table
            assert n.endswith(".csv")
            assert pd.read_csv(out / n) is not None
        hidden = [n for n in left if n.startswith(".")]
        if hidden:
            break
        for n in visible:  # a clean slate for the next attempt
            (out / n).unlink()
    assert hidden, left
    assert all(n.startswith(".segaudit-tmp.") for n in hidden), left
    # The next export (a new process) removes the dead writer's temporary files and writes every table.
    r = subprocess.run([sys.executable, "-m", "segaudit", "export", str(run), "--out", str(out), "--force"],
                       env=ENV,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert [n for n in os.listdir(out) if n.startswith(".")] == []
    assert len(pd.read_csv(out / "metrics.csv")) == 800_000


def test_a_live_writers_temporary_file_is_never_removed(tmp_path):
    from segaudit.io.atomic import clean_stale_temporaries

    out = tmp_path / "out"
    out.mkdir()
    # A temporary of this very process written now (not older than the process): kept.
    mine = out / f".segaudit-tmp.{os.getpid()}.metrics.csv.abc.csv"
    mine.write_text("half")
    # One of another live process (PID 1 always exists), however old: kept.
    live = out / ".segaudit-tmp.1.metrics.csv.def.csv"
    live.write_text("half")
    os.utime(live, (0, 0))
    # A user's own dot-file and a file that merely looks alike: never touched.
    other = out / ".metrics.csv.old"
    other.write_text("mine")
    assert clean_stale_temporaries(out) == []
    assert mine.exists()
    assert live.exists()
    assert other.exists()


# ---------------------------------------------------------------- umask
@pytest.mark.skipif(os.name != "posix", reason="umask: POSIX")
@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077, 0o002])
def test_outputs_honour_the_umask(tmp_path, tests_data, mask):
    rows = read_audit_metrics(tests_data / "audit_outputs" / "metrics" / "extracted_information_UCSF.csv")
    old = os.umask(mask)
    try:
        text = atomic_write_text(tmp_path / "a.txt", "x")
        with ResultsStore(tmp_path / "run") as store:
            store.replace("metrics", rows, {"dataset": ["UCSF"]})
            csvs = store.export(tmp_path / "csv", "csv")
            pq = store.export(tmp_path / "pq", "parquet")
    finally:
        os.umask(old)
    for path in [text, *csvs, *pq]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask, path


# ---------------------------------------------------------------- scan: one transaction
def test_scan_failing_part_way_keeps_the_previous_scan_whole(tmp_path, tests_data):
    data = tmp_path / "chest"
    shutil.copytree(tests_data / "chest_xray_lungs", data)
    run = tmp_path / "run"
    scan_project(resolve_project(data)[0], run, progress=False)
    with ResultsStore(run, read_only=True) as store:
        before = {t: store.read(t).drop(columns="run_id") for t in ("cases", "files", "qc")}
    # A second scan of changed data (one case gone) whose last table cannot be stored (a column the store
    # lacks): none of its three tables may be written.
    victim = sorted((data / "images").iterdir())[0]
    victim.unlink()
    (data / "masks_lung" / f"{victim.stem}.png").unlink()
    second = scan_project(resolve_project(data)[0], None, progress=False)
    assert len(second.discovery.cases) == len(before["cases"]) - 1
    second.qc["not_a_column"] = 1
    with pytest.raises(SegauditError, match="not_a_column"):
        write_scan(second, run)
    with ResultsStore(run, read_only=True) as store:
        for table, frame in before.items():
            pd.testing.assert_frame_equal(store.read(table).drop(columns="run_id"), frame, check_like=True)
        runs = store.read("runs")
    assert runs.status.tolist() == ["ok", "interrupted"]


# ---------------------------------------------------------------- bad links: one row each, every step
def test_dangling_link_loop_and_directory_fail_only_their_rows_in_every_step(tmp_path, demo_data):
    src = demo_data / "brainmets_t2w_slices"
    cases = sorted(p.stem for p in (src / "images").glob("*.jpg"))[:4]
    root = tmp_path / "data"
    for sub in ("images", "masks_binary_png", "pred_unet_jpg"):
        shutil.copytree(src / sub, root / sub, ignore=lambda d, names: [n for n in names
                                                                         if Path(n).stem not in cases])
    dangling = root / "pred_unet_jpg" / f"{cases[0]}.jpg"
    dangling.unlink()
    dangling.symlink_to(tmp_path / "nowhere.jpg")
    loop = root / "pred_unet_jpg" / f"{cases[1]}.jpg"
    loop.unlink()
    loop.symlink_to(loop)
    folder = root / "pred_unet_jpg" / f"{cases[2]}.jpg"
    folder.unlink()
    folder.mkdir()
    proj = tmp_path / "segaudit.yaml"
    proj.write_text(yaml.safe_dump({"datasets": {"mets": {
        "root": str(root), "images": "{root}/images/{case}.jpg", "ground_truth": "{root}/masks_binary_png/{case}.png",
        "predictions": {"unet": "{root}/pred_unet_jpg/{case}.jpg"}, "labels": {"metastasis": 1},
        "mask_encoding": {"kind": "binary", "threshold": 127},
        "prediction_encoding": {"kind": "binary", "channel": "green", "threshold": 64}}}}))
    run = tmp_path / "run"
    project = load_project(proj)
    scan_project(project, run, progress=False)
    ev = evaluate_project(project, run, EvaluationOptions(lesion_matching="none", distances=False), progress=False)
    from segaudit.features.case import FeatureOptions

    extract_project(project, run, FeatureOptions(groups=("intensity",), shape=False), progress=False)
    bad = {str(dangling), str(loop), str(folder)}
    with ResultsStore(run) as store:
        qc, errors, metrics = store.read("qc"), store.errors(), store.metrics()
        inputs = store.inputs("evaluate")
    assert bad <= set(qc[qc.severity != "info"].path)  # one QC row each (a folder reads as a missing file)
    assert set(errors[(errors.step == "evaluate") & (errors.severity == "error")].path) == bad
    assert set(metrics.case) == {cases[3]}
    assert len(ev.errors) == 3
    fp = inputs[inputs.path.isin(bad)].set_index("path")
    assert not fp.exists[str(dangling)]
    assert not fp.exists[str(loop)]
    assert fp.digest[str(folder)] == "unreadable:EISDIR"
    # Repairing one file scores it on the next run; the case scored before is skipped (its files unchanged).
    dangling.unlink()
    shutil.copy(src / "pred_unet_jpg" / f"{cases[0]}.jpg", dangling)
    res = evaluate_project(load_project(proj), run, EvaluationOptions(lesion_matching="none", distances=False),
                           progress=False)
    assert set(res.metrics.case) == {cases[0], cases[3]}
    assert res.skipped == [("mets", cases[3], "unet")]
