"""The paraphrase plug-in interface: no plug-in by default, the Protocol checked, candidates filtered so the
grounded target survives. The plug-in used here is a fixed rewording rule written in this test, not an LLM:
no model is ever called by the tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from segaudit.instruct import export_instructions
from segaudit.instruct.paraphrase import Paraphraser, accept_paraphrase

sys.path.insert(0, str(Path(__file__).parent))
from conftest_instruct import MODALITIES, small_project  # noqa: E402


class PleaseRule:
    """Deterministic rewording: a polite prefix, plus candidates the filter must drop."""

    name = "please-rule"

    def __init__(self):
        self.calls = 0

    def paraphrase(self, text, *, task, target, modality, n, seed):
        self.calls += 1
        return [f"Please, {text[0].lower()}{text[1:]}", "Segment it [SEG].", "Outline it."][:n]


def test_accept_rule():
    assert accept_paraphrase("Kindly outline the left lung.", "Segment the left lung.", "left lung")
    assert not accept_paraphrase("Kindly outline it.", "Segment the left lung.", "left lung")  # target lost
    assert not accept_paraphrase("Segment the lung [SEG].", "Segment the lung.", "lung")
    assert not accept_paraphrase("<image> the lung", "Segment the lung.", "lung")
    assert not accept_paraphrase("Segment the lung.", "Segment the lung.", "lung")  # unchanged
    assert not accept_paraphrase("x" * 301 + " lung", "Segment the lung.", "lung")
    assert not accept_paraphrase(None, "Segment the lung.", "lung")
    assert accept_paraphrase("What should we do next?", "Which treatment now?", None)


def test_plugin_rewords_instructions_keeps_targets_and_is_recorded(tmp_path):
    project = small_project(tmp_path, ("chest",))
    plain = export_instructions(project, tmp_path / "a", per_image=6, seed=0, use_model=False,
                                modalities=MODALITIES)
    assert plain.summary["paraphrased"] == 0
    assert all(r.paraphrase is None for r in plain.records)
    rule = PleaseRule()
    assert isinstance(rule, Paraphraser)
    res = export_instructions(project, tmp_path / "b", per_image=6, seed=0, use_model=False,
                              modalities=MODALITIES, paraphraser=rule)
    para = [r for r in res.records if r.paraphrase]
    assert para
    assert res.summary["paraphrased"] == len(para)
    assert res.summary["settings"]["paraphraser"] == "please-rule"
    for r in para:
        assert r.paraphrase == "please-rule"
        assert "[SEG]" not in r.instruction
        if r.asked_task in ("describe", "offtask"):  # no target phrase to keep: "Outline it." may pass
            assert r.instruction.startswith("Please, ") or r.instruction == "Outline it."
        else:
            assert r.instruction.startswith("Please, ")
            assert r.targets[0].phrase.lower() in r.instruction.lower() if r.targets else True
    assert rule.calls <= res.summary["candidates"]  # cached: one call per distinct request, not per pass
    with pytest.raises(TypeError):
        export_instructions(project, tmp_path / "c", use_model=False, paraphraser=object())
