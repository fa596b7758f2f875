"""The HTML report on real evaluated and feature-extracted stores: self-contained, every section with real
content, checked as text and in a real headless Chromium."""

import base64
import importlib
import os
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from scipy import stats

from segaudit.cli import main
from segaudit.dataset.project import load_project
from segaudit.features.case import FeatureOptions
from segaudit.metrics import EvaluationOptions
from segaudit.pipeline.evaluate import evaluate_project
from segaudit.pipeline.features import extract_project
from segaudit.pipeline.scan import scan_project
from segaudit.store.audit import read_audit_metrics

UCSD = "audit_outputs/metrics/BraTS_2024_by_site/extracted_information_UCSD.csv"
SECTIONS = ("Datasets and QC", "Splits", "Metric summary", "Per-case Dice with quality bands", "Failure taxonomy",
            "Segmentation error matrices", "Pairwise comparison", "Bias: lesion size and subgroups",
            "Longitudinal volumes", "Training curves", "Worst and best cases")
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def project_file(tmp_path_factory, demo_data, tests_data) -> Path:
    """LUMIERE (3 time points, 2 models), the 24 metastasis slices (with a split that leaks one patient) and a
    3D BraTS 2024 SSA case with its four sequences and two models."""
    root = tmp_path_factory.mktemp("project")
    slices = pd.read_csv(demo_data / "brainmets_t2w_slices" / "slices.csv")
    # Split by patient, except that one of BraTS-MET-00233-000's slices sits in the test split: a leak.
    patients = sorted(slices.case.unique())
    slices["split"] = slices.case.map({p: "train" if i < 3 else "test" for i, p in enumerate(patients)})
    slices.loc[slices.case == patients[2], "split"] = ["train"] * (int((slices.case == patients[2]).sum()) - 1) \
        + ["test"]
    slices.to_csv(root / "slices.csv", index=False)
    demo = yaml.safe_load((demo_data / "segaudit.yaml").read_text())["datasets"]
    lumiere = {**demo["LUMIERE"], "root": str(demo_data / "brats_audit" / "LUMIERE")}
    mets = {**demo["brainmets_t2w_slices"], "root": str(demo_data / "brainmets_t2w_slices"),
            "metadata": {"path": str(root / "slices.csv"), "id_column": "slice"}}
    ssa = {"root": str(tests_data / "brats_audit" / "BraTS2024_SSA"),
           "images": "{root}/BraTS2024_SSA_images/{case}/{case}_{sequence}.nii.gz",
           "sequences": ["t1", "t1ce", "t2", "flair"],
           "ground_truth": "{root}/BraTS2024_SSA_images/{case}/{case}_seg.nii.gz",
           "predictions": "{root}/BraTS2024_SSA_seg/{model}/{case}/{case}_pred.nii.gz",
           "label_convention": "audit", "geometry": "ignore_affine"}  # AUDIT's GT headers are wrong
    path = root / "segaudit.yaml"
    path.write_text(yaml.safe_dump({"name": "report-test", "datasets": {
        "LUMIERE": lumiere, "brainmets_t2w_slices": mets, "BraTS2024_SSA": ssa}}))
    return path


@pytest.fixture(scope="module")
def store(project_file, tmp_path_factory) -> Path:
    project = load_project(project_file)
    out = tmp_path_factory.mktemp("report") / "run"
    scan_project(project, out, progress=False)
    evaluate_project(project, out, EvaluationOptions(lesion_matching="brats"), progress=False)
    extract_project(project, out, FeatureOptions(groups=("lesion",), shape=False), progress=False)
    return out


@pytest.fixture(scope="module")
def report(store, project_file, tmp_path_factory) -> Path:
    logs = tmp_path_factory.mktemp("logs")
    (logs / "unet.csv").write_text("epoch,dice,loss,val_dice,val_loss\n0,0.31,0.90,0.28,0.95\n"
                                   "1,0.52,0.61,0.47,0.70\n2,0.70,0.40,0.58,0.62\n3,0.81,0.25,0.55,0.66\n")
    (logs / "broken.csv").write_text("step,loss\n1,0.5\n")
    out = tmp_path_factory.mktemp("html") / "report.html"
    assert main(["report", str(store), "--out", str(out), "--project", str(project_file),
                 "--training-log", f"unet={logs / 'unet.csv'}", "--training-log", str(logs / "broken.csv")]) == 0
    return out


def _sections(doc: str) -> dict[str, str]:
    heads = list(re.finditer(r'<h2 id="[^"]+">([^<]+)</h2>', doc))
    return {h.group(1).replace("&amp;", "&"): doc[h.end():(heads[i + 1].start() if i + 1 < len(heads) else len(doc))]
            for i, h in enumerate(heads)}


def test_report_is_self_contained_with_every_section(report):
    doc = report.read_text()
    sections = _sections(doc)
    assert list(sections) == list(SECTIONS)
    assert "http://" not in doc and "https://" not in doc and "<script" not in doc  # nothing fetched to view it
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', doc)
    assert len(images) >= 15
    for data in images:
        assert base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n"
    for name, body in sections.items():
        assert "could not be drawn" not in body, name
        assert "<img" in body or "<table" in body, name


