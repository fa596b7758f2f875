"""Issue 12 item 5: statistics that know their sample size, on real data.

Real inputs: AUDIT's own metric tables (UCSD site of BraTS 2024 with four models; LUMIERE with 513 time points
of 83 patients, two models), the 24 brain-metastasis slices of 5 patients bundled with the package (evaluated
here), and the chest x-ray metadata table (16 rows with licence, DOI and URL columns). References are scipy,
statsmodels and literal numpy re-implementations, never our own functions.
"""

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from segaudit.analysis import (
    bootstrap_ci,
    cluster_bootstrap_ci,
    compare_models,
    covariate_columns,
    metric_by_group,
    metric_vs_feature,
    paired_test,
    rank_models,
    subgroup_tests,
    subject_of,
    summarize,
)
from segaudit.analysis.minimums import MIN_BOOTSTRAP_CI, MIN_PAIRED_TEST, MIN_SHAPIRO, too_small
from segaudit.cli import main
from segaudit.dataset.metadata import read_table
from segaudit.metrics import EvaluationOptions
from segaudit.pipeline.demo import demo_project
from segaudit.pipeline.evaluate import evaluate_project
from segaudit.pipeline.scan import scan_project
from segaudit.store import ResultsStore
from segaudit.store.audit import read_audit_metrics

UCSD = "audit_outputs/metrics/BraTS_2024_by_site/extracted_information_UCSD.csv"
LUMIERE = "audit_outputs/metrics/extracted_information_LUMIERE.csv"


@pytest.fixture(scope="module")
def ucsd(tests_data):
    return read_audit_metrics(tests_data / UCSD)


@pytest.fixture(scope="module")
def lumiere(tests_data):
    """AUDIT's LUMIERE table and its subjects (the patient part of ``Patient-NNN-week-NNN``)."""
    m = read_audit_metrics(tests_data / LUMIERE)
    cases = m[["dataset", "case"]].drop_duplicates()
    cases["subject"] = cases.case.str.extract(r"^(Patient-\d+)")[0]
    return m, cases


@pytest.fixture(scope="module")
def mets(tmp_path_factory):
    """The 24 real metastasis slices (5 patients) evaluated into a store: metrics and the cases table."""
    project = demo_project()
    project.datasets = [d for d in project.datasets if d.name == "brainmets_t2w_slices"]
    out = tmp_path_factory.mktemp("mets") / "run"
    scan_project(project, out, progress=False)  # the cases table: subject and slice of every case
    ev = evaluate_project(project, out, EvaluationOptions(lesion_matching="none"), progress=False)
    with ResultsStore(out, read_only=True) as store:
        cases = store.read("cases")
    return ev.metrics, cases, out


def _pair(m, region, a="BraTS25_3A", b="BraTS25_3B"):
    w = m[(m.metric == "dice") & (m.region == region)].pivot_table(index="case", columns="model", values="value")
    return w[[a, b]].dropna()


def test_paired_test_never_chooses_by_shapiro_on_a_handful_of_pairs(ucsd):
    w = _pair(ucsd, "ET")
    three = paired_test(w.iloc[:3, 0], w.iloc[:3, 1])
    assert three["test"] == "none"
    assert np.isnan(three["p"])
    assert np.isnan(three["shapiro_p"])
    assert three["reason"].startswith("n too small (n=3 < 6)")
    assert np.isnan(three["ci_low"])
    assert three["ci_note"] == "n too small (n=3 < 10)"
    # 6-7 pairs: no normality test, the Wilcoxon test by default (it equals scipy's).
    seven = paired_test(w.iloc[:7, 0], w.iloc[:7, 1])
    assert MIN_PAIRED_TEST <= 7 < MIN_SHAPIRO
    assert np.isnan(seven["shapiro_p"])
    assert seven["test"] == "wilcoxon"
    assert seven["p"] == pytest.approx(stats.wilcoxon(w.iloc[:7, 1] - w.iloc[:7, 0]).pvalue)
    assert "Shapiro-Wilk needs at least 8" in seven["reason"]
    # Enough pairs: the chosen test and the t CI are back.
    full = paired_test(w.iloc[:, 0], w.iloc[:, 1])
    assert full["shapiro_p"] == pytest.approx(stats.shapiro(w.iloc[:, 1] - w.iloc[:, 0]).pvalue)
    assert np.isfinite(full["ci_low"])
    assert full["ci_note"] == ""


