"""Shared pieces of the robustness suite (issue 13): datasets written as real files, segaudit run as a
separate process, its store watched while it runs, and exported tables compared row by row.

Nothing here computes an expected metric: the tests compare segaudit with itself (an interrupted run against
an uninterrupted one) or check invariants (row counts, bytes and mtimes of inputs, memory).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import yaml

import segaudit

#: The ``src`` folder the tests import segaudit from: child processes run the very same code.
SRC = Path(segaudit.__file__).resolve().parents[1]
DEMO = SRC / "segaudit" / "data" / "demo"
DB_NAME = "segaudit.duckdb"


# ---------------------------------------------------------------------------------------------- processes
def child_env(**extra: str) -> dict[str, str]:
    """The environment of a segaudit child: this checkout's ``src`` first, one thread per BLAS (cheap, stable)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), *filter(None, [env.get("PYTHONPATH")])])
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env.setdefault(var, "1")
    env.update(extra)
    return env


def segaudit_cmd(*args: object) -> list[str]:
    """``python -m segaudit ARGS`` with this interpreter (so the PID of the child is segaudit's own)."""
    return [sys.executable, "-m", "segaudit", *map(str, args)]


def run_segaudit(*args: object, timeout: float = 600, **kw) -> subprocess.CompletedProcess:
    """Run one segaudit command to completion, capturing its output as text."""
    kw.setdefault("env", child_env())
    return subprocess.run(segaudit_cmd(*args), capture_output=True, text=True, timeout=timeout, **kw)


