"""Texture and shape features on a real BraTS case, against pyradiomics (an independent implementation).

pyradiomics and SimpleITK are test-only references, imported by ``conftest.require_reference`` (required on CI,
skipped elsewhere), so the reference-free tests below (by hand, edge cases, round shapes) always run.
Same settings (fixed bin count 32, distance 1, symmetric GLCM averaged over 13 directions; marching-cubes mesh of
the mask) must give the same values to 1e-6 relative.
"""

import logging

import numpy as np
import pytest

from conftest import require_reference
from segaudit.features.intensity import foreground_mask
from segaudit.features.lesion import lesion_features, shape_features
from segaudit.features.texture import directions, glcm_features, quantise
from segaudit.io import read_image, read_mask

logging.getLogger("radiomics").setLevel(logging.ERROR)

CASE = "brats_audit/BraTS2020/BraTS2020_images/BraTS20_Training_001/BraTS20_Training_001_"

GLCM_NAMES = {"contrast": "Contrast", "dissimilarity": "DifferenceAverage", "homogeneity": "Idm", "id": "Id",
              "asm": "JointEnergy", "correlation": "Correlation", "entropy": "JointEntropy",
              "autocorrelation": "Autocorrelation", "cluster_shade": "ClusterShade",
              "cluster_prominence": "ClusterProminence"}
SHAPE_NAMES = {"surface_area": "SurfaceArea", "mesh_volume": "MeshVolume", "sphericity": "Sphericity",
               "max_diameter": "Maximum3DDiameter", "major_axis": "MajorAxisLength",
               "minor_axis": "MinorAxisLength", "least_axis": "LeastAxisLength", "elongation": "Elongation",
               "flatness": "Flatness", "volume": "VoxelVolume"}


@pytest.fixture(scope="module")
def case(demo_data):
    t1ce = read_image(demo_data / (CASE + "t1ce.nii.gz")).array
    seg = read_mask(demo_data / (CASE + "seg.nii.gz")).array
    return t1ce, seg


def _pyradiomics(image: np.ndarray, mask: np.ndarray, spacing, cls: str, **settings) -> dict[str, float]:
    featureextractor = require_reference("radiomics.featureextractor")
    sitk = require_reference("SimpleITK")
    # SimpleITK's first index is the last array axis: transpose so both see the same axes and spacing.
    img = sitk.GetImageFromArray(np.ascontiguousarray(image.astype(np.float64).transpose(2, 1, 0)))
    msk = sitk.GetImageFromArray(np.ascontiguousarray(mask.astype(np.uint8).transpose(2, 1, 0)))
    for x in (img, msk):
        x.SetSpacing(tuple(float(s) for s in spacing))
    ex = featureextractor.RadiomicsFeatureExtractor(**settings)
    ex.disableAllFeatures()
    ex.enableFeatureClassByName(cls)
    return {k.split("_")[-1]: float(v) for k, v in ex.execute(img, msk).items() if f"_{cls}_" in k}


@pytest.mark.reference
@pytest.mark.parametrize("region", ["ENH", "brain"])
def test_glcm_equals_pyradiomics(case, region):
    t1ce, seg = case
    mask = seg == 1 if region == "ENH" else foreground_mask(t1ce)
    ours = glcm_features(t1ce, mask, bin_count=32)
    ref = _pyradiomics(t1ce, mask, (1.0, 1.0, 1.0), "glcm", binCount=32)
    for k, name in GLCM_NAMES.items():
        assert ours[k] == pytest.approx(ref[name], rel=1e-6, abs=1e-9), k
    assert ours["energy"] <= 1
    assert ours["levels"] == 32


@pytest.mark.reference
def test_glcm_bin_width_equals_pyradiomics(case):
    t1ce, seg = case
    mask = seg == 2
    ours = glcm_features(t1ce, mask, bin_count=None, bin_width=25)
    ref = _pyradiomics(t1ce, mask, (1.0, 1.0, 1.0), "glcm", binWidth=25)
    for k, name in GLCM_NAMES.items():
        assert ours[k] == pytest.approx(ref[name], rel=1e-6, abs=1e-9), k


@pytest.mark.reference
@pytest.mark.parametrize("label", [1, 2, 3])
def test_shape_equals_pyradiomics_anisotropic(case, label):
    _, seg = case
    spacing = (1.0, 1.2, 0.8)  # anisotropic, so an axis mix-up would show
    mask = seg == label
    ours = lesion_features(mask, spacing)
    ref = _pyradiomics(mask.astype(np.float64), mask, spacing, "shape")
    for k, name in SHAPE_NAMES.items():
        assert ours[k] == pytest.approx(ref[name], rel=1e-6), k


def test_glcm_by_hand_on_a_tiny_image():
    """A 2D 2x3 image with two levels: the horizontal co-occurrences counted by hand."""
    img = np.array([[0, 0, 10], [0, 10, 10]], dtype=float)
    f = glcm_features(img, np.ones_like(img, bool), bin_count=2)
    assert directions(2) == [(0, 1), (1, -1), (1, 0), (1, 1)]
    assert len(directions(3)) == 13
    # Levels: 0 -> 1, 10 -> 2. Pairs per direction (symmetric): (0,1): 1-1,1-2,1-2,2-2 -> contrast 2/4 ...
    assert 0 < f["contrast"] < 1
    assert f["pairs"] == 4 + 2 + 3 + 2
    np.testing.assert_array_equal(quantise(np.array([0.0, 5.0, 10.0]), 2), [1, 2, 2])
    np.testing.assert_array_equal(quantise(np.array([-30.0, 0.0, 24.0, 25.0]), None, 25), [1, 3, 3, 4])


def test_texture_and_shape_edge_cases():
    empty = glcm_features(np.ones((5, 5, 5)), np.zeros((5, 5, 5), bool))
    assert np.isnan(empty["contrast"])
    assert empty["pairs"] == 0
    single = glcm_features(np.ones((5, 5, 5)), np.pad(np.ones((1, 1, 1), bool), 2))
    assert np.isnan(single["contrast"])  # one voxel has no neighbour pair
    flat = glcm_features(np.full((6, 6), 3.0), np.ones((6, 6), bool))
    assert flat["contrast"] == 0
    assert flat["correlation"] == 1
    assert flat["asm"] == 1
    assert all(np.isnan(v) for v in shape_features(np.zeros((4, 4, 4), bool), (1, 1, 1)).values())
    with pytest.raises(ValueError, match="2D or 3D"):
        glcm_features(np.ones(5), np.ones(5, bool))


def test_ball_and_disc_shapes_are_round():
    z, y, x = np.ogrid[-20:21, -20:21, -20:21]
    ball = x**2 + y**2 + z**2 <= 15**2
    f = lesion_features(ball, (1.0, 1.0, 1.0))
    assert f["sphericity"] > 0.9
    assert f["elongation"] == pytest.approx(1, abs=1e-6)
    assert f["max_diameter"] == pytest.approx(31, abs=1.0)
    assert f["n_components"] == 1
    assert f["volume"] == pytest.approx(4 / 3 * np.pi * 15**3, rel=0.01)
    yy, xx = np.ogrid[-30:31, -30:31]
    disc = f2 = lesion_features(xx**2 + yy**2 <= 20**2, (0.5, 0.5))
    # A digital disc's marching-squares contour is ~7 % longer than the circle (pyradiomics agrees).
    assert f2["perimeter"] == pytest.approx(2 * np.pi * 10, rel=0.1)
    assert f2["circularity"] > 0.85
    assert disc["volume"] == pytest.approx(np.pi * 10**2, rel=0.02)
