"""Failed and missing predictions are never invisible; both-empty cases are set apart one way everywhere.

A broken submission (real LUMIERE predictions, one file deleted and one truncated) must not read as a complete
one in the summary, and must not rank first by leaving out its failures.
"""

import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from segaudit.analysis import summarize
from segaudit.analysis.compare import compare_models
from segaudit.analysis.coverage import coverage, expected_cases, fill_missing
from segaudit.analysis.failures import worst_best
from segaudit.analysis.ranking import rank_models, ranking_table
from segaudit.analysis.summary import drop_both_empty
from segaudit.dataset import load_project
from segaudit.metrics import EvaluationOptions
from segaudit.pipeline.evaluate import evaluate_project
from segaudit.pipeline.scan import scan_project
from segaudit.store import ResultsStore
from segaudit.store.audit import read_audit_metrics

FAST = EvaluationOptions(lesion_matching="none")
CASES = ["Patient-002-week-000", "Patient-002-week-003", "Patient-002-week-021"]


@pytest.fixture(scope="module")
def broken_run(tmp_path_factory, demo_data):
    """LUMIERE with a third model 'broken': nnUnet's real predictions, one deleted and one truncated."""
    root = tmp_path_factory.mktemp("broken")
    data = root / "data" / "LUMIERE"
    shutil.copytree(demo_data / "brats_audit" / "LUMIERE", data)
    seg = data / "LUMIERE_seg"
    shutil.copytree(seg / "nnUnet", seg / "broken")
    (seg / "broken" / CASES[0] / f"{CASES[0]}_pred.nii.gz").unlink()
    trunc = seg / "broken" / CASES[1] / f"{CASES[1]}_pred.nii.gz"
    trunc.write_bytes(trunc.read_bytes()[:3000])
    proj = root / "segaudit.yaml"
    proj.write_text(yaml.safe_dump({"datasets": {"LUMIERE": {
        "root": str(data), "ground_truth": "{root}/LUMIERE_images/{case}/{case}_seg.nii.gz",
        "predictions": "{root}/LUMIERE_seg/{model}/{case}/{case}_pred.nii.gz", "label_convention": "audit"}}}))
    project = load_project(proj)
    out = root / "run"
    scan_project(project, out, progress=False)
    evaluate_project(project, out, FAST, progress=False)
    with ResultsStore(out, read_only=True) as store:
        tables = {t: store.read(t) for t in ("metrics", "errors", "files")}
    tables["metrics"] = tables["metrics"][tables["metrics"].region != "confusion"]
    return proj, out, tables


def test_coverage_counts_missing_and_failed(broken_run):
    _, _, t = broken_run
    cov = coverage(t["metrics"], t["errors"], t["files"]).set_index("model")
    assert cov.loc["broken", ["n_expected", "n_scored", "n_missing", "n_failed"]].tolist() == [3, 1, 1, 1]
    assert cov.loc["broken", "missing_cases"] == CASES[0]
    assert cov.loc["broken", "failed_cases"] == CASES[1]
    assert cov.loc["nnUnet", ["n_expected", "n_scored", "n_missing", "n_failed"]].tolist() == [3, 3, 0, 0]
    assert not cov.loc["broken", "complete"]
    assert cov.loc["nnUnet", "complete"]
    # Every summary row carries its model's coverage beside the statistics.
    s = summarize(t["metrics"][t["metrics"].metric.isin(["dice", "gt_empty", "pred_empty"])], n_resamples=200,
                  coverage=coverage(t["metrics"], t["errors"], t["files"]))
    b = s[(s.model == "broken") & (s.region == "WT")].iloc[0]
    assert (b.n_expected, b.n_scored, b.n_missing, b.n_failed, b.n) == (3, 1, 1, 1, 1)


def test_worst_policy_scores_missing_as_empty(broken_run):
    _, _, t = broken_run
    m = t["metrics"]
    exp = expected_cases(m, t["errors"], t["files"])
    res = compare_models(m, "nnUnet", "broken", "dice", regions=["WT"], missing="worst", expected=exp).iloc[0]
    assert res.n == 3
    assert res.n_imputed_candidate == 2
    assert res.n_imputed_baseline == 0
    wt = m[(m.region == "WT") & (m.metric == "dice")].set_index(["model", "case"]).value
    # The imputed cases score Dice 0 (every LUMIERE case has a whole tumour): the candidate mean is its one
    # real case divided by three.
    assert res.mean_candidate == pytest.approx(wt[("broken", CASES[2])] / 3)
    exc = compare_models(m, "nnUnet", "broken", "dice", regions=["WT"], missing="exclude", expected=exp).iloc[0]
    assert exc.n == 1
    assert exc.mean_diff == pytest.approx(0.0)
    # Distances of an imputed case are the penalty distance the dataset already uses for empty predictions.
    filled = fill_missing(m[m.metric.isin(["hd95", "gt_empty", "pred_empty"])], ["broken"], "worst", exp)
    hd = filled.metrics[(filled.metrics.metric == "hd95") & (filled.metrics.case == CASES[0])]
    assert np.allclose(hd.value, m[m.metric == "hd95"].value.max())


