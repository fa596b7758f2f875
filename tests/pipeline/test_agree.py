"""The agree step end to end on real files: five glioma models without ground truth, and a project with one."""

import shutil
from itertools import combinations

import nibabel as nib
import numpy as np
import pytest
import yaml

from segaudit.cli import main
from segaudit.dataset import load_project
from segaudit.metrics import EvaluationOptions
from segaudit.pipeline.agree import agree_project
from segaudit.pipeline.evaluate import evaluate_project
from segaudit.store import ResultsStore

FAST = EvaluationOptions(lesion_matching="none")
REGIONS = {"NCR_NET": (1,), "ED": (2,), "ET": (4,), "WT": (1, 2, 4), "TC": (1, 4)}


def _glioma_project(tmp_path, root):
    path = tmp_path / "segaudit.yaml"
    path.write_text(yaml.safe_dump({"datasets": {"glioma": {
        "root": str(root), "predictions": "{root}/{case}/predictions/{model}.nii.gz",
        "label_convention": "brats2020"}}}))
    return path


@pytest.fixture
def glioma_copy(tmp_path, tests_data):
    dst = tmp_path / "glioma_5models"
    shutil.copytree(tests_data / "glioma_5models", dst)
    return dst


def _read(path):
    return np.asarray(nib.load(path).dataobj).astype(np.uint8)


def test_agree_on_five_models_without_ground_truth(tmp_path, tests_data):
    root = tests_data / "glioma_5models"
    project = load_project(_glioma_project(tmp_path, root))
    out = tmp_path / "run"
    res = agree_project(project, out, FAST, progress=False)
    assert res.errors.empty
    assert res.notes == []
    with ResultsStore(out, read_only=True) as store:
        m = store.query('SELECT m.*, r.step FROM metrics m JOIN runs r USING (run_id)')
    assert set(m.step) == {"agree"}
    assert m.metric.str.startswith("agree_").all()
    # Every value once.
    assert not m.duplicated(["dataset", "case", "model", "region", "metric"]).any()
    models = sorted(p.name[:-7] for p in (root / "TCGA-DU-7294" / "predictions").glob("*.nii.gz"))
    pairs = m[m.metric == "agree_dice"]
    assert sorted(pairs.model.unique()) == sorted(f"{a}~{b}" for a, b in combinations(models, 2))
    assert len(pairs) == 10 * 5
    assert set(pairs.region) == set(REGIONS)
    # Values read back from the store equal a direct count on the files (nibabel, numpy).
    maps = {k: _read(root / "TCGA-DU-7294" / "predictions" / f"{k}.nii.gz") for k in models}
    vol = m[m.metric == "agree_volume"].set_index(["model", "region"]).value
    a, b = "isen-20", "sanet0-20"
    for region, vals in REGIONS.items():
        for k in models:
            assert vol[(k, region)] == np.count_nonzero(np.isin(maps[k], vals))  # 1 mm voxels: mm3 = voxels
        x, y = np.isin(maps[a], vals), np.isin(maps[b], vals)
        dice = pairs[(pairs.model == f"{a}~{b}") & (pairs.region == region)].value.item()
        assert dice == pytest.approx(2 * np.count_nonzero(x & y) / (x.sum() + y.sum()), abs=1e-12)
    per_model = m[m.metric.isin(["agree_loo_dice", "agree_staple_sensitivity"])]
    assert set(per_model.model) == set(models)


def test_resume_force_and_a_new_model(tmp_path, glioma_copy):
    project = load_project(_glioma_project(tmp_path, glioma_copy))
    out = tmp_path / "run"
    agree_project(project, out, FAST, progress=False)
    again = agree_project(project, out, FAST, progress=False)
    assert again.skipped == [("glioma", "TCGA-DU-7294")]
    forced = agree_project(project, out, FAST, progress=False, force=True)
    assert forced.skipped == []
    assert not forced.metrics.duplicated(["case", "model", "region", "metric"]).any()
    # A sixth model appears: the case is compared again, with the new pairs.
    preds = glioma_copy / "TCGA-DU-7294" / "predictions"
    shutil.copy(glioma_copy / "TCGA-DU-7294" / "fusion" / "mav.nii.gz", preds / "mav.nii.gz")
    six = agree_project(project, out, FAST, progress=False)
    assert six.skipped == []
    assert six.metrics[six.metrics.metric == "agree_dice"].model.nunique() == 15
    assert not six.metrics.duplicated(["case", "model", "region", "metric"]).any()


