import json

import duckdb
import pandas as pd

from segaudit.pipeline.demo import demo_project
from segaudit.pipeline.scan import resolve_project, scan_project
from segaudit.store import ResultsStore


def test_demo_scan_counts_and_store(tmp_path):
    """The scan of the bundled demo project; what the demo's later steps store is checked on the store of
    ``segaudit demo`` itself (tests/test_cli.py::test_demo_command): the whole demo runs once in the suite."""
    out = tmp_path / "run"
    result = scan_project(demo_project(), out, progress=False)
    s = result.summary.set_index("dataset")
    assert s.loc["BraTS2020", ["cases", "files", "missing", "errors"]].tolist() == [2, 9, 1, 0]
    assert s.loc["BraTS2024_PED", ["cases", "models", "files"]].tolist() == [2, "SegResNet,nnUnet", 6]
    assert s.loc["LUMIERE", ["cases", "subjects"]].tolist() == [3, 1]
    assert s.loc["UCSF", "models"] == "SegResNet"
    assert s.loc["fundus_exudates", ["cases", "files", "errors"]].tolist() == [6, 18, 0]
    assert s.loc["brainmets_t2w_slices", ["cases", "subjects", "files"]].tolist() == [24, 5, 72]
    q = result.qc
    # the traps the sample data README lists, each found
    assert q[(q.check == "missing_file")].case.tolist() == ["BraTS20_Training_369"]
    empty = q[q.check == "empty_label"]
    assert set(zip(empty.dataset, empty.case, empty.key, strict=True)) == {
        ("BraTS2024_PED", "BraTS2024_PED-00266-000", ""),  # only necrosis in the ground truth: ENH and EDE
        ("BraTS2024_PED", "BraTS2024_PED-00001-000", "nnUnet"),  # nnUnet predicts no enhancing tumour
        ("LUMIERE", "Patient-002-week-021", ""),
    }
    assert len(empty[empty.case == "BraTS2024_PED-00266-000"]) == 2
    assert len(q[q.check == "empty_mask"]) == 4  # four metastasis slices the U-Net leaves empty

    con = duckdb.connect(str(out / "segaudit.duckdb"), read_only=True)
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert {"cases", "files", "qc", "runs"} <= tables
    assert con.execute("SELECT count(*) FROM cases").fetchone()[0] == 39
    assert con.execute("SELECT count(*) FROM qc").fetchone()[0] == len(q)
    run = con.execute("SELECT step, status, config_hash, packages FROM runs ORDER BY started_at").fetchone()
    assert run[0] == "scan"
    assert run[1] == "ok"
    assert run[2] == demo_project().config_hash
    assert "nibabel" in json.loads(run[3])
    meta = con.execute("SELECT metadata FROM cases WHERE \"case\" = 'IDRiD_02'").fetchone()[0]
    assert json.loads(meta)["pred_dice_vs_gt"] == "0.665"
    spacing = con.execute("SELECT DISTINCT spacing FROM files WHERE dataset='LUMIERE' AND readable").fetchall()
    assert spacing == [("(1, 1, 1)",)]
    con.close()


def test_rescan_replaces_only_its_own_rows(tmp_path, demo_data, tests_data):
    out = tmp_path / "run"
    chest, _ = resolve_project(tests_data / "chest_xray_lungs")
    fundus, _ = resolve_project(demo_data / "fundus_exudates")
    scan_project(chest, out, progress=False)
    scan_project(fundus, out, progress=False)
    with ResultsStore(out) as store:
        store.replace("metrics", pd.DataFrame([{"dataset": "chest_xray_lungs", "case": "x", "model": "m",
                                                "region": "lung", "metric": "dice", "value": 0.5}]))
    scan_project(chest, out, progress=False)
    with ResultsStore(out, read_only=True) as store:
        counts = store.query("SELECT dataset, count(*) AS n FROM cases GROUP BY dataset ORDER BY dataset")
        assert counts.values.tolist() == [["chest_xray_lungs", 5], ["fundus_exudates", 6]]
        assert len(store.read("metrics")) == 1  # another step's rows survive a re-scan
        assert len(store.read("runs")) == 3
        assert store.query("SELECT count(*) AS n FROM files WHERE dataset='chest_xray_lungs'").n[0] == 10


def test_export_csv_and_parquet(tmp_path, tests_data):
    out = tmp_path / "run"
    project, _ = resolve_project(tests_data / "histology_consep")
    result = scan_project(project, out, progress=False)
    assert result.summary.iloc[0][["cases", "files", "errors"]].tolist() == [10, 30, 0]
    with ResultsStore(out, read_only=True) as store:
        csvs = store.export(tmp_path / "csv", "csv")
        store.export(tmp_path / "pq", "parquet")
    assert {p.name for p in csvs} >= {"qc.csv", "files.csv", "cases.csv", "runs.csv"}
    qc = pd.read_csv(tmp_path / "csv" / "qc.csv")
    assert (qc.check == "noncontiguous_instances").sum() == 10
    n = duckdb.sql(f"SELECT count(*) FROM read_parquet('{tmp_path / 'pq' / 'files.parquet'}')").fetchall()[0][0]
    assert n == 30
    assert not list((tmp_path / "csv").glob(".*"))  # no temporary files left behind


def test_parallel_scan_equals_serial(demo_data):
    project, _ = resolve_project(demo_data / "brainmets_t2w_slices")
    a = scan_project(project, progress=False, workers=1)
    b = scan_project(project, progress=False, workers=2)
    pd.testing.assert_frame_equal(a.qc, b.qc)
    pd.testing.assert_frame_equal(a.files, b.files)
