"""segaudit.app.data on real stores (the demo data scanned and evaluated; AUDIT's UCSD table imported), each
result checked against a direct DuckDB query of the same file or an independent scipy computation."""

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from app_store import built_audit_store, built_store
from segaudit.app import data

SSA = ("BraTS2024_SSA", "BraTS2024_SSA-00230-000")


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> tuple[Path, Path]:
    return built_store(tmp_path_factory)


@pytest.fixture(scope="module")
def run(store) -> Path:
    return store[1]


@pytest.fixture(scope="module")
def audit_run(tmp_path_factory) -> Path:
    return built_audit_store(tmp_path_factory)


def sql(run: Path, q: str, params=None) -> pd.DataFrame:
    con = duckdb.connect(str(run / "segaudit.duckdb"), read_only=True)
    try:
        return con.execute(q, params or []).df()
    finally:
        con.close()


def test_overview_counts_equal_the_tables(run):
    ov = data.dataset_overview(run).set_index("dataset")
    assert set(ov.index) == {"LUMIERE", "BraTS2024_SSA", "brainmets_t2w_slices"}
    cases = sql(run, 'SELECT dataset, count(DISTINCT "case") AS n FROM cases GROUP BY dataset').set_index("dataset").n
    assert ov.cases.to_dict() == cases.to_dict() == {"LUMIERE": 3, "BraTS2024_SSA": 1, "brainmets_t2w_slices": 24}
    assert ov.loc["LUMIERE", "subjects"] == 1  # three time points of one patient
    assert ov.loc["LUMIERE", "models"] == "SegResNet, nnUnet"
    assert ov.loc["BraTS2024_SSA", "sequences"] == "flair, t1, t1ce, t2"
    rows = sql(run, "SELECT dataset, count(*) AS n FROM metrics GROUP BY dataset").set_index("dataset").n
    assert ov.metric_rows.to_dict() == rows.to_dict()
    assert data.table_counts(run)["qc"] == len(sql(run, "SELECT * FROM qc"))


def test_qc_filters_select_exactly_the_matching_rows(run):
    raw = sql(run, "SELECT * FROM qc")
    choices = data.qc_choices(run)
    assert choices["check"] == sorted(raw.check.unique())
    assert len(data.qc_findings(run)) == len(raw)
    sev, check = raw.severity.iloc[0], raw.check.iloc[0]
    got = data.qc_findings(run, severities=[sev], checks=[check])
    want = raw[(raw.severity == sev) & (raw.check == check)]
    assert len(got) == len(want) > 0
    assert set(got.case) == set(want.case)
    assert data.qc_findings(run, dataset_names=[]).empty


def test_provenance_lists_each_step_with_its_versions(run):
    prov = data.run_provenance(run)
    assert list(prov.step) == ["scan", "evaluate", "features"]
    assert (prov.status == "ok").all()
    assert (prov.seconds >= 0).all()
    assert prov.packages.str.contains("numpy ").all()


def test_summary_means_equal_the_stored_values(run):
    s = data.summary(run, "LUMIERE", "dice", n_resamples=200).set_index(["model", "region"])
    raw = sql(run, "SELECT model, region, value FROM metrics WHERE dataset = 'LUMIERE' AND metric = 'dice'")
    # LUMIERE has no both-empty case-region: every stored finite value is in the mean.
    for (model, region), g in raw.groupby(["model", "region"]):
        v = g.value.dropna().to_numpy()
        assert s.loc[(model, region), "n"] == v.size
        assert s.loc[(model, region), "mean"] == pytest.approx(v.mean())
    assert (s.resampled == "subjects").all()  # three time points of one subject: the subject is resampled


def test_worst_case_is_the_lowest_dice(run):
    wb = data.worst_best_cases(run, "brainmets_t2w_slices", "dice", k=3)
    worst = wb[(wb.rank_kind == "worst") & (wb["rank"] == 1)].iloc[0]
    raw = sql(run, "SELECT \"case\", value FROM metrics WHERE dataset = 'brainmets_t2w_slices' AND metric = 'dice'"
                   " AND model = 'unet' AND region = ? ORDER BY value NULLS FIRST", [worst.region])
    assert worst.case == raw["case"].iloc[0]


