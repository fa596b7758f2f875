"""``segaudit export`` never overwrites a file it did not export, and replaces its own only with --force."""

import pandas as pd
import pytest

from segaudit.cli import main

AUDIT_CSV = "audit_outputs/metrics/BraTS_2024_by_site/extracted_information_Indiana.csv"


@pytest.fixture
def store(tmp_path, tests_data):
    run = tmp_path / "run"
    assert main(["import-audit", "--metrics", str(tests_data / AUDIT_CSV), "--out", str(run)]) == 0
    return run


def test_a_datasets_own_cases_csv_is_never_overwritten(store, tmp_path, capsys):
    data = tmp_path / "dataset"
    data.mkdir()
    own = data / "cases.csv"
    own.write_text("case,site,age\nBraTS-001,Indiana,54\n")
    before = own.read_bytes()
    assert main(["export", str(store), "--out", str(data)]) == 2
    err = capsys.readouterr().err
    assert str(own) in err
    assert "not a segaudit export output" in err
    assert own.read_bytes() == before
    assert sorted(p.name for p in data.iterdir()) == ["cases.csv"]  # checked before writing: nothing else written
    # --force replaces earlier exports only, never someone else's file.
    assert main(["export", str(store), "--out", str(data), "--force"]) == 2
    assert own.read_bytes() == before


def test_an_earlier_export_is_replaced_only_with_force(store, tmp_path, capsys):
    out = tmp_path / "export"
    assert main(["export", str(store), "--out", str(out)]) == 0
    metrics = pd.read_csv(out / "metrics.csv")
    assert main(["export", str(store), "--out", str(out)]) == 2
    assert "use --force to replace it" in capsys.readouterr().err
    assert main(["export", str(store), "--out", str(out), "--force"]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(out / "metrics.csv"), metrics)


@pytest.mark.parametrize(("fmt", "prefix"), [("audit", "extracted_information_"), ("wide", "per_case_wide.csv")])
def test_audit_and_wide_exports_follow_the_same_rule(store, tmp_path, capsys, fmt, prefix):
    out = tmp_path / fmt
    assert main(["export", str(store), "--format", fmt, "--out", str(out)]) == 0
    written = sorted(p.name for p in out.iterdir())
    assert written
    assert all(n.startswith(prefix) for n in written), written
    target = out / written[0]
    assert main(["export", str(store), "--format", fmt, "--out", str(out)]) == 2
    assert main(["export", str(store), "--format", fmt, "--out", str(out), "--force"]) == 0
    target.write_text("patient,score\n1,2\n")  # someone else's file under that name
    assert main(["export", str(store), "--format", fmt, "--out", str(out), "--force"]) == 2
    assert target.read_text() == "patient,score\n1,2\n"
    assert "not a segaudit export output" in capsys.readouterr().err
