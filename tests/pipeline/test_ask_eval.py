"""segaudit.pipeline.ask: the holdout evaluation on real CoNSeP tiles (nuclei: no LiteMedSAM needed)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from conftest import TESTS_DATA
from segaudit.pipeline.ask import EVAL_PHRASINGS, ask_eval, auroc, check_phrasings, split_cases
from segaudit.store import ResultsStore

pytest.importorskip("torch")
CONSEP = TESTS_DATA / "histology_consep"


def test_eval_phrasings_are_not_in_the_template_bank():
    assert check_phrasings() == []
    assert all(len(v) >= 4 for v in EVAL_PHRASINGS.values())


def test_auroc_matches_the_pairwise_definition():
    assert auroc([0.9, 0.8], [0.1, 0.2]) == 1.0
    assert auroc([0.1], [0.9]) == 0.0
    assert auroc([0.5], [0.5]) == 0.5
    assert np.isnan(auroc([], [0.1]))


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    from segaudit.instruct.embed import model_dir

    if model_dir() is None:
        pytest.skip("the bundled MiniLM is not installed")
    tmp = tmp_path_factory.mktemp("askeval")
    data = {"name": "ask-eval-consep", "datasets": {"consep": {
        "root": str(CONSEP), "images": "{root}/images/{case}.jpg", "ground_truth": "{root}/class_masks/{case}.png",
        "instances": "{root}/inst_masks/{case}.png", "label_convention": "consep"}}}
    (tmp / "p.yaml").write_text(yaml.safe_dump(data))
    return tmp / "p.yaml"


def test_split_is_seeded_and_disjoint(project):
    from segaudit.dataset import load_project

    cfg = load_project(project)
    train, test = split_cases(cfg, 0.3, 0)
    assert len(test) == 3
    assert len(train) == 7
    assert not train & test
    assert split_cases(cfg, 0.3, 0) == (train, test)
    assert split_cases(cfg, 0.3, 1) != (train, test)


def test_ask_eval_scores_and_stores(project, tmp_path):
    res = ask_eval(project, tmp_path / "run", holdout=0.3, seed=0)
    row = res.table.set_index("modality").loc["all"]
    kinds = set(res.pairs["kind"])
    assert {"valid", "offtask", "unknown"} <= kinds
    assert row["pairs"] == len(res.pairs)
    assert 0 <= row["router_accuracy"] <= 1
    assert row["refusal_rate_invalid"] >= 0.8  # off-task and unknown targets on 3 tiles
    assert row["false_refusal_rate_valid"] <= 0.5
    assert 0 < row["count_rel_error"] < 1
    assert 0 < row["aji_mean"] < 1
    pairs = [json.loads(line) for line in (tmp_path / "run" / "ask_eval_pairs.jsonl").read_text().splitlines()]
    assert len(pairs) == len(res.pairs)
    with ResultsStore(tmp_path / "run", read_only=True) as store:
        m = store.metrics()
    m = m[m.dataset == "ask-eval"]
    assert set(m.case) == {"all", "H&E histology"}
    assert float(m[(m.case == "all") & (m.metric == "router_accuracy")].value.iloc[0]) == pytest.approx(
        row["router_accuracy"])


def test_what_did_the_model_predict_answers_from_the_store(tmp_path):
    from conftest import DEMO_DATA
    from segaudit.dataset import load_project
    from segaudit.pipeline.ask import store_answer
    from segaudit.pipeline.evaluate import evaluate_project

    mets = DEMO_DATA / "brainmets_t2w_slices"
    for sub in ("images", "masks_binary_png", "pred_unet_jpg"):
        (tmp_path / sub).mkdir()
        for f in sorted((mets / sub).iterdir())[:2]:
            (tmp_path / sub / f.name).write_bytes(f.read_bytes())
    data = {"name": "ask-store", "datasets": {"mets": {
        "root": str(tmp_path), "images": "{root}/images/{case}.jpg",
        "ground_truth": "{root}/masks_binary_png/{case}.png",
        "predictions": {"unet": "{root}/pred_unet_jpg/{case}.jpg"}, "labels": {"metastasis": 1},
        "mask_encoding": {"kind": "binary", "threshold": 127},
        "prediction_encoding": {"kind": "binary", "channel": "green", "threshold": 64}}}}
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(data))
    cfg = load_project(tmp_path / "p.yaml")
    evaluate_project(cfg, tmp_path / "run", progress=False)
    image = sorted((tmp_path / "images").iterdir())[0]
    res = store_answer(image, "what did the unet model predict here?", cfg, tmp_path / "run")
    assert res is not None
    assert res.verdict == "answered"
    assert res.tool == "results store"
    assert res.case == ["mets", image.stem]
    with ResultsStore(tmp_path / "run", read_only=True) as store:
        m = store.metrics()
    dice = m[(m.case == image.stem) & (m.model == "unet") & (m.region == "metastasis") & (m.metric == "dice")]
    assert res.measurements["metastasis.dice"]["value"] == pytest.approx(float(dice.value.iloc[0]))
    assert f"Dice {float(dice.value.iloc[0]):.3f}" in res.text
    assert store_answer(image, "outline the metastases", cfg, tmp_path / "run") is None  # not about a model
    assert store_answer(CONSEP / "images" / "test_1_004.jpg", "what did unet predict?", cfg, tmp_path / "run") is None
