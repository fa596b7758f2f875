"""Statistics against scipy/statsmodels on the same vectors, and a real comparison from AUDIT's tables.

The real vectors: BraTS 2024 UCSD site, models BraTS25_3A vs BraTS25_3B, from AUDIT's own per-site metric
table (imported unchanged), compared per region and, as AUDIT does, on the mean over regions per subject.
"""

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests

from segaudit.analysis import compare_models, flip_table, holm, mcnemar_exact, paired_test
from segaudit.cli import main
from segaudit.store.audit import read_audit_metrics

UCSD = "audit_outputs/metrics/BraTS_2024_by_site/extracted_information_UCSD.csv"


@pytest.fixture(scope="module")
def ucsd(tests_data):
    return read_audit_metrics(tests_data / UCSD)


def _pair(m, region, a="BraTS25_3A", b="BraTS25_3B", metric="dice"):
    w = m[(m.metric == metric) & (m.region == region)].pivot_table(index="case", columns="model", values="value")
    return w[a].to_numpy(), w[b].to_numpy()


@pytest.mark.parametrize("region", ["ET", "NETC", "SNFH", "RC"])
def test_paired_test_equals_scipy_on_real_dice(ucsd, region):
    a, b = _pair(ucsd, region)
    ok = np.isfinite(a) & np.isfinite(b)
    r = paired_test(a, b)
    d = b[ok] - a[ok]
    assert r["n"] == ok.sum()
    assert r["n_dropped"] == (~ok).sum()
    assert r["t_p"] == pytest.approx(stats.ttest_rel(b[ok], a[ok]).pvalue, rel=1e-12)
    assert r["wilcoxon_p"] == pytest.approx(stats.wilcoxon(b[ok], a[ok]).pvalue, rel=1e-12)
    assert r["shapiro_p"] == pytest.approx(stats.shapiro(d).pvalue, rel=1e-12)
    assert r["cohens_dz"] == pytest.approx(d.mean() / d.std(ddof=1))
    lo, hi = stats.t.interval(0.95, d.size - 1, loc=d.mean(), scale=stats.sem(d))
    assert (r["ci_low"], r["ci_high"]) == (pytest.approx(lo), pytest.approx(hi))
    assert r["test"] == ("paired t-test" if r["shapiro_p"] >= 0.05 else "wilcoxon")
    assert r["p"] == (r["t_p"] if r["test"] == "paired t-test" else r["wilcoxon_p"])
    assert "Shapiro-Wilk" in r["reason"]
    # Rank-biserial from its definition via scipy's signed-rank statistic: r = 4T+/(n(n+1)) - 1 (no zeros).
    nz = d[d != 0]
    t_plus = stats.rankdata(np.abs(nz))[nz > 0].sum()
    assert r["rank_biserial"] == pytest.approx(4 * t_plus / (nz.size * (nz.size + 1)) - 1)


def test_holm_and_mcnemar_equal_statsmodels():
    p = np.array([0.01, 0.04, 0.03, 0.2, 0.005, 0.5])
    np.testing.assert_allclose(holm(p), multipletests(p, method="holm")[1])
    for b, c in [(3, 10), (0, 0), (7, 7), (1, 25)]:
        table = [[5, b], [c, 9]]
        assert mcnemar_exact(b, c) == pytest.approx(mcnemar(table, exact=True).pvalue)


def test_compare_models_per_region_and_mean_over_regions(ucsd):
    per = compare_models(ucsd, "BraTS25_3A", "BraTS25_3B", "dice")
    assert set(per.region) == {"ET", "NETC", "SNFH", "RC"}
    np.testing.assert_allclose(per.p_holm, multipletests(per.p, method="holm")[1])
    mean = compare_models(ucsd, "BraTS25_3A", "BraTS25_3B", "dice", aggregate="mean-over-regions")
    # A region both models leave empty on an empty ground truth (AUDIT writes Dice 1) is set apart before
    # each case's mean, as in every other view; the flags come from AUDIT's own columns.
    pair = ucsd[ucsd.model.isin(["BraTS25_3A", "BraTS25_3B"])]
    fl = pair[pair.metric.isin(["gt_empty", "pred_empty"])].pivot_table(
        index=["case", "region"], columns=["metric", "model"], values="value")
    apart = fl.index[(fl == 1).all(axis=1)]
    dice = pair[pair.metric == "dice"].set_index(["case", "region"])
    dice = dice[~dice.index.isin(apart)].reset_index()
    w = dice.groupby(["case", "model"]).value.mean().unstack()
    d = (w["BraTS25_3B"] - w["BraTS25_3A"]).dropna()
    row = mean.iloc[0]
    assert row.region == "mean"
    assert row.n == len(d)
    assert row.mean_diff == pytest.approx(d.mean())
    assert row.n_both_empty == len(apart) > 0
    total = row[["n_flip_to_correct", "n_flip_to_incorrect", "n_correct_correct", "n_incorrect_incorrect"]].sum()
    assert total == row.n
    hd = compare_models(ucsd, "BraTS25_3A", "BraTS25_3B", "hd_audit", regions=["ET"], threshold=5)
    assert hd.improvement.iloc[0] == pytest.approx(-hd.mean_diff.iloc[0])  # lower is better for distances


