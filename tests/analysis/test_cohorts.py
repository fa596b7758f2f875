"""Splits, leakage and longitudinal volumes on the demo's real cases (LUMIERE time points, metastasis slices)."""

import json

import numpy as np
import pytest

from segaudit.analysis.cohorts import longitudinal_volumes, split_leakage, split_overview
from segaudit.features.case import FeatureOptions
from segaudit.pipeline.demo import demo_project
from segaudit.pipeline.features import extract_project
from segaudit.store import ResultsStore


@pytest.fixture(scope="module")
def store_tables(tmp_path_factory):
    project = demo_project()
    project.datasets = [d for d in project.datasets if d.name in ("LUMIERE", "brainmets_t2w_slices")]
    out = tmp_path_factory.mktemp("cohorts") / "run"
    extract_project(project, out, FeatureOptions(groups=("lesion",), shape=False), progress=False)
    with ResultsStore(out, read_only=True) as s:
        return s.read("cases"), s.read("features")


def test_longitudinal_volumes_track_truth_and_prediction(store_tables):
    cases, feats = store_tables
    t = longitudinal_volumes(cases, feats, "WT")
    lum = t[(t.dataset == "LUMIERE") & (t.model == "nnUnet")]
    assert lum.subject.unique().tolist() == ["Patient-002"]
    assert len(lum) == 3
    assert lum.timepoint.astype(int).is_monotonic_increasing
    f = feats[(feats.group == "lesion") & (feats.feature == "volume") & (feats.source == "WT")]
    for r in lum.itertuples():
        truth = f[(f.case == r.case) & (f.model == "")].value.iloc[0]
        pred = f[(f.case == r.case) & (f.model == "nnUnet")].value.iloc[0]
        assert r.true_volume == truth
        assert r.pred_volume == pred
        assert r.relative_error == pytest.approx((pred - truth) / truth)
    assert np.isnan(lum.true_growth.iloc[0])
    assert lum.true_growth.iloc[1] == pytest.approx(lum.true_volume.iloc[1] - lum.true_volume.iloc[0])
    assert lum.pred_growth.iloc[2] == pytest.approx(lum.pred_volume.iloc[2] - lum.pred_volume.iloc[1])


def test_splits_overview_and_patient_level_leakage(store_tables):
    cases, feats = store_tables
    mets = cases[cases.dataset == "brainmets_t2w_slices"].copy()

    def with_split(rule):
        out = mets.copy()
        out["metadata"] = [json.dumps({**json.loads(m), "split": rule(r)}) for m, r in
                           zip(out.metadata, out.itertuples(), strict=True)]
        return out

    by_subject = with_split(lambda r: "test" if r.subject.endswith("00235-000") else "train")
    by_slice = with_split(lambda r: "test" if int(r.timepoint) % 2 else "train")
    assert split_leakage(by_subject).empty
    leak = split_leakage(by_slice)
    assert len(leak) >= 1
    assert (leak.splits == "test, train").all()
    ov = split_overview(by_subject, feats)
    assert ov[ov.region == "metastasis"].cases.sum() == len(mets)
    test_row = ov[(ov.split == "test")].iloc[0]
    assert test_row.subjects == 1
    assert test_row.cases == (mets.subject.str.endswith("00235-000")).sum()
    vol = feats[(feats.dataset == "brainmets_t2w_slices") & (feats.source == "metastasis")
                & (feats.feature == "volume") & (feats.model == "")]
    assert ov.cases_with_lesion.sum() == (vol.value > 0).sum()
    with pytest.raises(ValueError, match="no split column"):
        split_overview(mets, feats)