def test_confusion_matrix_sums_the_stored_rows(run):
    mat = data.confusion(run, "LUMIERE", "nnUnet")
    raw = sql(run, "SELECT metric, sum(value) AS v FROM metrics WHERE dataset = 'LUMIERE' AND model = 'nnUnet' "
                   "AND region = 'confusion' GROUP BY metric").set_index("metric").v
    for key, v in raw.items():
        gt, pred = key.split("->")
        assert mat.loc[gt, pred] == v
    norm = data.confusion(run, "LUMIERE", "nnUnet", normalise=True)
    assert np.allclose(norm.sum(axis=1).dropna(), 1.0)
    one = data.confusion(run, "LUMIERE", "nnUnet", case="Patient-002-week-000")
    assert one.to_numpy().sum() < mat.to_numpy().sum()
    assert not data.has_confusion(run, "no such dataset")
    with pytest.raises(ValueError):
        data.confusion(run, "LUMIERE", "no such model")


def test_pairwise_p_is_scipys_on_the_per_case_values(audit_run):
    res = data.pairwise(audit_run, "UCSD", "BraTS25_1", "BraTS25_2", "dice").set_index("region")
    raw = sql(audit_run, "SELECT \"case\", model, value FROM metrics WHERE metric = 'dice' AND region = 'ET' "
                         "AND model IN ('BraTS25_1', 'BraTS25_2')")
    wide = raw.pivot(index="case", columns="model", values="value").dropna()
    d = wide.BraTS25_2 - wide.BraTS25_1
    r = res.loc["ET"]
    expected = stats.wilcoxon(d).pvalue if r.test == "wilcoxon" else stats.ttest_rel(wide.BraTS25_2,
                                                                                     wide.BraTS25_1).pvalue
    assert r.test in ("wilcoxon", "paired t-test")
    assert r.p == pytest.approx(expected)
    assert "Shapiro-Wilk" in r.reason
    diff = data.case_differences(audit_run, "UCSD", "BraTS25_1", "BraTS25_2", "dice", "ET").set_index("case")
    assert diff.difference.sort_index().to_numpy() == pytest.approx(d.sort_index().to_numpy())


def test_ranking_friedman_is_scipys(audit_run):
    rk = data.ranking(audit_run, "UCSD", "dice")
    raw = sql(audit_run, "SELECT \"case\", model, avg(value) AS v FROM metrics WHERE metric = 'dice' "
                         "GROUP BY \"case\", model")
    wide = raw.pivot(index="case", columns="model", values="v").dropna()
    assert rk.friedman["k"] == 4
    assert rk.friedman["p"] == pytest.approx(stats.friedmanchisquare(*wide.to_numpy().T).pvalue)
    assert len(rk.posthoc) == 6
    assert set(rk.ranks.model) == set(wide.columns)


def test_case_files_come_from_the_store_only(run):
    f = data.case_files(run, *SSA)
    assert set(f.images) == {"t1", "t1ce", "t2", "flair"}
    assert set(f.predictions) == {"nnUnet", "SegResNet"}
    assert all(Path(p).is_file() for p in f.all_paths())
    # A case id typed into the URL that is not in the store, or a path, reads nothing.
    assert data.case_files(run, SSA[0], "../../etc/passwd").all_paths() == []
    assert data.case_files(run, SSA[0], f.ground_truth).all_paths() == []


def test_case_lesions_parse_centroids(run):
    les = data.case_lesions(run, *SSA)
    raw = sql(run, "SELECT centroid FROM lesions WHERE dataset = ? AND \"case\" = ?", list(SSA))
    assert len(les) == len(raw) > 0
    c = les.centroid.iloc[0]
    assert len(c) == 3
    assert all(isinstance(v, float) for v in c)
    assert data.parse_tuple(None) is None
    assert data.parse_tuple("(1, x)") is None


def test_dataset_display_from_the_project(store):
    project, _ = store
    d = data.dataset_display(project, "brainmets_t2w_slices")
    assert d.labels == {"metastasis": 1}
    assert data.model_encoding(d, "unet").channel == "green"  # the U-Net is drawn in green
    assert data.dataset_display(None, "LUMIERE") is None
    assert data.dataset_display(project, "nope") is None
    assert data.dataset_display(project, "LUMIERE").regions["WT"] == (1, 2, 3)


def test_metric_names_put_dice_first_and_hide_bookkeeping(run):
    names = data.stored_metric_names(run, "LUMIERE")
    assert names[0] == "dice"
    assert "gt_empty" not in names
    assert "background->ENH" not in names
    assert data.models(run, "brainmets_t2w_slices") == ["unet"]
    assert data.case_ids(run, "LUMIERE") == ["Patient-002-week-000", "Patient-002-week-003", "Patient-002-week-021"]


