"""The job runner under every step (:mod:`segaudit.pipeline.parallel`), with real processes, a real local Dask
cluster and a real DuckDB store: no stand-ins.

The job function reports the process that ran it, so each test can tell where a job really ran.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from segaudit.pipeline.parallel import process_pool, run_jobs, run_step
from segaudit.store import ResultsStore

SRC = str(Path(__file__).resolve().parents[2] / "src")
ENV = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}


def square_where(job: int) -> tuple[int, int, int]:
    """A module-level (picklable) job: the job, its square, and the process id that computed it."""
    return job, job * job, os.getpid()


def _gone(pid: int) -> bool:
    """Whether the process has ended (absent, or a zombie waiting for a parent that is not us)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


# --------------------------------------------------------------------------------------------------- run_jobs
def test_serial_runs_in_this_process_in_job_order():
    got = list(run_jobs(square_where, [3, 1, 2]))
    assert [(j, sq) for j, sq, _ in got] == [(3, 9), (1, 1), (2, 4)]
    assert {pid for *_, pid in got} == {os.getpid()}


def test_one_job_never_starts_a_pool():
    """``workers > 1`` with a single job runs it here: starting processes for one case costs more than it saves."""
    got = list(run_jobs(square_where, [5], workers=4, executor="processes"))
    assert got == [(5, 25, os.getpid())]


def test_process_pool_runs_every_job_in_worker_processes():
    jobs = list(range(8))
    got = list(run_jobs(square_where, jobs, workers=2, executor="processes"))
    assert sorted((j, sq) for j, sq, _ in got) == [(j, j * j) for j in jobs]
    pids = {pid for *_, pid in got}
    assert os.getpid() not in pids
    assert 1 <= len(pids) <= 2


@pytest.mark.slow  # a local cluster starts in seconds, but in a minute on a loaded machine
def test_dask_local_cluster_runs_every_job_in_its_workers():
    pytest.importorskip("distributed")  # optional extra (segaudit[dask]); the rest of this module needs none
    jobs = list(range(6))
    got = list(run_jobs(square_where, jobs, workers=2, executor="dask"))
    assert sorted((j, sq) for j, sq, _ in got) == [(j, j * j) for j in jobs]
    pids = {pid for *_, pid in got}
    assert os.getpid() not in pids
    assert 1 <= len(pids) <= 2


# --------------------------------------------------------------------------------------------------- run_step
def _write(store, res, run_id):
    job, sq, _ = res
    store.replace("metrics", _row(job, sq, run_id), {"case": [str(job)]})


def _row(job, value, run_id):
    import pandas as pd

    return pd.DataFrame([{"dataset": "d", "case": str(job), "model": "m", "region": "r", "metric": "square",
                          "value": float(value), "run_id": run_id, "unit": ""}])


def _runs(directory: Path):
    with ResultsStore(directory, read_only=True) as store:
        return store.read("runs")


def test_run_step_records_an_ok_run_and_every_result(tmp_path):
    started = []
    with ResultsStore(tmp_path) as store:
        run_id = run_step(store, "square", "hash1", {"k": 1}, ["segaudit", "square"], square_where, [1, 2, 3],
                          _write, "squares", start=started.append, progress=False,
                          summary=lambda: {"jobs": 3})
    runs = _runs(tmp_path)
    assert started == [run_id]  # start(run_id) ran inside the run
    assert list(runs.run_id) == [run_id]
    run = runs.iloc[0]
    assert run.status == "ok"
    assert run.step == "square"
    assert run.config_hash == "hash1"
    assert json.loads(run.config) == {"k": 1}
    assert json.loads(run.summary) == {"jobs": 3}
    assert run.finished_at is not None
    with ResultsStore(tmp_path, read_only=True) as store:
        m = store.read("metrics")
    assert sorted(zip(m.case, m.value, strict=True)) == [("1", 1.0), ("2", 4.0), ("3", 9.0)]
    assert set(m.run_id) == {run_id}


def test_run_step_records_interrupted_and_keeps_finished_cases(tmp_path):
    """Ctrl-C after two written cases: the run is ``interrupted`` (not left ``running``), the two cases stay."""
    written = []

    def write_then_interrupt(store, res, run_id):
        if len(written) == 2:
            raise KeyboardInterrupt
        _write(store, res, run_id)
        written.append(res[0])

    with ResultsStore(tmp_path) as store, pytest.raises(KeyboardInterrupt):
        run_step(store, "square", "h", {}, None, square_where, [1, 2, 3, 4], write_then_interrupt, "squares",
                 progress=False, summary=lambda: {"written": len(written)})
    run = _runs(tmp_path).iloc[0]
    assert run.status == "interrupted"
    assert json.loads(run.summary) == {"written": 2}
    with ResultsStore(tmp_path, read_only=True) as store:
        assert sorted(store.metrics().case) == ["1", "2"]


def test_run_step_failing_job_is_interrupted_and_reraised(tmp_path):
    """``fn`` must not raise; when it does anyway, the error reaches the caller and the run is not 'ok'."""
    with ResultsStore(tmp_path) as store, pytest.raises(ZeroDivisionError):
        run_step(store, "inverse", "h", {}, None, _inverse, [2, 0, 1], lambda s, r, i: None, "inverse",
                 progress=False)
    assert list(_runs(tmp_path).status) == ["interrupted"]


def _inverse(job: int) -> float:
    return 1 / job


# ------------------------------------------------------------------------------ process_pool, exit_with_parent
def test_process_pool_workers_run_exit_with_parent():
    with process_pool(2) as pool:
        results = list(pool.map(square_where, [1, 2, 3]))
    assert [(j, sq) for j, sq, _ in results] == [(1, 1), (2, 4), (3, 9)]
    assert os.getpid() not in {pid for *_, pid in results}


def test_exit_with_parent_ends_a_worker_whose_parent_is_already_gone():
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    code = f"from segaudit.pipeline.parallel import exit_with_parent; exit_with_parent({int(dead.stdout)}); " \
           "print('still running')"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=60)
    assert r.returncode == 1, r.stderr
    assert "still running" not in r.stdout


def test_exit_with_parent_keeps_a_worker_whose_parent_lives():
    code = "import os; from segaudit.pipeline.parallel import exit_with_parent; " \
           "exit_with_parent(os.getppid(), interval=0.05); import time; time.sleep(0.3); print('still running')"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "still running" in r.stdout


def test_pool_worker_exits_when_its_parent_is_killed(tmp_path):
    """SIGKILL the process that owns a pool: its idle worker ends within seconds instead of waiting for jobs."""
    script = tmp_path / "owner.py"
    script.write_text(textwrap.dedent("""
        import os, sys, time
        from segaudit.pipeline.parallel import process_pool

        def pid(_):
            return os.getpid()

        if __name__ == "__main__":
            pool = process_pool(1)
            print(pool.submit(pid, 0).result(), flush=True)
            time.sleep(120)
    """))
    owner = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=ENV)
    worker = None
    try:
        worker = int(owner.stdout.readline())
        assert not _gone(worker)  # the worker waits for the next job
        os.kill(owner.pid, signal.SIGKILL)
        owner.wait(timeout=30)
        deadline = time.monotonic() + 10
        while not _gone(worker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _gone(worker), f"worker {worker} outlived its killed parent"
    finally:
        if owner.poll() is None:
            owner.kill()
        if worker is not None and not _gone(worker):
            os.kill(worker, signal.SIGKILL)