def start_segaudit(*args: object, log_dir: Path, **kw) -> subprocess.Popen:
    """Start a segaudit command in the background; stdout/stderr go to files in ``log_dir`` (no pipe to fill)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    kw.setdefault("env", child_env())
    out = open(log_dir / "stdout.txt", "w")  # noqa: SIM115 - closed by the child's exit and finish()
    err = open(log_dir / "stderr.txt", "w")  # noqa: SIM115
    return subprocess.Popen(segaudit_cmd(*args), stdout=out, stderr=err, **kw)


def stderr_of(log_dir: Path) -> str:
    return (log_dir / "stderr.txt").read_text()


@dataclass
class Measured:
    """A finished child process with its wall time and peak resident memory (its own or its children's)."""

    returncode: int
    seconds: float
    cpu_seconds: float
    peak_rss_mb: float
    stdout: str
    stderr: str


#: A small launcher: ``python -c _LAUNCHER FD COMMAND...`` runs COMMAND and writes its ``wait4`` usage as JSON
#: to the inherited pipe FD.
#:
#: Why not ``wait4`` on a child of the test process: Linux carries a process's memory high-water mark across
#: ``exec`` (``exec_mmap`` folds the old address space's peak into the new program's ``ru_maxrss``), and a child
#: forked or vforked from pytest starts with pytest's resident set (with vfork, its *peak*): a scan that peaks
#: at 250 MB read as 1616 MB under a parent that had held 1.5 GB, and as 1910 MB once in the full suite. The
#: launcher is a fresh, small interpreter; the command it forks starts
#: from the launcher's ~10 MB, so the figure is the command's own (and its workers') peak.
_LAUNCHER = """
import json, os, subprocess, sys
report_fd, command = int(sys.argv[1]), sys.argv[2:]
proc = subprocess.Popen(command, pass_fds=())
try:
    _, status, usage = os.wait4(proc.pid, 0)
except KeyboardInterrupt:
    proc.kill()
    _, status, usage = os.wait4(proc.pid, 0)
with os.fdopen(report_fd, "w") as out:
    json.dump({"returncode": os.waitstatus_to_exitcode(status), "maxrss_kib": usage.ru_maxrss,
               "cpu_seconds": usage.ru_utime + usage.ru_stime}, out)
"""


def run_measured(*args: object, log_dir: Path, timeout: float = 3600) -> Measured:
    """Run a segaudit command and measure its wall time, CPU time and peak resident memory.

    The command runs under :data:`_LAUNCHER`, which waits for it with :func:`os.wait4`: ``ru_maxrss`` is the
    largest resident set of the command or any process it waited for (worker processes included), in KiB on
    Linux; the test process's own memory does not count. CPU seconds (user + system, the same processes) tell
    the work apart from waiting on a shared machine.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    read_fd, write_fd = os.pipe()
    t0 = time.perf_counter()
    with open(log_dir / "stdout.txt", "w") as out, open(log_dir / "stderr.txt", "w") as err:
        proc = subprocess.Popen([sys.executable, "-c", _LAUNCHER, str(write_fd), *segaudit_cmd(*args)],
                                stdout=out, stderr=err, env=child_env(), pass_fds=(write_fd,),
                                start_new_session=True)
    os.close(write_fd)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)  # the launcher and the command share a session of their own
        proc.wait()
    seconds = time.perf_counter() - t0
    with os.fdopen(read_fd) as report:
        text = report.read()
    usage = json.loads(text) if text else {"returncode": proc.returncode, "maxrss_kib": 0, "cpu_seconds": 0.0}
    return Measured(usage["returncode"], seconds, usage["cpu_seconds"], usage["maxrss_kib"] / 1024,
                    (log_dir / "stdout.txt").read_text(), stderr_of(log_dir))


# ---------------------------------------------------------------------------------------------- the store
def snapshot_query(run_dir: Path, sql: str) -> pd.DataFrame | None:
    """``sql`` run on a copy of the store (with its WAL) while another process writes it.

    DuckDB lets no other process open a store that a writer holds, not even read-only, so the database and its
    write-ahead log are copied and the copy is opened. A torn copy (caught mid-write) or a store not yet
    created gives None; callers poll again.
    """
    if not (run_dir / DB_NAME).is_file():
        return None
    with tempfile.TemporaryDirectory(prefix="segaudit-snap-") as tmp:
        try:
            for name in (DB_NAME, DB_NAME + ".wal"):
                if (run_dir / name).is_file():
                    shutil.copyfile(run_dir / name, Path(tmp) / name)
            con = duckdb.connect(str(Path(tmp) / DB_NAME))
            try:
                return con.execute(sql).df()
            finally:
                con.close()
        except (duckdb.Error, OSError):
            return None


def snapshot_count(run_dir: Path, sql: str) -> int | None:
    """The single number of ``sql`` from :func:`snapshot_query`, or None."""
    frame = snapshot_query(run_dir, sql)
    return None if frame is None else int(frame.iloc[0, 0])


def wait_until_stored(proc: subprocess.Popen, run_dir: Path, sql: str, at_least: int = 1,
                      timeout: float = 300, every: float = 0.1) -> int | None:
    """Poll the store of a running ``proc`` until ``sql`` counts ``at_least`` rows; that count, or None when the
    process ended (or ``timeout`` passed) first."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        n = snapshot_count(run_dir, sql)
        if n is not None and n >= at_least:
            return n
        time.sleep(every)
    return None


def stored_count(run_dir: Path, sql: str) -> int:
    """``sql``'s single number from a store no process holds (read-only open)."""
    con = duckdb.connect(str(run_dir / DB_NAME), read_only=True)
    try:
        return int(con.execute(sql).fetchone()[0])
    finally:
        con.close()


def exported_tables(run_dir: Path, out: Path) -> dict[str, pd.DataFrame]:
    """Every table ``segaudit export`` writes (CSV), without the run bookkeeping, sorted for comparison.

    Dropped: the ``runs`` table and every ``run_id`` column (ids and timestamps differ between runs by design).
    Rows are sorted on every column so that completion order (parallel workers, resume order) does not matter.
    """
    from segaudit.cli import main

    assert main(["export", str(run_dir), "--out", str(out), "--force"]) == 0
    tables = {}
    for path in sorted(out.glob("*.csv")):
        if path.stem == "runs":
            continue
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)  # text: compared exactly as written
        frame = frame.drop(columns=[c for c in frame.columns if c == "run_id"])
        tables[path.stem] = frame.sort_values(list(frame.columns)).reset_index(drop=True)
    return tables


def assert_same_tables(got: dict[str, pd.DataFrame], want: dict[str, pd.DataFrame]) -> None:
    """Same tables, same columns, same rows (as exported text), row by row."""
    assert sorted(got) == sorted(want)
    for name in want:
        pd.testing.assert_frame_equal(got[name], want[name], obj=f"exported table {name}")


