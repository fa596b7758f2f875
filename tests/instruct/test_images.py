"""Image export of instruction records: files under the output folder, pixels as stored or windowed (checked
independently with PIL / nibabel / numpy), safe names, every format pointing at the exported files."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image as PILImage

from segaudit.dataset import load_project
from segaudit.instruct import export_instructions
from segaudit.instruct.images import intensity_window, to_uint8

sys.path.insert(0, str(Path(__file__).parent))
from conftest_instruct import MODALITIES, write_project  # noqa: E402


@pytest.fixture(scope="module")
def with_images(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("instruct_images")
    project = load_project(write_project(tmp))
    project.datasets = [d for d in project.datasets if d.name in ("chest", "brats")]
    res = export_instructions(project, tmp / "out", format=["jsonl", "llava", "lisa", "glamm"], per_image=3,
                              seed=1, use_model=False, modalities=MODALITIES, images="png")
    records = [json.loads(line) for line in (tmp / "out" / "records.jsonl").read_text().splitlines()]
    return tmp / "out", res, records


def test_one_png_per_view_with_safe_names_and_every_record_pointing_at_it(with_images):
    out, res, records = with_images
    views = {(r["provenance"]["image_file"], r["provenance"]["slice"]) for r in records}
    images = sorted((out / "images").iterdir())
    assert len(images) == len(views) == len({r["exported_image"] for r in records})
    assert all(re.fullmatch(r"\d{5}_[A-Za-z0-9._+-]+\.png", p.name) for p in images)
    assert not list(out.rglob(".*"))  # no temporary file left
    assert {p for p in res.files if p.parent.name == "images"} == set(images)
    for r in records:
        img = PILImage.open(out / r["exported_image"])
        assert img.format == "PNG"
        assert (img.height, img.width) == (r["height"], r["width"])
    for name in ("llava", "lisa", "glamm"):
        entries = json.loads((out / f"{name}.json").read_text())
        key = "file_name" if name == "glamm" else "image"
        by_id = {r["id"]: r["exported_image"] for r in records}
        assert all(e[key] == by_id[e["id"]] for e in entries)


def test_8bit_images_are_written_as_stored(with_images):
    out, _, records = with_images
    chest = [r for r in records if r["provenance"]["dataset"] == "chest"]
    assert chest
    for r in chest:
        assert r["image_window"] is None
        src = np.asarray(PILImage.open(r["provenance"]["image_file"]))
        assert np.array_equal(np.asarray(PILImage.open(out / r["exported_image"])), src)


def test_volume_slices_are_windowed_per_file_with_the_window_recorded(with_images):
    out, _, records = with_images
    brats = [r for r in records if r["provenance"]["dataset"] == "brats"]
    assert brats
    assert all(r["provenance"]["image_file"].endswith("_flair.nii.gz") for r in brats)  # preferred sequence
    vol = np.asarray(nib.load(brats[0]["provenance"]["image_file"]).dataobj).astype(np.float64)
    lo, hi = np.percentile(vol[vol != 0], [0.5, 99.5])
    for r in brats:
        assert r["image_window"] == pytest.approx([lo, hi])
        k = r["provenance"]["slice"]
        want = np.clip(np.rint((vol[:, :, k] - lo) / (hi - lo) * 255), 0, 255).astype(np.uint8)
        got = np.asarray(PILImage.open(out / r["exported_image"]))
        assert np.array_equal(got, want), r["id"]


def test_window_helpers_on_edge_cases():
    assert intensity_window(np.zeros((3, 3))) == (0.0, 0.0)
    assert to_uint8(np.full((2, 2), 7.0), (7.0, 7.0)).tolist() == [[0, 0], [0, 0]]
    assert to_uint8(np.array([-5.0, 0.0, 10.0, 99.0]), (0.0, 10.0)).tolist() == [0, 0, 255, 255]


def test_jpeg_export_and_unknown_format(tmp_path):
    project = load_project(write_project(tmp_path))
    project.datasets = [d for d in project.datasets if d.name == "chest"]
    export_instructions(project, tmp_path / "j", per_image=2, use_model=False, images="jpeg")
    files = sorted((tmp_path / "j" / "images").iterdir())
    assert files
    assert all(p.suffix == ".jpg" and PILImage.open(p).format == "JPEG" for p in files)
    with pytest.raises(ValueError, match="image format"):
        export_instructions(project, tmp_path / "x", use_model=False, images="tiff")
    assert not (tmp_path / "x").exists()
