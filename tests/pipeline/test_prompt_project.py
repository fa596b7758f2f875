"""``prompt_project`` on real chest x-rays with the REAL bundled LiteMedSAM weights (CPU, no network).

Two bundled x-rays (four lungs): the masks are written under the run folder only, every prompt is stored in the
``prompts`` table, the masks are scored by ``evaluate`` as models ``litemedsam/<kind>``, a re-run skips both steps,
and a fresh run with the same cache folder reads the embeddings from disk instead of encoding.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import XRAYS, one_torch_thread, require_sam, tree_digest, write_xray_project
from segaudit.base.masks import overlap_dice
from segaudit.dataset.project import load_project
from segaudit.models.prompts import component_prompt_boxes

CASES = ("Fig3_HTML", "Fig5_HTML")  # the two 41182_2020_203_* x-rays



@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    require_sam()
    from segaudit.pipeline.prompt import PromptOptions, prompt_project, release_models

    root = tmp_path_factory.mktemp("prompt")
    project = load_project(write_xray_project(root))
    before = tree_digest(XRAYS)
    opts = PromptOptions(kinds=("box", "point"), robustness=("filter=area", "noise=0.05"),
                         cache_dir=str(root / "cache"))
    with one_torch_thread():
        first = prompt_project(project, root / "run", opts, progress=False)
        again = prompt_project(project, root / "run", opts, progress=False)
        release_models()  # as a new process: only the disk cache is left
        fresh = prompt_project(project, root / "fresh", opts, progress=False)
    return {"root": root, "first": first, "again": again, "fresh": fresh, "before": before}


def _store(path):
    from segaudit.store import ResultsStore

    with ResultsStore(path, read_only=True) as store:
        return store.prompts(), store.metric_values(["dice"]), store.runs()


def test_prompts_table_records_every_prompt_exactly(runs):
    prompts, _, _ = _store(runs["root"] / "run")
    default = prompts[prompts.setting == "default"]
    assert sorted(default.model.unique()) == ["litemedsam/box", "litemedsam/point"]
    assert len(default) == 2 * 2 * 2  # cases × lungs × kinds
    assert (prompts.seed == 0).all()
    assert (prompts.region == "lung").all()
    for case in CASES:
        gt = np.asarray(Image.open(XRAYS / "masks_lung" / f"41182_2020_203_{case}.png")) > 127
        boxes = dict(component_prompt_boxes(gt))
        rows = default[(default.case == case) & (default.model == "litemedsam/box")]
        for r in rows.itertuples():
            assert json.loads(r.prompt)["box"] == list(boxes[r.component])
        prep = json.loads(rows.preprocessing.iloc[0])
        assert prep["filter"] == "bilinear"
        assert prep["scaling"] == "minmax"
        assert prep["resize"] == "longest"
    area = prompts[prompts.setting == "filter=area"]
    assert len(area) == 4
    assert {json.loads(p)["filter"] for p in area.preprocessing} == {"area"}


def test_noise_setting_reruns_the_default_boxes_on_a_noisy_image(runs):
    prompts, _, _ = _store(runs["root"] / "run")
    noise = prompts[prompts.setting == "noise=0.05"].set_index(["case", "component"])
    box = prompts[(prompts.setting == "default") & (prompts.kind == "box")].set_index(["case", "component"])
    assert len(noise) == 4
    assert list(noise.prompt) == list(box.loc[noise.index].prompt)  # the same boxes
    for (case, _), p in noise.preprocessing.items():
        rec = json.loads(p)["noise"]
        img = np.asarray(Image.open(XRAYS / "images" / f"41182_2020_203_{case}.jpg"), dtype=np.float64)
        assert rec["sigma_fraction_of_range"] == 0.05
        assert rec["sigma"] == pytest.approx(0.05 * (img.max() - img.min()), rel=1e-6)
        assert json.loads(p)["filter"] == "bilinear"
    delta = noise.dice - box.loc[noise.index].dice
    print(f"\nnoise=0.05 on two x-rays: per-lung Dice {list(noise.dice.round(4))}, minus the default box's "
          f"{list(delta.round(4))}")
    assert (delta.abs() > 0).all()  # the input changed, so does the answer


def test_masks_are_scored_by_evaluate_as_models(runs):
    prompts, dice, _ = _store(runs["root"] / "run")
    assert runs["first"].prompted == 2
    assert runs["first"].errors.empty
    for case in CASES:
        gt = np.asarray(Image.open(XRAYS / "masks_lung" / f"41182_2020_203_{case}.png")) > 127
        for kind in ("box", "point"):
            path = runs["root"] / "run" / "prompt" / "xray" / "litemedsam" / kind / f"{case}.png"
            mask = np.asarray(Image.open(path)) > 127
            stored = dice[(dice.case == case) & (dice.model == f"litemedsam/{kind}")].value
            assert len(stored) == 1
            assert stored.iloc[0] == pytest.approx(overlap_dice(mask, gt), abs=1e-9)
    box = dice[dice.model == "litemedsam/box"].value.mean()
    point = dice[dice.model == "litemedsam/point"].value.mean()
    # The box prompt works (issue: 0.879 ± 0.020 on 16 x-rays); a single centre point does not (0.002).
    assert box > 0.8
    assert point < 0.1
    assert tree_digest(XRAYS) == runs["before"]  # inputs untouched
    assert not list(runs["root"].glob("*.png"))  # nothing beside the project file


def test_rerun_skips_and_fresh_run_reads_embeddings_from_disk(runs):
    again, fresh = runs["again"], runs["fresh"]
    assert again.prompted == 0
    assert len(again.skipped) == 2
    assert again.evaluation is not None
    assert len(again.evaluation.skipped) == 4
    assert fresh.prompted == 2
    assert fresh.embeddings_from_disk == 2
    a, _, _ = _store(runs["root"] / "run")
    b, _, _ = _store(runs["root"] / "fresh")
    cols = ["case", "model", "setting", "component", "prompt", "dice", "predicted_iou"]
    assert a[cols].reset_index(drop=True).equals(b[cols].reset_index(drop=True))  # identical answers
    cache = runs["root"] / "cache" / "embeddings"
    # two images × (two resize filters + the noisy image); the fresh run's noisy images hit the disk cache, i.e.
    # they are bit-identical to the first run's (the noise is seeded by run seed, case and setting)
    assert len(list(cache.glob("emb-*.npz"))) == 6


@pytest.mark.slow  # two Dask worker processes each load LiteMedSAM, plus the serial run (4 encodings in all)
def test_dask_workers_give_the_same_prompts_and_dice_as_one_process(tmp_path):
    pytest.importorskip("distributed")
    require_sam()

    from segaudit.pipeline.prompt import PromptOptions, prompt_project

    project = load_project(write_xray_project(tmp_path))
    opts = PromptOptions(kinds=("box",), cache_dir=str(tmp_path / "cache"), embedding_cache=False)
    with one_torch_thread():
        one = prompt_project(project, tmp_path / "one", opts, workers=1, progress=False, score=True)
        two = prompt_project(project, tmp_path / "two", opts, workers=2, executor="dask", progress=False)
    assert (one.prompted, two.prompted) == (2, 2)
    assert one.errors.empty
    assert two.errors.empty
    a, da, _ = _store(tmp_path / "one")
    b, db, _ = _store(tmp_path / "two")
    cols = ["dataset", "case", "model", "region", "setting", "component", "prompt", "seed", "preprocessing",
            "predicted_iou", "dice"]
    pd.testing.assert_frame_equal(a[cols].reset_index(drop=True), b[cols].reset_index(drop=True))
    keys = ["case", "model", "region"]
    left = da.sort_values(keys)[keys + ["value"]].reset_index(drop=True)
    right = db.sort_values(keys)[keys + ["value"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(left, right)
    assert len(left) == 2
    print(f"\nbox Dice, one process and two Dask workers: {list(left.value.round(4))}")


def test_noise_is_seeded_scaled_to_the_intensity_range_and_leaves_the_input_alone():
    from segaudit.models.prompts import case_rng
    from segaudit.pipeline.prompt import PromptOptions, noise_fraction, noisy_image

    img = np.asarray(Image.open(XRAYS / "images" / "41182_2020_203_Fig3_HTML.jpg"))
    before = img.copy()
    a, sa = noisy_image(img, 0.05, case_rng(0, "Fig3_HTML", "noise", "noise=0.05"))
    b, sb = noisy_image(img, 0.05, case_rng(0, "Fig3_HTML", "noise", "noise=0.05"))
    c, _ = noisy_image(img, 0.05, case_rng(1, "Fig3_HTML", "noise", "noise=0.05"))
    np.testing.assert_array_equal(img, before)
    np.testing.assert_array_equal(a, b)          # same seed and keys: the same noise
    assert sa == sb == pytest.approx(0.05 * (float(img.max()) - float(img.min())))
    assert not np.array_equal(a, c)              # another run seed: other noise
    diff = a - img.astype(np.float32)
    assert abs(float(diff.std()) - sa) < 0.01 * sa
    assert abs(float(diff.mean())) < 0.01 * sa
    flat, s0 = noisy_image(np.full((4, 4), 7.0), 0.1, np.random.default_rng(0))
    assert s0 == 0.0
    assert (flat == 7.0).all()
    assert noise_fraction("noise=5%") == noise_fraction("noise=0.05") == pytest.approx(0.05)
    assert noise_fraction("filter=area") is None
    with pytest.raises(ValueError, match="noise level"):
        noise_fraction("noise=1.5")
    with pytest.raises(ValueError, match="unknown robustness"):
        PromptOptions(robustness=("noise=lots",))
    assert PromptOptions(robustness=("noise=0.1",)).robustness == ("noise=0.1",)
