import gzip
import shutil

import nibabel as nib
import numpy as np
import pytest
from PIL import Image as PILImage

from segaudit.errors import ImageReadError, MaskValueError
from segaudit.io import Geometry, MaskEncoding, compare_geometry, read_image, read_mask, to_label_array

BRATS001 = "brats_audit/BraTS2020/BraTS2020_images/BraTS20_Training_001/BraTS20_Training_001"


def test_read_real_brats_image_keeps_storage_axes(demo_data):
    img = read_image(demo_data / f"{BRATS001}_t1.nii.gz")
    raw = nib.load(demo_data / f"{BRATS001}_t1.nii.gz")
    assert img.array.shape == (240, 240, 155) == img.shape
    assert img.spacing == (1.0, 1.0, 1.0)
    assert img.orientation() == "LPS"
    np.testing.assert_array_equal(img.array, np.asanyarray(raw.dataobj))
    np.testing.assert_allclose(img.origin, raw.affine[:3, 3])
    assert img.disk_dtype == "int16"


def test_float64_prediction_converts_losslessly(demo_data):
    case = "BraTS2024_PED-00001-000"
    path = demo_data / f"brats_audit/BraTS2024_PED/BraTS2024_PED_seg/nnUnet/{case}/{case}_pred.nii.gz"
    raw = np.asanyarray(nib.load(path).dataobj)
    assert raw.dtype == np.float64
    mask = read_mask(path)
    assert mask.array.dtype == np.uint8
    assert mask.disk_dtype == "float64"
    np.testing.assert_array_equal(mask.array, raw.astype(np.uint8))
    assert set(np.unique(mask.array)) == {0, 2, 3}  # nnUnet predicts no enhancing tumour for PED-00001


@pytest.mark.parametrize("zooms", [(1.0, 1.0, 5.0), (5.0, 1.0, 1.0), (0.5, 2.0, 1.0)])
def test_anisotropic_spacing_follows_array_axes(tmp_path, zooms):
    data = np.zeros((4, 6, 8), dtype=np.int16)
    affine = np.diag([*zooms, 1.0])
    affine[:3, :3] = affine[:3, :3] @ np.diag([-1, -1, 1])  # LPS-like, as BraTS files are stored
    nii = nib.Nifti1Image(data, affine)
    nii.header.set_zooms(zooms)
    path = tmp_path / "aniso.nii.gz"
    nib.save(nii, path)
    img = read_image(path)
    assert img.spacing == zooms
    assert img.shape == (4, 6, 8)
    assert img.voxel_volume == pytest.approx(np.prod(zooms))
    np.testing.assert_allclose(np.abs(img.direction), np.eye(3))


