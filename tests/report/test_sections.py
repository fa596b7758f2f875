"""Each report section module on its own, on one real store, and the page assembled from them.

The store: the 24 bundled metastasis slices (real JPEG predictions of a U-Net drawn in green) decoded at three
thresholds as three models, one prediction file removed (a missing case), a split and a site column in the
metadata, evaluated, feature-extracted and compared model-against-model (``agree``); plus a real training log.
"""

import html
import pkgutil
import re
import shutil
from fnmatch import fnmatch
from html.parser import HTMLParser
from importlib import import_module
from importlib.resources import files
from pathlib import Path

import pandas as pd
import pytest
import yaml

from segaudit.dataset.project import load_project
from segaudit.features.case import FeatureOptions
from segaudit.metrics import EvaluationOptions
from segaudit.pipeline.agree import agree_project
from segaudit.pipeline.evaluate import evaluate_project
from segaudit.pipeline.features import extract_project
from segaudit.pipeline.scan import scan_project
from segaudit.report import html as report_html
from segaudit.report import sections
from segaudit.report.inputs import read_inputs
from segaudit.report.markup import CSS_RESOURCE, load_css
from segaudit.report.page import build_report, report_sections

ROOT = Path(__file__).resolve().parents[2]
MODELS = {"unet_t32": 32, "unet_t64": 64, "unet_t120": 120}  # the green channel's threshold of each "model"
MISSING = "BraTS-MET-00230-000_1057"  # its unet_t120 prediction file is removed
#: Sections of this store that draw nothing and say why (and the words of the reason).
WHY = {"longitudinal": "whole-tumour (WT) volumes", "no_metrics": "no metric in this store",
       "prompting": "no promptable-model results in this store", "ask_eval": "no ask-eval rows"}


@pytest.fixture(scope="module")
def project(tmp_path_factory, demo_data):
    root = tmp_path_factory.mktemp("sections")
    data = root / "slices"
    shutil.copytree(demo_data / "brainmets_t2w_slices", data)
    pred = data / "pred_unet_t120"
    shutil.copytree(data / "pred_unet_jpg", pred)
    (pred / f"{MISSING}.jpg").unlink()
    meta = pd.read_csv(data / "slices.csv")
    patients = sorted(meta.case.unique())
    meta["split"] = meta.case.map({p: "train" if i < 3 else "test" for i, p in enumerate(patients)})
    meta["site"] = meta.case.map({p: "A" if i % 2 else "B" for i, p in enumerate(patients)})
    meta.to_csv(data / "slices.csv", index=False)
    spec = yaml.safe_load((demo_data / "segaudit.yaml").read_text())["datasets"]["brainmets_t2w_slices"]
    spec.update(root=str(data), metadata={"path": str(data / "slices.csv"), "id_column": "slice"},
                predictions={m: "{root}/pred_unet_t120/{case}.jpg" if m == "unet_t120" else
                             "{root}/pred_unet_jpg/{case}.jpg" for m in MODELS},
                prediction_encoding={m: {"kind": "binary", "channel": "green", "threshold": t}
                                     for m, t in MODELS.items()})
    path = root / "segaudit.yaml"
    path.write_text(yaml.safe_dump({"name": "sections", "datasets": {"mets": spec}}))
    log = root / "unet.csv"
    log.write_text("epoch,dice,loss,val_dice,val_loss\n0,0.31,0.90,0.28,0.95\n1,0.52,0.61,0.47,0.70\n"
                   "2,0.70,0.40,0.58,0.62\n3,0.81,0.25,0.55,0.66\n")
    return load_project(path), {"unet_t64": log}


@pytest.fixture(scope="module")
def store(project, tmp_path_factory) -> Path:
    proj, _ = project
    run = tmp_path_factory.mktemp("sections_run") / "run"
    scan_project(proj, run, progress=False)
    evaluate_project(proj, run, EvaluationOptions(), progress=False)
    extract_project(proj, run, FeatureOptions(groups=("intensity", "lesion"), shape=False), progress=False)
    agree_project(proj, run, EvaluationOptions(lesion_matching="none"), progress=False)
    return run


@pytest.fixture(scope="module")
def inputs(store, project):
    proj, logs = project
    return read_inputs(store, proj, training_logs=logs)


