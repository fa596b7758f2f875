"""The per-case wide table and the per-case mean over regions, on AUDIT's UCSF per-site table (the cases of
AUDIT's tutorial figure 8: UCSF-00005-100/101 go from about 0.70 to 0.94 between BraTS25_3A and BraTS25_3B)."""

import re

import numpy as np
import pandas as pd
import pytest

from segaudit.analysis.per_case import per_case_table
from segaudit.cli import main
from segaudit.store.audit import read_audit_metrics

UCSF = "audit_outputs/metrics/BraTS_2024_by_site/extracted_information_UCSF.csv"
CASES = ("UCSF-00005-100", "UCSF-00005-101")


@pytest.fixture
def run(tests_data, tmp_path):
    out = tmp_path / "run"
    assert main(["import-audit", "--metrics", str(tests_data / UCSF), "--out", str(out)]) == 0
    return out


def test_compare_lists_each_cases_mean_over_regions(run, tests_data, capsys):
    capsys.readouterr()
    assert main(["compare", str(run), "--baseline", "BraTS25_3A", "--candidate", "BraTS25_3B", "--aggregate",
                 "mean-over-regions", "--cases", ",".join(CASES)]) == 0
    out = capsys.readouterr().out
    raw = pd.read_csv(tests_data / UCSF)
    for case in CASES:
        # The mean of AUDIT's four DICE values of the case, straight from the CSV.
        a = raw[(raw.ID == case) & (raw.model == "BraTS25_3A")].DICE.mean()
        b = raw[(raw.ID == case) & (raw.model == "BraTS25_3B")].DICE.mean()
        assert round(a, 2) == 0.70  # the tutorial's figures
        assert round(b, 2) == 0.94
        line = next(ln for ln in out.splitlines() if case in ln)
        nums = [float(x) for x in re.findall(r"-?\d+\.\d+", line)]
        assert nums[:3] == pytest.approx([a, b, b - a], abs=1e-4)
        assert "mean" in line


def test_wide_table_is_one_row_per_case_and_model_with_the_csv_values(tests_data):
    raw = pd.read_csv(tests_data / UCSF)
    wide = per_case_table(read_audit_metrics(tests_data / UCSF))
    assert len(wide) == raw[["ID", "model"]].drop_duplicates().shape[0]
    assert not wide.duplicated(["dataset", "case", "model"]).any()
    idx = wide.set_index(["case", "model"])
    for r in raw.itertuples():
        for col, metric in (("DICE", "dice"), ("HAUS", "hd_audit"), ("SIZE", "pred_volume")):
            got = idx.loc[(r.ID, r.model), f"{metric} {r.region}"]
            v = getattr(r, col)
            assert (np.isnan(got) and np.isnan(v)) or got == v
        assert idx.loc[(r.ID, r.model), "dice mean"] == pytest.approx(
            raw[(raw.ID == r.ID) & (raw.model == r.model)].DICE.mean())


def test_export_wide_writes_the_same_table(run, tests_data, tmp_path):
    assert main(["export", str(run), "--format", "wide", "--out", str(tmp_path / "exp")]) == 0
    got = pd.read_csv(tmp_path / "exp" / "per_case_wide.csv")
    ref = per_case_table(read_audit_metrics(tests_data / UCSF))
    pd.testing.assert_frame_equal(got, ref, check_dtype=False)


def test_wide_table_of_two_datasets_lists_only_each_datasets_own_cases(tests_data):
    """Two real AUDIT sites in one table: no row for a case of one site under the other (pivot_table's
    dropna=False built every dataset × case × model combination)."""
    from segaudit.analysis.per_case import per_case_table
    from segaudit.store.audit import read_audit_metrics

    site = tests_data / "audit_outputs" / "metrics" / "BraTS_2024_by_site"
    m = pd.concat([read_audit_metrics(site / f"extracted_information_{s}.csv") for s in ("UCSD", "Indiana")])
    t = per_case_table(m)
    assert len(t) == len(m[["dataset", "case", "model"]].drop_duplicates())
    assert not t.duplicated(["dataset", "case", "model"]).any()
