"""The store's typed readers on one real store, each checked against a DuckDB query written here.

The store: the 24 bundled metastasis slices (real JPEG U-Net predictions) decoded at two thresholds as two
models, scanned, evaluated, feature-extracted and compared model-against-model (``agree``).
"""

import shutil

import duckdb
import pandas as pd
import pytest
import yaml

from segaudit.dataset.project import load_project
from segaudit.features.case import FeatureOptions
from segaudit.metrics import EvaluationOptions
from segaudit.pipeline.agree import agree_project
from segaudit.pipeline.evaluate import evaluate_project
from segaudit.pipeline.features import extract_project
from segaudit.pipeline.scan import scan_project
from segaudit.store import ResultsStore
from segaudit.store.schema import DB_NAME

MODELS = {"unet_t32": 32, "unet_t120": 120}


@pytest.fixture(scope="session")
def run(tmp_path_factory, demo_data):
    root = tmp_path_factory.mktemp("readers")
    data = root / "slices"
    shutil.copytree(demo_data / "brainmets_t2w_slices", data)
    spec = yaml.safe_load((demo_data / "segaudit.yaml").read_text())["datasets"]["brainmets_t2w_slices"]
    spec.update(root=str(data), predictions={m: "{root}/pred_unet_jpg/{case}.jpg" for m in MODELS},
                prediction_encoding={m: {"kind": "binary", "channel": "green", "threshold": t}
                                     for m, t in MODELS.items()})
    spec.pop("metadata", None)
    path = root / "segaudit.yaml"
    path.write_text(yaml.safe_dump({"name": "readers", "datasets": {"mets": spec}}))
    proj = load_project(path)
    out = root / "run"
    scan_project(proj, out, progress=False)
    evaluate_project(proj, out, EvaluationOptions(), progress=False)
    extract_project(proj, out, FeatureOptions(groups=("intensity",), shape=False), progress=False)
    agree_project(proj, out, EvaluationOptions(lesion_matching="none"), progress=False)
    return out


def sql(run, query, params=None):
    con = duckdb.connect(str(run / DB_NAME), read_only=True)
    try:
        return con.execute(query, params or []).df()
    finally:
        con.close()


def same(got: pd.DataFrame, want: pd.DataFrame):
    pd.testing.assert_frame_equal(got.reset_index(drop=True), want.reset_index(drop=True), check_dtype=False)


def read(run, name, *args, **kwargs):
    with ResultsStore(run, read_only=True) as store:
        return getattr(store, name)(*args, **kwargs)


def test_metrics_all_and_by_step(run):
    got = read(run, "metrics")
    assert list(got.columns) == ["dataset", "case", "model", "region", "metric", "value", "unit"]
    assert got.value.dtype == "float64"
    same(got, sql(run, 'SELECT dataset, "case", model, region, metric, value, unit FROM metrics ORDER BY ALL'))
    agree = read(run, "metrics", ["mets"], step="agree")
    want = sql(run, """SELECT m.dataset, m."case", m.model, m.region, m.metric, m.value, m.unit FROM metrics m
                       JOIN runs r USING (run_id) WHERE r.step = 'agree' ORDER BY ALL""")
    assert len(want) > 0
    assert want.metric.str.startswith("agree_").all()
    same(agree, want)
    assert read(run, "metrics", ["no such dataset"]).empty
    # Stored order on request: the confusion cells stay in the label order evaluate wrote them in.
    stored = read(run, "metrics", ordered=False)
    same(stored, sql(run, 'SELECT dataset, "case", model, region, metric, value, unit FROM metrics'))
    assert not stored.equals(got)


def test_features_lesions_errors(run):
    want = sql(run, 'SELECT dataset, "case", model, source, "group", feature, value FROM features ORDER BY ALL')
    assert len(want) > 0
    same(read(run, "features"), want)
    want = sql(run, 'SELECT * EXCLUDE (run_id) FROM lesions ORDER BY dataset, "case", model, region, source, '
                    'lesion_id')
    assert len(want) > 0
    same(read(run, "lesions"), want)
    same(read(run, "errors", "evaluate"), sql(run, """SELECT step, dataset, "case", model, path, message, severity
                                                      FROM errors WHERE step = 'evaluate' ORDER BY ALL"""))


