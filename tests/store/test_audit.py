"""AUDIT compatibility: AUDIT's own output tables import; our metrics export in AUDIT's format."""

import numpy as np
import pandas as pd
import pytest

from segaudit.errors import SegauditError
from segaudit.store import ResultsStore
from segaudit.store.audit import AUDIT_METRIC_COLUMNS, export_audit, import_audit, read_audit_metrics


def test_all_audit_metric_tables_import(tests_data, tmp_path):
    files = sorted((tests_data / "audit_outputs" / "metrics").rglob("*.csv"))
    assert len(files) == 7
    features = sorted((tests_data / "audit_outputs" / "features").rglob("*.csv"))
    counts = import_audit(tmp_path / "imp", files, features)
    with ResultsStore(tmp_path / "imp", read_only=True) as store:
        m = store.read("metrics")
        f = store.read("features")
    assert counts["metrics"] == len(m)
    assert counts["features"] == len(f)
    ucsd = m[m.dataset == "UCSD"]
    assert set(ucsd.model) == {"BraTS25_1", "BraTS25_2", "BraTS25_3A", "BraTS25_3B"}
    assert set(ucsd.region) == {"ET", "NETC", "SNFH", "RC"}
    assert {"dice", "iou", "hd_audit", "pred_volume"} <= set(m.metric)
    # Values arrive unchanged: compare with the raw CSV.
    raw = pd.read_csv(files[0])
    first = raw.iloc[0]
    got = m[(m.case == first.ID) & (m.region == first.region) & (m.model == first.model) & (m.metric == "dice")]
    assert got.value.iloc[0] == pytest.approx(first.DICE)
    # Empty cells stay NaN (never 0).
    assert m.value.isna().sum() == sum(pd.read_csv(p).drop(columns=["ID", "region", "model"]).isna().sum().sum()
                                       for p in files)
    assert {"BraTS2020", "BraTS2024_SSA", "Indiana", "LUMIERE"} == set(f[f.model == ""].dataset)
    # Each model's predicted volumes (AUDIT's SIZE) are lesion features of every metric table's dataset.
    assert set(m.dataset) == set(f[f.model != ""].dataset)


def test_all_shared_audit_tables_import(sample_data, tmp_path):
    root = sample_data / "audit_outputs"
    counts = import_audit(tmp_path / "imp", sorted((root / "metrics").rglob("*.csv")),
                          sorted((root / "features").rglob("*.csv")))
    assert counts["metrics"] > 50_000
    assert counts["features"] > 100_000


def test_bad_tables_are_refused_with_the_file_name(tmp_path):
    bad = tmp_path / "extracted_information_X.csv"
    bad.write_text("case,score\na,1\n")
    with pytest.raises(SegauditError, match="extracted_information_X.csv.*not an AUDIT metric table"):
        read_audit_metrics(bad)


def test_export_round_trip(tmp_path):
    rows = []
    for case, region, dice in [("c1", "WT", 0.8), ("c1", "TC", np.nan), ("c2", "WT", 1.0)]:
        for metric, value in {"dice": dice, "iou": 0.5, "accuracy": 0.99, "precision": 0.7, "sensitivity": 0.9,
                              "specificity": 0.999, "hd": 3.0, "pred_volume": 100.0}.items():
            rows.append({"dataset": "D", "case": case, "model": "m", "region": region, "metric": metric,
                         "value": value, "run_id": "r"})
    with ResultsStore(tmp_path / "s") as store:
        store.replace("metrics", pd.DataFrame(rows))
        [path] = export_audit(store, tmp_path / "exp")
    table = pd.read_csv(path)
    assert list(table.columns) == AUDIT_METRIC_COLUMNS
    assert len(table) == 3
    assert np.isnan(table.set_index(["ID", "region"]).loc[("c1", "TC"), "DICE"])
    back = read_audit_metrics(path, "D").set_index(["case", "region", "metric"]).value
    assert back[("c1", "WT", "dice")] == 0.8
    assert back[("c2", "WT", "pred_volume")] == 100.0
