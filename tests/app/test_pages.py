"""Each dashboard page run by Streamlit's AppTest over a real store: it renders without an exception, shows
the store's values (checked against direct DuckDB queries and scipy), and one widget per page works."""

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from app_store import built_audit_store, built_store
from segaudit.analysis import paired_test
from segaudit.app import data, ui, viewer

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

VIEWS = Path(data.__file__).parent / "views"


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> tuple[Path, Path]:
    return built_store(tmp_path_factory)


@pytest.fixture(scope="module")
def audit_run(tmp_path_factory) -> Path:
    return built_audit_store(tmp_path_factory)


def page(name: str, monkeypatch, run: Path, project: Path | None = None, **params) -> AppTest:
    monkeypatch.setenv(ui.RUN_ENV, str(run))
    if project is not None:
        monkeypatch.setenv(ui.PROJECT_ENV, str(project))
    else:
        monkeypatch.delenv(ui.PROJECT_ENV, raising=False)
    at = AppTest.from_file(str(VIEWS / f"{name}.py"), default_timeout=120)
    for k, v in params.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def sql(run: Path, q: str, params=None) -> pd.DataFrame:
    con = duckdb.connect(str(run / "segaudit.duckdb"), read_only=True)
    try:
        return con.execute(q, params or []).df()
    finally:
        con.close()


def texts(at: AppTest) -> list[str]:
    return [t.value for t in at.text]


def test_overview_counts_and_qc_filter(store, monkeypatch):
    _, run = store
    at = page("overview", monkeypatch, run)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Metric rows"] == str(len(sql(run, "SELECT * FROM metrics")))
    assert metrics["Cases"] == str(sql(run, 'SELECT count(DISTINCT dataset || "case") AS n FROM cases').n[0])
    qc = sql(run, "SELECT * FROM qc")
    assert f"{len(qc)} of {len(qc)} findings shown" in texts(at)
    check = sorted(qc.check.unique())[0]
    at.multiselect(key="qc_check").set_value([check]).run()
    shown = at.dataframe[1].value
    assert len(shown) == int((qc.check == check).sum())
    assert set(shown.check) == {check}
    assert f"{len(shown)} of {len(qc)} findings shown" in texts(at)
    assert list(at.dataframe[-1].value.step) == ["scan", "evaluate", "features"]  # provenance


def test_performance_summary_and_metric_choice(store, monkeypatch):
    _, run = store
    at = page("performance", monkeypatch, run, dataset="LUMIERE")
    summary = at.dataframe[0].value.set_index(["model", "region"])
    raw = sql(run, "SELECT model, region, avg(value) AS m FROM metrics WHERE dataset = 'LUMIERE' AND metric = 'dice'"
                   " GROUP BY model, region").set_index(["model", "region"]).m
    assert summary["mean"].sort_index().to_numpy() == pytest.approx(raw.sort_index().to_numpy())
    at.selectbox(key="qp_metric").set_value("hd95").run()
    assert at.query_params["metric"] == ["hd95"] or at.query_params["metric"] == "hd95"
    raw = sql(run, "SELECT avg(value) AS m FROM metrics WHERE dataset = 'LUMIERE' AND metric = 'hd95' AND "
                   "model = 'nnUnet' AND region = 'WT'").m[0]
    assert at.dataframe[0].value.set_index(["model", "region"]).loc[("nnUnet", "WT"), "mean"] == pytest.approx(raw)
    worst = at.dataframe[1].value
    assert set(worst.case) <= set(sql(run, "SELECT \"case\" FROM cases WHERE dataset = 'LUMIERE'")["case"])


def test_error_matrix_raw_and_normalised(store, monkeypatch):
    _, run = store
    at = page("error_matrix", monkeypatch, run, dataset="LUMIERE", model="nnUnet")
    mat = at.dataframe[0].value
    cell = sql(run, "SELECT sum(value) AS v FROM metrics WHERE dataset = 'LUMIERE' AND model = 'nnUnet' AND "
                    "region = 'confusion' AND metric = 'EDE->NEC'").v[0]
    assert mat.loc["EDE", "NEC"] == cell
    at.radio(key="em_scale").set_value("row-normalised (fraction of each true label)").run()
    norm = at.dataframe[0].value
    assert np.allclose(norm.sum(axis=1), 1.0)
    assert norm.loc["EDE", "NEC"] == pytest.approx(cell / mat.loc["EDE"].sum())
    at.selectbox(key="qp_case").set_value("Patient-002-week-003").run()
    one = sql(run, "SELECT value FROM metrics WHERE dataset = 'LUMIERE' AND model = 'nnUnet' AND region = "
                   "'confusion' AND \"case\" = 'Patient-002-week-003' AND metric = 'EDE->NEC'").value[0]
    at.radio(key="em_scale").set_value("raw voxel counts").run()
    assert at.dataframe[0].value.loc["EDE", "NEC"] == one


def test_error_matrix_says_why_when_nothing_is_stored(audit_run, monkeypatch):
    at = page("error_matrix", monkeypatch, audit_run)
    assert any("no confusion rows" in t for t in texts(at))