def test_report_content_is_the_stores(report, store):
    sections = _sections(report.read_text())
    # The leaked patient is named in the split section.
    assert "Patient-level leakage" in sections["Splits"] and "BraTS-MET-00233-000" in sections["Splits"]
    # Two models on the same cases: the comparison says which test and why, in words.
    cmp_ = sections["Pairwise comparison"]
    assert "SegResNet vs nnUnet" in cmp_ or "nnUnet vs SegResNet" in cmp_
    assert "because" in cmp_ and "Holm" in cmp_ and "McNemar" in cmp_
    # Bias: the Spearman rho of U-Net Dice against the true lesion area, as scipy computes it.
    from segaudit.store.store import ResultsStore

    with ResultsStore(store, read_only=True) as s:
        m = s.query("SELECT \"case\", value FROM metrics WHERE dataset = 'brainmets_t2w_slices' AND metric = 'dice'"
                    " AND region = 'metastasis'")
        f = s.query("SELECT \"case\", value AS area FROM features WHERE dataset = 'brainmets_t2w_slices' AND "
                    "model = '' AND source = 'metastasis' AND feature = 'volume' AND value > 0")
    t = m.merge(f, on="case")
    rho = stats.spearmanr(t.area, t.value).statistic
    assert len(t) >= 5 and f"<td>{rho:.3f}</td>" in sections["Bias: lesion size and subgroups"]
    assert "by subject" in sections["Bias: lesion size and subgroups"]
    # Missed lesions: the U-Net's count of missed ground-truth metastases is the lesions table's.
    with ResultsStore(store, read_only=True) as s:
        missed = s.query("SELECT count(*) AS n FROM lesions WHERE dataset = 'brainmets_t2w_slices' AND source = 'gt'"
                         " AND NOT matched AND coalesce(counted, true)").n.iloc[0]
    fail = sections["Failure taxonomy"]
    row = re.search(r"<td>brainmets_t2w_slices</td>\s*<td>unet</td>\s*<td>metastasis</td>\s*<td>(\d+)</td>",
                    fail[fail.index("Are the missed lesions small?"):])
    assert missed > 0 and row and int(row.group(1)) == missed
    # The training log is plotted; the broken one is named with its reason, and the report still exists.
    assert "unet" in sections["Training curves"] and "broken.csv: no &#x27;epoch&#x27; column" in \
        sections["Training curves"]
    # 3D panels of the SSA case show its image; the LUMIERE ones say they have none.
    panels = sections["Worst and best cases"]
    ssa = panels[panels.index("BraTS2024_SSA"):panels.index("LUMIERE")] if panels.index("BraTS2024_SSA") < \
        panels.index("LUMIERE") else panels[panels.index("BraTS2024_SSA"):]
    assert "BraTS2024_SSA-00230-000" in ssa and "no image file" not in ssa.split("<h3>")[1]
    assert "Longitudinal" in report.read_text() and "Patient-002" in sections["Longitudinal volumes"]


def test_ranking_section_on_audits_four_models(tmp_path, tests_data):
    run = tmp_path / "audit"
    assert main(["import-audit", "--metrics", str(tests_data / UCSD), "--out", str(run)]) == 0
    out = tmp_path / "r.html"
    assert main(["report", str(run), "--out", str(out)]) == 0
    sections = _sections(out.read_text())
    assert "Model ranking" in sections
    m = read_audit_metrics(tests_data / UCSD)
    wide = m[m.metric == "dice"].groupby(["case", "model"]).value.mean().unstack().dropna()
    ref = stats.friedmanchisquare(*wide.to_numpy().T)
    assert f"p = {ref.pvalue:.3g}" in sections["Model ranking"] and f"{len(wide)} complete cases" in \
        sections["Model ranking"]


def _chromium():
    """Playwright's sync API; on CI a missing Playwright or Chromium fails, elsewhere it skips."""
    if os.environ.get("CI"):
        playwright = importlib.import_module("playwright.sync_api")
    else:
        playwright = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} missing: .ci/run installs the Debian chromium package")
        pytest.skip(f"{CHROMIUM} not installed")
    return playwright


def test_report_renders_in_headless_chromium(report, tmp_path):
    """Every section shows decoded figures or filled tables in a real browser; a screenshot is taken."""
    pw = _chromium()
    with pw.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        errors = []
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.on("request", lambda req: errors.append(req.url) if not req.url.startswith(("file:", "data:")) else None)
        page.goto(report.resolve().as_uri())
        page.wait_for_load_state("load")
        found = page.evaluate("""() => [...document.querySelectorAll('h2')].map(h => {
            let imgs = 0, broken = 0, rows = 0, el = h.nextElementSibling;
            const count = n => { for (const i of n.querySelectorAll ? n.querySelectorAll('img') : []) {
                    i.complete && i.naturalWidth > 0 ? imgs++ : broken++; }
                if (n.tagName === 'IMG') { n.complete && n.naturalWidth > 0 ? imgs++ : broken++; }
                rows += n.querySelectorAll ? n.querySelectorAll('tr').length : 0; };
            while (el && el.tagName !== 'H2') { count(el); el = el.nextElementSibling; }
            return {name: h.textContent, imgs, broken, rows, visible: h.getBoundingClientRect().height > 0};
        })""")
        shot = tmp_path / "report.png"
        page.screenshot(path=str(shot), full_page=True)
        height = page.evaluate("document.body.scrollHeight")
        browser.close()
    assert [s["name"] for s in found] == list(SECTIONS)
    for s in found:
        assert s["visible"] and s["broken"] == 0, s
        assert s["imgs"] + s["rows"] > 0, s
    assert errors == []
    assert shot.stat().st_size > 100_000 and height > 5000
    if os.environ.get("SEGAUDIT_SCREENSHOT"):
        shutil.copy(shot, os.environ["SEGAUDIT_SCREENSHOT"])
