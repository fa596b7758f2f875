"""Dataset-level QC (issue 12, item 4): a dataset that mixes image sizes or sources is flagged.

Real data: the chest x-rays of tests/data are journal figures of five sizes in JPEG and PNG; the full public
set (SEGAUDIT_SAMPLE_DATA) has eleven 2000×2000 scanner exports among them. Sizes are read here with PIL.
"""

from __future__ import annotations

import pytest
import yaml
from PIL import Image as PILImage

from segaudit.dataset import load_project
from segaudit.pipeline.scan import resolve_project, scan_project


def _sizes(folder):
    """(rows×columns text, case) of every image, from PIL (width, height)."""
    return {f.stem: f"{h}×{w}" for f in folder.iterdir() for w, h in [PILImage.open(f).size]}


def test_mixed_sizes_and_formats_are_warned(tests_data):
    project, _ = resolve_project(tests_data / "chest_xray_lungs")
    res = scan_project(project, progress=False)
    qc = res.qc.set_index("check")
    sizes = _sizes(tests_data / "chest_xray_lungs" / "images")
    msg = qc.loc["mixed_sizes", "message"]
    assert qc.loc["mixed_sizes", "severity"] == "warning"
    assert qc.loc["mixed_sizes", "case"] == ""
    for case, size in sizes.items():
        assert f"{size} ({case})" in msg
    fmt = qc.loc["mixed_formats", "message"]
    assert "jpg" in fmt
    assert "png" in fmt
    assert res.summary.warnings.iloc[0] >= 2


def test_uniform_dataset_has_no_size_warning(demo_data, tmp_path):
    data = {"datasets": {"fundus": {"root": str(demo_data / "fundus_exudates"), "images": "{root}/images/{case}.jpg",
                                    "ground_truth": "{root}/masks_EX_binary_png/{case}_EX.png",
                                    "labels": {"exudate": 1}, "mask_encoding": {"kind": "binary"}}}}
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data))
    res = scan_project(load_project(path), progress=False)
    assert len({s for s in _sizes(demo_data / "fundus_exudates" / "images").values()}) == 1
    assert not res.qc.check.isin(["mixed_sizes", "mixed_formats"]).any()


@pytest.mark.slow
def test_journal_figures_among_scans_full_set(sample_data, tmp_path):
    data = {"datasets": {"chest": {"root": str(sample_data / "chest_xray_lungs"),
                                   "images": "{root}/images/{case}.{ext}",
                                   "ground_truth": "{root}/masks_lung/{case}.png",
                                   "labels": {"lung": 1}, "mask_encoding": {"kind": "binary"}}}}
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data))
    res = scan_project(load_project(path), progress=False)
    sizes = _sizes(sample_data / "chest_xray_lungs" / "images")
    n_scans = sum(s == "2000×2000" for s in sizes.values())
    msg = res.qc.set_index("check").loc["mixed_sizes", "message"]
    assert msg.split(": ", 1)[1].startswith(f"{n_scans} × 2000×2000")  # the majority first
    assert "756×685 (41182_2020_203_Fig3_HTML)" in msg
