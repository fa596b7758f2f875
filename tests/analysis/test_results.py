"""Typed analysis results: attributes, the same values by key (callers written for dicts), scipy as reference.

Real vectors: AUDIT's own BraTS 2024 UCSD table (four models, Dice per region), imported unchanged.
"""

import dataclasses

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from segaudit.analysis import (
    FlipTable,
    Friedman,
    GroupTest,
    PairedTest,
    Ranking,
    Trend,
    flip_table,
    metric_by_group,
    metric_vs_feature,
    paired_test,
    rank_models,
)
from segaudit.store.audit import read_audit_metrics

UCSD = "audit_outputs/metrics/BraTS_2024_by_site/extracted_information_UCSD.csv"


@pytest.fixture(scope="module")
def wide(tests_data):
    m = read_audit_metrics(tests_data / UCSD)
    return m[(m.metric == "dice") & (m.region == "SNFH")].pivot_table(index="case", columns="model",
                                                                       values="value").dropna()


def _as_dict_and_attrs(res):
    """Every field reads the same as an attribute, by key, through dict() and through ** unpacking."""
    names = [f.name for f in dataclasses.fields(res)]
    assert list(res) == names == list(dict(res)) == list({**res})
    for n in names:
        assert res[n] is getattr(res, n)
    with pytest.raises(KeyError):
        res["no such field"]
    assert res.get("no such field", "x") == "x"


def test_paired_test_is_typed(wide):
    a, b = wide.iloc[:, 0].to_numpy(), wide.iloc[:, 1].to_numpy()
    r = paired_test(a, b)
    assert isinstance(r, PairedTest)
    _as_dict_and_attrs(r)
    assert r.wilcoxon_p == pytest.approx(stats.wilcoxon(b, a).pvalue, rel=1e-12)
    assert r.t_p == pytest.approx(stats.ttest_rel(b, a).pvalue, rel=1e-12)
    assert r.mean_diff == pytest.approx(np.mean(b - a))
    # The branch with too few pairs builds the same record type.
    assert isinstance(paired_test(a[:3], b[:3]), PairedTest)
    assert paired_test(a[:3], b[:3]).test == "none"


def test_flip_table_is_typed(wide):
    a, b = wide.iloc[:, 0].to_numpy() >= 0.9, wide.iloc[:, 1].to_numpy() >= 0.9
    f = flip_table(a, b, ids=list(wide.index))
    assert isinstance(f, FlipTable)
    _as_dict_and_attrs(f)
    n10, n01 = int((~a & b).sum()), int((a & ~b).sum())
    ref = stats.binomtest(min(n10, n01), n10 + n01, 0.5).pvalue if n10 + n01 else 1.0
    assert f.p == pytest.approx(ref)
    assert f.n == a.size
    assert f.baseline_accuracy == pytest.approx(a.mean())
    assert isinstance(f.groups, pd.DataFrame)


def test_rank_models_unpacks_and_is_typed(wide):
    r = rank_models(wide, n_resamples=20)
    assert isinstance(r, Ranking)
    assert isinstance(r.friedman, Friedman)
    ranks, fried, post = r  # callers written for the former tuple
    assert ranks is r.ranks
    assert fried is r.friedman
    assert post is r.posthoc
    _as_dict_and_attrs(fried)
    assert fried.p == pytest.approx(stats.friedmanchisquare(*wide.to_numpy().T).pvalue, rel=1e-12)
    assert fried["n"] == len(wide)
    assert fried.k == wide.shape[1]


def test_trend_and_group_test_are_typed(wide):
    t = pd.DataFrame({"metric": wide.iloc[:, 0].to_numpy(), "feature": wide.iloc[:, 1].to_numpy()})
    tr = metric_vs_feature(t, n_resamples=50)
    assert isinstance(tr, Trend)
    _as_dict_and_attrs(tr)
    assert tr.spearman_rho == pytest.approx(stats.spearmanr(t.feature, t.metric).statistic, rel=1e-12)
    few = metric_vs_feature(t.iloc[:4], n_resamples=10)
    assert isinstance(few, Trend)
    assert np.isnan(few.spearman_rho)
    assert few.note
    g = t.assign(group=np.where(np.arange(len(t)) % 2, "odd", "even"))
    table, test = metric_by_group(g, n_resamples=50)
    assert isinstance(test, GroupTest)
    _as_dict_and_attrs(test)
    ref = stats.kruskal(*[part.metric.to_numpy() for _, part in g.groupby("group")])
    assert test.p == pytest.approx(ref.pvalue, rel=1e-12)
    assert test.groups == 2
