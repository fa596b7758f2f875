"""Issue 13 (scale): ``evaluate_project`` returns without every stored row in memory; the rows are read from
the store when a caller first asks for them, and equal the store's own rows."""

from __future__ import annotations

from robustness.generators import write_synthetic_dataset

from segaudit.dataset.project import load_project
from segaudit.metrics.evaluate import EvaluationOptions
from segaudit.pipeline.evaluate import evaluate_project
from segaudit.store.store import ResultsStore


def test_rows_are_read_from_the_store_only_when_asked(tmp_path):
    proj = load_project(write_synthetic_dataset(tmp_path / "data", 4, (12, 12, 12)))
    run = tmp_path / "run"
    res = evaluate_project(proj, run, EvaluationOptions(lesion_matching="none"), progress=False)
    assert res._rows == {}  # nothing materialised by the run itself
    with ResultsStore(run, read_only=True) as store:
        stored = store.read("metrics")
        keys = {tuple(k) for k in stored[["dataset", "case", "model"]].drop_duplicates().itertuples(index=False)}
    assert len(res.metrics) == len(stored) > 0
    assert list(res.metrics.columns) == ["dataset", "case", "model", "region", "metric", "value"]
    # Sorted as the old eager frames were.
    assert res.metrics.equals(res.metrics.sort_values(["dataset", "case", "model", "region", "metric"])
                              .reset_index(drop=True))
    assert {tuple(k) for k in res.scored.itertuples(index=False)} == keys
    assert len(keys) == 4
    assert res.errors[res.errors.severity == "error"].empty
    assert set(res._rows) == {"metrics", "scored", "errors"}
