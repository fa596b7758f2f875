"""The HTML report on real evaluated and feature-extracted stores: self-contained, every section with real
content, checked as text and in a real headless Chromium."""

import base64
import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from conftest import CHROMIUM, CHROMIUM_ARGS, chromium_playwright
from segaudit.cli import main
from segaudit.dataset.project import load_project
from segaudit.features.case import FeatureOptions
from segaudit.metrics import EvaluationOptions
from segaudit.pipeline.evaluate import evaluate_project
from segaudit.pipeline.features import extract_project
from segaudit.pipeline.scan import scan_project
from segaudit.store.audit import read_audit_metrics

UCSD = "audit_outputs/metrics/BraTS_2024_by_site/extracted_information_UCSD.csv"
SECTIONS = ("Datasets and QC", "Splits", "Metric summary", "Failed and missing predictions",
            "Per-case Dice with quality bands", "Per-case table",
            "Failure taxonomy", "Segmentation error matrices", "Pairwise comparison", "Model ranking",
            "Bias: lesion size and subgroups", "Promptable model (simulated prompts)",
            "Image intensities by sequence and site", "Feature outliers",
            "Longitudinal volumes", "Training curves", "Worst and best cases")
#: Sections of the fixture's report that have nothing to draw and say why (every model complete: no failure
#: list; two models: no ranking; no segaudit prompt run; lesion features only: no intensities).
WHY_ONLY = ("Failed and missing predictions", "Model ranking", "Promptable model (simulated prompts)",
            "Image intensities by sequence and site")


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
    assert main(["report", "--force", str(store), "--out", str(out), "--project", str(project_file),
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
    assert "http://" not in doc  # nothing fetched to view it
    assert "https://" not in doc
    assert "<script" not in doc
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', doc)
    assert len(images) >= 15
    for data in images:
        assert base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n"
    for name, body in sections.items():
        assert "could not be drawn" not in body, name
        if name in WHY_ONLY:
            assert 'class="why"' in body, name
            assert "<img" not in body, name
        else:
            assert "<img" in body or "<table" in body, name


def test_report_content_is_the_stores(report, store):
    sections = _sections(report.read_text())
    # The leaked patient is named in the split section.
    assert "Patient-level leakage" in sections["Splits"]
    assert "BraTS-MET-00233-000" in sections["Splits"]
    # Two models on the same cases: the comparison says why there is no test (3 time points of one patient, one
    # SSA case: below the minimum of 6 pairs), instead of a p-value from a Shapiro test on 3 differences.
    cmp_ = sections["Pairwise comparison"]
    assert "SegResNet vs nnUnet" in cmp_ or "nnUnet vs SegResNet" in cmp_
    assert "no test: n too small (n=1 &lt; 6)" in cmp_
    assert "Shapiro" not in cmp_
    # Bias: the Spearman rho of U-Net Dice against the true lesion area, as scipy computes it.
    from segaudit.store.store import ResultsStore

    with ResultsStore(store, read_only=True) as s:
        m = s.query("SELECT \"case\", value FROM metrics WHERE dataset = 'brainmets_t2w_slices' AND metric = 'dice'"
                    " AND region = 'metastasis'")
        f = s.query("SELECT \"case\", value AS area FROM features WHERE dataset = 'brainmets_t2w_slices' AND "
                    "model = '' AND source = 'metastasis' AND feature = 'volume' AND value > 0")
    t = m.merge(f, on="case")
    rho = stats.spearmanr(t.area, t.value).statistic
    assert len(t) >= 5
    assert f"<td>{rho:.3f}</td>" in sections["Bias: lesion size and subgroups"]
    # Subjects are identifiers, never subgroups; the split column is not a covariate either, and says so.
    bias = sections["Bias: lesion size and subgroups"]
    assert "by subject" not in bias
    assert "split (name looks like" in bias
    # Missed lesions: the U-Net's count of missed ground-truth metastases is the lesions table's.
    with ResultsStore(store, read_only=True) as s:
        missed = s.query("SELECT count(*) AS n FROM lesions WHERE dataset = 'brainmets_t2w_slices' AND source = 'gt'"
                         " AND NOT matched AND coalesce(counted, true)").n.iloc[0]
    fail = sections["Failure taxonomy"]
    row = re.search(r"<td>brainmets_t2w_slices</td>\s*<td>unet</td>\s*<td>metastasis</td>\s*<td>(\d+)</td>",
                    fail[fail.index("Are the missed lesions small?"):])
    assert missed > 0
    assert row
    assert int(row.group(1)) == missed
    # The training log is plotted; the broken one is named with its reason, and the report still exists.
    assert "unet" in sections["Training curves"]
    assert "broken.csv: no &#x27;epoch&#x27; column" in sections["Training curves"]
    # 3D panels of the SSA case show its image; the LUMIERE ones say they have none.
    panels = sections["Worst and best cases"]
    ssa = panels[panels.index("BraTS2024_SSA"):panels.index("LUMIERE")] if panels.index("BraTS2024_SSA") < \
        panels.index("LUMIERE") else panels[panels.index("BraTS2024_SSA"):]
    assert "BraTS2024_SSA-00230-000" in ssa
    assert "no image file" not in ssa.split("<h3>")[1]
    assert "Longitudinal" in report.read_text()
    assert "Patient-002" in sections["Longitudinal volumes"]


def test_ranking_section_on_audits_four_models(tmp_path, tests_data):
    run = tmp_path / "audit"
    assert main(["import-audit", "--metrics", str(tests_data / UCSD), "--out", str(run)]) == 0
    out = tmp_path / "r.html"
    assert main(["report", "--force", str(run), "--out", str(out)]) == 0
    sections = _sections(out.read_text())
    assert "Model ranking" in sections
    m = read_audit_metrics(tests_data / UCSD)
    wide = m[m.metric == "dice"].groupby(["case", "model"]).value.mean().unstack().dropna()
    ref = stats.friedmanchisquare(*wide.to_numpy().T)
    assert f"p = {ref.pvalue:.3g}" in sections["Model ranking"]
    assert f"{len(wide)} complete cases" in sections["Model ranking"]


def test_report_renders_in_headless_chromium(report, tmp_path):
    """Every section shows decoded figures or filled tables in a real browser; a screenshot is taken."""
    pw = chromium_playwright()
    with pw.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
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
        assert s["visible"], s
        assert s["broken"] == 0, s
        assert s["imgs"] + s["rows"] > 0 or s["name"] in WHY_ONLY, s
    assert errors == []
    assert shot.stat().st_size > 100_000
    assert height > 5000
    if os.environ.get("SEGAUDIT_SCREENSHOT"):
        shutil.copy(shot, os.environ["SEGAUDIT_SCREENSHOT"])


# ------------------------------------------------------------------ reports that cover what the data has
UCSF = "audit_outputs/metrics/BraTS_2024_by_site/extracted_information_UCSF.csv"
INDIANA_F = "audit_outputs/features/BraTS_2024_by_site/extracted_information_Indiana.csv"
INDIANA_M = "audit_outputs/metrics/BraTS_2024_by_site/extracted_information_Indiana.csv"
SSA_F = "audit_outputs/features/extracted_information_BraTS2024_SSA.csv"


class _Parsed(HTMLParser):
    """The report as the stdlib parser sees it: per h2 section, its h3 titles, tables (rows of cell texts),
    image count and 'why' paragraphs."""

    def __init__(self):
        super().__init__()
        self.sections: dict[str, dict] = {}
        self._cur = None
        self._tag = None
        self._text = []
        self._row = None
        self._cell = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("h2", "h3") or (tag == "p" and a.get("class") == "why"):
            self._tag, self._text = (tag if tag != "p" else "why"), []
        elif tag == "img" and self._cur:
            self._cur["images"] += 1
        elif tag == "table" and self._cur:
            self._cur["tables"].append([])
        elif tag == "tr" and self._cur:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if self._tag and tag == ("p" if self._tag == "why" else self._tag):
            text = "".join(self._text).strip()
            if self._tag == "h2":
                self._cur = self.sections[text] = {"h3": [], "tables": [], "images": 0, "why": []}
            elif self._cur is not None:
                self._cur["h3" if self._tag == "h3" else "why"].append(text)
            self._tag = None
        elif tag in ("td", "th") and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self._cur["tables"][-1].append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._tag:
            self._text.append(data)
        if self._cell is not None:
            self._cell.append(data)


def _parse(path: Path) -> dict[str, dict]:
    p = _Parsed()
    p.feed(path.read_text())
    return p.sections


def _frame(table: list[list[str]]) -> pd.DataFrame:
    return pd.DataFrame(table[1:], columns=table[0])


@pytest.fixture(scope="module")
def ucsf_run(tmp_path_factory, tests_data) -> Path:
    run = tmp_path_factory.mktemp("ucsf") / "run"
    assert main(["import-audit", "--metrics", str(tests_data / UCSF), "--out", str(run)]) == 0
    return run


def test_report_compares_the_pairs_asked_for(ucsf_run, tmp_path):
    out = tmp_path / "r.html"
    assert main(["report", "--force", str(ucsf_run), "--out", str(out), "--compare", "BraTS25_3A:BraTS25_3B",
                 "--compare", "BraTS25_1:BraTS25_2"]) == 0
    s = _parse(out)
    assert s["Pairwise comparison"]["h3"] == ["UCSF: BraTS25_3B vs BraTS25_3A", "UCSF: BraTS25_2 vs BraTS25_1"]
    # Four models: by default every one of the six pairs; the ranking is there.
    assert main(["report", "--force", str(ucsf_run), "--out", str(out)]) == 0
    s = _parse(out)
    assert len(s["Pairwise comparison"]["h3"]) == 6
    assert s["Model ranking"]["images"] == 1
    # A pair naming an absent model says so, with the models there are.
    assert main(["report", "--force", str(ucsf_run), "--out", str(out), "--compare", "BraTS25_1:nnUnet"]) == 0
    why = " ".join(_parse(out)["Pairwise comparison"]["why"])
    assert "nnUnet" in why
    assert "BraTS25_3B" in why


def test_report_per_case_table_gives_each_cases_mean_over_regions(ucsf_run, tmp_path, tests_data):
    out = tmp_path / "r.html"
    assert main(["report", "--force", str(ucsf_run), "--out", str(out)]) == 0
    t = _frame(_parse(out)["Per-case table"]["tables"][0]).set_index(["case", "model"])
    raw = pd.read_csv(tests_data / UCSF)
    assert len(t) == raw[["ID", "model"]].drop_duplicates().shape[0]
    for case in ("UCSF-00005-100", "UCSF-00005-101"):
        for model in ("BraTS25_3A", "BraTS25_3B"):
            ref = raw[(raw.ID == case) & (raw.model == model)].DICE.mean()
            assert float(t.loc[(case, model), "dice mean"]) == pytest.approx(ref, abs=5e-4)


def test_every_section_of_an_audit_import_says_what_it_has_or_why_not(ucsf_run, tmp_path):
    out = tmp_path / "r.html"
    assert main(["report", "--force", str(ucsf_run), "--out", str(out)]) == 0
    s = _parse(out)
    for name, sec in s.items():
        assert sec["images"] or sec["tables"] or sec["why"], name
    # What an AUDIT import lacks is named, not a generic message.
    assert "imported from AUDIT" in " ".join(s["Worst and best cases"]["why"])
    assert "tp" in " ".join(s["Failure taxonomy"]["why"])
    assert "AUDIT" in " ".join(s["Failure taxonomy"]["why"])
    assert "AUDIT" in " ".join(s["Segmentation error matrices"]["why"])
    assert "lesion_size" in " ".join(s["Bias: lesion size and subgroups"]["why"])


def test_features_only_report_shows_intensities_by_site_and_outliers(tmp_path, tests_data):
    run = tmp_path / "run"
    assert main(["import-audit", "--features", str(tests_data / INDIANA_F), str(tests_data / SSA_F),
                 "--out", str(run)]) == 0
    out = tmp_path / "r.html"
    assert main(["report", "--force", str(run), "--out", str(out)]) == 0
    s = _parse(out)
    assert "no ground truth" not in " ".join(s["Metrics"]["why"])
    assert s["Metrics"]["why"]
    inten = s["Image intensities by sequence and site"]
    assert inten["images"] == 1
    t = _frame(inten["tables"][0]).set_index(["dataset", "sequence"])
    for ds, path in (("Indiana", INDIANA_F), ("BraTS2024_SSA", SSA_F)):
        raw = pd.read_csv(tests_data / path)
        for seq in ("t1", "t1ce", "t2", "flair"):
            v = raw[f"{seq}_mean_intensity"].dropna().to_numpy()
            q1, med, q3 = np.percentile(v, [25, 50, 75])
            assert t.loc[(ds, seq), "mean"] == f"{med:.4g} [{q1:.4g}, {q3:.4g}]"
            assert int(t.loc[(ds, seq), "cases"]) == len(v)
    # Outliers: Tukey's fences, re-implemented here on the raw column, flag the same cases.
    outl = s["Feature outliers"]
    farthest = _frame(outl["tables"][1])
    assert len(farthest) > 0
    row = farthest.iloc[0]
    raw = pd.read_csv(tests_data / (INDIANA_F if row.dataset == "Indiana" else SSA_F))
    if row.feature in raw.columns:
        v = raw[row.feature].dropna()
        q1, q3 = v.quantile(0.25), v.quantile(0.75)
        val = raw.set_index("ID").loc[row.case, row.feature]
        assert val < q1 - 1.5 * (q3 - q1) or val > q3 + 1.5 * (q3 - q1)
    per_case = _frame(outl["tables"][0])
    ssa = pd.read_csv(tests_data / SSA_F).set_index("ID").select_dtypes("number")
    ssa = ssa.loc[:, ssa.notna().sum() >= 8]
    q1, q3 = ssa.quantile(0.25), ssa.quantile(0.75)
    out_ = (ssa < q1 - 1.5 * (q3 - q1)) | (ssa > q3 + 1.5 * (q3 - q1))
    # Each lesion_size_<label> column is also imported as that label's lesion volume: counted twice.
    expected = out_.sum(axis=1) + out_[[c for c in ssa.columns if c.startswith("lesion_size_")]].sum(axis=1)
    listed = per_case[per_case.dataset == "BraTS2024_SSA"]
    assert len(listed) > 0
    assert listed.case.iloc[0] == expected.idxmax()
    for r in listed.itertuples():
        assert int(r.outlying_features) == expected[r.case], r.case


def test_imported_audit_features_feed_bias_and_longitudinal(tmp_path, tests_data):
    run = tmp_path / "run"
    assert main(["import-audit", "--metrics", str(tests_data / INDIANA_M), "--features", str(tests_data / INDIANA_F),
                 "--out", str(run)]) == 0
    out = tmp_path / "r.html"
    assert main(["report", "--force", str(run), "--out", str(out)]) == 0
    bias = _parse(out)["Bias: lesion size and subgroups"]
    trend = _frame(bias["tables"][0])
    m = pd.read_csv(tests_data / INDIANA_M)
    f = pd.read_csv(tests_data / INDIANA_F)[["ID", "lesion_size_et"]]
    model = trend.model.iloc[0]
    t = m[(m.model == model) & (m.region == "ET")].merge(f[f.lesion_size_et > 0], on="ID").dropna(subset=["DICE"])
    rho = stats.spearmanr(t.lesion_size_et, t.DICE).statistic
    assert trend.region.iloc[0] == "ET"
    assert float(trend.spearman_rho.iloc[0]) == pytest.approx(rho, abs=5e-4)
    assert int(trend.n.iloc[0]) == len(t)
    # LUMIERE: AUDIT's longitudinal_id and time_point give the longitudinal section its subjects and weeks.
    run2 = tmp_path / "lum"
    lum = tests_data / "audit_outputs"
    assert main(["import-audit", "--metrics", str(lum / "metrics/extracted_information_LUMIERE.csv"),
                 "--features", str(lum / "features/extracted_information_LUMIERE.csv"), "--out", str(run2)]) == 0
    assert main(["report", "--force", str(run2), "--out", str(out)]) == 0
    lon = _parse(out)["Longitudinal volumes"]
    assert lon["images"] == 1
    t = _frame(lon["tables"][0])
    raw = pd.read_csv(tests_data / "audit_outputs/features/extracted_information_LUMIERE.csv",
                      dtype={"longitudinal_id": str})
    for r in raw.itertuples():
        got = t[(t.subject == r.longitudinal_id) & (t.timepoint == str(r.time_point))]
        assert len(got) == 2  # two models
        assert float(got["true volume (mm³)"].iloc[0]) == pytest.approx(r.lesion_size_whole, abs=0.01)


def test_image_only_project_report_describes_its_images(tmp_path, demo_data):
    """24 metastasis slices declared without ground truth or predictions: no metric, yet the report shows the
    per-case intensity distribution and the outlier table from segaudit's own features."""
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"name": "images-only", "datasets": {"mets": {
        "root": str(demo_data / "brainmets_t2w_slices"), "images": "{root}/images/{case}.jpg"}}}))
    project = load_project(path)
    run = tmp_path / "run"
    scan_project(project, run, progress=False)
    extract_project(project, run, FeatureOptions(groups=("intensity",)), progress=False)
    out = tmp_path / "r.html"
    assert main(["report", "--force", str(run), "--out", str(out)]) == 0
    s = _parse(out)
    assert "no ground truth" in " ".join(s["Metrics"]["why"])
    from segaudit.store.store import ResultsStore

    with ResultsStore(run, read_only=True) as st:
        f = st.query("SELECT source, value FROM features WHERE feature = 'mean' AND \"group\" = 'intensity' "
                     "AND source NOT LIKE '%/%'")
    inten = s["Image intensities by sequence and site"]
    assert inten["images"] == 1
    t = _frame(inten["tables"][0]).set_index(["dataset", "sequence"])
    for seq, g in f.groupby("source"):
        q1, med, q3 = np.percentile(g.value, [25, 50, 75])
        assert t.loc[("mets", seq), "mean"] == f"{med:.4g} [{q1:.4g}, {q3:.4g}]"
        assert int(t.loc[("mets", seq), "cases"]) == 24
    assert s["Feature outliers"]["tables"] or "No feature value" in out.read_text()


def test_panels_show_the_worst_region_or_the_one_asked_for(store, project_file, tmp_path):
    from segaudit.store.store import ResultsStore

    with ResultsStore(store, read_only=True) as st:
        d = st.query("SELECT region, avg(value) AS mean FROM metrics WHERE dataset = 'LUMIERE' AND metric = 'dice' "
                     "GROUP BY region ORDER BY mean, region")
    out = tmp_path / "r.html"
    assert main(["report", "--force", str(store), "--out", str(out), "--project", str(project_file)]) == 0
    heads = _parse(out)["Worst and best cases"]["h3"]
    assert f"LUMIERE ({d.region.iloc[0]}, its worst region by mean Dice)" in heads
    assert main(["report", "--force", str(store), "--out", str(out), "--project", str(project_file),
                 "--region", "WT"]) == 0
    heads = _parse(out)["Worst and best cases"]["h3"]
    assert "LUMIERE (WT, chosen with --region)" in heads
    # A dataset without that region falls back to its worst.
    assert any(h.startswith("brainmets_t2w_slices (metastasis, its worst") for h in heads)
