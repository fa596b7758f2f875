"""Two writers (issue 13): while one ``segaudit evaluate`` holds a run's store, a second writer on the same run is
refused with one line naming the holder's PID, changes nothing in the run folder, and the first run finishes
with every row it had stored and every case scored.

The first writer is paused (SIGSTOP) once it has stored a case, so the second one certainly meets the held
store whatever the machine's load, and the files of the run cannot change while it tries.
"""

from __future__ import annotations

import os
import re
import signal
import sys

import pytest
from robustness.generators import (
    brainmets_project,
    run_segaudit,
    snapshot_count,
    snapshot_query,
    start_segaudit,
    stderr_of,
    stored_count,
    wait_until_stored,
)

from conftest import tree_digest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

ROWS = 'SELECT dataset, "case", model, region, metric, value FROM metrics ORDER BY ALL'


def test_second_writer_is_refused_naming_the_holder_and_nothing_is_lost(tmp_path):
    proj = brainmets_project(tmp_path / "data", copies=1)
    for attempt in range(4):  # the first run lasts about a second: on a loaded machine it may end before the pause
        run_dir = tmp_path / f"run{attempt}"
        log1 = tmp_path / f"log1-{attempt}"
        first = start_segaudit("evaluate", proj, "--out", run_dir, "--no-progress", log_dir=log1)
        seen = wait_until_stored(first, run_dir, 'SELECT count(DISTINCT "case") FROM metrics')
        if seen is not None:
            os.kill(first.pid, signal.SIGSTOP)
            if first.poll() is None and (snapshot_count(run_dir, 'SELECT count(DISTINCT "case") FROM metrics')
                                         or 0) < 24:
                break  # paused while it holds the store
            os.kill(first.pid, signal.SIGCONT)
        first.wait(timeout=600)
    else:
        pytest.fail(f"the first writer finished before it could be paused, 4 times ({stderr_of(log1)})")
    try:
        before = snapshot_query(run_dir, ROWS)  # the first run's rows so far (its files cannot change now)
        assert before is not None
        assert len(before)
        digest = tree_digest(run_dir)
        for step in ("evaluate", "scan"):
            r = run_segaudit(step, proj, "--out", run_dir, "--no-progress", timeout=300)
            assert r.returncode == 2, (step, r.returncode, r.stderr)
            assert "Traceback" not in r.stderr, r.stderr
            assert len(r.stderr.strip().splitlines()) == 1, r.stderr
            assert re.search(rf"\bPID\W{{0,3}}{first.pid}\b", r.stderr, re.IGNORECASE), r.stderr
            assert tree_digest(run_dir) == digest, step  # no file of the run written, none added
        os.kill(first.pid, signal.SIGCONT)
        assert first.wait(timeout=600) == 0, stderr_of(log1)
    finally:
        if first.poll() is None:
            os.kill(first.pid, signal.SIGCONT)
            first.kill()
            first.wait()
    after = snapshot_query(run_dir, ROWS)
    kept = before.merge(after, how="left", indicator=True)
    assert (kept["_merge"] == "both").all()  # every row the first run had stored is still there, unchanged
    assert stored_count(run_dir, 'SELECT count(DISTINCT "case") FROM metrics') == 24
    assert stored_count(run_dir, "SELECT count(*) FROM runs") == 1  # the refused writers recorded nothing
    assert stored_count(run_dir, "SELECT count(*) FROM runs WHERE status = 'ok'") == 1
