"""``every_job_failed``: when a step's run exits non-zero (every job it ran failed)."""

from __future__ import annotations

import pandas as pd

from segaudit.cli.steps import every_job_failed

KEYS = ["dataset", "case", "model"]


def frames(results: list[tuple], errors: list[tuple]):
    res = pd.DataFrame(results, columns=KEYS)
    err = pd.DataFrame(errors, columns=[*KEYS, "severity", "message"])
    return res, err


def test_all_failed_counts_the_jobs_and_gives_the_first_reason():
    res, err = frames([], [("A", "c1", "m", "error", "bad 1"), ("A", "c2", "m", "error", "bad 2")])
    assert every_job_failed(res, err, KEYS, ["A"], []) == (2, "bad 1")


def test_one_success_or_only_warnings_is_not_a_failed_run():
    res, err = frames([("A", "c2", "m")], [("A", "c1", "m", "error", "bad 1")])
    assert every_job_failed(res, err, KEYS, ["A"], []) is None
    res, err = frames([("A", "c1", "m")], [("A", "c1", "m", "warning", "resampled")])
    assert every_job_failed(res, err, KEYS, ["A"], []) is None


def test_skipped_jobs_and_other_datasets_are_not_this_runs_jobs():
    # c1 succeeded in an earlier run (skipped now); c2 failed now: the run's only job failed.
    res, err = frames([("A", "c1", "m"), ("B", "x", "m")], [("A", "c2", "m", "error", "bad")])
    assert every_job_failed(res, err, KEYS, ["A"], [("A", "c1", "m")]) == (1, "bad")
    # Nothing ran at all (everything skipped): not a failure.
    res, err = frames([("A", "c1", "m")], [])
    assert every_job_failed(res, err, KEYS, ["A"], [("A", "c1", "m")]) is None


def test_a_job_with_an_error_and_results_did_not_fail():
    # A failed model-level extra (e.g. soft metrics) with the case-model's metrics stored is a success.
    res, err = frames([("A", "c1", "m")], [("A", "c1", "m", "error", "no probability map")])
    assert every_job_failed(res, err, KEYS, ["A"], []) is None