def test_bootstrap_ci_below_the_minimum_is_nan_with_a_reason(ucsd):
    v = _pair(ucsd, "ET").iloc[:, 0].to_numpy()
    assert all(np.isnan(bootstrap_ci(v[:MIN_BOOTSTRAP_CI - 1])))
    lo, hi = bootstrap_ci(v[:MIN_BOOTSTRAP_CI], method="percentile")
    ref = stats.bootstrap((v[:MIN_BOOTSTRAP_CI],), np.mean, n_resamples=2000, method="percentile",
                          random_state=np.random.default_rng(0)).confidence_interval
    assert (lo, hi) == (pytest.approx(ref.low), pytest.approx(ref.high))
    assert too_small(3, 10) == "n too small (n=3 < 10)"
    assert too_small(10, 10) is None


def test_spearman_lowess_and_kruskal_follow_the_minimums(mets):
    metrics, cases, _ = mets
    d = metrics[(metrics.metric == "dice") & (metrics.region == "metastasis")].merge(cases, on=["dataset", "case"])
    area = metrics[(metrics.metric == "gt_volume") & (metrics.region == "metastasis")][["case", "value"]]
    t = d[["case", "value", "subject"]].rename(columns={"value": "metric"}).merge(
        area.rename(columns={"value": "feature"}), on="case")
    few = metric_vs_feature(t.iloc[:6], n_resamples=200)
    assert np.isnan(few["spearman_rho"])
    assert few["trend"].empty
    assert few["note"] == "n too small (n=6 < 10)"
    ok = metric_vs_feature(t, n_resamples=200)
    assert ok["spearman_rho"] == pytest.approx(stats.spearmanr(t.feature, t.metric).statistic)
    # Slices per patient: 4, 4, 9, 3, 4. Only the 9-slice patient reaches 5 cases: no Kruskal-Wallis.
    table, test = metric_by_group(t.rename(columns={"subject": "group"}), n_resamples=200)
    assert test["groups"] == 1
    assert test["groups_too_small"] == 4
    assert np.isnan(test["p"])
    assert test["note"].startswith("n too small")
    small = table[~table.in_test]
    assert (small.n < 5).all()
    assert small.note.str.startswith("n too small").all()
    assert small.ci_low.isna().all()
    assert not table.differs_from_overall[table.ci_low.isna()].any()


def test_ranking_below_the_minimum_gives_ranks_but_no_tests(ucsd):
    wide = ucsd[ucsd.metric == "dice"].groupby(["case", "model"]).value.mean().unstack().dropna()
    ranks, fried, post = rank_models(wide.iloc[:5], n_resamples=50)
    assert fried["note"] == "n too small (n=5 < 10)"
    assert np.isnan(fried["p"])
    assert np.isnan(fried["critical_difference"])
    assert ranks.rank_stability.isna().all()
    assert post.wilcoxon_p.isna().all()
    assert post.nemenyi_p.isna().all()
    ref = wide.iloc[:5].rank(axis=1, ascending=False).mean()
    for r in ranks.itertuples():
        assert r.mean_rank == pytest.approx(ref[r.model])
    _, fried, _ = rank_models(wide, n_resamples=50)
    assert fried["note"] == ""
    assert fried["p"] == pytest.approx(stats.friedmanchisquare(*wide.to_numpy().T).pvalue)


def _numpy_cluster_percentile(values, clusters, n_resamples, seed, level=0.95):
    """Literal cluster bootstrap: draw subjects with replacement, pool their values, take the mean."""
    groups = [values[clusters == c] for c in pd.unique(clusters)]
    rng = np.random.default_rng(seed)
    means = []
    for _ in range(n_resamples):
        pick = rng.integers(0, len(groups), len(groups))
        means.append(np.concatenate([groups[i] for i in pick]).mean())
    return np.quantile(means, [(1 - level) / 2, (1 + level) / 2])


