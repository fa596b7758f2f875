"""``segaudit prompt``: options checked before anything runs; one real x-ray end to end (real weights)."""

from __future__ import annotations

import pytest

from segaudit.cli.parser import main
from tests.conftest import TESTS_DATA
from tests.pipeline.test_prompt_project import _require_sam

XRAYS = TESTS_DATA / "chest_xray_lungs"


@pytest.fixture
def project(tmp_path):
    path = tmp_path / "project.yaml"
    path.write_text(f"datasets:\n  xray:\n    root: {XRAYS}\n"
                    "    images: '{root}/images/41182_2020_203_{case}.jpg'\n"
                    "    ground_truth: '{root}/masks_lung/41182_2020_203_{case}.png'\n    labels: {lung: 1}\n"
                    "    mask_encoding: {kind: binary, threshold: 127}\n")
    return path


@pytest.mark.parametrize(("flags", "message"), [(["--prompts", "box,lasso"], "unknown prompt kinds"),
                                            (["--robustness", "filter=nearest"], "unknown robustness settings")])
def test_unknown_prompt_kind_or_setting_is_refused_before_anything_runs(project, tmp_path, capsys, flags, message):
    assert main(["prompt", str(project), "--out", str(tmp_path / "run"), *flags]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_prompt_verb_prints_dice_per_kind_and_the_robustness_table(project, tmp_path, capsys):
    _require_sam()
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        code = main(["prompt", str(project), "--out", str(tmp_path / "run"), "--prompts", "box",
                     "--robustness", "jitter=5px", "--no-distances", "--no-progress", "--dataset", "xray",
                     "--cache-dir", str(tmp_path / "cache")])
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert code == 0
    assert "litemedsam/box" in out
    assert "jitter=5px" in out
    assert "2 case(s) prompted" in out
