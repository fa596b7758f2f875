"""segaudit.app.explore: outlier filters, embeddings, intensity histograms, sequence correlation, voxel sample
and cohort position, on real images (the SSA case's four MRI sequences and its ground truth) and on small
tables whose answers are worked out by hand or by numpy/scikit-learn."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from segaudit.app import explore
from segaudit.io.masks import read_mask
from segaudit.io.readers import read_image

SSA = Path(__file__).parents[1] / "data" / "brats_audit" / "BraTS2024_SSA" / "BraTS2024_SSA_images"


@pytest.fixture(scope="module")
def ssa():
    case = sorted(p.name for p in SSA.iterdir())[0]
    arrays = {s: np.asarray(read_image(SSA / case / f"{case}_{s}.nii.gz").array, dtype=float)
              for s in ("t1", "t1ce", "t2", "flair")}
    labels = np.asarray(read_mask(SSA / case / f"{case}_seg.nii.gz").array)
    return arrays, labels


def test_outlier_filters_keep_what_each_rule_says():
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 100.0, np.nan])
    q1, q3 = np.nanpercentile(x, [25, 75])
    iqr = explore.outlier_mask(x, "IQR", 1.5)
    assert iqr.tolist() == [bool(q1 - 1.5 * (q3 - q1) <= v <= q3 + 1.5 * (q3 - q1)) for v in np.nan_to_num(x, nan=1e9)]
    assert not iqr[5]
    assert not iqr[6]  # NaN never kept by a filter
    sd = explore.outlier_mask(x, "SD", 1.0)
    m, s = np.nanmean(x), np.nanstd(x, ddof=1)
    assert sd[:6].tolist() == [abs(v - m) <= s for v in x[:6]]
    assert explore.outlier_mask(x, "clip range", low=2, high=5).tolist() == [False, True, True, True, True, False,
                                                                            False]
    assert explore.outlier_mask(x, "none").all()
    with pytest.raises(ValueError):
        explore.outlier_mask(x, "zscore")


def test_pca_embedding_equals_sklearn_up_to_sign():
    sklearn = pytest.importorskip("sklearn.decomposition")
    rng = np.random.default_rng(1)
    t = pd.DataFrame(rng.normal(size=(40, 5)) * [1, 2, 3, 4, 5], columns=list("abcde"))
    t["const"] = 7.0
    t.loc[3, "a"] = np.nan
    emb = explore.embed_table(t, list(t.columns), "PCA")
    assert emb.dropped_columns == ["const"]
    assert emb.dropped_rows == 1
    assert 3 not in emb.index
    x = explore.standardise(t.drop(index=3)[list("abcde")].to_numpy())
    ref = sklearn.PCA(2).fit_transform(x)
    np.testing.assert_allclose(np.abs(emb.coords), np.abs(ref), atol=1e-8)
    assert explore.embed_table(t.head(2), list("ab")).note  # two rows: nothing to embed


def test_tsne_is_seeded():
    pytest.importorskip("sklearn")
    x = np.random.default_rng(0).normal(size=(30, 4))
    a, b = explore.embed(x, "t-SNE", seed=3), explore.embed(x, "t-SNE", seed=3)
    assert a.shape == (30, 2)
    np.testing.assert_allclose(a, b)


def test_histograms_and_correlation_on_real_sequences(ssa):
    arrays, _ = ssa
    hist = explore.intensity_histograms(arrays, bins=32)
    for name, a in arrays.items():
        h = hist[hist.sequence == name]
        assert h["count"].sum() == int((a != 0).sum())
        assert h.low.min() == pytest.approx(a[a != 0].min())
    corr = explore.sequence_correlation(arrays)
    fg = explore.foreground(arrays)
    ref = np.corrcoef(arrays["t1"][fg], arrays["flair"][fg])[0, 1]
    assert corr.loc["t1", "flair"] == pytest.approx(ref)
    assert np.allclose(np.diag(corr), 1.0)


def test_voxel_sample_is_seeded_bounded_and_keeps_every_label(ssa):
    arrays, labels = ssa
    a = explore.voxel_sample(arrays, labels, 3000, seed=5)
    b = explore.voxel_sample(arrays, labels, 3000, seed=5)
    assert len(a) == 3000
    pd.testing.assert_frame_equal(a, b)
    fg = explore.foreground(arrays)
    assert set(a.label) == set(np.unique(labels[fg]))  # small labels are not lost in the sample
    # Each sampled voxel's intensities are a real voxel's.
    row = a.iloc[0]
    hit = (arrays["t1"] == row.t1) & (arrays["flair"] == row.flair) & (labels == row.label)
    assert hit.any()
    small = explore.voxel_sample({"x": np.arange(1, 11, dtype=float)}, None, 5000)
    assert len(small) == 10
    assert (small.label == 0).all()


def test_cohort_position_flags_iqr_outliers():
    t = pd.DataFrame({"f": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 50.0], "g": [1.0] * 8 + [1.2]})
    pos = explore.cohort_position(t, 8, ["f", "g"]).set_index("feature")
    assert pos.loc["f", "outlier"] == "extreme"
    assert pos.loc["f", "median"] == 5.0
    assert pos.loc["f", "mean"] == pytest.approx(t.f.mean())
    assert pos.loc["g", "outlier"] == "extreme"  # IQR 0: any other value lies outside the fences
    mild = explore.cohort_position(pd.DataFrame({"f": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 14.0]}), 8, ["f"])
    assert mild.outlier.iloc[0] == "mild"  # Q3 7, IQR 4: 14 is past 7 + 6 but not past 7 + 12
    assert explore.cohort_position(t, 0, ["f"]).outlier.iloc[0] == ""


def test_column_kinds_split_features_metadata_and_groups():
    t = pd.DataFrame({"dataset": ["d"] * 8, "case": list("abcdefgh"), "site": ["x", "y"] * 4,
                      "age": [30, 41, 52, 63, 74, 25, 36, 47], "lesion:WT:volume": np.arange(8.0),
                      "m:lesion:WT:volume": np.arange(8.0), "id": list("abcdefgh")})
    k = explore.column_kinds(t)
    assert k.features == ["lesion:WT:volume", "m:lesion:WT:volume"]
    assert k.numeric == ["lesion:WT:volume", "m:lesion:WT:volume", "age"]
    assert k.groups == ["dataset", "site"]  # an id (one level per case) groups nothing