def test_compare_test_p_and_reason_and_ranking(audit_run, monkeypatch):
    at = page("compare", monkeypatch, audit_run, dataset="UCSD", baseline="BraTS25_1", candidate="BraTS25_3A")
    raw = sql(audit_run, "SELECT \"case\", model, value FROM metrics WHERE metric = 'dice' AND region = 'ET' AND "
                         "model IN ('BraTS25_1', 'BraTS25_3A')").pivot(index="case", columns="model", values="value")
    ref = paired_test(raw.BraTS25_1, raw.BraTS25_3A)
    line = next(t for t in texts(at) if t.startswith("ET: "))
    assert f"p = {ui.fmt(ref['p'])}" in line
    assert ref["test"] in line
    assert "Why this test: " in line
    table = at.dataframe[0].value.set_index("region")
    assert table.loc["ET", "p"] == pytest.approx(ref["p"])
    friedman = next(t for t in texts(at) if t.startswith("Friedman"))
    wide = sql(audit_run, "SELECT \"case\", model, avg(value) AS v FROM metrics WHERE metric = 'dice' "
                          "GROUP BY \"case\", model").pivot(index="case", columns="model", values="v").dropna()
    assert f"p = {ui.fmt(stats.friedmanchisquare(*wide.to_numpy().T).pvalue)}" in friedman
    at.radio(key="cmp_agg").set_value("mean-over-regions").run()
    assert at.dataframe[0].value.region.tolist() == ["mean"]
    assert any(t.startswith("mean: ") for t in texts(at))


def test_compare_needs_two_models(store, monkeypatch):
    _, run = store
    at = page("compare", monkeypatch, run, dataset="LUMIERE")
    assert any("Why this test: n too small" in t for t in texts(at))  # one subject: the reason says so
    assert any("needs three or more" in t for t in texts(at))


def test_case_viewer_image_metrics_and_lesion_jump(store, monkeypatch):
    project, run = store
    at = page("case_viewer", monkeypatch, run, project, dataset="BraTS2024_SSA", case="BraTS2024_SSA-00230-000",
              model="nnUnet")
    assert len(at.image) == 1
    start = at.slider(key="slice_axial").value
    les = data.case_lesions(run, "BraTS2024_SSA", "BraTS2024_SSA-00230-000")
    les = les[(les.source == "gt") & (les.model == "nnUnet")]
    choice = at.selectbox(key="lesion_jump")
    target = les.iloc[-1]
    choice.set_value(choice.options[-1]).run()
    img = viewer.read_cached(data.case_files(run, "BraTS2024_SSA", "BraTS2024_SSA-00230-000").images["flair"])
    want = viewer.centroid_slice(viewer.to_view(img), target.centroid, "axial")
    assert at.slider(key="slice_axial").value == want
    assert want != start or len(les) == 1
    assert at.query_params["slice"] in (str(want), [str(want)])
    at.button(key="slice_next").click().run()
    assert at.slider(key="slice_axial").value == want + 1
    at.button(key="slice_prev").click().run()
    assert at.slider(key="slice_axial").value == want
    m = at.dataframe[0].value
    raw = sql(run, "SELECT value FROM metrics WHERE dataset = 'BraTS2024_SSA' AND model = 'nnUnet' AND "
                   "metric = 'dice' AND region = 'WT'").value[0]
    assert m.loc["dice", "WT"] == pytest.approx(raw)
    at.radio(key="axis").set_value("sagittal").run()
    assert not at.exception
    assert len(at.image) == 1
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels == ["Download image flair", "Download image t1", "Download image t1ce", "Download image t2",
                      "Download ground truth", "Download prediction SegResNet", "Download prediction nnUnet"]


def test_case_viewer_without_project_says_so(store, monkeypatch):
    _, run = store
    at = page("case_viewer", monkeypatch, run, dataset="LUMIERE")
    assert any("No project file was given" in t for t in texts(at))
    assert len(at.image) == 0  # metric rows and lesions still shown
    assert len(at.dataframe) == 2


def test_unknown_url_values_fall_back(store, monkeypatch):
    project, run = store
    at = page("case_viewer", monkeypatch, run, project, dataset="<script>", case="../../../etc/passwd")
    assert at.selectbox(key="qp_dataset").value == data.datasets(run)[0]
    assert at.selectbox(key="qp_case").value in data.case_ids(run, data.datasets(run)[0])


def test_main_runs_the_overview_by_default(store, monkeypatch):
    _, run = store
    monkeypatch.setenv(ui.RUN_ENV, str(run))
    at = AppTest.from_file(str(VIEWS.parent / "main.py"), default_timeout=120).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Overview"


