"""Hostile and careless files at the I/O and QC layers (issue 13): each is refused or reported, naming the file.

Every file here is made from the real bundled data (BraTS/LUMIERE NIfTI volumes, CoNSeP class masks, chest
x-rays): a header rewritten to claim 2000³ voxels, a volume stacked into 4D, a class mask saved as a palette
PNG, a header with a wrong ``sizeof_hdr``, a ground truth with a negative label, a spacing override of the
wrong length. The references are nibabel and PIL reading the source files directly.
"""

from __future__ import annotations

import gzip
import logging
import os
import shutil
import struct
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import yaml
from PIL import Image as PILImage

import segaudit
from segaudit.dataset import load_project
from segaudit.errors import ConfigError, ImageReadError, MaskValueError
from segaudit.io.geometry import read_geometry
from segaudit.io.masks import read_mask
from segaudit.io.readers import read_image
from segaudit.pipeline.scan import scan_project

LUMIERE = "brats_audit/LUMIERE"
CASE = "Patient-002-week-000"


def _lumiere_seg(demo_data):
    return demo_data / LUMIERE / "LUMIERE_images" / CASE / f"{CASE}_seg.nii.gz"


def _scan(tmp_path, dataset: dict):
    proj = tmp_path / "segaudit.yaml"
    proj.write_text(yaml.safe_dump({"datasets": {"ds": dataset}}))
    return scan_project(load_project(proj), None, progress=False)


def _huge_header(demo_data) -> bytes:
    """A real LUMIERE header with its dimensions rewritten to 2000 x 2000 x 2000 (uint8, 8 GB claimed)."""
    hdr = nib.load(_lumiere_seg(demo_data)).header.copy()
    hdr.set_data_dtype(np.uint8)
    hdr.set_data_shape((2000, 2000, 2000))
    return hdr.binaryblock + b"\0" * 4  # the 4-byte extension flag: a complete 352-byte NIfTI-1 header


# --- 1. a header claiming more data than the file holds, or than the memory budget -------------------------------

def test_huge_header_is_refused_before_allocating(tmp_path, demo_data):
    gz = tmp_path / "huge.nii.gz"
    gz.write_bytes(gzip.compress(_huge_header(demo_data), 9))
    raw = tmp_path / "huge.nii"
    raw.write_bytes(_huge_header(demo_data))
    assert gz.stat().st_size < 200  # the probe's file was 69 bytes
    for path, reason in ((gz, "inflates to at most"), (raw, "the file holds only")):
        tracemalloc.start()
        t0 = time.perf_counter()
        with pytest.raises(ImageReadError) as err:
            read_image(path)
        elapsed = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        msg = str(err.value)
        assert str(path) in msg
        assert "2000×2000×2000" in msg
        assert "8.0 GB" in msg
        assert reason in msg
        assert elapsed < 2, (elapsed, peak)  # main: 8 GB and 14 s
        assert peak < 50e6, (elapsed, peak)


def test_huge_header_is_one_qc_row(tmp_path, demo_data):
    root = tmp_path / "data"
    shutil.copytree(demo_data / LUMIERE, root)
    seg = root / "LUMIERE_images" / CASE / f"{CASE}_seg.nii.gz"
    seg.write_bytes(gzip.compress(_huge_header(demo_data), 9))
    res = _scan(tmp_path, {"root": str(root), "ground_truth": "{root}/LUMIERE_images/{case}/{case}_seg.nii.gz",
                           "label_convention": "audit"})
    row = res.qc[res.qc.path == str(seg)]
    assert list(row.check) == ["unreadable"]
    assert "8.0 GB" in row.message.iloc[0]
    assert res.files.readable.sum() == len(res.files) - 1  # the other cases are read as before


def test_memory_budget_parameter_and_environment(monkeypatch, demo_data):
    seg = _lumiere_seg(demo_data)
    reference = np.asanyarray(nib.load(seg).dataobj)
    claimed = reference.size * reference.dtype.itemsize  # 182*218*182 values
    with pytest.raises(ImageReadError, match="above the memory budget of 1.0 MB") as err:
        read_image(seg, max_bytes=1_000_000)
    assert str(seg) in str(err.value)
    assert "SEGAUDIT_MAX_IMAGE_BYTES" in str(err.value)
    monkeypatch.setenv("SEGAUDIT_MAX_IMAGE_BYTES", "1M")
    with pytest.raises(ImageReadError, match="memory budget"):
        read_mask(seg)
    monkeypatch.setenv("SEGAUDIT_MAX_IMAGE_BYTES", str(claimed))  # exactly enough
    np.testing.assert_array_equal(read_image(seg).array, reference)
    monkeypatch.setenv("SEGAUDIT_MAX_IMAGE_BYTES", "lots")
    with pytest.raises(ConfigError, match="SEGAUDIT_MAX_IMAGE_BYTES"):
        read_image(seg)


