"""Exact Shapley values over sequence subsets: against a brute force over all orderings, efficiency, drop-one;
and the live attribution of LiteMedSAM on a bundled BraTS slice (real weights)."""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import numpy as np
import pytest

from conftest import one_torch_thread, require_sam, shapley_brute_force
from segaudit.models.attribution import drop_one, sequence_slice_attribution, shapley_values, subset_scores

SEQS = ["t1", "t1ce", "t2", "flair"]



@pytest.mark.parametrize("seed", [0, 1, 2])
def test_shapley_equals_the_brute_force_and_is_efficient(seed):
    rng = np.random.default_rng(seed)
    scores = {frozenset(c): float(rng.random()) for r in range(5) for c in combinations(SEQS, r)}
    phi = shapley_values(SEQS, scores)
    ref = shapley_brute_force(SEQS, scores)
    for p in SEQS:
        assert phi[p] == pytest.approx(ref[p], abs=1e-12)
    assert sum(phi.values()) == pytest.approx(scores[frozenset(SEQS)] - scores[frozenset()], abs=1e-12)


def test_subset_scores_call_every_subset_once_and_drop_one():
    calls = []

    def value(s):
        calls.append(s)
        return 0.5 * ("flair" in s) + 0.1 * len(s)

    scores = subset_scores(["t2", "flair"], value)
    assert sorted(map(sorted, calls)) == [[], ["flair"], ["flair", "t2"], ["t2"]]
    phi = shapley_values(["t2", "flair"], scores)
    assert phi["flair"] == pytest.approx(0.6)
    assert phi["t2"] == pytest.approx(0.1)
    assert drop_one(["t2", "flair"], scores) == pytest.approx({"t2": 0.1, "flair": 0.6})


@pytest.mark.slow
def test_live_attribution_on_a_brats_slice_with_litemedsam(tmp_path):
    """Whole tumour on the key slice of BraTS2024_SSA-00230-000 from (t1ce, t2, flair): 8 encodings."""
    require_sam()
    import nibabel as nib

    from segaudit.models.litemedsam import LiteMedSAM
    from segaudit.models.propagate import key_slice

    case = (Path(__file__).parents[1] / "data/brats_audit/BraTS2024_SSA/BraTS2024_SSA_images/"
            "BraTS2024_SSA-00230-000/BraTS2024_SSA-00230-000_")
    wt = np.asarray(nib.load(f"{case}seg.nii.gz").dataobj) > 0
    z = key_slice(wt, axis=2)
    slices = {s: np.asarray(nib.load(f"{case}{s}.nii.gz").dataobj, dtype=np.float32)[:, :, z]
              for s in ("t1ce", "t2", "flair")}
    with one_torch_thread():
        model = LiteMedSAM(cache_dir=tmp_path)
        scores, phi, drop = sequence_slice_attribution(model, slices, wt[:, :, z])
    assert len(scores) == 8
    assert model.encoder_calls == 8
    assert sum(phi.values()) == pytest.approx(scores[frozenset(slices)] - scores[frozenset()], abs=1e-9)
    assert scores[frozenset(slices)] > 0.5  # a box on the key slice of the 3-channel MRI works
    print("\nBraTS SSA-00230 key slice, Dice by kept sequences:",
          {"+".join(sorted(k)) or "none": round(v, 3) for k, v in scores.items()}, "Shapley:",
          {k: round(v, 3) for k, v in phi.items()}, "drop-one:", {k: round(v, 3) for k, v in drop.items()})