def test_truncated_gzip(tmp_path, demo_data):
    src = (demo_data / f"{BRATS001}_seg.nii.gz").read_bytes()
    path = tmp_path / "trunc.nii.gz"
    path.write_bytes(src[: len(src) // 2])
    with pytest.raises(ImageReadError, match="truncated") as err:
        read_image(path)
    assert str(path) in str(err.value)


def test_zero_byte_and_text_file(tmp_path):
    empty = tmp_path / "empty.nii.gz"
    empty.write_bytes(b"")
    with pytest.raises(ImageReadError, match=r"empty file \(0 bytes\)"):
        read_image(empty)
    text = tmp_path / "notes.nii.gz"
    text.write_text("this is not an image\n")
    with pytest.raises(ImageReadError, match="not a gzip file"):
        read_image(text)
    gz_text = tmp_path / "gztext.nii.gz"
    with gzip.open(gz_text, "wb") as fh:
        fh.write(b"hello" * 100)
    with pytest.raises(ImageReadError, match="not a readable NIfTI"):
        read_image(gz_text)
    with pytest.raises(ImageReadError, match="file not found"):
        read_image(tmp_path / "missing.nii.gz")
    with pytest.raises(ImageReadError, match="unknown image format"):
        read_image(text.with_suffix(".txt").write_text("x") and text.with_suffix(".txt"))


def test_float_mask_with_halves_is_rejected(tmp_path):
    a = np.zeros((5, 5, 5), dtype=np.float32)
    a[1, 1, 1] = 0.5
    a[2, 2, 2] = 1.0
    path = tmp_path / "soft.nii.gz"
    nib.save(nib.Nifti1Image(a, np.eye(4)), path)
    with pytest.raises(MaskValueError, match=r"1 non-integral value\(s\) \(e.g. 0.5\)"):
        read_mask(path)
    a[1, 1, 1] = np.nan
    nib.save(nib.Nifti1Image(a, np.eye(4)), path)
    with pytest.raises(MaskValueError, match="NaN"):
        read_mask(path)


def test_to_label_array_dtypes():
    assert to_label_array(np.array([0.0, 3.0, 255.0])).dtype == np.uint8
    assert to_label_array(np.array([0, 300])).dtype == np.uint16
    assert to_label_array(np.array([-1.0, 2.0])).dtype == np.int8
    assert to_label_array(np.array([True, False])).dtype == np.uint8


def test_red_drawn_fundus_prediction(demo_data):
    path = demo_data / "fundus_exudates/pred_sarah_antillia_flexunet/IDRiD_01.png"
    with pytest.raises(MaskValueError, match="RGB colour image"):
        read_mask(path)
    mask = read_mask(path, MaskEncoding(kind="binary", channel="red", threshold=127))
    rgb = np.asarray(PILImage.open(path))
    assert mask.array.shape == (2848, 4288)
    assert int(mask.array.sum()) == int((rgb[..., 0] > 127).sum()) > 0
    assert set(np.unique(mask.array)) == {0, 1}


def test_green_drawn_metastasis_prediction(demo_data):
    path = demo_data / "brainmets_t2w_slices/pred_unet_jpg/BraTS-MET-00230-000_1057.jpg"
    mask = read_mask(path, MaskEncoding(kind="binary", channel="green", threshold=64, foreground=2))
    rgb = np.asarray(PILImage.open(path))
    assert set(np.unique(mask.array)) == {0, 2}
    assert int((mask.array == 2).sum()) == int((rgb[..., 1] > 64).sum()) > 0
    assert int((rgb[..., 0] > 64).sum()) == 0  # truly a green drawing: red channel is empty


def test_binary_0_255_png(demo_data):
    mask = read_mask(demo_data / "fundus_exudates/masks_EX_binary_png/IDRiD_01_EX.png",
                     MaskEncoding(kind="binary"))
    assert set(np.unique(mask.array)) == {0, 1}
    assert mask.spacing == (1.0, 1.0)
    assert mask.orientation() == ""


def test_instance_png_uint16(tests_data):
    mask = read_mask(tests_data / "histology_consep/inst_masks/test_1_004.png")
    ids = np.unique(mask.array)
    assert mask.array.dtype in (np.uint8, np.uint16)
    assert len(ids) - 1 == 98  # tiles.csv: 98 instances in test_1_004
    assert ids.max() > len(ids) - 1  # ids are not contiguous


def test_rgb_image_keeps_channels(demo_data):
    img = read_image(demo_data / "fundus_exudates/images/IDRiD_01.jpg")
    assert img.is_color
    assert img.array.shape == (2848, 4288, 3)
    assert img.shape == (2848, 4288)


def test_tiff_roundtrip(tmp_path):
    import tifffile

    a = (np.arange(12, dtype=np.uint16).reshape(3, 4))
    tifffile.imwrite(tmp_path / "m.tif", a)
    img = read_image(tmp_path / "m.tif")
    np.testing.assert_array_equal(img.array, a)


def test_compare_geometry_reports_each_difference(demo_data, tmp_path):
    img = read_image(demo_data / f"{BRATS001}_t1.nii.gz")
    g = Geometry.of(img)
    assert compare_geometry(g, g) == []
    other = Geometry(g.shape, (1.0, 1.0, 2.0), g.origin, g.direction)
    assert compare_geometry(g, other)[0].startswith("spacing")
    assert compare_geometry(g, Geometry((1, 2, 3), g.spacing, g.origin, g.direction))[0].startswith("shape")


def test_read_does_not_modify_input(tmp_path, demo_data):
    src = demo_data / f"{BRATS001}_seg.nii.gz"
    dst = tmp_path / "seg.nii.gz"
    shutil.copy(src, dst)
    before = dst.read_bytes()
    read_mask(dst)
    assert dst.read_bytes() == before
