import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image as PILImage

from conftest import tree_digest
from segaudit.dataset import load_project
from segaudit.io import read_image, read_mask
from segaudit.pipeline.demo import demo_project_path
from segaudit.pipeline.slices import export_project_slices
from segaudit.preprocess import export_slices, normalize, slice_indices

CASE = "BraTS20_Training_001"


@pytest.fixture(scope="module")
def brats001(demo_data):
    base = demo_data / f"brats_audit/BraTS2020/BraTS2020_images/{CASE}/{CASE}"
    images = {s: read_image(f"{base}_{s}.nii.gz").array for s in ("t1", "t1ce", "t2", "flair")}
    mask = read_mask(f"{base}_seg.nii.gz").array
    return images, mask


def test_zscore_over_brain_matches_numpy(brats001):
    t1 = brats001[0]["t1"]
    before = t1.copy()
    z = normalize(t1, "zscore")
    np.testing.assert_array_equal(t1, before)  # input untouched
    brain = t1 != 0
    ref = (t1[brain] - t1[brain].mean()) / t1[brain].std()
    np.testing.assert_allclose(z[brain], ref, rtol=1e-5, atol=1e-5)
    assert np.all(z[~brain] == 0)
    assert z.dtype == np.float32
    assert abs(float(z[brain].mean())) < 1e-4
    assert abs(float(z[brain].std()) - 1) < 1e-4


def test_minmax_and_percentile(brats001):
    flair = brats001[0]["flair"]
    brain = flair != 0
    mm = normalize(flair, "minmax")
    assert mm[brain].min() == 0
    assert mm[brain].max() == 1
    p = normalize(flair, "percentile", percentiles=(1, 99))
    lo, hi = np.percentile(flair[brain], [1, 99])
    np.testing.assert_allclose(p[brain], (np.clip(flair[brain], lo, hi) - lo) / (hi - lo), rtol=1e-5, atol=1e-6)
    # with an explicit mask, background that is not zero is still excluded from the statistics
    tumour = brats001[1] > 0
    z = normalize(flair, "zscore", mask=tumour)
    assert abs(float(z[tumour].mean())) < 1e-4
    assert np.all(z[~tumour] == 0)


def test_edge_cases():
    assert not normalize(np.zeros((4, 4)), "zscore").any()
    assert not normalize(np.full((4, 4), 3.0), "minmax").any()
    a = np.array([[np.nan, 1.0], [2.0, np.inf]])
    out = normalize(a, "minmax")
    assert np.isfinite(out).all()
    assert out[1, 0] == 1
    assert out[0, 1] == 0
    with pytest.raises(ValueError, match="unknown normalisation"):
        normalize(a, "robust")
    with pytest.raises(ValueError, match="mask shape"):
        normalize(np.ones((3, 3)), mask=np.ones((2, 2)))


@settings(max_examples=50, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(2, 6), st.integers(2, 6)),
              elements=st.floats(-1e3, 1e3, allow_nan=False)))
def test_minmax_bounds_property(a):
    out = normalize(a, "minmax")
    assert out.min() >= 0
    assert out.max() <= 1 + 1e-6


def test_slice_indices_nonempty(brats001):
    mask = brats001[1]
    idx = slice_indices(mask.shape, 2, mask, nonempty_only=True)
    expected = [k for k in range(mask.shape[2]) if mask[:, :, k].any()]
    assert idx == expected
    assert 0 < len(idx) < 155


def test_export_npz_and_png(tmp_path, brats001):
    images, mask = brats001
    files = export_slices(images, tmp_path, CASE, "BraTS2020", mask, axis=2, fmt="npz", nonempty_only=True,
                          spacing=(1.0, 1.0, 1.0))
    k = slice_indices(mask.shape, 2, mask, True)[0]
    with np.load(files[0]) as d:
        assert d["image"].shape == (4, 240, 240)
        assert list(d["sequences"]) == ["t1", "t1ce", "t2", "flair"]
        np.testing.assert_array_equal(d["mask"], mask[:, :, k])
        np.testing.assert_allclose(d["image"][1], normalize(images["t1ce"])[:, :, k])
        assert d["spacing"].tolist() == [1.0, 1.0]
        assert int(d["index"]) == k
    pngs = export_slices({"t2": images["t2"]}, tmp_path / "png", CASE, mask=mask, axis=0, fmt="png",
                         nonempty_only=True)
    mask_png = [p for p in pngs if p.parent.name == "mask"][0]
    i = int(mask_png.stem.split("_i")[-1])
    np.testing.assert_array_equal(np.asarray(PILImage.open(mask_png)), mask[i])
    assert not list(tmp_path.rglob(".*"))  # no temporary files left


def test_export_rejects_mismatched_shapes(brats001):
    images, mask = brats001
    with pytest.raises(ValueError, match="share one shape"):
        export_slices({"t1": images["t1"], "x": images["t1"][:-1]}, "/nonexistent", "c")


def test_project_slices_skip_missing_sequence(tmp_path, demo_data):
    project = load_project(demo_project_path())
    project.datasets = [d for d in project.datasets if d.name in ("BraTS2020", "brainmets_t2w_slices")]
    before = tree_digest(demo_data / "brainmets_t2w_slices")
    res = export_project_slices(project, tmp_path, method="minmax", fmt="npz", nonempty_only=True, progress=False)
    assert tree_digest(demo_data / "brainmets_t2w_slices") == before
    assert [(d, c) for d, c, _ in res.skipped] == [("BraTS2020", "BraTS20_Training_369")]
    assert "missing sequence 't1'" in res.skipped[0][2]
    assert len(list((tmp_path / "BraTS2020").rglob("*.npz"))) > 0
    slices = sorted((tmp_path / "brainmets_t2w_slices").rglob("*.npz"))
    assert len(slices) == 24  # every metastasis slice has lesion pixels
    with np.load(slices[0]) as d:
        assert d["image"].shape == (3, 512, 512)
        assert set(np.unique(d["mask"])) == {0, 1}