def test_cases_files_runs(run):
    cases = read(run, "cases")
    want = sql(run, 'SELECT dataset, "case", subject, timepoint, metadata FROM cases ORDER BY dataset, "case"')
    assert len(want) == 24
    same(cases, want)
    files = read(run, "files", ["mets"])
    assert "run_id" not in files.columns
    same(files, sql(run, 'SELECT * EXCLUDE (run_id) FROM files ORDER BY dataset, "case", role, key, path'))
    runs = read(run, "runs")
    assert list(runs.step) == ["scan", "evaluate", "features", "agree"]
    same(read(run, "runs", "agree"), sql(run, "SELECT * FROM runs WHERE step = 'agree'"))


def test_step_datasets_and_models(run):
    with ResultsStore(run, read_only=True) as store:
        assert store.step_datasets("agree") == {"mets"}
        assert store.step_datasets("import-audit") == set()
        config = store.runs("agree").config_hash.iloc[0]
        got = store.step_models("agree", config, "agree_volume")
    want = sql(run, """SELECT DISTINCT m.dataset, m."case", m.model FROM metrics m JOIN runs r USING (run_id)
                       WHERE r.step = 'agree' AND m.metric = 'agree_volume' AND m.model NOT LIKE '~%'""")
    assert len(want) > 0
    same(got.sort_values(list(got.columns)), want.sort_values(list(want.columns)))


def test_metric_summary_matches_pandas(run):
    """n, means over defined values and counts of undefined ones, recomputed with pandas from the raw rows."""
    got = read(run, "metric_summary", ["mets"], "hd95")
    m = sql(run, "SELECT * FROM metrics WHERE region <> 'confusion' AND metric NOT LIKE 'agree_%'")
    for row in got.itertuples():
        g = m[(m.dataset == row.dataset) & (m.model == row.model) & (m.region == row.region)]
        assert row.n == g.case.nunique()
        dice = g[g.metric == "dice"].value
        assert row.dice_undefined == dice.isna().sum()
        assert row.dice_mean == pytest.approx(dice.dropna().mean(), nan_ok=True)
        hd = g[g.metric == "hd95"].value
        finite = hd[~hd.isna() & ~hd.isin([float("inf"), float("-inf")])]
        assert row.hd95_mean == pytest.approx(finite.mean(), nan_ok=True)
        assert row.hd95_undefined == len(hd) - len(finite)
    assert len(got) == len(m.groupby(["dataset", "model", "region"]))
    assert read(run, "metric_summary", []).empty


def test_units_and_metric_units(run):
    units = read(run, "metric_units", "hd95", "hd95_unit")
    assert list(units.columns) == ["dataset", "hd95_unit"]
    want = sql(run, "SELECT DISTINCT dataset, unit FROM metrics WHERE metric = 'hd95'")
    assert dict(zip(units.dataset, units.hd95_unit, strict=True)) == {"mets": "/".join(sorted(want.unit))}
    same(read(run, "units"), sql(run, """SELECT DISTINCT dataset, CASE WHEN region = 'confusion' THEN 'confusion'
                                         ELSE metric END AS metric, unit FROM metrics WHERE unit IS NOT NULL
                                         ORDER BY dataset, metric"""))


def test_qc_and_row_counts(run):
    qc = read(run, "qc")
    assert list(qc.columns) == ["dataset", "case", "role", "key", "check", "severity", "message", "path"]
    same(qc, sql(run, 'SELECT dataset, "case", role, key, "check", severity, message, path FROM qc '
                      'ORDER BY dataset, "case", "check"'))
    assert read(run, "qc", ["no such dataset"]).empty
    counts = read(run, "row_counts")
    for table in ("metrics", "features", "qc", "cases", "runs"):
        assert counts[table] == len(sql(run, f"SELECT * FROM {table}"))


def test_readers_on_a_store_without_the_tables(tmp_path):
    with ResultsStore(tmp_path / "empty") as store:
        store.con.execute("DROP TABLE metrics")
        assert list(store.units().columns) == ["dataset", "metric", "unit"]
        assert store.units().empty
        assert store.step_datasets("agree") == set()
        store.con.execute("DROP TABLE qc")
        assert store.qc().empty
        assert "qc" not in store.row_counts()
