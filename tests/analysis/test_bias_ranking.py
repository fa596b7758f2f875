"""Bias (metric vs feature, metric by group) and multi-model ranking against scipy/statsmodels on real data."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.nonparametric.smoothers_lowess import lowess as sm_lowess
from statsmodels.stats.multitest import multipletests

from segaudit.analysis.bias import lowess, metric_by_group, metric_vs_feature
from segaudit.analysis.ranking import rank_models
from segaudit.features.case import FeatureOptions
from segaudit.metrics import EvaluationOptions
from segaudit.pipeline.demo import demo_project
from segaudit.pipeline.evaluate import evaluate_project
from segaudit.pipeline.features import extract_project
from segaudit.store.audit import read_audit_metrics

UCSD = "audit_outputs/metrics/BraTS_2024_by_site/extracted_information_UCSD.csv"


@pytest.fixture(scope="module")
def mets(tmp_path_factory):
    """Dice of the U-Net on the 24 real metastasis slices, with the true lesion area and the subject."""
    project = demo_project()
    project.datasets = [d for d in project.datasets if d.name == "brainmets_t2w_slices"]
    out = tmp_path_factory.mktemp("bias") / "run"
    ev = evaluate_project(project, out, EvaluationOptions(lesion_matching="none"), progress=False)
    ft = extract_project(project, out, FeatureOptions(groups=("lesion",), shape=False), progress=False)
    dice = ev.metrics[(ev.metrics.metric == "dice") & (ev.metrics.region == "metastasis")]
    area = ft.features[(ft.features.source == "metastasis") & (ft.features.feature == "volume")
                       & (ft.features.model == "")]
    t = dice[["case", "value"]].rename(columns={"value": "metric"}).merge(
        area[["case", "value"]].rename(columns={"value": "feature"}), on="case")
    t["group"] = t.case.str.extract(r"(BraTS-MET-\d+-\d+)")[0]
    return t


def test_metric_vs_feature_against_scipy(mets):
    r = metric_vs_feature(mets, n_resamples=500)
    rho = stats.spearmanr(mets.feature, mets.metric)
    assert r["n"] == len(mets)
    assert r["spearman_rho"] == pytest.approx(rho.statistic)
    assert r["p"] == pytest.approx(rho.pvalue)
    assert r["ci_low"] <= r["spearman_rho"] <= r["ci_high"]
    assert len(r["trend"]) == len(mets)


def test_lowess_equals_statsmodels(mets):
    x, y = mets.feature.to_numpy(float), mets.metric.to_numpy(float)
    ours_x, ours = lowess(x, y, frac=2 / 3, it=3)
    ref = sm_lowess(y, x, frac=2 / 3, it=3, delta=0.0, return_sorted=True)
    np.testing.assert_allclose(ours_x, ref[:, 0])
    np.testing.assert_allclose(ours, ref[:, 1], rtol=1e-6, atol=1e-9)


def test_metric_by_group_against_scipy(mets):
    table, test = metric_by_group(mets, n_resamples=500, min_group=3)
    groups = [g.metric.to_numpy() for _, g in mets.groupby("group", sort=True)]
    kw = stats.kruskal(*groups)
    assert test["p"] == pytest.approx(kw.pvalue)
    assert test["groups"] == len(groups) == 5
    assert table.n.sum() == len(mets)
    assert test["overall_mean"] == pytest.approx(mets.metric.mean())
    flagged = table[table.differs_from_overall]
    assert ((flagged.ci_low > test["overall_mean"]) | (flagged.ci_high < test["overall_mean"])).all()


def test_rank_models_against_scipy(tests_data):
    m = read_audit_metrics(tests_data / UCSD)
    wide = m[m.metric == "dice"].groupby(["case", "model"]).value.mean().unstack()
    ranks, fried, post = rank_models(wide, n_resamples=200)
    full = wide.dropna()
    ref = stats.friedmanchisquare(*full.to_numpy().T)
    assert fried["n"] == len(full)
    assert fried["p"] == pytest.approx(ref.pvalue)
    mean_ranks = full.rank(axis=1, ascending=False).mean()
    for r in ranks.itertuples():
        assert r.mean_rank == pytest.approx(mean_ranks[r.model])
    assert ranks.mean_rank.is_monotonic_increasing
    assert ranks.rank_stability.between(0, 1).all()
    pvals = [stats.wilcoxon(full[b] - full[a]).pvalue for a, b in zip(post.model_a, post.model_b, strict=True)]
    np.testing.assert_allclose(post.wilcoxon_p, pvals)
    np.testing.assert_allclose(post.p_holm, multipletests(pvals, method="holm")[1])
    assert isinstance(ranks, pd.DataFrame)


def test_nemenyi_against_scikit_posthocs(tests_data):
    """Nemenyi p-values equal scikit-posthocs' on AUDIT's 4 UCSD models; the CD uses Demšar's q(0.05, 4)."""
    sp = pytest.importorskip("scikit_posthocs")
    from segaudit.analysis.ranking import nemenyi_critical_difference

    m = read_audit_metrics(tests_data / UCSD)
    wide = m[m.metric == "dice"].groupby(["case", "model"]).value.mean().unstack().dropna()
    _, fried, post = rank_models(wide, n_resamples=10)
    ref = sp.posthoc_nemenyi_friedman(wide.to_numpy())  # columns are positions in wide.columns
    models = list(wide.columns)
    for r in post.itertuples():
        assert r.nemenyi_p == pytest.approx(ref.iat[models.index(r.model_a), models.index(r.model_b)], rel=1e-9)
    n, k = wide.shape
    assert fried["critical_difference"] == pytest.approx(2.569 * np.sqrt(k * (k + 1) / (6 * n)), rel=1e-3)
    assert np.isnan(nemenyi_critical_difference(1, 10))


