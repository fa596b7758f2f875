"""The installed ``segaudit`` console script, run as a user runs it."""

import subprocess
import sys

import pytest
import yaml

from conftest import tree_digest


def run(*args, cwd=None):
    return subprocess.run(["segaudit", *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=600)


def test_init_writes_outside_data_and_scan_uses_it(tmp_path, demo_data):
    before = tree_digest(demo_data / "fundus_exudates")
    r = run("init", demo_data / "fundus_exudates", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "flat2d" in r.stdout
    proj = tmp_path / "segaudit.yaml"
    data = yaml.safe_load(proj.read_text())
    # The lossless PNG masks are the ground truth, never a JPEG copy of them.
    assert "/masks_EX_binary_png/" in data["datasets"]["fundus_exudates"]["ground_truth"]
    assert data["datasets"]["fundus_exudates"]["prediction_encoding"]["channel"] == "red"
    r = run("init", demo_data / "fundus_exudates", cwd=tmp_path)
    assert r.returncode == 2
    assert "already exists" in r.stderr
    r = run("scan", proj, "--out", tmp_path / "res", "--no-progress", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "fundus_exudates" in r.stdout
    assert "Results store" in r.stdout
    r = run("export", tmp_path / "res", "--format", "parquet", "--out", tmp_path / "exp")
    assert r.returncode == 0
    assert (tmp_path / "exp" / "qc.parquet").is_file()
    assert tree_digest(demo_data / "fundus_exudates") == before


def test_init_refuses_data_folder(tmp_path, tests_data):
    r = run("init", tests_data / "histology_consep", "--out", tests_data / "histology_consep" / "p.yaml")
    assert r.returncode == 2
    assert "refusing to write into the data folder" in r.stderr
    assert not (tests_data / "histology_consep" / "p.yaml").exists()


def test_scan_data_dir_without_yaml(tmp_path, tests_data):
    r = run("scan", tests_data / "brats_audit" / "BraTS2024_SSA", "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "AUDIT layout" in r.stdout
    assert "direction_mismatch" in r.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["scan", "nope.yaml"], "nope.yaml: project file not found"),
    (["scan", "README"], "not a project file"),
    (["export", "nowhere"], "no results store here"),
])
def test_errors_are_one_line(tmp_path, args, message):
    (tmp_path / "README").write_text("x")
    r = run(*args, cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0
    assert message in r.stderr
    assert "Traceback" not in r.stderr


def test_bad_yaml_key_one_line_and_debug_traceback(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text("datasets:\n  A: {root: ., ground_truth: '{root}/{case}.png', colour: red}\n")
    r = run("scan", p)
    assert r.returncode == 2
    assert "unknown key(s) 'colour'" in r.stderr
    assert "Traceback" not in r.stderr
    r = run("--debug", "scan", p)
    assert r.returncode != 0
    assert "Traceback" in r.stderr


def test_demo_command(tmp_path):
    r = run("demo", "--out", tmp_path / "demo", "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "BraTS20_Training_369" in r.stdout
    assert "missing sequence 't1'" in r.stdout
    assert "Evaluation" in r.stdout
    assert "brainmets_t2w_slices" in r.stdout
    assert "Features: per dataset" in r.stdout
    assert "sequence t1 not found" in r.stdout
    assert "Report:" in r.stdout
    assert (tmp_path / "demo" / "report.html").stat().st_size > 100_000
    # What the demo's steps stored (its scan is checked in tests/pipeline/test_scan.py): the demo runs once.
    import duckdb

    con = duckdb.connect(str(tmp_path / "demo" / "segaudit.duckdb"), read_only=True)
    try:
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        assert {"cases", "files", "qc", "runs", "metrics", "lesions", "features", "errors"} <= tables
        assert con.execute("SELECT count(*) FROM cases").fetchone()[0] == 39
        # Every case-model is evaluated: 2x2 PED, 3x2 LUMIERE, 2 UCSF, 6 fundus, 24 metastasis slices.
        n = con.execute('SELECT count(*) FROM (SELECT DISTINCT dataset, "case", model FROM metrics)').fetchone()[0]
        assert n == 4 + 6 + 2 + 6 + 24
        empty_preds = con.execute("SELECT count(*) FROM metrics WHERE dataset = 'brainmets_t2w_slices' AND "
                                  "metric = 'pred_empty' AND value = 1").fetchone()[0]
        assert empty_preds == 4  # the four slices the U-Net leaves empty are flagged, not hidden
        assert con.execute("SELECT count(*) FROM errors WHERE step = 'evaluate'").fetchone()[0] == 0
        # Features: the demo's traps are recorded, nothing fails: 369's missing T1, labels empty in the ground
        # truth, and the colour fundus photos split into channels (info).
        feat_err = con.execute('SELECT "case", severity, message FROM errors WHERE step = \'features\'').fetchall()
        assert not [e for e in feat_err if e[1] == "error"]
        assert any(c == "BraTS20_Training_369" and "sequence t1 not found" in m for c, _, m in feat_err)
        assert sum("colour image" in m for _, _, m in feat_err) == 6
        assert con.execute('SELECT count(DISTINCT (dataset, "case")) FROM features').fetchone()[0] == 39
    finally:
        con.close()


def test_module_entry_point():
    r = subprocess.run([sys.executable, "-m", "segaudit.cli", "--version"], capture_output=True, text=True)
    assert r.returncode == 0
    assert "segaudit" in r.stdout


def test_slices_command(tmp_path, tests_data):
    r = run("slices", tests_data / "brats_audit" / "BraTS2024_SSA", "--out", tmp_path / "sl", "--format", "png",
            "--nonempty", "--norm", "percentile", "--no-progress")
    assert r.returncode == 0, r.stderr
    pngs = list((tmp_path / "sl").rglob("*.png"))
    masks = [p for p in pngs if p.parent.name == "mask"]
    assert masks  # four sequences + the mask per slice
    assert len(pngs) == 5 * len(masks)


def test_evaluate_export_audit_and_explain(tmp_path, brats_copy):
    before = tree_digest(brats_copy)
    proj = tmp_path / "p.yaml"
    proj.write_text(yaml.safe_dump({"datasets": {"UCSF": {
        "root": str(brats_copy / "UCSF"), "ground_truth": "{root}/UCSF_images/{case}/{case}_seg.nii.gz",
        "predictions": "{root}/UCSF_seg/{model}/{case}/{case}_pred.nii.gz", "label_convention": "audit"}}}))
    r = run("evaluate", proj, "--out", tmp_path / "res", "--no-progress", "--surface", "voxel", "--tolerance", "2")
    assert r.returncode == 0, r.stderr
    assert "Evaluation summary (voxel surfaces" in r.stdout
    assert "UCSF" in r.stdout
    r = run("evaluate", proj, "--out", tmp_path / "res", "--no-progress", "--surface", "voxel", "--tolerance", "2")
    assert "2 case-model(s) already scored" in r.stdout
    r = run("export", tmp_path / "res", "--format", "audit", "--out", tmp_path / "exp")
    assert r.returncode == 0, r.stderr
    head = (tmp_path / "exp" / "extracted_information_UCSF.csv").read_text().splitlines()[0]
    assert head == "ID,region,DICE,JACC,ACCU,PREC,SENS,SPEC,HAUS,SIZE,model"
    r = run("metrics", "--explain")
    assert r.returncode == 0
    assert "hd95" in r.stdout
    assert "penalty" in r.stdout
    r = run("evaluate", proj, "--out", tmp_path / "res2", "--surface", "mesh")
    assert r.returncode == 2
    assert tree_digest(brats_copy) == before


def test_import_audit_cli(tmp_path, tests_data):
    r = run("import-audit", "--metrics", tests_data / "audit_outputs" / "metrics" / "BraTS_2024_by_site" /
            "extracted_information_Indiana.csv", "--out", tmp_path / "imp")
    assert r.returncode == 0, r.stderr
    assert "metrics row(s)" in r.stdout
    r = run("import-audit", "--out", tmp_path / "imp")
    assert r.returncode == 2
    assert "at least one AUDIT table" in r.stderr


@pytest.mark.parametrize(("verb", "section", "says"), [
    ("evaluate", "evaluate: {surfce: voxel}", "evaluate: unknown key(s) 'surfce'; allowed keys: "),
    ("evaluate", "evaluate: {surface: cube}", "evaluate.surface must be one of surfel, voxel, not 'cube'"),
    ("agree", "evaluate: {percentile: 0}", "evaluate.percentile must be a number in (0, 100], not 0"),
    ("scan", "qc: {spacing_tol: abc}", "qc.spacing_tol must be a number >= 0, not 'abc'"),
    ("features", "features: {bin_count: 0}", "features.bin_count must be an integer >= 1 (or null), not 0"),
])
def test_bad_option_sections_are_one_line_naming_file_and_entry(tmp_path, verb, section, says):
    p = tmp_path / "p.yaml"
    p.write_text(f"datasets:\n  A: {{root: ., ground_truth: '{{root}}/{{case}}.nii.gz'}}\n{section}\n")
    r = run(verb, p, "--out", tmp_path / "res", "--no-progress", cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    assert r.stderr.strip().count("\n") == 0, r.stderr
    assert f"error: {p}: {says}" in r.stderr, r.stderr
    assert not (tmp_path / "res").exists()  # refused before anything ran


@pytest.mark.parametrize(("text", "says"), [
    ("", "empty file, no header row"),
    ("id,a,b\n", "no item has both a 'a' and a 'b' outcome"),
])
def test_flips_on_an_empty_csv_is_one_line(tmp_path, text, says):
    (tmp_path / "o.csv").write_text(text)
    r = run("flips", tmp_path / "o.csv", "--baseline", "a", "--candidate", "b")
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    assert says in r.stderr, r.stderr


@pytest.mark.parametrize(("verb", "flag", "says"), [
    ("evaluate", ["--dilation", "-4"], "argument --dilation: must be an integer >= 0, not -4"),
    ("evaluate", ["--connectivity", "7"], "argument --connectivity: must be one of 4, 6, 8, 18, 26, not 7"),
    ("evaluate", ["--percentile", "0"], "argument --percentile: must be a number in (0, 100], not 0"),
    ("evaluate", ["--tolerance", "-1"], "argument --tolerance: must be a number >= 0, not -1"),
    ("evaluate", ["--iou-threshold", "1"], "argument --iou-threshold: must be a number in [0, 1), not 1"),
    ("evaluate", ["--penalty", "0"], "argument --penalty: must be a number > 0, not 0"),
    ("agree", ["--workers", "0"], "argument --workers: must be an integer >= 1, not 0"),
    ("features", ["--bin-count", "0"], "argument --bin-count: must be an integer >= 1, not 0"),
    ("features", ["--bin-width", "-2"], "argument --bin-width: must be a number > 0, not -2"),
])
def test_option_values_are_checked_at_parse_time(tmp_path, demo_data, verb, flag, says):
    r = run(verb, demo_data / "segaudit.yaml", "--out", tmp_path / "res", "--no-progress", *flag)
    assert r.returncode == 2, r.stderr
    assert says in r.stderr, r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    assert not (tmp_path / "res").exists()  # nothing ran


def test_a_run_whose_every_job_failed_exits_non_zero(tmp_path, demo_data):
    # Connectivity 6 is a 3D neighbourhood: every 2D fundus case-model fails (it used to exit 0, or crash
    # printing a summary of nothing).
    r = run("evaluate", demo_data / "segaudit.yaml", "--dataset", "fundus_exudates", "--connectivity", "6",
            "--out", tmp_path / "res", "--no-progress")
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("segaudit: error: every one of the 6 case-model(s) of this run failed (first: ")
    assert "connectivity 6 is not valid in 2D" in last
