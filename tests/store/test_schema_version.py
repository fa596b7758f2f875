"""The store's on-disk format has a version, checked on open; the typed readers return documented columns.

A store written before versions existed is made here with DuckDB directly, with the tables and columns such a
store had (no ``meta`` table, no ``unit``, ``pid``, ``host`` columns, no ``inputs`` table).
"""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from segaudit.errors import SegauditError
from segaudit.store import DB_NAME, ResultsStore
from segaudit.store.audit import read_audit_metrics
from segaudit.store.store import (
    ERRORS_COLUMNS,
    FEATURES_COLUMNS,
    LESIONS_COLUMNS,
    METRICS_COLUMNS,
    SCHEMA_VERSION,
    StoreVersionWarning,
)


def _version(path) -> str:
    con = duckdb.connect(str(path / DB_NAME), read_only=True)
    try:
        return con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
    finally:
        con.close()


def _old_store(run, rows: pd.DataFrame) -> None:
    """A store as segaudit wrote it before schema versions: metrics without unit, runs without pid/host."""
    run.mkdir()
    con = duckdb.connect(str(run / DB_NAME))
    con.execute("CREATE TABLE runs (run_id VARCHAR, step VARCHAR, started_at TIMESTAMPTZ, finished_at TIMESTAMPTZ, "
                "status VARCHAR, segaudit_version VARCHAR, python_version VARCHAR, platform VARCHAR, "
                "packages VARCHAR, config_hash VARCHAR, config VARCHAR, argv VARCHAR, summary VARCHAR)")
    con.execute('CREATE TABLE metrics (dataset VARCHAR, "case" VARCHAR, model VARCHAR, region VARCHAR, '
                "metric VARCHAR, value DOUBLE, run_id VARCHAR)")
    con.register("r", rows[["dataset", "case", "model", "region", "metric", "value"]])
    con.execute("INSERT INTO metrics SELECT *, NULL FROM r")
    con.close()


def test_new_store_records_its_schema_version(tmp_path):
    with ResultsStore(tmp_path / "run") as store:
        assert store.schema_version == SCHEMA_VERSION
    assert _version(tmp_path / "run") == str(SCHEMA_VERSION)


def test_store_from_a_newer_segaudit_is_refused_untouched(tmp_path):
    run = tmp_path / "run"
    ResultsStore(run).close()
    con = duckdb.connect(str(run / DB_NAME))
    con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(SCHEMA_VERSION + 1)])
    con.close()
    for read_only in (True, False):
        with pytest.raises(SegauditError, match=rf"schema version {SCHEMA_VERSION + 1} is newer than this "
                                                rf"segaudit's \({SCHEMA_VERSION}\).*upgrade segaudit"):
            ResultsStore(run, read_only=read_only)
    assert _version(run) == str(SCHEMA_VERSION + 1)  # nothing was changed


def test_older_store_is_read_as_it_is_then_upgraded_by_a_writer(tmp_path, tests_data):
    rows = read_audit_metrics(tests_data / "audit_outputs" / "metrics" / "extracted_information_UCSF.csv")
    run = tmp_path / "run"
    _old_store(run, rows)
    with pytest.warns(StoreVersionWarning, match="schema version 1 is older than this segaudit's"):
        store = ResultsStore(run, read_only=True)
    with store:
        assert store.schema_version == 1
        m = store.metrics()
        assert list(m.columns) == list(METRICS_COLUMNS)
        assert m.unit.isna().all()
        assert len(m) == len(rows)
        assert store.errors().empty
        assert list(store.errors().columns) == list(ERRORS_COLUMNS)
        assert store.inputs().empty  # no such table in an old store: empty, with its columns
    with ResultsStore(run) as store:  # a writer upgrades in place
        assert store.schema_version == SCHEMA_VERSION
        assert {"inputs", "meta"} <= set(store.tables())
        assert len(store.metrics()) == len(rows)
    assert _version(run) == str(SCHEMA_VERSION)


def test_typed_readers_return_the_documented_columns_in_key_order(tmp_path, tests_data):
    rows = read_audit_metrics(tests_data / "audit_outputs" / "metrics" / "extracted_information_UCSF.csv")
    with ResultsStore(tmp_path / "run") as store:
        store.replace("metrics", rows.sample(frac=1.0, random_state=0), {"dataset": ["UCSF"]})
        m = store.metrics()
        assert list(m.columns) == list(METRICS_COLUMNS)
        expected = rows.reindex(columns=list(METRICS_COLUMNS)).sort_values(
            ["dataset", "case", "model", "region", "metric"]).reset_index(drop=True)
        pd.testing.assert_frame_equal(m.drop(columns="unit"), expected.drop(columns="unit"), check_dtype=False)
        assert store.metrics(["no-such-dataset"]).empty
        assert store.metrics(step="evaluate").empty  # imported rows belong to no evaluate run
        assert list(store.features().columns) == list(FEATURES_COLUMNS)
        assert list(store.lesions().columns) == list(LESIONS_COLUMNS)


def test_version_2_store_gains_the_prompts_table_and_its_reader_is_typed(tmp_path):
    """Schema 3 added ``prompts``: a version-2 store reads it as empty (typed columns) and a writer adds it."""
    from segaudit.store.store import PROMPTS_COLUMNS

    run = tmp_path / "run"
    with ResultsStore(run) as store:
        store.con.execute("DROP TABLE prompts")
        store.con.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    with pytest.warns(StoreVersionWarning, match="schema version 2 is older"):
        store = ResultsStore(run, read_only=True)
    with store:
        p = store.prompts()
        assert p.empty
        assert list(p.columns) == list(PROMPTS_COLUMNS)
        assert str(p.component.dtype) == "Int32"
        assert str(p.dice.dtype) == "float64"
    row = {"dataset": "x", "case": "a", "model": "litemedsam/box", "region": "lung", "kind": "box",
           "setting": "default", "component": 1, "prompt": '{"box": [1, 2, 3, 4]}', "seed": 0, "dice": 0.9}
    with ResultsStore(run) as store:
        assert store.schema_version == SCHEMA_VERSION  # upgraded in place to the current version
        store.replace("prompts", pd.DataFrame([row, {**row, "setting": "filter=area", "dice": 0.4}]))
        with pytest.raises(SegauditError, match="stored twice|share their key"):
            store.replace("prompts", pd.DataFrame([row]))
        assert list(store.prompts(setting="filter=area").dice) == [0.4]
        assert list(store.prompts().setting) == ["default", "filter=area"]
