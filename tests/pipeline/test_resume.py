"""Resuming by content (issue 13, stale results): a changed input file is re-scored, a vanished case is dropped.

Real files: the bundled axial brain-metastasis slices (ground truth PNG, U-Net prediction drawn in green JPEG),
copied to a temporary folder where they are replaced, edited and deleted. The reference Dice is computed here
from the files on disk with numpy and PIL (2|A∩B| / (|A|+|B|)), not by segaudit.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

import segaudit
from segaudit.analysis.coverage import expected_cases
from segaudit.dataset import load_project
from segaudit.features.case import FeatureOptions
from segaudit.io.fingerprint import EDGE_BYTES, file_fingerprint
from segaudit.metrics import EvaluationOptions
from segaudit.pipeline.agree import agree_project
from segaudit.pipeline.evaluate import evaluate_project
from segaudit.pipeline.features import extract_project
from segaudit.pipeline.scan import scan_project
from segaudit.store import ResultsStore

FAST = EvaluationOptions(lesion_matching="none", distances=False)
SRC = Path(segaudit.__file__).resolve().parents[1]  # subprocesses run the code this test imports


def _slices(tmp_path: Path, demo_data: Path, n: int = 4, models=("unet",), pred_suffix: str = ".jpg"):
    """A project of ``n`` real slices (image, ground truth, one prediction per model) in ``tmp_path/data``."""
    src = demo_data / "brainmets_t2w_slices"
    cases = sorted(p.stem for p in (src / "images").glob("*.jpg"))[:n]
    root = tmp_path / "data"
    for sub, ext in (("images", ".jpg"), ("masks_binary_png", ".png")):
        (root / sub).mkdir(parents=True)
        for c in cases:
            shutil.copy2(src / sub / f"{c}{ext}", root / sub / f"{c}{ext}")
    for m in models:
        (root / f"pred_{m}").mkdir()
        for c in cases:
            if pred_suffix == ".jpg":
                shutil.copy2(src / "pred_unet_jpg" / f"{c}.jpg", root / f"pred_{m}" / f"{c}.jpg")
            else:  # an uncompressed copy (BMP: > 2 x 64 KiB, so edges and middle differ)
                img = Image.open(src / "pred_unet_jpg" / f"{c}.jpg").convert("RGB")
                img.save(root / f"pred_{m}" / f"{c}{pred_suffix}")
    proj = tmp_path / "segaudit.yaml"
    proj.write_text(yaml.safe_dump({"datasets": {"mets": {
        "root": str(root), "images": "{root}/images/{case}.jpg",
        "ground_truth": "{root}/masks_binary_png/{case}.png",
        "predictions": {m: f"{{root}}/pred_{m}/{{case}}{pred_suffix}" for m in models},
        "labels": {"metastasis": 1}, "mask_encoding": {"kind": "binary", "threshold": 127},
        "prediction_encoding": {"kind": "binary", "channel": "green", "threshold": 64}}}}))
    return proj, root, cases


def _dice(gt: Path, pred: Path) -> float:
    """Dice of the files on disk: ground truth grey > 127, prediction green channel > 64."""
    a = np.asarray(Image.open(gt).convert("L")) > 127
    b = np.asarray(Image.open(pred).convert("RGB"))[..., 1] > 64
    return float(2 * (a & b).sum() / (a.sum() + b.sum()))


def _stored_dice(run: Path, case: str, model: str = "unet") -> float:
    with ResultsStore(run, read_only=True) as store:
        m = store.metrics(["mets"])
    return float(m[(m.case == case) & (m.model == model) & (m.metric == "dice")].value.iloc[0])


def test_replaced_prediction_is_rescored_and_the_rest_skipped(tmp_path, demo_data):
    proj, root, cases = _slices(tmp_path, demo_data)
    run = tmp_path / "run"
    first = evaluate_project(load_project(proj), run, FAST, progress=False)
    assert first.changed == {}
    assert first.dropped == []
    a, b = cases[0], cases[1]
    gt_a = root / "masks_binary_png" / f"{a}.png"
    before = _stored_dice(run, a)
    assert before == pytest.approx(_dice(gt_a, root / "pred_unet" / f"{a}.jpg"))
    # An unchanged re-run skips everything.
    again = evaluate_project(load_project(proj), run, FAST, progress=False)
    assert again.changed == {}
    assert len(again.skipped) == len(cases)
    # Replace A's prediction by B's (another file, another content): A alone is re-scored.
    shutil.copyfile(root / "pred_unet" / f"{b}.jpg", root / "pred_unet" / f"{a}.jpg")
    res = evaluate_project(load_project(proj), run, FAST, progress=False)
    assert set(res.changed) == {("mets", a, "unet")}
    assert str(root / "pred_unet" / f"{a}.jpg") in res.changed[("mets", a, "unet")]
    assert len(res.skipped) == len(cases) - 1
    expected = _dice(gt_a, root / "pred_unet" / f"{a}.jpg")
    assert expected != pytest.approx(before)
    assert _stored_dice(run, a) == pytest.approx(expected)
    assert any("1 case-model(s) re-scored" in line for line in res.resume_notes)
    with ResultsStore(run, read_only=True) as store:
        assert store.duplicates("metrics").empty
        fp = store.inputs("evaluate", ["mets"])
    now = file_fingerprint(root / "pred_unet" / f"{a}.jpg")
    rec = fp[(fp.case == a) & (fp.role == "prediction")].iloc[0]
    assert (rec.size_bytes, rec.mtime_ns, rec.digest) == (now.size_bytes, now.mtime_ns, now.digest)


def test_in_place_edit_with_size_and_time_kept_needs_the_full_hash(tmp_path, demo_data):
    proj, root, cases = _slices(tmp_path, demo_data, n=2, pred_suffix=".bmp")
    run = tmp_path / "run"
    a = cases[0]
    pred = root / "pred_unet" / f"{a}.bmp"
    assert pred.stat().st_size > 2 * EDGE_BYTES
    evaluate_project(load_project(proj), run, FAST, progress=False, fingerprint="full")
    before = _stored_dice(run, a)
    # Paint 1000 pure-green pixels in the middle of the file, keep its size and its modification time.
    st = pred.stat()
    data = bytearray(pred.read_bytes())
    mid = len(data) // 2 - (len(data) // 2) % 3
    data[mid:mid + 3000] = bytes([0, 255, 0]) * 1000
    pred.write_bytes(bytes(data))
    os.utime(pred, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert pred.stat().st_size == st.st_size
    assert pred.stat().st_mtime_ns == st.st_mtime_ns
    expected = _dice(root / "masks_binary_png" / f"{a}.png", pred)
    assert expected != pytest.approx(before)
    # The edge fingerprint (first and last 64 KiB) cannot see it: with it, the case-model stays as scored...
    edge = evaluate_project(load_project(proj), tmp_path / "run_edge", FAST, progress=False)
    assert edge.changed == {}
    # ...the full hash recorded by the first run does.
    res = evaluate_project(load_project(proj), run, FAST, progress=False, fingerprint="full")
    assert set(res.changed) == {("mets", a, "unet")}
    assert _stored_dice(run, a) == pytest.approx(expected)


def test_full_hash_asked_after_an_edge_run_rescores_once(tmp_path, demo_data):
    proj, _, cases = _slices(tmp_path, demo_data, n=2)
    run = tmp_path / "run"
    evaluate_project(load_project(proj), run, FAST, progress=False)
    res = evaluate_project(load_project(proj), run, FAST, progress=False, fingerprint="full")
    assert len(res.changed) == len(cases)
    assert all("full hash" in why for why in res.changed.values())
    res = evaluate_project(load_project(proj), run, FAST, progress=False, fingerprint="full")
    assert res.changed == {}
    assert len(res.skipped) == len(cases)
    # Back to the default: the full hashes recorded are still compared (no re-scoring).
    res = evaluate_project(load_project(proj), run, FAST, progress=False)
    assert res.changed == {}
    assert len(res.skipped) == len(cases)


@pytest.mark.parametrize("force", [False, True])
def test_deleted_case_rows_are_dropped_even_with_force(tmp_path, demo_data, force):
    proj, root, cases = _slices(tmp_path, demo_data)
    run = tmp_path / "run"
    opts = EvaluationOptions(distances=False)  # lesion matching on: lesions rows too
    scan_project(load_project(proj), run, progress=False)
    evaluate_project(load_project(proj), run, opts, progress=False)
    gone = cases[2]
    with ResultsStore(run, read_only=True) as store:
        assert (store.lesions().case == gone).any()
        assert (store.read("files").case == gone).any()
    for sub, ext in (("images", ".jpg"), ("masks_binary_png", ".png"), ("pred_unet", ".jpg")):
        (root / sub / f"{gone}{ext}").unlink()
    res = evaluate_project(load_project(proj), run, opts, progress=False, force=force)
    assert res.dropped == [("mets", gone)]
    assert any("1 case(s) no longer on disk" in line for line in res.resume_notes)
    with ResultsStore(run, read_only=True) as store:
        for table in ("metrics", "lesions", "errors", "inputs", "cases", "files", "qc"):
            assert not (store.read(table).case == gone).any(), table
        metrics, errors, files = store.metrics(), store.errors(), store.read("files")
    assert set(metrics.case) == set(cases) - {gone}
    # What the report counts: the expected cases of each model (coverage) no longer include it.
    exp = expected_cases(metrics[metrics.region != "confusion"], errors, files)
    assert set(exp.case) == set(cases) - {gone}


def test_dataset_with_no_case_found_keeps_its_rows(tmp_path, demo_data):
    proj, root, cases = _slices(tmp_path, demo_data, n=2)
    run = tmp_path / "run"
    evaluate_project(load_project(proj), run, FAST, progress=False)
    moved = tmp_path / "unmounted"
    root.rename(moved)  # the whole dataset disappears (an unmounted disk, a wrong root)
    root.mkdir()
    res = evaluate_project(load_project(proj), run, FAST, progress=False)
    assert res.dropped == []
    assert any("no case found on disk" in line for line in res.resume_notes)
    with ResultsStore(run, read_only=True) as store:
        assert set(store.metrics().case) == set(cases)


def test_features_reextract_a_replaced_image_and_drop_a_deleted_case(tmp_path, demo_data):
    proj, root, cases = _slices(tmp_path, demo_data, n=3)
    run = tmp_path / "run"
    opts = FeatureOptions(groups=("intensity",), shape=False)
    extract_project(load_project(proj), run, opts, progress=False)
    a, b, c = cases
    with ResultsStore(run, read_only=True) as store:
        feats_b = store.features()
    feats_b = feats_b[(feats_b.case == b) & (feats_b.source == "image")].set_index(["group", "feature"]).value
    shutil.copyfile(root / "images" / f"{b}.jpg", root / "images" / f"{a}.jpg")
    for sub, ext in (("images", ".jpg"), ("masks_binary_png", ".png"), ("pred_unet", ".jpg")):
        (root / sub / f"{c}{ext}").unlink()
    res = extract_project(load_project(proj), run, opts, progress=False)
    assert set(res.changed) == {("mets", a)}
    assert res.dropped == [("mets", c)]
    with ResultsStore(run, read_only=True) as store:
        feats = store.features()
    assert set(feats.case) == {a, b}
    # A's image is now B's file: the intensity features of the whole image (no mask involved) are B's.
    whole = feats[(feats.case == a) & (feats.source == "image")].set_index(["group", "feature"]).value
    assert len(whole) > 10
    assert list(whole.index) == list(feats_b.index)
    np.testing.assert_allclose(whole.to_numpy(dtype=float), feats_b.to_numpy(dtype=float))
    assert whole[("intensity", "max")] == np.asarray(Image.open(root / "images" / f"{a}.jpg").convert("L")).max()


def test_agree_redoes_a_case_whose_prediction_changed(tmp_path, demo_data):
    proj, root, cases = _slices(tmp_path, demo_data, n=3, models=("a", "b"))
    run = tmp_path / "run"
    x, y, _ = cases
    shutil.copyfile(root / "pred_b" / f"{y}.jpg", root / "pred_b" / f"{x}.jpg")  # b disagrees with a on x

    def pair_dice() -> float:
        with ResultsStore(run, read_only=True) as store:
            m = store.metrics(step="agree")
        return float(m[(m.case == x) & (m.model == "a~b") & (m.metric == "agree_dice")].value.iloc[0])

    agree_project(load_project(proj), run, FAST, progress=False)
    assert pair_dice() < 1.0
    shutil.copyfile(root / "pred_a" / f"{x}.jpg", root / "pred_b" / f"{x}.jpg")  # now the same file content
    res = agree_project(load_project(proj), run, FAST, progress=False)
    assert set(res.changed) == {("mets", x)}
    assert len(res.skipped) == len(cases) - 1
    assert pair_dice() == pytest.approx(1.0)


def test_cli_says_what_was_rescored_and_dropped(tmp_path, demo_data):
    proj, root, cases = _slices(tmp_path, demo_data, n=3)
    run = tmp_path / "run"

    def evaluate(*extra):
        return subprocess.run([sys.executable, "-m", "segaudit", "evaluate", str(proj), "--out", str(run),
                               "--no-progress", "--lesion-matching", "none", "--no-distances", *extra],
                              capture_output=True, text=True, timeout=600,
                              env={**os.environ, "PYTHONPATH": str(SRC), "COLUMNS": "200"})

    assert evaluate().returncode == 0
    shutil.copyfile(root / "pred_unet" / f"{cases[1]}.jpg", root / "pred_unet" / f"{cases[0]}.jpg")
    for sub, ext in (("images", ".jpg"), ("masks_binary_png", ".png"), ("pred_unet", ".jpg")):
        (root / sub / f"{cases[2]}{ext}").unlink()
    r = evaluate()
    assert r.returncode == 0, r.stderr
    assert "1 case-model(s) re-scored because their input files changed" in r.stdout
    assert f"mets/{cases[0]}/unet" in r.stdout
    assert f"1 case(s) no longer on disk: their stored rows were dropped (mets/{cases[2]})" in r.stdout


def test_case_with_a_missing_file_is_skipped_when_nothing_changed(tmp_path, demo_data):
    # A missing file has no size or time: the others' nanosecond times must still be stored exactly (a float
    # column would round them, and the case would look changed on every re-run).
    proj, root, cases = _slices(tmp_path, demo_data, n=2)
    (root / "pred_unet" / f"{cases[0]}.jpg").unlink()
    run = tmp_path / "run"
    opts = FeatureOptions(groups=("intensity",), shape=False)
    extract_project(load_project(proj), run, opts, progress=False)
    res = extract_project(load_project(proj), run, opts, progress=False)
    assert res.changed == {}
    assert sorted(res.skipped) == [("mets", c) for c in cases]
    with ResultsStore(run, read_only=True) as store:
        fp = store.inputs("features")
    gt = root / "masks_binary_png" / f"{cases[0]}.png"
    assert int(fp.set_index("path").mtime_ns[str(gt)]) == gt.stat().st_mtime_ns


def test_one_resume_plan_for_every_step_per_model_reads_and_vanished_cases(tmp_path, demo_data):
    """plan_resume, the one resume decision evaluate, features and agree share: evaluate's case-model reads only
    its own model's prediction, so replacing model b's file marks (case, b) alone; a deleted case is planned for
    dropping, and nothing is dropped until the plan is applied."""
    from segaudit.dataset.discover import discover
    from segaudit.pipeline.evaluate import INPUT_ROLES, KEY, STEP_TABLES
    from segaudit.pipeline.resume import plan_resume

    proj, root, cases = _slices(tmp_path, demo_data, n=3, models=("a", "b"))
    run = tmp_path / "run"
    evaluate_project(load_project(proj), run, FAST, progress=False)
    shutil.copyfile(root / "pred_b" / f"{cases[1]}.jpg", root / "pred_b" / f"{cases[0]}.jpg")
    for sub, ext in (("images", ".jpg"), ("masks_binary_png", ".png"), ("pred_a", ".jpg"), ("pred_b", ".jpg")):
        (root / sub / f"{cases[2]}{ext}").unlink()
    files = discover(load_project(proj)).files_frame()
    with ResultsStore(run) as store:
        done = {tuple(k) for k in store.scored_keys().itertuples(index=False, name=None)}
        plan = plan_resume(store, "evaluate", KEY, STEP_TABLES, done, files, INPUT_ROLES, ["mets"],
                           reads=lambda k, ins: [i for i in ins if i[0] != "prediction" or i[1] == k[2]])
        assert set(plan.changed) == {("mets", cases[0], "b")}
        assert plan.dropped == [("mets", cases[2])]
        assert plan.counts() == {"changed": 1, "dropped_cases": 1}
        assert (store.metrics().case == cases[2]).any()  # planned, not yet applied
        assert plan.drop(store) > 0
        assert not (store.metrics().case == cases[2]).any()
    assert plan.lines("case-model(s)", "re-scored")[0].startswith("1 case-model(s) re-scored")
