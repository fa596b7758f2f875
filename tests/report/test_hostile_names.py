"""Names from data are text, never HTML or math: a project whose every name is hostile (issue 13, severe 1).

The real LUMIERE masks and predictions, copied under a case id, dataset, model, label, region and metadata
value that are HTML, quotes, ``&`` and matplotlib math (``$``). The report must show them literally: no tag
of ours is injected, no section fails (a ``$`` once made four sections fail in matplotlib's math parser),
and in headless Chromium no dialog fires.
"""

import html
import shutil
from pathlib import Path

import pytest
import yaml

from conftest import CHROMIUM, CHROMIUM_ARGS, chromium_playwright
from segaudit.dataset.project import load_project
from segaudit.metrics import EvaluationOptions
from segaudit.pipeline.evaluate import evaluate_project
from segaudit.pipeline.scan import scan_project
from segaudit.report.html import build_report

CASE = "<img src=x onerror=alert(1)>$x$&'\""
DATASET = "<script>alert(2)</script>"
MODEL = "<b onmouseover=alert(3)>m</b> $\frac{$ 5"  # an even number of $: math, and invalid
LABEL = "<script>alert(4)</script>$y$"
REGION = "<i>W&T</i>'\""
META = "<svg onload=alert(5)>$z$"


@pytest.fixture(scope="module")
def hostile_report(tmp_path_factory, demo_data) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("hostile")
    src = demo_data / "brats_audit" / "LUMIERE"
    data = root / "data"
    cases = sorted(p.name for p in (src / "LUMIERE_images").iterdir())
    for i, case in enumerate(cases):
        new = CASE if i == 0 else case
        (data / "gt" / new).mkdir(parents=True)
        shutil.copy(src / "LUMIERE_images" / case / f"{case}_seg.nii.gz", data / "gt" / new / "seg.nii.gz")
        for model in ("nnUnet", "SegResNet"):
            (data / model / new).mkdir(parents=True)
            shutil.copy(src / "LUMIERE_seg" / model / case / f"{case}_pred.nii.gz", data / model / new / "pred.nii.gz")
    meta = root / "meta.csv"
    meta.write_text("case,site\n" + "".join(f"\"{(CASE if i == 0 else c).replace(chr(34), chr(34) * 2)}\",{META}\n"
                                             for i, c in enumerate(cases)))
    proj = root / "segaudit.yaml"
    proj.write_text(yaml.safe_dump({"datasets": {DATASET: {
        "root": str(data), "ground_truth": "{root}/gt/{case}/seg.nii.gz",
        "predictions": {MODEL: "{root}/nnUnet/{case}/pred.nii.gz", "SegResNet": "{root}/SegResNet/{case}/pred.nii.gz"},
        "labels": {LABEL: 1, "NEC": 2, "EDE": 3}, "regions": {REGION: [LABEL, "NEC", "EDE"]},
        "metadata": {"path": str(meta), "id_column": "case"}}}}))
    project = load_project(proj)
    run = root / "run"
    scan_project(project, run, progress=False)
    evaluate_project(project, run, EvaluationOptions(lesion_matching="none"), progress=False)
    out = build_report(run, root / "report.html", project)
    return out, out.read_text()


def test_every_hostile_name_is_escaped_text(hostile_report):
    _, doc = hostile_report
    assert "could not be drawn" not in doc  # no section fails on $ (matplotlib math) or quotes
    for raw in ("<img src=x", "<script>alert", "<b onmouseover", "<svg onload", "<i>W&T"):
        assert raw not in doc, raw
    assert doc.count("<script") == 0
    assert "onerror=alert(1)>" not in doc.replace("&gt;", "")
    for name in (CASE, DATASET, MODEL, LABEL, REGION):
        assert html.escape(name) in doc or html.escape(name, quote=False) in doc, name


def test_hostile_names_run_nothing_in_chromium(hostile_report):
    path, _ = hostile_report
    pw = chromium_playwright()
    dialogs: list[str] = []
    with pw.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()

        def on_dialog(dialog) -> None:
            dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", on_dialog)
        page.goto(path.resolve().as_uri())
        page.wait_for_load_state("load")
        page.mouse.move(10, 10)
        text = page.inner_text("body")
        scripts = page.evaluate("document.querySelectorAll('script, svg, [onerror], [onmouseover]').length")
        browser.close()
    assert dialogs == []
    assert scripts == 0
    for name in (DATASET, MODEL, LABEL):
        assert name in text, name
