"""AUDIT round trip on AUDIT's own per-site tables: import-audit, then export --format audit, gives back the
input columns value for value (HAUS included), and what the import brings feeds the analyses."""

import numpy as np
import pandas as pd
import pytest

from segaudit.cli import main
from segaudit.store import ResultsStore
from segaudit.store.audit import AUDIT_METRIC_COLUMNS

BY_SITE = "audit_outputs/metrics/BraTS_2024_by_site"


@pytest.mark.parametrize("site", ["Indiana", "UCSD", "UCSF"])
def test_import_then_export_reproduces_every_column(tests_data, tmp_path, capsys, site):
    src = tests_data / BY_SITE / f"extracted_information_{site}.csv"
    run = tmp_path / "run"
    assert main(["import-audit", "--metrics", str(src), "--out", str(run)]) == 0
    assert main(["export", str(run), "--format", "audit", "--out", str(tmp_path / "exp")]) == 0
    assert f"{site}: HAUS from hd_audit" in capsys.readouterr().out
    raw = pd.read_csv(src)
    back = pd.read_csv(tmp_path / "exp" / src.name)
    assert list(back.columns) == AUDIT_METRIC_COLUMNS
    assert len(back) == len(raw)
    keys = ["ID", "region", "model"]
    both = raw.merge(back, on=keys, suffixes=("_in", "_out"), validate="one_to_one")
    assert len(both) == len(raw)
    assert raw.HAUS.notna().sum() > 0  # AUDIT's HAUS is there to lose
    for col in AUDIT_METRIC_COLUMNS:
        if col in keys:
            continue
        a, b = both[f"{col}_in"].to_numpy(float), both[f"{col}_out"].to_numpy(float)
        assert np.array_equal(np.isnan(a), np.isnan(b)), col
        assert np.array_equal(a[~np.isnan(a)], b[~np.isnan(b)]), col


def test_compare_on_an_audit_import_names_the_metrics_it_has(tests_data, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["import-audit", "--metrics", str(tests_data / BY_SITE / "extracted_information_UCSF.csv"),
                 "--out", str(run)]) == 0
    assert main(["compare", str(run), "--baseline", "BraTS25_3A", "--candidate", "BraTS25_3B",
                 "--metric", "hd95"]) == 2
    err = capsys.readouterr().err
    assert "no metric hd95 in this store; it has:" in err
    for name in ("dice", "hd_audit", "pred_volume", "sensitivity"):
        assert name in err


def test_imported_features_give_lesion_volumes_subjects_and_time_points(tests_data, tmp_path):
    metrics = tests_data / "audit_outputs/metrics/extracted_information_LUMIERE.csv"
    features = tests_data / "audit_outputs/features/extracted_information_LUMIERE.csv"
    run = tmp_path / "run"
    assert main(["import-audit", "--metrics", str(metrics), "--features", str(features), "--out", str(run)]) == 0
    raw = pd.read_csv(features, dtype={"longitudinal_id": str})
    raw_m = pd.read_csv(metrics)
    with ResultsStore(run, read_only=True) as store:
        cases = store.read("cases").set_index("case")
        f = store.read("features")
    # Subject and time point are AUDIT's own columns.
    for r in raw.itertuples():
        assert cases.loc[r.ID, "subject"] == r.longitudinal_id
        assert cases.loc[r.ID, "timepoint"] == str(r.time_point)
    gt = f[(f.model == "") & (f.group == "lesion") & (f.feature == "volume")].set_index(["case", "source"]).value
    for r in raw.itertuples():
        assert gt[(r.ID, "WT")] == r.lesion_size_whole
        assert gt[(r.ID, "EDE")] == r.lesion_size_ede
    # Predicted whole-tumour volume: the sum of AUDIT's SIZE over its (disjoint) labels, empty = 0.
    pred = f[(f.model == "nnUnet") & (f.source == "WT")].set_index("case").value
    one = raw_m[(raw_m.model == "nnUnet") & (raw_m.ID == raw.ID.iloc[0])]
    assert pred[raw.ID.iloc[0]] == pytest.approx(one.SIZE.fillna(0).sum())
