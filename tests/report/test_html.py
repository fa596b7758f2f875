"""The HTML report on a real evaluated and feature-extracted store: self-contained, every section with content."""

import base64
import re

import pytest

from segaudit.cli import main
from segaudit.features.case import FeatureOptions
from segaudit.metrics import EvaluationOptions
from segaudit.pipeline.demo import demo_project
from segaudit.pipeline.evaluate import evaluate_project
from segaudit.pipeline.features import extract_project
from segaudit.pipeline.scan import scan_project


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    project = demo_project()
    project.datasets = [d for d in project.datasets if d.name in ("LUMIERE", "brainmets_t2w_slices")]
    out = tmp_path_factory.mktemp("report") / "run"
    scan_project(project, out, progress=False)
    evaluate_project(project, out, EvaluationOptions(lesion_matching="none"), progress=False)
    extract_project(project, out, FeatureOptions(groups=("lesion",), shape=False), progress=False)
    return out


def test_report_is_self_contained_with_every_section(store, tmp_path, capsys):
    from segaudit.pipeline.demo import demo_project_path

    out = tmp_path / "report.html"
    assert main(["report", str(store), "--out", str(out), "--project", str(demo_project_path())]) == 0
    assert str(out.resolve()) in capsys.readouterr().out
    doc = out.read_text()
    for section in ("Datasets and QC", "Metric summary", "Per-case Dice with quality bands", "Failure taxonomy",
                    "Segmentation error matrices", "Pairwise comparison", "Longitudinal volumes",
                    "Worst and best cases"):
        assert f"<h2>{section}</h2>" in doc, section
    assert "http://" not in doc and "https://" not in doc and "<script" not in doc  # nothing fetched to view it
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', doc)
    assert len(images) >= 8
    for data in images:
        assert base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n"
    # LUMIERE has two models: the comparison explains its test in words.
    assert "SegResNet vs" in doc or "nnUnet vs" in doc
    assert "because" in doc and ("Shapiro" in doc or "too few" in doc or "rank test" in doc)
    assert "Patient-002" in doc and "BraTS-MET-" in doc