def test_budget_applies_to_raster_tiff_and_numpy_headers(tmp_path, tests_data):
    import tifffile

    png = next((tests_data / "chest_xray_lungs" / "images").glob("*.png"))
    with PILImage.open(png) as pil:
        w, h = pil.size
        bands = len(pil.getbands())
    with pytest.raises(ImageReadError, match="memory budget") as err:
        read_image(png, max_bytes=w * h * bands - 1)
    assert str(png) in str(err.value)
    assert f"{h}×{w}×{bands}" in str(err.value)
    assert read_image(png, max_bytes=w * h * bands).shape == (h, w)

    cls = np.asarray(PILImage.open(next((tests_data / "histology_consep" / "class_masks").glob("*.png"))))
    tif = tmp_path / "classes.tif"
    tifffile.imwrite(tif, cls)
    with pytest.raises(ImageReadError, match="memory budget"):
        read_image(tif, max_bytes=cls.nbytes - 1)
    np.testing.assert_array_equal(read_image(tif).array, cls)

    # A .npy header claiming 20000 x 20000 float64 (3.2 GB) over 800 bytes of data.
    npy = tmp_path / "huge.npy"
    with open(npy, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, {"descr": "<f8", "fortran_order": False, "shape": (20000, 20000)})
        fh.write(cls.astype("<f8").tobytes()[:800])
    with pytest.raises(ImageReadError, match="the file holds only 800 bytes"):
        read_image(npy)


# --- 2. 4D files ---------------------------------------------------------------------------------------------------

def _crop(img: nib.Nifti1Image) -> tuple[np.ndarray, np.ndarray]:
    """A 48 x 48 x 32 box of a real volume (keeps the tests fast) and its affine."""
    return np.asanyarray(img.dataobj)[60:108, 80:128, 70:102], img.affine


def test_4d_files_are_qc_findings_and_a_singleton_axis_is_dropped(tmp_path, demo_data):
    case_dir = demo_data / "brats_audit/BraTS2020/BraTS2020_images/BraTS20_Training_001"
    seg, aff = _crop(nib.load(case_dir / "BraTS20_Training_001_seg.nii.gz"))
    t1, _ = _crop(nib.load(case_dir / "BraTS20_Training_001_t1.nii.gz"))
    t2, _ = _crop(nib.load(case_dir / "BraTS20_Training_001_t2.nii.gz"))
    root = tmp_path / "data"
    for case, gt, image in (("four_d", np.stack([seg, seg], -1), np.stack([t1, t2], -1)),
                            ("singleton", seg[..., None], t1[..., None])):
        (root / case).mkdir(parents=True)
        nib.save(nib.Nifti1Image(gt, aff), root / case / "seg.nii.gz")
        nib.save(nib.Nifti1Image(image, aff), root / case / "t1.nii.gz")
    res = _scan(tmp_path, {"root": str(root), "ground_truth": "{root}/{case}/seg.nii.gz",
                           "images": {"t1": "{root}/{case}/t1.nii.gz"}, "label_convention": "audit"})
    qc = res.qc.set_index(["case", "role", "check"])
    msg = qc.loc[("four_d", "ground_truth", "extra_axes")]
    assert msg.severity == "error"
    assert "(48, 48, 32, 2)" in msg.message
    assert "seg.nii.gz" in msg.message
    img_msg = qc.loc[("four_d", "image", "extra_axes")]
    assert img_msg.severity == "warning"
    assert "(48, 48, 32, 2)" in img_msg.message
    assert ("four_d", "ground_truth", "nonintegral_mask") not in qc.index
    for role in ("ground_truth", "image"):
        single = qc.loc[("singleton", role, "singleton_axes")]
        assert single.severity == "info"
        assert "(48, 48, 32, 1)" in single.message
    assert not (res.qc[res.qc.case == "singleton"].severity == "error").any()

    with pytest.raises(MaskValueError, match=r"4 dimensions \(shape \(48, 48, 32, 2\)\)") as err:
        read_mask(root / "four_d" / "seg.nii.gz")
    assert str(root / "four_d" / "seg.nii.gz") in str(err.value)
    squeezed = read_mask(root / "singleton" / "seg.nii.gz")
    assert squeezed.array.shape == (48, 48, 32)
    assert squeezed.stored_shape == (48, 48, 32, 1)
    np.testing.assert_array_equal(squeezed.array, seg)


