"""`init` guesses mask encodings from a sample of files, not from the first one (issue 13, severe item 4).

Real files: the bundled brain-metastasis T2w slices (U-Net predictions drawn in green in lossy JPEGs). Some of
the model's predictions are blank; a held-out folder whose first file (in name order) is one of them made the
old one-file sniff propose ``gray > 127`` and every prediction read empty (mean Dice 0.000).
"""

from __future__ import annotations

import shutil

import duckdb
import numpy as np
import pytest
import yaml
from PIL import Image as PILImage

from segaudit.cli import main
from segaudit.dataset import detect_layout
from segaudit.dataset.sniff import sample_files

#: Slices of the bundled set whose U-Net prediction is blank (every channel <= 2) or nearly so (green 29).
BLANK = ["BraTS-MET-00233-000_1055", "BraTS-MET-00233-000_1112", "BraTS-MET-00233-000_1115"]
FAINT = "BraTS-MET-00233-000_1069"
DRAWN = ["BraTS-MET-00233-000_1071", "BraTS-MET-00233-000_1119", "BraTS-MET-00234-000_1070",
         "BraTS-MET-00234-000_1090", "BraTS-MET-00234-000_1104", "BraTS-MET-00235-000_1022",
         "BraTS-MET-00235-000_1056"]


def slice_folder(dst, demo_data, slices):
    """A flat 2D folder (images/, masks_binary_png/, pred_unet_jpg/) with copies of the given real slices."""
    src = demo_data / "brainmets_t2w_slices"
    for sub, ext in (("images", "jpg"), ("masks_binary_png", "png"), ("pred_unet_jpg", "jpg")):
        (dst / sub).mkdir(parents=True)
        for s in slices:
            shutil.copy(src / sub / f"{s}.{ext}", dst / sub / f"{s}.{ext}")
    return dst


def reference_dice(folder, slices):
    """Dice per slice computed here with PIL and numpy, from the upstream encoding (SOURCE.md: G > 64)."""
    out = []
    for s in slices:
        gt = np.asarray(PILImage.open(folder / "masks_binary_png" / f"{s}.png")) > 127
        pred = np.asarray(PILImage.open(folder / "pred_unet_jpg" / f"{s}.jpg").convert("RGB"))[..., 1] > 64
        denom = gt.sum() + pred.sum()
        out.append(1.0 if denom == 0 else 2.0 * (gt & pred).sum() / denom)
    return out


def test_first_prediction_blank_still_gives_green_and_real_dice(tmp_path, demo_data, capsys):
    slices = [BLANK[0], *DRAWN]
    folder = slice_folder(tmp_path / "heldout", demo_data, slices)
    first = sorted((folder / "pred_unet_jpg").iterdir())[0]
    assert first.stem == BLANK[0]  # the trap is real
    assert np.asarray(PILImage.open(first)).max() <= 2
    out = tmp_path / "p.yaml"
    assert main(["init", str(folder), "--out", str(out)]) == 0
    assert "segaudit: warning" not in capsys.readouterr().err  # 1 of 8 sampled predictions empty: no warning
    entry = yaml.safe_load(out.read_text())["datasets"]["heldout"]
    assert entry["prediction_encoding"]["channel"] == "green"
    run = tmp_path / "run"
    assert main(["evaluate", str(out), "--out", str(run), "--no-progress", "--no-distances",
                 "--lesion-matching", "none"]) == 0
    with duckdb.connect(str(run / "segaudit.duckdb"), read_only=True) as con:
        got = dict(con.execute("SELECT \"case\", value FROM metrics WHERE metric = 'dice' AND model = 'unet'")
                   .fetchall())
    assert set(got) == set(slices)
    ref = reference_dice(folder, slices)
    assert np.mean(list(got.values())) > 0.5  # was 0.000: every prediction read as empty
    assert np.mean(list(got.values())) == pytest.approx(np.mean(ref), abs=0.02)  # threshold 68 vs upstream 64


def test_warning_when_most_sampled_predictions_are_empty(tmp_path, demo_data, capsys):
    folder = slice_folder(tmp_path / "mostly_blank", demo_data, [*BLANK, FAINT, DRAWN[0]])
    det = detect_layout(folder)
    enc = det.project["datasets"]["mostly_blank"]["prediction_encoding"]
    assert enc["channel"] == "green"  # decided from the one drawn file, not from the blank first one
    # independent count: how many predictions have no green pixel above the proposed threshold
    empty = sum(np.asarray(PILImage.open(f).convert("RGB"))[..., 1].max() <= enc["threshold"]
                for f in (folder / "pred_unet_jpg").iterdir())
    assert empty == 4
    assert len(det.warnings) == 1
    assert "4 of 5 sampled predictions" in det.warnings[0]
    out = tmp_path / "p.yaml"
    assert main(["init", str(folder), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "segaudit: warning" in err
    assert "empty under the proposed encoding" in err
    warned = [line for line in out.read_text().splitlines() if line.startswith("# WARNING:")]
    assert len(warned) == 1
    assert "4 of 5" in warned[0]
    yaml.safe_load(out.read_text())  # the comment keeps the file valid YAML


def test_ground_truth_sniff_looks_past_an_empty_first_mask(tmp_path, demo_data):
    """The ground truth is sniffed the same way: a blank first mask does not decide its encoding."""
    folder = slice_folder(tmp_path / "gt_blank_first", demo_data, DRAWN[:3])
    first = sorted((folder / "masks_binary_png").iterdir())[0]
    blank_name = folder / "masks_binary_png" / "AAA_blank.png"
    PILImage.fromarray(np.zeros_like(np.asarray(PILImage.open(first)))).save(blank_name)
    shutil.copy(folder / "images" / f"{first.stem}.jpg", folder / "images" / "AAA_blank.jpg")
    det = detect_layout(folder)
    entry = det.project["datasets"]["gt_blank_first"]
    assert entry["mask_encoding"] == {"kind": "binary", "threshold": 127}
    assert entry["labels"] == {"foreground": 1}
    assert det.warnings == []


def test_sample_is_seeded_bounded_and_spread():
    files = [f"f{i:03d}" for i in range(100)]
    a, b = sample_files(files, 16), sample_files(files, 16)
    assert a == b
    assert len(a) == 16
    assert len(set(a)) == 16
    idx = [files.index(f) for f in a]
    edges = np.linspace(0, 100, 17).astype(int)
    assert all(lo <= i < hi for i, lo, hi in zip(idx, edges[:-1], edges[1:], strict=True))  # one per stratum
    assert sample_files(files, 16, seed=1) != a  # the seed is what fixes the draw
    assert sample_files(files[:5], 16) == files[:5]