def test_edge_cases():
    same = paired_test([0.5, 0.6, 0.7, 0.1, 0.2, 0.3], [0.5, 0.6, 0.7, 0.1, 0.2, 0.3])
    assert same["p"] == 1.0
    assert same["test"] == "none"
    few = paired_test([0.5], [0.7])
    assert np.isnan(few["p"])
    assert few["n"] == 1
    dropped = paired_test([0.5, np.nan, 0.7, 0.2], [0.6, 0.9, np.inf, 0.4])
    assert dropped["n"] == 2
    assert dropped["n_dropped"] == 2
    f = flip_table([True, False, False, True], [True, True, False, False], ids=["a", "b", "c", "d"])
    g = f["groups"].set_index("group")
    assert g.n.to_dict() == {"flip_to_correct": 1, "flip_to_incorrect": 1, "correct_correct": 1,
                             "incorrect_incorrect": 1}
    assert g.sample_ids["flip_to_correct"] == "b"
    assert f["p"] == 1.0


def test_flips_command_on_a_real_outcome_table(ucsd, tmp_path, capsys):
    """Per-subject pass/fail (whole-tumour Dice >= 0.9) of two real models as a generic outcome CSV."""
    a, b = _pair(ucsd, "RC")
    cases = sorted(ucsd[(ucsd.metric == "dice") & (ucsd.region == "RC")].case.unique())
    table = pd.DataFrame({"subject": cases, "model_3A": np.where(a >= 0.9, "correct", "incorrect"),
                          "model_3B": (b >= 0.9).astype(int)})
    table.loc[0, "model_3B"] = None  # a missing outcome: left out and counted
    csv = tmp_path / "outcomes.csv"
    table.to_csv(csv, index=False)
    rc = main(["flips", str(csv), "--baseline", "model_3A", "--candidate", "model_3B", "--out", str(tmp_path / "o")])
    assert rc == 0
    out = capsys.readouterr().out
    ok = np.isfinite(a) & np.isfinite(b)
    ok[0] = False
    pa, pb = a[ok] >= 0.9, b[ok] >= 0.9
    expected = mcnemar([[np.sum(pa & pb), np.sum(pa & ~pb)], [np.sum(~pa & pb), np.sum(~pa & ~pb)]],
                       exact=True).pvalue
    assert f"p = {expected:.4g}" in out
    assert "1 left out" in out
    assert (tmp_path / "o" / "flips.png").stat().st_size > 5000
    written = pd.read_csv(tmp_path / "o" / "flips.csv").set_index("group")
    assert written.n["flip_to_incorrect"] == np.sum(pa & ~pb)
    bad = tmp_path / "bad.csv"
    bad.write_text("id,x,y\n1,maybe,1\n")
    assert main(["flips", str(bad), "--baseline", "x", "--candidate", "y"]) == 2
    assert "not a correctness value" in capsys.readouterr().err


def test_compare_command_on_imported_audit_store(tests_data, tmp_path, capsys):
    assert main(["import-audit", "--metrics", str(tests_data / UCSD), "--out", str(tmp_path / "run")]) == 0
    capsys.readouterr()
    rc = main(["compare", str(tmp_path / "run"), "--baseline", "BraTS25_3A", "--candidate", "BraTS25_3B",
               "--aggregate", "mean-over-regions", "--cases", "UCSD-02251-100"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "dice / mean" in out
    assert "because the paired differences" in out
    assert "Holm" in out
    assert "exact McNemar" in out
    assert "UCSD-02251-100" in out
    assert main(["compare", str(tmp_path / "run"), "--baseline", "nope", "--candidate", "BraTS25_3B"]) == 2


def test_direction_of_distances_follows_the_options_and_prefixes():
    from segaudit.analysis.compare import higher_is_better

    for name in ("hd", "hd95", "hd90", "lesion_hd95", "lesion_hd90", "agree_hd95", "agree_loo_hd90", "assd",
                 "lesion_assd", "dice_loss"):
        assert not higher_is_better(name), name
    for name in ("dice", "lesion_dice", "agree_dice", "agree_loo_dice", "nsd@1mm", "lesion_f1"):
        assert higher_is_better(name), name