@pytest.fixture(scope="module")
def rendered(inputs) -> dict[str, str]:
    """Module name -> its ``render`` on the store (each section on its own)."""
    return {name: import_module(f"segaudit.report.sections.{name}").render(inputs) for name in _section_names()}


@pytest.fixture(scope="module")
def page(store, project, tmp_path_factory) -> str:
    proj, logs = project
    return build_report(store, tmp_path_factory.mktemp("page") / "r.html", proj, training_logs=logs).read_text()


def _section_names() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(sections.__path__))


class _Tags(HTMLParser):
    """Open-tag stack of an HTML fragment: a fragment whose elements all close leaves it empty."""

    VOID = {"img", "br", "meta", "hr"}

    def __init__(self):
        super().__init__()
        self.stack: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack, (tag, self.stack[-3:])
        assert self.stack[-1] == tag, (tag, self.stack[-3:])
        self.stack.pop()


@pytest.mark.slow
def test_every_section_module_renders_on_its_own(rendered, store):
    assert len(rendered) >= 17  # one module per section; a new module is picked up here automatically
    for name, out in rendered.items():
        mod = import_module(f"segaudit.report.sections.{name}")
        assert isinstance(mod.TITLE, str), name
        assert mod.TITLE, name
        assert out, name
        assert "could not be drawn" not in out, name
        parser = _Tags()
        parser.feed(out)
        parser.close()
        assert parser.stack == [], (name, parser.stack)
        if name in WHY:
            assert out.startswith('<p class="why">Not drawn: '), name
            assert WHY[name] in out, name
        else:
            assert "<img" in out or "<table" in out, name


@pytest.mark.slow
def test_sections_show_this_stores_content(rendered):
    # Three models, one with a missing prediction: listed with the reason, compared (three pairs) and ranked.
    assert f"<td>{MISSING}</td>" in rendered["coverage"]
    assert "prediction file not found" in rendered["coverage"]
    assert len(re.findall(r"<h3>mets: unet_t\d+ vs unet_t\d+</h3>", rendered["comparison"])) == 3
    assert "24 complete cases, 3 models" in rendered["ranking"]
    assert "Friedman chi²" in rendered["ranking"]
    assert "(column split)" in rendered["splits"]
    assert "no patient-level leakage" in rendered["splits"]
    assert "<td>site</td>" in rendered["bias"]  # the metadata column is tested as a subgroup
    assert rendered["agreement"].startswith("<h3>mets</h3>")
    assert "24 case(s)" in rendered["agreement"]
    assert "<td>unet_t64</td>" in rendered["training"]
    assert rendered["worst_best"].count('<figure class="panel large">') >= 2


@pytest.mark.slow
def test_the_page_is_its_sections_in_order(inputs, rendered, page):
    shown = report_sections(inputs)
    names = [s.__name__.rsplit(".", 1)[1] for s in shown]
    # Every module is wired into the page; 'Metrics' only replaces the ground-truth sections of a store without,
    # 'ask-eval' only shows in a store that segaudit ask-eval wrote (tests/report/test_ask_eval_section.py).
    assert sorted(names) == [n for n in _section_names() if n not in ("no_metrics", "ask_eval")]
    assert re.findall(r'<h2 id="s\d+">([^<]+)</h2>', page) == [html.escape(s.TITLE) for s in shown]
    # Each section's own rendering, verbatim under its heading (rendering is deterministic: seeded bootstraps).
    for i, (s, name) in enumerate(zip(shown, names, strict=True)):
        assert f'<h2 id="s{i}">{html.escape(s.TITLE)}</h2>{rendered[name]}' in page, s.TITLE


def test_css_is_package_data_inlined_in_the_page(project, tmp_path):
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    text = files("segaudit.report").joinpath(CSS_RESOURCE).read_text(encoding="utf-8")
    assert ".why{" in text
    assert load_css() == text.rstrip("\n")
    assert report_html.CSS == load_css()
    proj, _ = project
    scan_project(proj, tmp_path / "run", progress=False)  # a scanned store: the report is quick to write
    page = build_report(tmp_path / "run", tmp_path / "r.html").read_text()
    assert f"<style>{load_css()}</style>" in page
    # An installed wheel has it: pyproject's package-data names it (setuptools ships only what is listed).
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    globs = config["tool"]["setuptools"]["package-data"]["segaudit"]
    assert any(fnmatch(f"report/{CSS_RESOURCE}", g) for g in globs), globs
