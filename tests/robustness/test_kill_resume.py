"""Kill and resume (issue 13): a real ``segaudit evaluate`` / ``features`` interrupted by SIGINT or SIGKILL after
its first cases are committed, then run again, exports the same tables row by row as an uninterrupted run.

The data are the bundled brain-metastasis slices (real JPEG/PNG files), each copied twice under a new case name
so that a run lasts long enough to be interrupted between its first and its last case. The kill is sent once
the child's store (read through a copy, see :func:`generators.snapshot_count`) holds at least one case; a kill
that lands too late (the run already finished) is retried on a fresh store a bounded number of times.
"""

from __future__ import annotations

import json
import random
import shutil
import signal
import sys
import time

import pytest
from robustness.generators import (
    assert_same_tables,
    brainmets_project,
    exported_tables,
    run_segaudit,
    start_segaudit,
    stderr_of,
    stored_count,
    wait_until_stored,
)

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

TABLE = {"evaluate": "metrics", "features": "features"}
ATTEMPTS = 4


def cases_sql(step: str) -> str:
    return f'SELECT count(DISTINCT "case") FROM {TABLE[step]}'


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return brainmets_project(tmp_path_factory.mktemp("kill_data"), copies=2, images=True)


@pytest.fixture(scope="module")
def reference(project, tmp_path_factory):
    """Per step: the exported tables and case count of one uninterrupted run (computed once per module)."""
    cache: dict[str, tuple[dict, int]] = {}

    def get(step: str):
        if step not in cache:
            run_dir = tmp_path_factory.mktemp(f"ref_{step}") / "run"
            r = run_segaudit(step, project, "--out", run_dir, "--no-progress")
            assert r.returncode == 0, r.stderr
            cache[step] = (exported_tables(run_dir, run_dir.parent / "export"), stored_count(run_dir, cases_sql(step)))
        return cache[step]

    return get


def interrupted_run(step: str, project, run_dir, sig: int, total: int, logs):
    """Start ``step``, send ``sig`` once a case is stored, wait; retried until the kill left a partial store.

    Returns (return code, cases kept, log folder). Skips only when every attempt finished before a kill.
    """
    for attempt in range(ATTEMPTS):
        shutil.rmtree(run_dir, ignore_errors=True)
        log = logs / f"attempt{attempt}"
        proc = start_segaudit(step, project, "--out", run_dir, "--no-progress", log_dir=log)
        try:
            seen = wait_until_stored(proc, run_dir, cases_sql(step), at_least=1)
            if seen is not None and seen < total and proc.poll() is None:
                proc.send_signal(sig)
            rc = proc.wait(timeout=300)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert rc in (0, -sig, 130, 1), stderr_of(log)  # 1: a Ctrl-C inside a store write, see below
        kept = stored_count(run_dir, cases_sql(step))
        if rc != 0 and 0 < kept < total:
            return rc, kept, log
    pytest.skip(f"{step} finished before it could be interrupted in {ATTEMPTS} attempts ({total} cases)")


def last_run(run_dir, step: str) -> dict:
    import duckdb

    con = duckdb.connect(str(run_dir / "segaudit.duckdb"), read_only=True)
    try:
        rows = con.execute("SELECT status, summary FROM runs WHERE step = ? ORDER BY started_at", [step]).fetchall()
    finally:
        con.close()
    return {"statuses": [r[0] for r in rows], "summary": json.loads(rows[-1][1] or "{}")}


@pytest.mark.parametrize(("step", "sig"), [("evaluate", signal.SIGINT), ("evaluate", signal.SIGKILL),
                                           pytest.param("features", signal.SIGKILL, marks=pytest.mark.slow)],
                         ids=["evaluate-SIGINT", "evaluate-SIGKILL", "features-SIGKILL"])
def test_interrupted_run_resumes_to_the_same_tables(step, sig, project, reference, tmp_path):
    want, total = reference(step)
    assert total == 48  # 24 real slices, each twice
    run_dir = tmp_path / "run"
    rc, kept, log = interrupted_run(step, project, run_dir, sig, total, tmp_path / "logs")
    if sig == signal.SIGKILL:
        assert rc == -signal.SIGKILL
    # (How a Ctrl-C is reported is checked by test_ctrl_c_at_any_moment_is_one_line_and_recorded.)

    # What the interruption left is whole: every stored case has exactly its rows of the uninterrupted run.
    partial = exported_tables(run_dir, tmp_path / "partial")
    table = TABLE[step]
    kept_cases = set(partial[table]["case"])
    assert len(kept_cases) == kept
    ref_rows = want[table][want[table]["case"].isin(kept_cases)].reset_index(drop=True)
    assert_same_tables({table: partial[table]}, {table: ref_rows})

    r = run_segaudit(step, project, "--out", run_dir, "--no-progress")
    assert r.returncode == 0, r.stderr
    assert_same_tables(exported_tables(run_dir, tmp_path / "export"), want)
    if step == "evaluate":  # resumed, not redone: the kept case-models (one model) were skipped
        assert last_run(run_dir, step)["summary"]["skipped"] == kept


def test_killed_run_is_marked_interrupted_on_the_next_run(project, reference, tmp_path):
    _, total = reference("evaluate")
    run_dir = tmp_path / "run"
    interrupted_run("evaluate", project, run_dir, signal.SIGKILL, total, tmp_path / "logs")
    assert run_segaudit("evaluate", project, "--out", run_dir, "--no-progress").returncode == 0
    statuses = last_run(run_dir, "evaluate")["statuses"]
    assert statuses == ["interrupted", "ok"], statuses


@pytest.mark.slow
def test_ctrl_c_at_any_moment_is_one_line_and_recorded(project, tmp_path):
    """Ctrl-C at ten moments of a run (after 1, 3, 5... stored cases, plus a random fraction of a case so that
    some land inside a store write): each time exit 130, the one line ``segaudit: interrupted``, and the run
    recorded as ``interrupted``, never left ``running``.

    The whole run lasts about two seconds: on a loaded machine it can finish before the signal arrives. Such an
    attempt (exit 0, every case stored) is skipped as too late; at least three attempts must be interrupted.
    """
    rng = random.Random(13)
    interrupted = 0
    for attempt in range(10):
        run_dir = tmp_path / f"run{attempt}"
        log = tmp_path / f"log{attempt}"
        proc = start_segaudit("evaluate", project, "--out", run_dir, "--no-progress", log_dir=log)
        try:
            seen = wait_until_stored(proc, run_dir, cases_sql("evaluate"), at_least=1 + 2 * attempt)
            if seen is None:
                continue  # finished first: nothing to interrupt this time
            time.sleep(rng.uniform(0, 0.15))
            if proc.poll() is not None:
                continue  # finished during the pause
            proc.send_signal(signal.SIGINT)
            rc = proc.wait(timeout=300)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        err = stderr_of(log).strip()
        if rc == 0 and last_run(run_dir, "evaluate")["statuses"] == ["ok"]:
            continue  # the signal came after the last case: too late, not a failure
        assert (rc, err.splitlines()[-1:]) == (130, ["segaudit: interrupted"]), (attempt, err)
        assert "Traceback" not in err, (attempt, err)
        assert last_run(run_dir, "evaluate")["statuses"] == ["interrupted"], attempt
        interrupted += 1
    assert interrupted >= 3, f"only {interrupted} of 10 runs could be interrupted in time"
