"""The promptable-model section on a real store: prompts rows and evaluate Dice of two bundled x-rays.

The store is written by the section's real inputs: ``prompts`` rows (the box of each lung, simulated by
``segaudit.models.prompts`` from the real ground truth) and masks that are the ground truth dilated (so the
section's numbers are known), scored by ``evaluate`` as the model ``litemedsam/box``; no model is run here.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import ndimage

from conftest import XRAYS, write_xray_project
from segaudit.base.masks import overlap_dice
from segaudit.dataset.project import load_project
from segaudit.models.prompts import simulate
from segaudit.pipeline.evaluate import evaluate_project
from segaudit.report.inputs import read_inputs
from segaudit.report.sections import prompting
from segaudit.store import ResultsStore

CASES = ("Fig3_HTML", "Fig5_HTML")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("section")
    project = load_project(write_xray_project(root))
    run = root / "run"
    rows, masks = [], {}
    for i, case in enumerate(CASES):
        gt_path = XRAYS / "masks_lung" / f"41182_2020_203_{case}.png"
        gt = np.asarray(Image.open(gt_path)) > 127
        mask = ndimage.binary_dilation(gt, iterations=5 * (i + 1))
        path = run / "prompt" / "xray" / "litemedsam" / "box" / f"{case}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.where(mask, 255, 0).astype(np.uint8)).save(path)
        masks[case] = overlap_dice(mask, gt)
        for setting, dice in (("default", 0.9), ("filter=area", 0.9 - 0.5 * i)):
            for p in simulate(gt, "box", np.random.default_rng(0)):
                rows.append({"dataset": "xray", "case": case, "model": "litemedsam/box", "region": "lung",
                             "kind": "box", "setting": setting, "component": p.component,
                             "prompt": json.dumps(p.record()), "seed": 0,
                             "preprocessing": json.dumps({"resize": "longest", "size": 256, "filter": "bilinear",
                                                          "scaling": "minmax", "padding": "zeros"}),
                             "predicted_iou": 0.9, "dice": dice, "encode_seconds": 1.0, "decode_seconds": 0.05,
                             "mask_path": str(path) if setting == "default" else None,
                             "image_path": str(XRAYS / "images" / f"41182_2020_203_{case}.jpg"),
                             "ground_truth_path": str(gt_path)})
    with ResultsStore(run) as store:
        store.replace("prompts", pd.DataFrame(rows))
    ds = project.datasets[0]
    scored = replace(project, datasets=[replace(ds, predictions=[("litemedsam/box", str(
        run / "prompt" / "xray" / "litemedsam" / "box" / "{case}.png"))], models=["litemedsam/box"])])
    evaluate_project(scored, run, progress=False)
    return {"run": run, "dice": masks}


def test_section_shows_dice_per_kind_robustness_and_overlays(run):
    out = prompting.render(read_inputs(run["run"]))
    mean = np.mean(list(run["dice"].values()))
    assert f"<td>{mean:.3f} (n too small for a CI)</td>" in out  # the evaluate Dice of the union masks
    assert "<td>0.900 ± 0.000</td>" in out  # object Dice of the default box rows
    assert "<td>filter=area</td>" in out
    assert "1 of 2 case(s) flip." in out
    assert len(re.findall(r"<img ", out)) == 2  # worst and best image of the one kind
    assert "<h3>xray / litemedsam/box</h3>" in out


def test_section_says_why_without_prompts(tmp_path):
    with ResultsStore(tmp_path / "empty"):
        pass
    out = prompting.render(read_inputs(tmp_path / "empty"))
    assert out.startswith('<p class="why">Not drawn: no promptable-model results')