def test_broken_submission_cannot_rank_first(broken_run):
    _, _, t = broken_run
    m = t["metrics"]
    exp = expected_cases(m, t["errors"], t["files"])
    wide, info = ranking_table(m, "LUMIERE", "dice", missing="worst", expected=exp)
    assert len(wide) == 3
    assert "'worst'" in info["policy"]
    assert info["n_imputed"]["broken"] == 2
    ranks, _, _ = rank_models(wide, n_resamples=50)
    assert ranks.model.iloc[-1] == "broken"
    # Under 'exclude' it ties nnUnet (the same predictions on the one case it delivered): the reason the
    # default for rankings is 'worst'.
    wide_ex, _ = ranking_table(m, "LUMIERE", "dice", missing="exclude", expected=exp)
    assert len(wide_ex) == 1
    assert wide_ex["broken"].iloc[0] == pytest.approx(wide_ex["nnUnet"].iloc[0])


def test_cli_evaluate_and_compare_show_the_broken_model(broken_run):
    proj, out, _ = broken_run
    r = subprocess.run(["segaudit", "evaluate", str(proj), "--out", str(out), "--no-progress",
                        "--lesion-matching", "none"], capture_output=True, text=True, timeout=600)
    # The fixture scored the good case-models already: this run's only jobs are the two broken ones, and both
    # fail again, so the run exits 1 (every job of this run failed) after printing the whole coverage.
    assert r.returncode == 1, r.stderr
    assert "every one of the 2 case-model(s) of this run failed" in r.stderr
    assert "LUMIERE/broken: scored 1 of 3 expected cases (1 missing, 1 failed)" in r.stdout
    assert "prediction file not found" in r.stdout
    assert "truncated" in r.stdout
    r = subprocess.run(["segaudit", "compare", str(out), "--baseline", "nnUnet", "--candidate", "broken",
                        "--region", "WT"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "policy 'worst'" in r.stdout
    assert "broken 2" in r.stdout
    assert "n = 3 paired cases" in r.stdout


def _audit_both(raw: pd.DataFrame) -> pd.Series:
    """Both-empty rows of an AUDIT table by the documented rule, computed here with plain pandas."""
    gt = raw.SENS.isna() & ((raw.ACCU - raw.SPEC).abs() <= 1e-12)
    return gt & (raw.SIZE.isna() | (raw.SIZE == 0))


def test_audit_import_infers_empty_flags(tests_data):
    path = tests_data / "audit_outputs" / "metrics" / "BraTS_2024_by_site" / "extracted_information_UCSD.csv"
    raw = pd.read_csv(path)
    m = read_audit_metrics(path)
    flags = m[m.metric.isin(["gt_empty", "pred_empty"])].pivot_table(
        index=["case", "model", "region"], columns="metric", values="value")
    assert len(flags) == len(raw)
    both = _audit_both(raw)
    assert ((flags.gt_empty == 1) & (flags.pred_empty == 1)).sum() == both.sum() == 479
    assert (raw.DICE[both] == 1).all()  # AUDIT's both-empty Dice
    # An empty prediction with Dice 0 is a miss (AUDIT writes NaN SENS for it too): not both-empty.
    assert ((raw.SIZE.isna()) & (raw.DICE == 0)).sum() == 31
    s = summarize(m[m.metric.isin(["dice", "gt_empty", "pred_empty"])], n_resamples=200)
    for (model, region), g in raw.groupby(["model", "region"]):
        row = s[(s.model == model) & (s.region == region)].iloc[0]
        assert row.n_both_empty == _audit_both(g).sum()
        assert row["mean"] == pytest.approx(g.DICE[~_audit_both(g)].mean())
    net = s[(s.region == "NETC") & (s.model == "BraTS25_3A")].iloc[0]
    assert net.n_both_empty == 80  # before: both_empty 0 and n 200 (AUDIT's Dice 1 averaged in)
    assert net.n == 120


def test_audit_flags_agree_with_our_evaluation(brats_copy, tmp_path, tests_data):
    """The inference against the truth: the same LUMIERE and PED cases scored by segaudit from their masks."""
    for ds in ("LUMIERE", "BraTS2024_PED"):
        proj = tmp_path / f"{ds}.yaml"
        proj.write_text(yaml.safe_dump({"datasets": {ds: {
            "root": str(brats_copy / ds), "ground_truth": f"{{root}}/{ds}_images/{{case}}/{{case}}_seg.nii.gz",
            "predictions": f"{{root}}/{ds}_seg/{{model}}/{{case}}/{{case}}_pred.nii.gz",
            "label_convention": "audit"}}}))
        ours = evaluate_project(load_project(proj), tmp_path / f"run{ds}", EvaluationOptions(
            lesion_matching="none", distances=False), progress=False).metrics
        ours = ours[ours.metric.isin(["gt_empty", "pred_empty"])].set_index(
            ["case", "model", "region", "metric"]).value
        audit = read_audit_metrics(tests_data / "audit_outputs" / "metrics" / f"extracted_information_{ds}.csv")
        audit = audit[audit.metric.isin(["gt_empty", "pred_empty"])].set_index(
            ["case", "model", "region", "metric"]).value
        common = ours.index.intersection(audit.index)
        assert len(common) >= 24, ds
        assert (ours[common] == audit[common]).all(), ds
        assert ours[common].sum() > 0  # the cases hold empty structures (PED-00266, week 021)


def test_both_empty_set_apart_in_every_view(tests_data):
    path = tests_data / "audit_outputs" / "metrics" / "BraTS_2024_by_site" / "extracted_information_UCSD.csv"
    m = read_audit_metrics(path)
    kept, apart = drop_both_empty(m[m.metric.isin(["dice", "gt_empty", "pred_empty"])])
    s = summarize(m[m.metric.isin(["dice", "gt_empty", "pred_empty"])], n_resamples=200)
    merged = s.merge(apart, on=["dataset", "model", "region"], how="left", suffixes=("", "_views")).fillna(0)
    assert (merged.n_both_empty == merged.n_both_empty_views).all()
    # n in the summary equals the distinct scored cases minus those set apart, for every group.
    n_cases = m[m.metric == "dice"].groupby(["model", "region"]).case.nunique()
    for r in s.itertuples():
        assert r.n + r.n_undefined + r.n_both_empty == n_cases[(r.model, r.region)]
    # The best panels never show a both-empty case.
    best = worst_best(kept[kept.region == "NETC"], "dice", k=5)
    both_ids = set(m[(m.metric == "gt_empty") & (m.value == 1) & (m.region == "NETC")].case)
    raw = pd.read_csv(path)
    truly_both = set(raw[(raw.region == "NETC") & _audit_both(raw)].ID)
    assert not (set(best[best.rank_kind == "best"].case) & truly_both & both_ids)
    # A comparison sets apart the cases both models leave empty, and counts them.
    res = compare_models(m, "BraTS25_3A", "BraTS25_3B", "dice", regions=["NETC"]).iloc[0]
    wide = raw[raw.region == "NETC"].assign(both=_audit_both).pivot_table(
        index="ID", columns="model", values="both")
    assert res.n_both_empty == int((wide["BraTS25_3A"].astype(bool) & wide["BraTS25_3B"].astype(bool)).sum())
    assert res.n + res.n_both_empty == 200


@st.composite
def long_tables(draw):
    """Synthetic long metric rows: 3 models, up to 12 cases, 2 regions, random empties, NaNs and gaps."""
    n_cases = draw(st.integers(3, 12))
    rows = []
    for c in range(n_cases):
        for region in ("A", "B"):
            gt_empty = draw(st.booleans())
            for model in ("m1", "m2", "m3"):
                if draw(st.integers(0, 5)) == 0:  # a missing prediction: no rows at all
                    continue
                pred_empty = draw(st.booleans())
                both = gt_empty and pred_empty
                dice = 1.0 if both else (0.0 if gt_empty or pred_empty else draw(
                    st.one_of(st.floats(0, 1), st.just(float("nan")))))
                for metric, v in (("dice", dice), ("gt_empty", float(gt_empty)), ("pred_empty", float(pred_empty))):
                    rows.append(("D", f"c{c}", model, region, metric, v))
    return pd.DataFrame(rows, columns=["dataset", "case", "model", "region", "metric", "value"])


@settings(max_examples=15, deadline=None)
@given(long_tables())
def test_every_aggregate_counts_each_case_once(m):
    dice = m[m.metric == "dice"]
    s = summarize(m, n_resamples=50)
    for r in s.itertuples():
        scored = dice[(dice.model == r.model) & (dice.region == r.region)].case.nunique()
        assert r.n + r.n_undefined + r.n_both_empty == scored
    expected = m[["dataset", "case"]].drop_duplicates()
    if dice.model.nunique() < 3:
        return
    for region in ("A", "B"):
        sub = m[m.region == region]
        have = set(sub[sub.metric == "dice"].model)
        if not {"m1", "m2"} <= have:
            continue
        res = compare_models(sub, "m1", "m2", "dice", missing="worst", expected=expected).iloc[0]
        assert res.n + res.n_dropped + res.n_both_empty == len(expected)
    if {"m1", "m2", "m3"} <= set(dice.model):
        wide, info = ranking_table(m, "D", "dice", missing="worst", aggregate="per-region", region="A",
                                   expected=expected)
        assert len(wide) + info["n_both_empty"] == len(expected)