def test_cluster_bootstrap_on_slices_of_five_patients(mets):
    metrics, cases, _ = mets
    d = metrics[(metrics.metric == "dice") & (metrics.region == "metastasis")].merge(cases, on=["dataset", "case"])
    v, subj = d.value.to_numpy(float), d.subject.to_numpy(object)
    case_lo, case_hi = bootstrap_ci(v, method="percentile")
    lo, hi = cluster_bootstrap_ci(v, subj, method="percentile", n_resamples=4000, min_clusters=2)
    ref = _numpy_cluster_percentile(v, subj, 4000, seed=1)
    assert hi - lo > case_hi - case_lo  # 24 slices of 5 patients are not 24 independent cases
    assert (lo, hi) == (pytest.approx(ref[0], abs=0.02), pytest.approx(ref[1], abs=0.02))
    # One value per cluster: exactly the case bootstrap (same draws).
    assert cluster_bootstrap_ci(v, np.arange(v.size)) == bootstrap_ci(v)
    # summarize knows the subjects: 5 patients are below the minimum, whatever the 24 slices say.
    s = summarize(metrics[metrics.metric.isin(["dice", "gt_empty", "pred_empty"])], subjects=subject_of(cases),
                  n_resamples=500)
    row = s[s.region == "metastasis"].iloc[0]
    assert row.resampled == "subjects"
    assert row.n_clusters == 5
    assert row.n == 24
    assert np.isnan(row.ci_low)
    assert row.ci_note == "n too small (n=5 subjects < 10)"
    assert np.isfinite(summarize(metrics[metrics.metric == "dice"], n_resamples=500).ci_low.iloc[0])


def test_cluster_bootstrap_on_83_lumiere_patients(lumiere):
    m, cases = lumiere
    dice = m[(m.metric == "dice") & (m.model == "nnUnet")]
    case_ci = summarize(dice, n_resamples=1000)
    subj_ci = summarize(dice, subjects=cases, n_resamples=1000)
    assert (case_ci.resampled == "cases").all()
    assert (subj_ci.resampled == "subjects").all()
    for region in ("EDE", "ENH", "NEC"):
        a, b = case_ci[case_ci.region == region].iloc[0], subj_ci[subj_ci.region == region].iloc[0]
        assert a["mean"] == b["mean"]
        assert b.n_clusters < b.n
        assert b.ci_pct_high - b.ci_pct_low >= a.ci_pct_high - a.ci_pct_low
        g = dice[dice.region == region].merge(cases, on=["dataset", "case"])
        g = g[np.isfinite(g.value)]
        assert b.n_clusters == g.subject.nunique()
        ref = _numpy_cluster_percentile(g.value.to_numpy(float), g.subject.to_numpy(object), 2000, seed=7)
        assert (b.ci_pct_low, b.ci_pct_high) == (pytest.approx(ref[0], abs=0.01), pytest.approx(ref[1], abs=0.01))


def test_compare_tests_subjects_not_time_points(lumiere):
    m, cases = lumiere
    res = compare_models(m, "SegResNet", "nnUnet", "dice", regions=["EDE"], subjects=cases).iloc[0]
    w = m[(m.metric == "dice") & (m.region == "EDE")].pivot_table(index="case", columns="model", values="value")
    w = w.dropna()
    per = w.groupby(w.index.str.extract(r"^(Patient-\d+)")[0].to_numpy()).mean()
    d = per.nnUnet - per.SegResNet
    assert res.unit == "subjects"
    assert res.n == len(per) == res.n_clusters
    assert res.mean_diff == pytest.approx(d.mean())
    assert res.wilcoxon_p == pytest.approx(stats.wilcoxon(d).pvalue)
    plain = compare_models(m, "SegResNet", "nnUnet", "dice", regions=["EDE"]).iloc[0]
    assert plain.unit == "cases"
    assert plain.n == len(w)