def test_4d_image_volumes_are_not_named_as_colours(tmp_path, demo_data):
    from segaudit.features.case import FeatureOptions
    from segaudit.pipeline.features import extract_project

    case_dir = demo_data / "brats_audit/BraTS2020/BraTS2020_images/BraTS20_Training_001"
    t1, aff = _crop(nib.load(case_dir / "BraTS20_Training_001_t1.nii.gz"))
    t2, _ = _crop(nib.load(case_dir / "BraTS20_Training_001_t2.nii.gz"))
    root = tmp_path / "data" / "c1"
    root.mkdir(parents=True)
    nib.save(nib.Nifti1Image(np.stack([t1, t2], -1), aff), root / "mr.nii.gz")
    proj = tmp_path / "segaudit.yaml"
    proj.write_text(yaml.safe_dump({"datasets": {"ds": {"root": str(tmp_path / "data"),
                                                        "images": {"mr": "{root}/{case}/mr.nii.gz"}}}}))
    res = extract_project(load_project(proj), tmp_path / "run", FeatureOptions(groups=("intensity",)),
                          progress=False)
    sources = set(res.features.source)
    assert {"mr.volume0", "mr.volume1"} <= sources
    assert not any(s.endswith((".red", ".green")) for s in sources)


# --- 3. palette PNG label maps -------------------------------------------------------------------------------------

def test_palette_png_label_map_is_read_as_labels(tmp_path, tests_data):
    src = next((tests_data / "histology_consep" / "class_masks").glob("*.png"))
    classes = np.asarray(PILImage.open(src))  # the CoNSeP class map, values 0..4, as a grey PNG
    assert classes.ndim == 2
    assert len(np.unique(classes)) > 2
    pal = PILImage.fromarray(classes.astype(np.uint8), mode="L").convert("P")
    colours = [0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 0]  # each class its own colour
    pal.putpalette(colours + [0] * (768 - len(colours)))
    path = tmp_path / "classes_palette.png"
    pal.save(path)
    with PILImage.open(path) as check:
        assert check.mode == "P"
    np.testing.assert_array_equal(read_mask(path).array, classes)
    shown = read_image(path)  # as an image it stays the colours a person sees
    for c in set(np.unique(classes).tolist()):
        assert shown.is_color
        assert tuple(shown.array[classes == c][0]) == tuple(colours[3 * c: 3 * c + 3])

    root = tmp_path / "data"
    (root / "gt").mkdir(parents=True)
    shutil.copy(path, root / "gt" / "tile.png")
    res = _scan(tmp_path, {"root": str(root), "ground_truth": "{root}/gt/{case}.png",
                           "labels": {"other": 1, "inflammatory": 2, "epithelial": 3, "spindle": 4}})
    assert not (res.qc.severity == "error").any(), res.qc.message.tolist()
    present = {int(v) for v in res.files.labels_present.iloc[0].split(",")}
    assert present == set(np.unique(classes)) - {0}


# --- 4. nibabel's log lines carry the file name --------------------------------------------------------------------

def _bad_sizeof_hdr(demo_data, tmp_path):
    img = nib.load(_lumiere_seg(demo_data))
    path = tmp_path / "bad_sizeof_hdr.nii"
    nib.save(nib.Nifti1Image(np.asanyarray(img.dataobj), img.affine, img.header), path)
    data = bytearray(path.read_bytes())
    data[0:4] = struct.pack("<i", 340)  # sizeof_hdr must be 348
    path.write_bytes(bytes(data))
    return path, np.asanyarray(img.dataobj)