# ---------------------------------------------------------------------------------------------- datasets
def brainmets_project(root: Path, copies: int = 2, images: bool = False, limit: int | None = None) -> Path:
    """A project over the bundled brain-metastasis slices (real T2w JPEGs, PNG masks, U-Net JPEG predictions),
    each slice copied ``copies`` times under a new case name so a run lasts long enough to be interrupted.

    The copies are byte-identical real files (``<slice>`` and ``<slice>_c1``...); ``limit`` keeps only the
    first slices (sorted by name). Returns the project file.
    """
    src = DEMO / "brainmets_t2w_slices"
    data = root / "brainmets"
    for sub, ext in (("masks_binary_png", "png"), ("pred_unet_jpg", "jpg")) + ((("images", "jpg"),) if images else ()):
        (data / sub).mkdir(parents=True, exist_ok=True)
        for f in sorted((src / sub).glob(f"*.{ext}"))[:limit]:
            for i in range(copies):
                shutil.copyfile(f, data / sub / (f"{f.stem}.{ext}" if i == 0 else f"{f.stem}_c{i}.{ext}"))
    ds = {"root": str(data), "ground_truth": "{root}/masks_binary_png/{case}.png",
          "predictions": {"unet": "{root}/pred_unet_jpg/{case}.jpg"}, "labels": {"metastasis": 1},
          "mask_encoding": {"kind": "binary", "threshold": 127},
          "prediction_encoding": {"kind": "binary", "channel": "green", "threshold": 64}}
    if images:
        ds["images"] = "{root}/images/{case}.jpg"
    proj = root / "segaudit.yaml"
    proj.write_text(yaml.safe_dump({"name": "robustness", "datasets": {"brainmets": ds}}))
    return proj


def synthetic_case(shape: tuple[int, int, int], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A ground truth of up to three labelled ellipsoids and a prediction that shifts and trims it.

    Labels 1..3 (uint8); about one case in twenty has an empty prediction and one in fifty an empty ground
    truth, so the empty-mask paths run too. The prediction is the ground truth rolled by -1..1 voxels per axis
    with a random label dropped now and then: imperfect, never scored here against a hand value.
    """
    zz, yy, xx = np.indices(shape)
    gt = np.zeros(shape, np.uint8)
    if rng.random() >= 0.02:
        for label in range(1, int(rng.integers(1, 4)) + 1):
            c = rng.uniform(5, np.array(shape) - 5)
            r = rng.uniform(2, 6, 3)
            inside = ((zz - c[0]) / r[0]) ** 2 + ((yy - c[1]) / r[1]) ** 2 + ((xx - c[2]) / r[2]) ** 2 <= 1
            gt[inside] = label
    pred = np.roll(gt, tuple(int(s) for s in rng.integers(-1, 2, 3)), axis=(0, 1, 2))
    if rng.random() < 0.2:
        pred[pred == rng.integers(1, 4)] = 0
    if rng.random() < 0.05:
        pred[:] = 0
    return gt, pred


def write_synthetic_dataset(root: Path, n_cases: int, shape: tuple[int, int, int] = (24, 24, 24),
                            seed: int = 0, model: str = "synthnet") -> Path:
    """``n_cases`` synthetic 3D cases as real gzipped NIfTI files (1 mm voxels) with one model's predictions.

    Layout ``root/synth/gt/case_00001.nii.gz`` and ``root/synth/pred/<model>/case_00001.nii.gz``; returns the
    project file (labels a/b/c = 1/2/3).
    """
    import nibabel as nib

    rng = np.random.default_rng(seed)
    data = root / "synth"
    (data / "gt").mkdir(parents=True, exist_ok=True)
    (data / "pred" / model).mkdir(parents=True, exist_ok=True)
    affine = np.eye(4)
    for i in range(1, n_cases + 1):
        gt, pred = synthetic_case(shape, rng)
        name = f"case_{i:05d}.nii.gz"
        nib.save(nib.Nifti1Image(gt, affine), data / "gt" / name)
        nib.save(nib.Nifti1Image(pred, affine), data / "pred" / model / name)
    proj = root / "segaudit.yaml"
    proj.write_text(yaml.safe_dump({"name": "synthetic-scale", "datasets": {"synth": {
        "root": str(data), "ground_truth": "{root}/gt/{case}.nii.gz",
        "predictions": "{root}/pred/{model}/{case}.nii.gz", "labels": {"a": 1, "b": 2, "c": 3}}}}))
    return proj