def test_distance_comparison_needs_its_own_threshold(ucsd, tests_data, tmp_path, capsys):
    with pytest.raises(ValueError, match="explicit pass threshold"):
        compare_models(ucsd, "BraTS25_3A", "BraTS25_3B", "hd_audit", regions=["ET"])
    res = compare_models(ucsd, "BraTS25_3A", "BraTS25_3B", "hd_audit", regions=["ET"], threshold=5).iloc[0]
    w = ucsd[(ucsd.metric == "hd_audit") & (ucsd.region == "ET")].pivot_table(index="case", columns="model",
                                                                              values="value")
    w = w[["BraTS25_3A", "BraTS25_3B"]].dropna()
    # Cases both models leave empty on an empty ground truth are set apart (AUDIT's flags, imported).
    fl = ucsd[ucsd.metric.isin(["gt_empty", "pred_empty"]) & (ucsd.region == "ET")
              & ucsd.model.isin(["BraTS25_3A", "BraTS25_3B"])].pivot_table(index="case", columns=["metric", "model"],
                                                                            values="value")
    w = w[~w.index.isin(fl.index[(fl == 1).all(axis=1)])]
    a, b = w.BraTS25_3A <= 5, w.BraTS25_3B <= 5
    assert res.pass_threshold == 5
    assert res.n_flip_to_correct == int((~a & b).sum())
    assert res.n_correct_correct == int((a & b).sum())
    assert main(["import-audit", "--metrics", str(tests_data / UCSD), "--out", str(tmp_path / "run")]) == 0
    capsys.readouterr()
    assert main(["compare", str(tmp_path / "run"), "--baseline", "BraTS25_3A", "--candidate", "BraTS25_3B",
                 "--metric", "hd_audit", "--region", "ET"]) == 2
    assert "--threshold" in capsys.readouterr().err
    assert main(["compare", str(tmp_path / "run"), "--baseline", "BraTS25_3A", "--candidate", "BraTS25_3B",
                 "--metric", "hd_audit", "--region", "ET", "--threshold", "5"]) == 0
    assert "flips at 5:" in capsys.readouterr().out


def test_chest_xray_covariates_leave_out_ids_links_and_licences(tests_data):
    meta = read_table(tests_data / "chest_xray_lungs" / "metadata.csv")
    meta = meta.rename(columns={"filename": "case"})
    covs, excluded = covariate_columns(meta)
    out = set(excluded.column)
    assert {"license", "doi", "url", "mask", "width", "height", "patientid", "v7_image_id", "date"} <= out
    assert "sex" in covs
    assert covs["sex"][0] == "categorical"
    assert not ({"license", "doi", "url"} & set(covs))
    # A covariate's every level has at least 5 cases; 'view' has a level of 4.
    assert "view" in out
    assert all(v.value_counts().min() >= 5 for k, v in covs.values() if k == "categorical")
    # Declared covariates are used as declared, nothing else.
    declared, rest = covariate_columns(meta, declared=["view", "sex"])
    assert set(declared) == {"view", "sex"}
    assert "license" in set(rest.column)
    # One test per covariate, Holm-corrected: a real per-case value (mean lung intensity) by covariate.
    values = pd.DataFrame({"case": meta.case, "metric": pd.to_numeric(meta.mean_int_lung)})
    st = subgroup_tests(values, meta, covs, n_resamples=200)
    sex = meta.sex.to_numpy()
    kw = stats.kruskal(*[values.metric[sex == s] for s in sorted(set(sex))])
    assert st.set_index("covariate").p["sex"] == pytest.approx(kw.pvalue)
    assert st.set_index("covariate").p["offset_days"] == pytest.approx(
        stats.spearmanr(pd.to_numeric(meta.offset_days), values.metric, nan_policy="omit").pvalue)
    np.testing.assert_allclose(st.p_holm, multipletests(st.p, method="holm")[1])