def test_nibabel_log_lines_name_the_file(tmp_path, demo_data, capfd, caplog):
    path, reference = _bad_sizeof_hdr(demo_data, tmp_path)
    with caplog.at_level(logging.WARNING, logger="segaudit.io"):
        img = read_image(path)
    np.testing.assert_array_equal(img.array, reference)
    # What a user sees on stderr, in a fresh process (no test logging handlers): the line names the file.
    src_root = str(Path(segaudit.__file__).parents[1])
    run = subprocess.run([sys.executable, "-c", f"from segaudit.io import read_image; read_image({str(path)!r})"],
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": src_root})
    lines = [line for line in run.stderr.splitlines() if "sizeof_hdr" in line]
    assert run.returncode == 0, run.stderr
    assert lines, run.stderr
    assert all(str(path) in line for line in lines), run.stderr
    assert img.notes == [f"{path}: nibabel: sizeof_hdr should be 348; set sizeof_hdr to 348"]
    assert [r.getMessage() for r in caplog.records if r.name == "segaudit.io"] == img.notes
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="segaudit.io"):
        assert read_geometry(path).shape == reference.shape  # the header-only reader says the same
    assert [r.getMessage() for r in caplog.records if r.name == "segaudit.io"] == img.notes
    err = capfd.readouterr().err
    assert all(str(path) in line for line in err.splitlines() if "sizeof_hdr" in line), err

    truncated = tmp_path / "bad_and_truncated.nii"
    truncated.write_bytes(path.read_bytes()[:100_000])
    with pytest.raises(ImageReadError, match="sizeof_hdr should be 348") as exc:
        read_image(truncated)
    assert str(truncated) in str(exc.value)
    assert "truncated" in str(exc.value)
    err = capfd.readouterr().err
    assert all(str(truncated) in line for line in err.splitlines() if "sizeof_hdr" in line), err

    root = tmp_path / "data" / "c1"
    root.mkdir(parents=True)
    shutil.copy(path, root / "seg.nii")
    res = _scan(tmp_path, {"root": str(tmp_path / "data"), "ground_truth": "{root}/{case}/seg.nii",
                           "label_convention": "audit"})
    row = res.qc[res.qc.check == "reader_warning"]
    assert len(row) == 1
    assert row.severity.iloc[0] == "warning"
    assert "sizeof_hdr" in row.message.iloc[0]
    assert str(root / "seg.nii") in row.message.iloc[0]


# --- 5. a negative label in a ground truth is reported on the ground truth ---------------------------------------

def test_negative_label_warning_names_the_ground_truth(tmp_path, demo_data):
    from segaudit.metrics import EvaluationOptions
    from segaudit.pipeline.evaluate import evaluate_project

    root = tmp_path / "data"
    shutil.copytree(demo_data / LUMIERE, root)
    for other in [*root.glob("LUMIERE_images/*"), *root.glob("LUMIERE_seg/*/*")]:
        if other.is_dir() and other.name != CASE:
            shutil.rmtree(other)  # one case keeps the test fast
    seg = root / "LUMIERE_images" / CASE / f"{CASE}_seg.nii.gz"
    img = nib.load(seg)
    labels = np.asanyarray(img.dataobj).astype(np.int16)
    labels[tuple(np.argwhere(labels > 0)[0])] = -1  # one voxel of the lesion made negative
    nib.save(nib.Nifti1Image(labels, img.affine), seg)
    proj = tmp_path / "segaudit.yaml"
    proj.write_text(yaml.safe_dump({"datasets": {"LUMIERE": {
        "root": str(root), "ground_truth": "{root}/LUMIERE_images/{case}/{case}_seg.nii.gz",
        "predictions": "{root}/LUMIERE_seg/{model}/{case}/{case}_pred.nii.gz", "label_convention": "audit"}}}))
    res = evaluate_project(load_project(proj), tmp_path / "run", EvaluationOptions(lesion_matching="none"),
                           progress=False)
    notes = res.errors[res.errors.message.str.contains(r"\[-1\]")]
    assert len(notes) == 2  # one per model of the case
    assert (notes.path == str(seg)).all()
    assert notes.message.str.startswith(f"{seg}: ground truth").all()
    assert not notes.message.str.contains("_pred.nii.gz").any()


# --- 6. a spacing override of the wrong length ----------------------------------------------------------------------

def test_spacing_override_of_the_wrong_length_is_a_qc_error(tmp_path, demo_data):
    root = tmp_path / "data"
    shutil.copytree(demo_data / LUMIERE, root)
    res = _scan(tmp_path, {"root": str(root), "ground_truth": "{root}/LUMIERE_images/{case}/{case}_seg.nii.gz",
                           "label_convention": "audit", "spacing": [0.5, 0.5]})
    rows = res.qc[res.qc.check == "spacing_override"]
    assert len(rows) == 1
    assert rows.severity.iloc[0] == "error"
    assert rows.dataset.iloc[0] == "ds"
    msg = rows.message.iloc[0]
    assert "dataset ds" in msg
    assert "[0.5, 0.5]" in msg
    assert "3D" in msg
    assert "not applied" in msg
    fine = _scan(tmp_path, {"root": str(root), "ground_truth": "{root}/LUMIERE_images/{case}/{case}_seg.nii.gz",
                            "label_convention": "audit", "spacing": [1.0, 1.0, 1.0]})
    assert "spacing_override" not in set(fine.qc.check)
