"""Prompt summaries and the robustness table, on hand-made ``prompts`` rows with known answers."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from segaudit.analysis.prompting import FLIP_DELTA, click_curve, prompt_summary, stability_summary, stability_table


def rows(setting: str, kind: str, dice: list[float], case="a") -> list[dict]:
    return [{"dataset": "x", "case": case, "model": f"litemedsam/{kind}", "kind": kind, "setting": setting,
             "component": i + 1, "dice": d, "predicted_iou": 0.9, "decode_seconds": 0.05, "encode_seconds": 1.0,
             "clicks_dice": None} for i, d in enumerate(dice)]


@pytest.fixture
def prompts() -> pd.DataFrame:
    return pd.DataFrame(rows("default", "box", [0.9, 0.8]) + rows("filter=area", "box", [0.4, 0.8])
                        + rows("jitter=20px", "box-jitter", [0.85, 0.75])
                        + rows("default", "box", [0.7], "b") + rows("filter=area", "box", [0.69], "b"))


def test_stability_table_flags_the_case_whose_object_flips(prompts):
    t = stability_table(prompts).set_index("case")
    assert t.loc["a", "dice[default]"] == pytest.approx(0.85)
    assert t.loc["a", "dice[filter=area]"] == pytest.approx(0.6)
    assert t.loc["a", "worst_drop"] == pytest.approx(0.25)
    assert t.loc["a", "spread"] == pytest.approx(0.25)
    assert bool(t.loc["a", "flip"])
    assert not bool(t.loc["b", "flip"])
    assert np.isnan(t.loc["b", "dice[jitter=20px]"])
    assert FLIP_DELTA == 0.2


def test_stability_summary_pairs_each_object_with_the_default_box(prompts):
    s = stability_summary(prompts).set_index("setting")
    assert s.loc["filter=area", "n_objects"] == 3
    assert s.loc["filter=area", "delta_mean"] == pytest.approx((-0.5 + 0 - 0.01) / 3)
    assert s.loc["filter=area", "worst_drop"] == pytest.approx(0.5)
    assert s.loc["filter=area", "n_moved"] == 1
    assert s.loc["jitter=20px", "n_objects"] == 2


def test_no_robustness_rows_means_empty_tables(prompts):
    default = prompts[prompts.setting == "default"]
    assert stability_table(default).empty
    assert stability_summary(default).empty


def test_prompt_summary_joins_the_evaluate_dice(prompts):
    dice = pd.DataFrame({"dataset": "x", "case": ["a", "b"], "model": "litemedsam/box", "region": "lung",
                         "metric": "dice", "value": [0.86, 0.7]})
    s = prompt_summary(prompts, dice).set_index("model").loc["litemedsam/box"]
    assert s.n_images == 2
    assert s.n_objects == 3
    assert s.image_dice_mean == pytest.approx(0.78)
    assert s.object_dice_mean == pytest.approx(0.8)
    assert np.isnan(s.image_dice_ci_low)  # two images: too few for a bootstrap CI


def test_click_curve_carries_the_last_dice_and_counts_clicks_to_target():
    p = pd.DataFrame(rows("default", "clicks", [0.9, 0.5]))
    p["clicks_dice"] = [json.dumps([0.7, 0.9]), json.dumps([0.2, 0.5, 0.6])]
    c = click_curve(p)
    assert list(c.dice_mean) == pytest.approx([0.45, 0.7, 0.75])
    assert list(c.n) == [2, 2, 1]
    assert c.noc85.iloc[0] == pytest.approx((2 + 3) / 2)
