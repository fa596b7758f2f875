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


def test_attribution_part_shows_live_and_declared_sources_labelled(tmp_path):
    """A real declared run (subset predictions of the bundled SSA case) beside a live row: two labelled tables."""
    from conftest import SSA_CASE, write_subset_project
    from segaudit.pipeline.resume import replace_case_rows
    from segaudit.pipeline.subset_attribution import attribute_predictions_project

    path = write_subset_project(tmp_path, drop=("t2+flair",))
    run = tmp_path / "run"
    with ResultsStore(run) as store:
        rid = store.start_run("attribute")
        replace_case_rows(store, "attributions", "attribute", "SSA", SSA_CASE, [
            {"dataset": "SSA", "case": SSA_CASE, "model": "litemedsam/box", "region": "WT", "method": m,
             "sequences": s, "value": v, "fill": "zero", "slice": 70, "source": "live"}
            for m, s, v in (("shapley", "flair", 0.5), ("drop_one", "flair", 0.4), ("subset", "flair", 0.6),
                            ("subset", "", 0.1))], [], [], rid)
        store.finish_run(rid)
    attribute_predictions_project(load_project(path), run, progress=False)
    out = prompting.render(read_inputs(run))
    assert out.startswith("<h3>Modality attribution</h3>")
    live, declared = out.index("<h4>Live removal (LiteMedSAM)</h4>"), out.index("<h4>Declared subset predictions</h4>")
    assert live < declared
    assert "<td>litemedsam/box</td>" in out[live:declared]
    assert "<td>dropout</td>" in out[declared:]
    assert "Left out: " in out[declared:]
    assert "&#x27;t2+flair&#x27; not scored" in out[declared:]


def test_overlay_ground_truth_is_read_with_the_declared_encoding(run, tmp_path):
    """The x-ray project declares its masks binary at threshold 127: the report reads them so (recorded by the
    prompt run when no project is given), not with the default label encoding."""
    from segaudit.io.masks import MaskEncoding
    from segaudit.report.inputs import recorded_mask_encodings

    runs = pd.DataFrame({"config": [json.dumps({"project": {"datasets": {"xray": {
        "mask_encoding": {"kind": "binary", "threshold": 127}}}}}), "not json"]})
    assert recorded_mask_encodings(runs) == {"xray": MaskEncoding(kind="binary", threshold=127)}
    project = load_project(write_xray_project(tmp_path))
    inputs = read_inputs(run["run"], project=project)
    assert inputs.mask_encodings["xray"] == MaskEncoding(kind="binary", threshold=127)
    # A mask stored 0/100 (foreground 100 < 127): the default encoding would draw it as ground truth everywhere
    # it is non-zero; the declared one draws nothing of it.
    gt = np.zeros((40, 40), np.uint8)
    gt[5:20, 5:20] = 100
    gt[20:35, 20:35] = 255
    Image.fromarray(gt).save(tmp_path / "gt.png")
    from segaudit.io.masks import read_mask

    declared = read_mask(tmp_path / "gt.png", inputs.mask_encodings["xray"]).array != 0
    assert int(declared.sum()) == 15 * 15
    assert int((read_mask(tmp_path / "gt.png").array != 0).sum()) == 2 * 15 * 15


def test_stability_table_fits_the_page_in_chromium(tmp_path):
    """All nine robustness settings: before, the per-case table was 1918 px wide in a 1200 px page (headers such
    as dice[filter=bilinear-antialias] cannot wrap); now its headers break after '=' and '-' and it fits."""
    from conftest import CHROMIUM, CHROMIUM_ARGS, chromium_playwright
    from segaudit.cli.parser import main
    from segaudit.pipeline.prompt import ROBUSTNESS

    pw = chromium_playwright()
    rows = []
    for i, case in enumerate(CASES):
        gt = np.asarray(Image.open(XRAYS / "masks_lung" / f"41182_2020_203_{case}.png")) > 127
        for j, setting in enumerate(["default", *ROBUSTNESS]):
            for p in simulate(gt, "box", np.random.default_rng(0)):
                rows.append({"dataset": "xray", "case": case, "model": "litemedsam/box", "region": "lung",
                             "kind": "box", "setting": setting, "component": p.component,
                             "prompt": json.dumps(p.record()), "seed": 0, "preprocessing": "{}",
                             "predicted_iou": 0.9, "dice": 0.9 - 0.03 * i * j})
    with ResultsStore(tmp_path / "run") as store:
        store.replace("prompts", pd.DataFrame(rows))
    html_path = tmp_path / "report.html"
    assert main(["report", str(tmp_path / "run"), "--out", str(html_path)]) == 0
    with pw.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(html_path.resolve().as_uri())
        page.wait_for_load_state("load")
        sizes = page.evaluate("""() => [...document.querySelectorAll('table.fit')].map(t => ({
            width: t.getBoundingClientRect().width, scroll: t.scrollWidth, client: t.clientWidth,
            body: document.body.clientWidth, page: document.documentElement.scrollWidth,
            view: document.documentElement.clientWidth, cols: t.rows[0].cells.length}))""")
        browser.close()
    assert len(sizes) == 1
    s = sizes[0]
    assert s["cols"] == 16
    assert s["scroll"] <= s["client"] <= s["body"]  # nothing to scroll: the table fits the page's 1200 px
    assert s["page"] <= s["view"]