def test_bootstrap_rho_ci_equals_a_loop_of_scipy_spearmanr(mets):
    """The vectorised resampled rhos give the CI a loop of scipy.stats.spearmanr gives on the same resamples."""
    x, y = mets.feature.to_numpy(float), mets.metric.to_numpy(float)
    r = metric_vs_feature(mets, n_resamples=300, seed=3)
    idx = np.random.default_rng(3).integers(0, x.size, size=(300, x.size))
    with np.errstate(invalid="ignore"):
        rhos = np.array([stats.spearmanr(x[i], y[i]).statistic for i in idx])
    lo, hi = np.quantile(rhos[np.isfinite(rhos)], [0.025, 0.975])
    assert r["ci_low"] == pytest.approx(lo, abs=1e-12)
    assert r["ci_high"] == pytest.approx(hi, abs=1e-12)


def test_rank_leader_and_mean_leader_differ_on_ucsd_for_a_reason(tests_data):
    """On AUDIT's UCSD table BraTS25_1 has the best mean rank but BraTS25_3B the best mean Dice: a genuine
    disagreement (1 wins 153 of 200 cases by a little, loses a few by a lot), not a rank-direction bug."""
    from segaudit.analysis.ranking import rank_mean_disagreement

    m = read_audit_metrics(tests_data / UCSD)
    wide = m[m.metric == "dice"].groupby(["case", "model"]).value.mean().unstack().dropna()
    ranks, _, _ = rank_models(wide, n_resamples=10)
    assert ranks.model.iloc[0] == "BraTS25_1"
    assert wide.mean().idxmax() == "BraTS25_3B"
    wins = int((wide.BraTS25_1 > wide.BraTS25_3B).sum())
    assert wins > len(wide) / 2  # the rank leader does beat the mean leader on most cases
    note = rank_mean_disagreement(wide, True, "dice")
    assert note.startswith("BraTS25_1 has the best mean rank but BraTS25_3B the best mean dice")
    assert f"on {wins} of {len(wide)} cases" in note
    assert rank_mean_disagreement(wide[["BraTS25_1", "BraTS25_2"]], True) == ""  # one leader: nothing to explain


def test_rank_direction_follows_the_metric():
    """Higher Dice ranks first; for a distance (lower is better) the smallest value ranks first."""
    t = pd.DataFrame({"a": [0.9, 0.8, 0.7], "b": [0.5, 0.4, 0.3], "c": [0.1, 0.2, 0.9]})
    assert rank_models(t, higher_is_better=True, n_resamples=5).ranks.model.iloc[0] == "a"
    assert rank_models(t, higher_is_better=False, n_resamples=5).ranks.model.iloc[-1] == "a"
    hd = pd.DataFrame({"a": [9.0, 8.0, 7.0], "b": [5.0, 4.0, 3.0], "c": [1.0, 2.0, 2.5]})  # mm: c is closest
    assert list(rank_models(hd, higher_is_better=False, n_resamples=5).ranks.model) == ["c", "b", "a"]