def test_properties_hold_the_stored_features_and_metadata(run):
    props = data.properties(run, "brainmets_t2w_slices").set_index("case")
    raw = sql(run, "SELECT \"case\", value FROM features WHERE dataset = 'brainmets_t2w_slices' AND model = '' "
                   "AND \"group\" = 'lesion' AND source = 'metastasis' AND feature = 'volume'").set_index("case")
    col = data.feature_name("", "lesion", "metastasis", "volume")
    assert props[col].loc[raw.index].to_numpy() == pytest.approx(raw.value.to_numpy())
    assert "pred_dice_vs_gt" in props.columns  # the metadata table's columns come along
    kinds = data.property_columns(run, "brainmets_t2w_slices")
    assert col in kinds.features
    assert "subject" in kinds.groups  # five patients' slices
    everything = data.properties(run)
    assert set(everything.dataset) == {"LUMIERE", "BraTS2024_SSA", "brainmets_t2w_slices"}


def test_case_embedding_covers_the_cases_with_every_feature(run):
    kinds = data.property_columns(run, "brainmets_t2w_slices")
    cols = tuple(c for c in kinds.features if c.startswith("intensity:image:"))
    t, emb = data.case_embedding(run, "brainmets_t2w_slices", cols, "PCA")
    assert not emb.note
    assert len(t) == 24 - emb.dropped_rows
    assert np.isfinite(t[["x", "y"]].to_numpy()).all()


def test_bias_trend_is_scipys_spearman(audit_run):
    feature = data.feature_name("BraTS25_1", "lesion", "WT", "volume")
    pts, trend = data.bias_trend(audit_run, "UCSD", "BraTS25_1", "dice", "ET", feature, n_resamples=100)
    raw = sql(audit_run, "SELECT m.\"case\", m.value AS dice, f.value AS vol FROM metrics m JOIN features f ON "
                         "m.\"case\" = f.\"case\" AND m.model = f.model WHERE m.metric = 'dice' AND m.region = 'ET' "
                         "AND m.model = 'BraTS25_1' AND f.source = 'WT' AND f.feature = 'volume'").dropna()
    ref = stats.spearmanr(raw.vol, raw.dice)
    assert trend["n"] == len(raw)
    assert trend["spearman_rho"] == pytest.approx(ref.statistic)
    assert trend["p"] == pytest.approx(ref.pvalue)
    assert len(pts) >= trend["n"]


def test_bias_groups_means_are_the_group_means(run):
    pts, table, test = data.bias_groups(run, "brainmets_t2w_slices", "unet", "dice", "metastasis", "subject",
                                        n_resamples=100)
    raw = sql(run, "SELECT m.value, c.subject FROM metrics m JOIN cases c USING (dataset, \"case\") WHERE "
                   "m.dataset = 'brainmets_t2w_slices' AND m.metric = 'dice' AND m.region = 'metastasis'")
    means = raw.dropna().groupby("subject").value.mean()
    got = table.set_index("group")["mean"]
    assert got.loc[means.index].to_numpy() == pytest.approx(means.to_numpy())
    assert test["overall_mean"] == pytest.approx(raw.value.dropna().mean())


def test_longitudinal_volumes_are_the_stored_ones(run):
    t = data.longitudinal(run, "LUMIERE", "WT")
    raw = sql(run, "SELECT \"case\", model, value FROM features WHERE dataset = 'LUMIERE' AND \"group\" = 'lesion' "
                   "AND source = 'WT' AND feature = 'volume'")
    truth = raw[raw.model == ""].set_index("case").value
    assert sorted(t.timepoint.unique()) == ["000", "003", "021"]
    for r in t.itertuples():
        assert r.true_volume == pytest.approx(truth[r.case])
        pred = raw[(raw.model == r.model) & (raw.case == r.case)].value.iloc[0]
        assert r.pred_volume == pytest.approx(pred)
        assert r.relative_error == pytest.approx((pred - truth[r.case]) / truth[r.case])
    assert data.volume_regions(run, "LUMIERE")[0] == "WT"
    assert data.longitudinal(run, "BraTS2024_SSA").empty  # no subject, no time point


def test_case_qc_is_the_cases_rows(run):
    raw = sql(run, "SELECT dataset, \"case\" FROM qc LIMIT 1")
    if raw.empty:
        pytest.skip("no QC finding in the test store")
    ds, case = raw.iloc[0]
    got = data.case_qc(run, ds, case)
    want = sql(run, "SELECT * FROM qc WHERE dataset = ? AND \"case\" = ?", [ds, case])
    assert len(got) == len(want)
    assert sorted(got.check) == sorted(want.check)
