"""``segaudit prompt``: options checked before anything runs; one real x-ray end to end (real weights)."""

from __future__ import annotations

import pytest

from conftest import one_torch_thread, require_sam, write_brats_project, write_xray_project
from segaudit.cli.parser import main


@pytest.fixture
def project(tmp_path):
    return write_xray_project(tmp_path)


@pytest.mark.parametrize(("flags", "message"), [(["--prompts", "box,lasso"], "unknown prompt kinds"),
                                            (["--robustness", "filter=nearest"], "unknown robustness settings"),
                                            (["--robustness", "noise=2"], "noise level must lie in (0, 1]"),
                                            (["--sequences", "t1,t1ce,t2,flair"], "at most three sequences"),
                                            (["--auto-iou", "1.5"], "must lie in [0, 1]")])
def test_unknown_prompt_kind_or_setting_is_refused_before_anything_runs(project, tmp_path, capsys, flags, message):
    assert main(["prompt", str(project), "--out", str(tmp_path / "run"), *flags]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_prompt_verb_prints_dice_per_kind_and_the_robustness_table(project, tmp_path, capsys):
    require_sam()
    with one_torch_thread():
        code = main(["prompt", str(project), "--out", str(tmp_path / "run"), "--prompts", "box",
                     "--robustness", "jitter=5px", "--no-distances", "--no-progress", "--dataset", "xray",
                     "--cache-dir", str(tmp_path / "cache")])
    out = capsys.readouterr().out
    assert code == 0
    assert "litemedsam/box" in out
    assert "jitter=5px" in out
    assert "2 case(s) prompted" in out


@pytest.mark.slow  # 8 encodings of one BraTS slice
def test_attribute_verb_stores_subsets_shapley_and_drop_one(tmp_path, capsys):
    require_sam()
    from segaudit.store import ResultsStore

    project = write_brats_project(tmp_path)
    args = ["attribute", str(project), "--out", str(tmp_path / "run"), "--no-progress",
            "--cache-dir", str(tmp_path / "cache")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "Modality attribution" in out
    assert "flair" in out
    with ResultsStore(tmp_path / "run", read_only=True) as store:
        a = store.attributions()
    assert sorted(a.method.value_counts().items()) == [("drop_one", 3), ("shapley", 3), ("subset", 8)]
    assert set(a[a.method == "shapley"].sequences) == {"t1ce", "t2", "flair"}
    assert (a.region == "WT").all()
    sub = a[a.method == "subset"].set_index("sequences").value
    phi = a[a.method == "shapley"].value.sum()
    assert phi == pytest.approx(sub["t1ce+t2+flair"] - sub[""], abs=1e-9)  # efficiency
    assert main(args) == 0  # a re-run skips the case
    assert "1 case(s) already attributed" in capsys.readouterr().out
