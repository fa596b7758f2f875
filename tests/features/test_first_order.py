"""Spatial and intensity features on real BraTS images, against numpy/scipy one-liners."""

import numpy as np
import pytest
from scipy import stats

from segaudit.features import foreground_mask, intensity_features, spatial_features
from segaudit.io import read_image, read_mask

SSA = "brats_audit/BraTS2024_SSA/BraTS2024_SSA_images/BraTS2024_SSA-00230-000"


@pytest.fixture(scope="module")
def t1ce(tests_data):
    img = read_image(tests_data / SSA / "BraTS2024_SSA-00230-000_t1ce.nii.gz")
    seg = read_mask(tests_data / SSA / "BraTS2024_SSA-00230-000_seg.nii.gz")
    return img, seg


def test_intensity_equals_numpy_scipy_inside_a_label(t1ce):
    img, seg = t1ce
    region = seg.array == 1
    f = intensity_features(img.array, region)
    v = img.array[region].astype(float)
    assert f["count"] == v.size
    assert f["mean"] == pytest.approx(v.mean(), rel=1e-12)
    assert f["std"] == pytest.approx(v.std(), rel=1e-12)
    assert f["p5"] == pytest.approx(np.percentile(v, 5))
    assert f["median"] == pytest.approx(np.median(v))
    assert f["iqr"] == pytest.approx(stats.iqr(v))
    assert f["skewness"] == pytest.approx(stats.skew(v), rel=1e-9)
    assert f["kurtosis"] == pytest.approx(stats.kurtosis(v), rel=1e-9)
    hist, _ = np.histogram(v, bins=64)
    assert f["entropy"] == pytest.approx(stats.entropy(hist, base=2), rel=1e-9)


def test_foreground_keeps_zero_and_negative_tissue(t1ce):
    img, seg = t1ce
    a = img.array.astype(np.float64)
    fg = foreground_mask(a)
    z = np.where(fg, (a - a[fg].mean()) / a[fg].std(), 0.0)  # z-scored: half the brain is negative
    fz = intensity_features(z, foreground_mask(z))
    assert fz["count"] == pytest.approx(fg.sum(), rel=0.01)  # not just the voxels > 0
    assert abs(fz["mean"]) < 1e-6
    assert fz["std"] == pytest.approx(1.0, rel=1e-6)
    assert seg.array[fg].astype(bool).sum() == (seg.array > 0).sum()  # the tumour lies inside the foreground


def test_spatial_axis_order_and_centre_of_mass(t1ce):
    img, seg = t1ce
    fg = seg.array > 0
    f = spatial_features(img.shape, (1.0, 2.0, 3.0), fg, img.orientation())
    idx = np.argwhere(fg)
    for i, s in enumerate((1.0, 2.0, 3.0)):
        assert f[f"com_{i}_mm"] == pytest.approx(idx[:, i].mean() * s)
        assert f[f"extent_{i}"] == img.shape[i] * s
    assert f["foreground_volume"] == fg.sum() * 6.0
    assert f["orientation"] == img.orientation()
    # Orientation codes from the affine directly: world axis (1 x, 2 y, 3 z, RAS+) the array axis runs along.
    for i in range(3):
        col = img.affine[:3, i]
        k = int(np.argmax(np.abs(col)))
        assert f[f"orientation_{i}"] == np.sign(col[k]) * (k + 1)


def test_edge_cases():
    empty = intensity_features(np.ones((4, 4)), np.zeros((4, 4), bool))
    assert empty["count"] == 0
    assert np.isnan(empty["mean"])
    flat = intensity_features(np.ones((4, 4)), np.ones((4, 4), bool))
    assert flat["std"] == 0
    assert np.isnan(flat["snr"])
    a = np.ones((4, 4))
    a[0, 1] = np.nan
    assert intensity_features(a, np.ones((4, 4), bool))["nan_count"] == 1
    with pytest.raises(ValueError, match="shape"):
        intensity_features(np.ones((4, 4)), np.ones((3, 4), bool))
    with pytest.raises(ValueError, match="spacing"):
        spatial_features((4, 4), (1.0,))
    assert np.isnan(spatial_features((4, 4), (1.0, 1.0), np.zeros((4, 4)))["com_0_mm"])
