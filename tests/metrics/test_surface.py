"""Surface distances against the reference implementations, on the real BraTS cases bundled with the repo.

``surfel`` must equal DeepMind's surface-distance and ``voxel`` MONAI, to 1e-6 relative, on every non-empty
label and region; the neighbourhood area tables must equal surface-distance's for all 256 (3D) / 16 (2D) codes.
The references are imported by ``conftest.require_reference`` (required on CI, skipped elsewhere), so the
reference-free tests below always run.
"""

import numpy as np
import pytest

from conftest import AUDIT_REGIONS, brats_pairs, require_reference
from segaudit.io import read_mask
from segaudit.metrics.surface import assd, hausdorff, masd, nsd, surface_distances, surfel_area_table

PAIRS = brats_pairs()


@pytest.fixture(scope="module")
def surface_distance():
    return require_reference("surface_distance")


@pytest.fixture(scope="module", params=PAIRS, ids=[p[0] for p in PAIRS])
def real_pair(request):
    _, gt_path, pred_path = request.param
    gt, pred = read_mask(gt_path), read_mask(pred_path)
    return gt.array, pred.array, gt.spacing


@pytest.mark.reference
@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (0.5, 2.0, 1.3), (3.0, 0.7, 0.7)])
def test_area_table_equals_surface_distance(spacing):
    lt = require_reference("surface_distance.lookup_tables")

    np.testing.assert_allclose(surfel_area_table(spacing), lt.create_table_neighbour_code_to_surface_area(spacing),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(surfel_area_table(spacing[:2]),
                               lt.create_table_neighbour_code_to_contour_length(spacing[:2]), rtol=1e-12)


def _nonempty_regions(gt, pred):
    for name, vals in AUDIT_REGIONS.items():
        g, p = np.isin(gt, vals), np.isin(pred, vals)
        if g.any() and p.any():
            yield name, g, p


@pytest.mark.reference
def test_surfel_equals_deepmind_on_real_cases(real_pair, surface_distance):
    gt, pred, spacing = real_pair
    checked = 0
    for _name, g, p in _nonempty_regions(gt, pred):
        ref = surface_distance.compute_surface_distances(g, p, spacing)
        ours = surface_distances(g, p, spacing, "surfel")
        for pct in (95, 100):
            assert hausdorff(ours, pct) == pytest.approx(surface_distance.compute_robust_hausdorff(ref, pct),
                                                        rel=1e-6)
        a_gp, a_pg = surface_distance.compute_average_surface_distance(ref)
        wg, wp = ref["surfel_areas_gt"].sum(), ref["surfel_areas_pred"].sum()
        assert assd(ours) == pytest.approx((a_gp * wg + a_pg * wp) / (wg + wp), rel=1e-6)
        assert masd(ours) == pytest.approx((a_gp + a_pg) / 2, rel=1e-6)
        for tau in (1.0, 2.0, 5.0):
            assert nsd(ours, tau) == pytest.approx(surface_distance.compute_surface_dice_at_tolerance(ref, tau),
                                                   rel=1e-6)
        checked += 1
    assert checked >= 3


@pytest.mark.reference
def test_voxel_equals_monai_on_real_cases(real_pair):
    torch = require_reference("torch")
    monai_metrics = require_reference("monai.metrics")
    compute_average_surface_distance = monai_metrics.compute_average_surface_distance
    compute_hausdorff_distance = monai_metrics.compute_hausdorff_distance
    compute_surface_dice = monai_metrics.compute_surface_dice

    gt, pred, spacing = real_pair
    checked = 0
    for _name, g, p in _nonempty_regions(gt, pred):
        yt = torch.from_numpy(g[None, None].astype(np.float32))
        yp = torch.from_numpy(p[None, None].astype(np.float32))
        ours = surface_distances(g, p, spacing, "voxel")
        for pct in (95, None):
            ref = compute_hausdorff_distance(yp, yt, include_background=True, percentile=pct, spacing=list(spacing))
            assert hausdorff(ours, pct or 100) == pytest.approx(float(ref), rel=1e-6)
        ref = compute_average_surface_distance(yp, yt, include_background=True, symmetric=True,
                                               spacing=list(spacing))
        assert assd(ours) == pytest.approx(float(ref), rel=1e-6)
        ref = compute_surface_dice(yp, yt, class_thresholds=[2.0], include_background=True, spacing=list(spacing))
        assert nsd(ours, 2.0) == pytest.approx(float(ref), rel=1e-6)
        checked += 1
    assert checked >= 3


def test_anisotropic_spacing_is_honoured_along_each_axis():
    """A cube shifted by 2 voxels along one axis: the distance scales with that axis' spacing only."""
    g = np.zeros((20, 20, 20), bool)
    g[5:12, 5:12, 5:12] = True
    for axis in range(3):
        p = np.roll(g, 2, axis=axis)
        for spacing in [(1.0, 1.0, 1.0), (1.0, 2.0, 5.0), (5.0, 1.0, 2.0)]:
            for definition in ("surfel", "voxel"):
                sd = surface_distances(g, p, spacing, definition)
                assert hausdorff(sd) == pytest.approx(2 * spacing[axis])
                # Swapping the axes of masks and spacing together gives the same value.
                perm = (axis, *[a for a in range(3) if a != axis])
                sd2 = surface_distances(g.transpose(perm), p.transpose(perm), [spacing[a] for a in perm],
                                        definition)
                assert hausdorff(sd2) == pytest.approx(hausdorff(sd))
                assert assd(sd2) == pytest.approx(assd(sd))


@pytest.mark.reference
def test_swapping_spacing_changes_value_correctly_on_real_case(real_pair, surface_distance):
    gt, pred, _ = real_pair
    g, p = np.isin(gt, (1, 2, 3)), np.isin(pred, (1, 2, 3))
    if not (g.any() and p.any()):
        pytest.skip("empty region")
    a = surface_distances(g, p, (1.0, 1.0, 3.0))
    b = surface_distances(g.transpose(2, 1, 0), p.transpose(2, 1, 0), (3.0, 1.0, 1.0))
    ref = surface_distance.compute_surface_distances(g, p, (1.0, 1.0, 3.0))
    assert hausdorff(a, 95) == pytest.approx(hausdorff(b, 95), rel=1e-9)
    assert hausdorff(a, 95) == pytest.approx(surface_distance.compute_robust_hausdorff(ref, 95), rel=1e-6)
    iso = surface_distances(g, p, (1.0, 1.0, 1.0))
    assert hausdorff(a, 100) >= hausdorff(iso, 100)


@pytest.mark.reference
def test_2d_surfel_equals_deepmind_on_real_fundus(demo_data, surface_distance):
    from segaudit.io import MaskEncoding

    root = demo_data / "fundus_exudates"
    case = "IDRiD_01"
    g = read_mask(root / "masks_EX_binary_png" / f"{case}_EX.png", MaskEncoding("binary")).array > 0
    p = read_mask(root / "pred_sarah_antillia_flexunet" / f"{case}.png", MaskEncoding("binary", "red")).array > 0
    for spacing in [(1.0, 1.0), (0.5, 2.0)]:
        ref = surface_distance.compute_surface_distances(g, p, spacing)
        ours = surface_distances(g, p, spacing)
        assert hausdorff(ours, 95) == pytest.approx(surface_distance.compute_robust_hausdorff(ref, 95), rel=1e-6)
        assert nsd(ours, 1.0) == pytest.approx(surface_distance.compute_surface_dice_at_tolerance(ref, 1.0),
                                               rel=1e-6)


def test_empty_masks_give_documented_raw_values():
    e = np.zeros((8, 8, 8), bool)
    m = e.copy()
    m[2:5, 2:5, 2:5] = True
    both = surface_distances(e, e, (1, 1, 1))
    assert np.isnan(hausdorff(both))
    assert np.isnan(assd(both))
    assert np.isnan(nsd(both, 1))
    one = surface_distances(m, e, (1, 1, 1))
    assert hausdorff(one) == np.inf
    assert assd(one) == np.inf
    assert nsd(one, 1) == 0.0


def test_rejects_bad_input():
    with pytest.raises(ValueError, match="shape"):
        surface_distances(np.zeros((3, 3)), np.zeros((3, 4)), (1, 1))
    with pytest.raises(ValueError, match="spacing"):
        surface_distances(np.zeros((3, 3)), np.zeros((3, 3)), (1, 1, 1))
    with pytest.raises(ValueError, match="surface definition"):
        surface_distances(np.zeros((3, 3)), np.zeros((3, 3)), (1, 1), "mesh")