def test_broken_prediction_is_an_error_and_the_others_are_compared(tmp_path, glioma_copy):
    (glioma_copy / "TCGA-DU-7294" / "predictions" / "scan-20.nii.gz").write_bytes(b"not a nifti")
    project = load_project(_glioma_project(tmp_path, glioma_copy))
    res = agree_project(project, tmp_path / "run", FAST, progress=False)
    err = res.errors
    assert list(err.model) == ["scan-20"]
    assert (err.step == "agree").all()
    assert "scan-20.nii.gz" in err.path.item()
    assert res.metrics[res.metrics.metric == "agree_dice"].model.nunique() == 6  # 4 models left: 6 pairs
    assert not res.metrics.model.str.contains("scan-20").any()


def test_agree_and_evaluate_share_a_store_without_deleting_each_other(tmp_path, brats_copy):
    for case in ("Patient-002-week-003", "Patient-002-week-021"):  # one case is enough, and fast
        for folder in brats_copy.glob(f"LUMIERE/*/{case}"):
            shutil.rmtree(folder)
        for folder in brats_copy.glob(f"LUMIERE/LUMIERE_seg/*/{case}"):
            shutil.rmtree(folder)
    path = tmp_path / "lumiere.yaml"
    path.write_text(yaml.safe_dump({"datasets": {"LUMIERE": {
        "root": str(brats_copy / "LUMIERE"),
        "ground_truth": "{root}/LUMIERE_images/{case}/{case}_seg.nii.gz",
        "predictions": "{root}/LUMIERE_seg/{model}/{case}/{case}_pred.nii.gz",
        "label_convention": "audit"}}}))
    project = load_project(path)
    out = tmp_path / "run"

    def counts():
        with ResultsStore(out, read_only=True) as store:
            return store.query("SELECT r.step, count(*) AS n FROM metrics m JOIN runs r USING (run_id) "
                               "GROUP BY r.step").set_index("step").n.to_dict()

    evaluate_project(project, out, FAST, progress=False)
    agree_project(project, out, FAST, progress=False)
    first = counts()
    assert set(first) == {"evaluate", "agree"}
    evaluate_project(project, out, FAST, progress=False, force=True)  # keyed on the same (case, model)...
    agree_project(project, out, FAST, progress=False, force=True)
    assert counts() == first  # ...yet each step replaced only its own rows
    with ResultsStore(out, read_only=True) as store:
        m = store.query('SELECT dataset, "case", model, region, metric FROM metrics')
    assert not m.duplicated().any()


def test_cli_agree_and_evaluate_without_ground_truth(tmp_path, tests_data, capsys):
    yaml_path = _glioma_project(tmp_path, tests_data / "glioma_5models")
    out = tmp_path / "run"
    assert main(["evaluate", str(yaml_path), "--out", str(out), "--no-progress"]) == 0
    said = capsys.readouterr().out
    assert "no ground truth" in said  # was a silent no-op
    assert "segaudit agree" in said
    assert main(["agree", str(yaml_path), "--out", str(out), "--no-progress", "--consensus", "staple"]) == 0
    said = capsys.readouterr().out
    assert "WT: pairwise Dice" in said
    assert "outlier model" in said
    with ResultsStore(out, read_only=True) as store:
        runs = store.read("runs")
        n = store.query("SELECT count(*) AS n FROM metrics WHERE metric = 'agree_dice'").n.item()
    assert set(runs.step) == {"evaluate", "agree"}
    assert n == 50
    assert '"consensus": "staple"' in runs[runs.step == "agree"].config.item()
