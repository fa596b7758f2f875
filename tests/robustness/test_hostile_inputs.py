"""Hostile and careless inputs (issue 13): each fails with one clear line and loses nothing.

Real files from the bundled data; the hostile parts (an alias bomb, a non-UTF-8 project file, a dangling
symlink, a symlink loop, a report aimed at the store or the project file) are made here.
"""

import os
import shutil
import subprocess

import pytest
import yaml

from conftest import tree_digest
from segaudit.dataset.project import load_project
from segaudit.errors import ConfigError
from segaudit.pipeline.scan import scan_project
from segaudit.store import ResultsStore

BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
    f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n" for i in range(8))


def run(*args, cwd=None):
    return subprocess.run(["segaudit", *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=600)


def _lumiere_project(tmp_path, demo_data):
    data = tmp_path / "data" / "LUMIERE"
    shutil.copytree(demo_data / "brats_audit" / "LUMIERE", data)
    proj = tmp_path / "segaudit.yaml"
    proj.write_text(yaml.safe_dump({"datasets": {"LUMIERE": {
        "root": str(data), "ground_truth": "{root}/LUMIERE_images/{case}/{case}_seg.nii.gz",
        "predictions": "{root}/LUMIERE_seg/{model}/{case}/{case}_pred.nii.gz", "label_convention": "audit"}}}))
    return proj, data


def test_yaml_alias_bomb_is_refused_before_expanding(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(BOMB)
    assert len(BOMB) < 600  # 9^9 = 387 million leaves once expanded
    with pytest.raises(ConfigError, match="aliases are not allowed"):
        load_project(path)
    r = run("scan", path, "--out", tmp_path / "run")
    assert r.returncode == 2
    assert "aliases are not allowed" in r.stderr
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_non_utf8_and_oversized_project_files_are_one_line_errors(tmp_path):
    latin = tmp_path / "latin1.yaml"
    latin.write_bytes("name: résumé\ndatasets: {}\n".encode("latin-1"))
    r = run("scan", latin, "--out", tmp_path / "run")
    assert r.returncode == 2
    assert "not UTF-8" in r.stderr
    assert str(latin) in r.stderr
    assert "Traceback" not in r.stderr
    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * 1_100_000 + "\ndatasets: {}\n")
    with pytest.raises(ConfigError, match="too large"):
        load_project(big)


def test_dangling_symlink_and_loop_fail_only_their_rows(tmp_path, demo_data):
    proj, data = _lumiere_project(tmp_path, demo_data)
    seg = data / "LUMIERE_seg"
    dangling = seg / "nnUnet" / "Patient-002-week-000" / "Patient-002-week-000_pred.nii.gz"
    dangling.unlink()
    dangling.symlink_to(tmp_path / "nowhere.nii.gz")
    loop = seg / "nnUnet" / "Patient-002-week-003" / "Patient-002-week-003_pred.nii.gz"
    loop.unlink()
    loop.symlink_to(loop)
    res = scan_project(load_project(proj), tmp_path / "run", progress=False)
    with ResultsStore(tmp_path / "run", read_only=True) as store:
        files = store.read("files")
        qc = store.read("qc")
    assert len(files) == 9  # every file of the 3 cases recorded, the scan finished
    bad = qc[qc.path.isin([str(dangling), str(loop)])]
    assert set(bad.path) == {str(dangling), str(loop)}
    assert (bad.severity != "info").all()
    good = files[(files.role == "ground_truth")]
    assert good.readable.all()
    assert res is not None


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file; the permission case needs a normal user")
def test_unreadable_file_is_one_row(tmp_path, demo_data):
    proj, data = _lumiere_project(tmp_path, demo_data)
    f = data / "LUMIERE_seg" / "nnUnet" / "Patient-002-week-000" / "Patient-002-week-000_pred.nii.gz"
    f.chmod(0)
    try:
        scan_project(load_project(proj), tmp_path / "run", progress=False)
        with ResultsStore(tmp_path / "run", read_only=True) as store:
            qc = store.read("qc")
        assert (qc[qc.path == str(f)].check == "unreadable").any()
    finally:
        f.chmod(0o644)


def test_report_never_overwrites_what_it_did_not_write(tmp_path, demo_data, capsys):
    """In this process (``cli.main``, the console script's function): seven commands, two full reports."""
    from segaudit.cli import main

    def segaudit(*args) -> tuple[int, str]:
        rc = main([str(a) for a in args])
        return rc, capsys.readouterr().err

    proj, _ = _lumiere_project(tmp_path, demo_data)
    run_dir = tmp_path / "run"
    rc, err = segaudit("evaluate", proj, "--out", run_dir, "--no-progress", "--lesion-matching", "none")
    assert rc == 0, err
    store_digest = tree_digest(run_dir)
    project_text = proj.read_text()
    for target in (proj, run_dir / "segaudit.duckdb", run_dir):
        rc, err = segaudit("report", run_dir, "--out", target, "--force")
        assert rc == 2, target
        assert "Traceback" not in err, target
    assert proj.read_text() == project_text
    assert tree_digest(run_dir) == store_digest
    out = tmp_path / "report.html"
    assert segaudit("report", run_dir, "--out", out)[0] == 0
    rc, err = segaudit("report", run_dir, "--out", out)
    assert rc == 2  # an existing report: replaced only when asked
    assert "--force" in err
    assert segaudit("report", run_dir, "--out", out, "--force")[0] == 0