def test_project_file_declares_covariates(tmp_path, tests_data):
    from segaudit.dataset import load_project

    root = tests_data / "chest_xray_lungs"
    (tmp_path / "p.yaml").write_text(
        f"datasets:\n  cxr:\n    root: {root}\n    images: '{{root}}/images/{{case}}.png'\n"
        f"    metadata: {{path: {root / 'metadata.csv'}, id_column: filename, covariates: [sex, view]}}\n")
    assert load_project(tmp_path / "p.yaml").datasets[0].metadata.covariates == ["sex", "view"]


def _spearman_cluster_loop(x, y, subj, n_resamples, seed, level=0.95):
    """Literal reference: draw subjects, pool their cases, scipy's Spearman rho, percentile interval."""
    groups = [np.flatnonzero(subj == s) for s in pd.unique(subj)]
    rng = np.random.default_rng(seed)
    rhos = []
    for _ in range(n_resamples):
        idx = np.concatenate([groups[i] for i in rng.integers(0, len(groups), len(groups))])
        rhos.append(stats.spearmanr(x[idx], y[idx]).statistic)
    return np.quantile(rhos, [(1 - level) / 2, (1 + level) / 2])


def test_bias_resamples_subjects_on_lumiere(lumiere):
    m, cases = lumiere
    w = m[(m.model == "nnUnet") & (m.region == "EDE") & m.metric.isin(["dice", "pred_volume"])].pivot_table(
        index="case", columns="metric", values="value").dropna().reset_index()
    w = w.merge(cases[["case", "subject"]], on="case").rename(columns={"dice": "metric", "pred_volume": "feature"})
    plain = metric_vs_feature(w.drop(columns="subject"), n_resamples=400, seed=2)
    clus = metric_vs_feature(w, n_resamples=400, seed=2)
    assert plain["resampled"] == "cases"
    assert clus["resampled"] == "subjects"
    assert clus["n_clusters"] == w.subject.nunique()
    assert clus["spearman_rho"] == plain["spearman_rho"]
    ref = _spearman_cluster_loop(w.feature.to_numpy(), w.metric.to_numpy(), w.subject.to_numpy(), 400, seed=2)
    assert (clus["ci_low"], clus["ci_high"]) == (pytest.approx(ref[0]), pytest.approx(ref[1]))
    assert clus["ci_high"] - clus["ci_low"] > plain["ci_high"] - plain["ci_low"]
    # By time point (first 20 weeks or later): groups count subjects, and the test compares subject means.
    w["group"] = np.where(w.case.str.extract(r"week-(\d+)")[0].astype(int) <= 20, "early", "late")
    table, test = metric_by_group(w, n_resamples=300)
    means = w.groupby(["group", "subject"]).metric.mean()
    kw = stats.kruskal(means["early"], means["late"])
    assert test["unit"] == "subjects"
    assert test["p"] == pytest.approx(kw.pvalue)
    assert table.set_index("group").n_subjects.to_dict() == w.groupby("group").subject.nunique().to_dict()


def test_bootstrap_ci_of_thousands_of_cases_is_scipys_interval_in_bounded_memory(ucsd):
    """Issue 13 scale: BCa's jackknife drawn at once held n × (n - 1) values (150 MB at 3000 cases, quadratic);
    drawn in batches it is scipy's very interval, in a few MB."""
    import tracemalloc

    v = np.resize(ucsd.value.dropna().to_numpy(float), 3000)  # real Dice values, repeated to 3000 cases
    ref = stats.bootstrap((v,), np.mean, n_resamples=1000, method="BCa", random_state=np.random.default_rng(0),
                          vectorized=True).confidence_interval  # scipy unbatched: the reference
    tracemalloc.start()
    try:
        got = bootstrap_ci(v, n_resamples=1000)
        clustered = cluster_bootstrap_ci(v, np.arange(v.size), n_resamples=1000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got == (ref.low, ref.high)
    assert clustered == pytest.approx(got, rel=1e-12)
    assert peak < 32 * 2**20, peak / 2**20  # 169 MB unbatched
