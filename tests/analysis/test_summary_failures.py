"""Summaries and the failure taxonomy on real evaluated BraTS cases, against pandas/numpy computations."""

import numpy as np
import pandas as pd
import pytest
import yaml

from segaudit.analysis import failure_counts, failure_taxonomy, quality_band, summarize, worst_best
from segaudit.dataset import load_project
from segaudit.metrics import EvaluationOptions
from segaudit.pipeline.evaluate import evaluate_project


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory, demo_data):
    tmp = tmp_path_factory.mktemp("analysis")
    root = demo_data / "brats_audit"
    data = {"datasets": {ds: {"root": str(root / ds),
                              "ground_truth": f"{{root}}/{ds}_images/{{case}}/{{case}}_seg.nii.gz",
                              "predictions": f"{{root}}/{ds}_seg/{{model}}/{{case}}/{{case}}_pred.nii.gz",
                              "label_convention": "audit"} for ds in ("BraTS2024_PED", "LUMIERE", "UCSF")}}
    (tmp / "p.yaml").write_text(yaml.safe_dump(data))
    res = evaluate_project(load_project(tmp / "p.yaml"), tmp / "run", EvaluationOptions(lesion_matching="none"),
                           progress=False)
    return res.metrics


def test_summary_matches_pandas_and_separates_both_empty(evaluated):
    m = evaluated
    s = summarize(m[m.metric.isin(["dice", "hd95", "gt_empty", "pred_empty"])], n_resamples=500)
    row = s[(s.dataset == "LUMIERE") & (s.model == "nnUnet") & (s.region == "WT") & (s.metric == "dice")].iloc[0]
    v = m[(m.dataset == "LUMIERE") & (m.model == "nnUnet") & (m.region == "WT") & (m.metric == "dice")].value
    assert row.n == len(v)
    assert row["mean"] == pytest.approx(v.mean())
    assert row["std"] == pytest.approx(v.std())
    assert row["median"] == pytest.approx(v.median())
    # Three time points of one patient: below the documented minimum, no CI but the reason.
    assert np.isnan(row.ci_low)
    assert np.isnan(row.ci_pct_high)
    assert row.ci_note == "n too small (n=3 < 10)"
    # A case whose ground truth and prediction are both empty is counted apart, not averaged in as Dice 1.
    flags = m[m.metric.isin(["gt_empty", "pred_empty"])].pivot_table(
        index=["dataset", "case", "model", "region"], columns="metric", values="value")
    both = flags[(flags.gt_empty == 1) & (flags.pred_empty == 1)]
    assert s.n_both_empty.sum() == 2 * len(both)  # once for dice, once for hd95
    if len(both):
        ds, case, model, region = both.index[0]
        r = s[(s.dataset == ds) & (s.model == model) & (s.region == region) & (s.metric == "dice")].iloc[0]
        vals = m[(m.dataset == ds) & (m.model == model) & (m.region == region) & (m.metric == "dice")
                 & (m.case != case)].value
        assert r.n == len(vals)
        assert r["mean"] == pytest.approx(vals.mean())


def test_failure_taxonomy_classes(evaluated):
    t = failure_taxonomy(evaluated)
    assert set(t.failure) <= {"good", "mid", "bad", "disjoint", "miss", "false_alarm", "both_empty", "undefined"}
    # BraTS2024_PED-00266-000 has no enhancing tumour in its ground truth; SegResNet predicts some: false alarm.
    row = t[(t.case == "BraTS2024_PED-00266-000") & (t.model == "SegResNet") & (t.region == "ENH")].iloc[0]
    assert row.gt_empty == 1
    assert row.pred_empty == 0
    assert row.failure == "false_alarm"
    good = t[t.failure == "good"]
    assert (good.dice >= 0.6).all()
    assert t[t.failure == "mid"].dice.between(0.4, 0.6, inclusive="left").all()
    assert (t[t.failure == "bad"].dice < 0.4).all()
    assert (t[t.failure == "bad"].tp > 0).all()
    assert (t[t.failure == "disjoint"].tp == 0).all()
    c = failure_counts(t)
    assert np.allclose(c.groupby(["dataset", "model", "region"]).percent.sum(), 100)


def test_quality_bands_and_worst_best(evaluated):
    np.testing.assert_array_equal(quality_band([0.1, 0.4, 0.59, 0.6, np.nan], (0.4, 0.6)),
                                  ["bad", "mid", "mid", "good", "undefined"])
    np.testing.assert_array_equal(quality_band([1.0, 5.0, 20.0], (2.0, 10.0), higher_is_better=False),
                                  ["good", "mid", "bad"])
    wb = worst_best(evaluated, "dice", k=1)
    lum = wb[(wb.dataset == "LUMIERE") & (wb.model == "nnUnet") & (wb.region == "WT")]
    v = evaluated[(evaluated.dataset == "LUMIERE") & (evaluated.model == "nnUnet") & (evaluated.region == "WT")
                  & (evaluated.metric == "dice")]
    assert lum[lum.rank_kind == "worst"].value.iloc[0] == v.value.min()
    assert lum[lum.rank_kind == "best"].value.iloc[0] == v.value.max()
    assert isinstance(wb, pd.DataFrame)


def test_error_matrix_aggregates_stored_confusions(evaluated):
    from segaudit.analysis import error_matrix

    one = error_matrix(evaluated, dataset="LUMIERE", model="nnUnet", case="Patient-002-week-021")
    all_cases = error_matrix(evaluated, dataset="LUMIERE", model="nnUnet")
    assert one.index[0] == "background"
    assert set(one.index) == {"background", "ENH", "NEC", "EDE"}
    assert list(one.index) == list(one.columns)
    counts = evaluated[(evaluated.case == "Patient-002-week-021") & (evaluated.model == "nnUnet")
                       & (evaluated.region == "WT") & evaluated.metric.isin(["tp", "fp", "fn", "tn"])].value
    assert one.to_numpy().sum() == counts.sum()  # every voxel of the image once
    parts = sum(error_matrix(evaluated, dataset="LUMIERE", model="nnUnet", case=c).to_numpy()
                for c in evaluated[evaluated.dataset == "LUMIERE"].case.unique())
    np.testing.assert_array_equal(all_cases.to_numpy(), parts)
    # Row sums are the ground-truth volumes (1 mm voxels): equal to the stored gt_volume of each label.
    vols = evaluated[(evaluated.dataset == "LUMIERE") & (evaluated.model == "nnUnet")
                     & (evaluated.metric == "gt_volume")].groupby("region").value.sum()
    for label in ("ENH", "NEC", "EDE"):
        assert all_cases.loc[label].sum() == vols[label]
    norm = error_matrix(evaluated, dataset="LUMIERE", model="nnUnet", normalise=True, background=False)
    assert np.allclose(norm.sum(axis=1).dropna(), 1.0)
    assert "background" not in norm.index
    with pytest.raises(ValueError, match="no stored error matrix"):
        error_matrix(evaluated, model="nope")
