"""``prompt_project`` on real chest x-rays with the REAL bundled LiteMedSAM weights (CPU, no network).

Two bundled x-rays (four lungs): the masks are written under the run folder only, every prompt is stored in the
``prompts`` table, the masks are scored by ``evaluate`` as models ``litemedsam/<kind>``, a re-run skips both steps,
and a fresh run with the same cache folder reads the embeddings from disk instead of encoding.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from conftest import XRAYS, require_sam, tree_digest, write_xray_project
from segaudit.base.masks import overlap_dice
from segaudit.dataset.project import load_project
from segaudit.models.prompts import component_prompt_boxes

CASES = ("Fig3_HTML", "Fig5_HTML")  # the two 41182_2020_203_* x-rays



@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    require_sam()
    import torch

    from segaudit.pipeline.prompt import PromptOptions, prompt_project, release_models

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("prompt")
    project = load_project(write_xray_project(root))
    before = tree_digest(XRAYS)
    opts = PromptOptions(kinds=("box", "point"), robustness=("filter=area",), cache_dir=str(root / "cache"))
    first = prompt_project(project, root / "run", opts, progress=False)
    again = prompt_project(project, root / "run", opts, progress=False)
    release_models()  # as a new process: only the disk cache is left
    fresh = prompt_project(project, root / "fresh", opts, progress=False)
    torch.set_num_threads(threads)
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
    assert len(list(cache.glob("emb-*.npz"))) == 4  # two images × two resize filters