def test_explorer_univariate_filter_and_highlight(store, monkeypatch):
    _, run = store
    feature = data.feature_name("", "intensity", "image", "max")
    at = page("explorer", monkeypatch, run, dataset="brainmets_t2w_slices", view="Univariate", feature=feature)
    x = sql(run, "SELECT value FROM features WHERE dataset = 'brainmets_t2w_slices' AND model = '' AND "
                 "\"group\" = 'intensity' AND source = 'image' AND feature = 'max'").value.to_numpy()
    assert f"{len(x)} of {len(x)} cases with a value shown; the filter removed 0." in texts(at)
    at.selectbox(key="ex_filter").set_value("IQR").run()
    q1, q3 = np.percentile(x, [25, 75])
    kept = int(((x >= q1 - 1.5 * (q3 - q1)) & (x <= q3 + 1.5 * (q3 - q1))).sum())
    assert any(t.startswith(f"{kept} of {len(x)} cases with a value shown") for t in texts(at))
    assert at.dataframe[0].value["count"].sum() == kept
    case = sorted(sql(run, "SELECT \"case\" FROM cases WHERE dataset = 'brainmets_t2w_slices'")["case"])[3]
    at.selectbox(key="ex_filter").set_value("none").run()
    at.selectbox(key="ex_highlight").set_value(case).run()
    assert any(t.startswith(f"{case}: ") for t in texts(at))


def test_explorer_embedding_and_one_case(store, monkeypatch):
    project, run = store
    at = page("explorer", monkeypatch, run, dataset="brainmets_t2w_slices", view="Case embeddings")
    line = next(t for t in texts(at) if t.startswith("PCA of "))
    assert "standardised features" in line
    assert len(at.get("plotly_chart")) == 1
    at = page("explorer", monkeypatch, run, project, dataset="BraTS2024_SSA", view="One case")
    assert len(at.get("plotly_chart")) == 3  # histograms, correlation heatmap, voxel embedding
    assert any("voxels of BraTS2024_SSA-00230-000" in t for t in texts(at))
    at = page("explorer", monkeypatch, run, dataset="BraTS2024_SSA", view="One case")
    assert any("--project" in t for t in texts(at))


def test_compare_explains_rank_against_mean_and_shows_bias(audit_run, monkeypatch):
    at = page("compare", monkeypatch, audit_run, dataset="UCSD", baseline="BraTS25_1", candidate="BraTS25_3B")
    assert any(t.startswith("BraTS25_1 has the best mean rank but BraTS25_3B the best mean dice") for t in texts(at))
    assert any("Ranks: 1 = best (higher dice is better)" in t for t in texts(at))
    spearman = next(t for t in texts(at) if t.startswith("Spearman rho = "))
    feature = at.selectbox(key="bias_feature").value
    _, trend = data.bias_trend(audit_run, "UCSD", "BraTS25_3B", "dice", None, feature, n_resamples=1000)
    assert f"rho = {ui.fmt(trend['spearman_rho'])}" in spearman
    at.checkbox(key="bias_log").check().run()
    assert not at.exception


def test_longitudinal_page_shows_the_three_weeks(store, monkeypatch):
    _, run = store
    at = page("longitudinal", monkeypatch, run, dataset="LUMIERE")
    assert "Patient-002: 3 time point(s) in LUMIERE" in texts(at)[0]
    table = at.dataframe[0].value
    assert set(table.timepoint) == {"000", "003", "021"}
    assert set(table.model) == {"nnUnet", "SegResNet"}
    at.selectbox(key="qp_region").set_value("EDE").run()
    edema = sql(run, "SELECT value FROM features WHERE dataset = 'LUMIERE' AND model = '' AND source = 'EDE' AND "
                     "feature = 'volume' AND \"case\" = 'Patient-002-week-000'").value[0]
    t = at.dataframe[0].value
    assert t[t.case == "Patient-002-week-000"].true_volume.iloc[0] == pytest.approx(edema)


def test_subject_page_has_features_metrics_and_viewer_link(store, monkeypatch):
    _, run = store
    case = "BraTS-MET-00233-000_1055"
    at = page("subject", monkeypatch, run, dataset="brainmets_t2w_slices", case=case)
    line = next(t for t in texts(at) if " features against 24 cases" in t)
    pos = next(d.value for d in at.dataframe if "outlier" in getattr(d.value, "columns", []))
    assert line.startswith(f"{len(pos)} features")
    vol = pos.set_index("feature").loc[data.feature_name("", "lesion", "metastasis", "volume")]
    raw = sql(run, "SELECT \"case\", value FROM features WHERE dataset = 'brainmets_t2w_slices' AND model = '' AND "
                   "source = 'metastasis' AND feature = 'volume'").set_index("case").value
    assert vol.value == pytest.approx(raw[case])
    assert vol["median"] == pytest.approx(raw.median())
    dice = sql(run, "SELECT value FROM metrics WHERE dataset = 'brainmets_t2w_slices' AND \"case\" = ? AND "
                    "metric = 'dice' AND region = 'metastasis'", [case]).value[0]
    metrics = next(d.value for d in at.dataframe if "unet" in getattr(d.value, "columns", []))
    got = metrics[(metrics.metric == "dice") & (metrics.region == "metastasis")].unet.iloc[0]
    assert got == pytest.approx(dice) or (np.isnan(got) and np.isnan(dice))
    assert at.button(key="subj_open") is not None
