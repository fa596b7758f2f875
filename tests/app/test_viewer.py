"""segaudit.app.viewer on hand-built arrays (orientation, aspect ratio, windows, outlines, agreement colours,
pooling that keeps one-pixel lesions) and on real demo cases (3D BraTS, a 2D JPEG slice)."""

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image as PILImage

from app_store import built_store
from segaudit.app import data, viewer
from segaudit.io.masks import MaskEncoding


def save_nifti(path: Path, array: np.ndarray, affine: np.ndarray) -> str:
    nib.Nifti1Image(array, affine).to_filename(str(path))
    return str(path)


def phantom() -> tuple[np.ndarray, tuple[int, int, int]]:
    """A RAS-ordered volume (x: left->right, y: posterior->anterior, z: inferior->superior) with one bright
    voxel near the right, anterior, superior corner."""
    a = np.zeros((20, 16, 8), np.int16)
    a[...] = 10
    marker = (17, 13, 6)  # right (high x), anterior (high y), superior (high z)
    a[marker] = 1000
    return a, marker


def test_same_anatomy_stored_ras_or_lps_displays_the_same(tmp_path):
    ras, marker = phantom()
    # The same anatomy stored LPS: x and y axes reversed, with a header saying so.
    lps = ras[::-1, ::-1, :].copy()
    p_ras = save_nifti(tmp_path / "ras.nii.gz", ras, np.diag([1.0, 1.0, 1.0, 1.0]))
    p_lps = save_nifti(tmp_path / "lps.nii.gz", lps, np.diag([-1.0, -1.0, 1.0, 1.0]))
    v_ras, v_lps = viewer.to_view(viewer.read_cached(p_ras)), viewer.to_view(viewer.read_cached(p_lps))
    for axis in viewer.AXES:
        for i in range(viewer.n_slices(v_ras, axis)):
            assert np.array_equal(viewer.take_slice(v_ras, axis, i)[0], viewer.take_slice(v_lps, axis, i)[0])
    # Axial through the marker: anterior at the top, the patient's right on the screen's left.
    disk = (20 - 1 - marker[0], 16 - 1 - marker[1], marker[2])  # the marker's voxel index in the LPS file
    k = viewer.centroid_slice(v_lps, disk, "axial")
    assert k == marker[2]
    s, _ = viewer.take_slice(v_lps, "axial", k)
    r, c = np.argwhere(s == 1000)[0]
    assert r < s.shape[0] / 4  # top-left: anterior and the patient's right
    assert c < s.shape[1] / 4
    assert viewer.display_pixel(v_lps, "axial", disk) == (r, c)
    # Coronal: superior at the top; sagittal: superior at the top, anterior on the left.
    s, _ = viewer.take_slice(v_ras, "coronal", marker[1])
    r, c = np.argwhere(s == 1000)[0]
    assert r < s.shape[0] / 4
    assert c < s.shape[1] / 4
    s, _ = viewer.take_slice(v_ras, "sagittal", marker[0])
    r, c = np.argwhere(s == 1000)[0]
    assert r < s.shape[0] / 4
    assert c < s.shape[1] / 4


def test_anisotropic_spacing_keeps_the_physical_aspect_ratio(tmp_path):
    a = np.zeros((40, 40, 10), np.int16)
    a[10:30, 10:30, 2:8] = 100
    p = save_nifti(tmp_path / "aniso.nii.gz", a, np.diag([1.0, 1.0, 5.0, 1.0]))
    v = viewer.to_view(viewer.read_cached(p))
    s, spacing = viewer.take_slice(v, "coronal", 20)
    assert s.shape == (10, 40)
    assert spacing == (5.0, 1.0)
    rgb = viewer.render_view(s, None, None, spacing, max_side=400)
    assert rgb.shape[:2] == (400, 320)  # 10 rows x 5 mm = 50 mm high, 40 columns x 1 mm = 40 mm wide
    s, spacing = viewer.take_slice(v, "axial", 5)
    assert viewer.render_view(s, None, None, spacing, max_side=400).shape[:2] == (400, 400)


def test_window_bounds():
    a = np.concatenate([np.zeros(1000), np.arange(1, 101, dtype=float)])
    lo, hi = viewer.window_bounds(a, "auto (1-99 %)")
    assert (lo, hi) == pytest.approx(tuple(np.percentile(np.arange(1, 101), [1, 99])))  # zeros left out
    assert viewer.window_bounds(a, "CT brain") == (0.0, 80.0)
    assert viewer.window_bounds(a, level=50, width=20) == (40.0, 60.0)
    assert viewer.window_bounds(np.zeros(10)) == (0.0, 1.0)
    w = viewer.apply_window(np.array([-5.0, 40.0, 60.0, 99.0]), 40.0, 60.0)
    assert w.tolist() == [0, 0, 255, 255]


def test_outline_and_agreement_colours():
    sq = np.zeros((9, 9), bool)
    sq[2:7, 2:7] = True
    assert viewer.outline(sq).sum() == 16
    dot = np.zeros((9, 9), bool)
    dot[4, 4] = True
    assert viewer.outline(dot).sum() == 1  # a one-pixel lesion is its own outline
    gt = np.zeros((6, 6), np.uint8)
    pred = np.zeros((6, 6), np.uint8)
    gt[1, 1] = gt[2, 2] = 1
    pred[2, 2] = pred[4, 4] = 1
    gt[5, 5] = 2  # another label: not part of the region asked for
    rgb = viewer.compose(None, gt, pred, viewer.Overlay("fill", "fill", 1.0, (1,)))
    assert tuple(rgb[2, 2]) == viewer.TP_COLOUR
    assert tuple(rgb[4, 4]) == viewer.FP_COLOUR
    assert tuple(rgb[1, 1]) == viewer.FN_COLOUR
    assert tuple(rgb[5, 5]) == (0, 0, 0)
    assert tuple(rgb[0, 0]) == (0, 0, 0)
    half = viewer.compose(np.full((6, 6), 100.0), gt, None, viewer.Overlay("fill", "off", 0.5), (0.0, 200.0))
    grey = 128
    assert tuple(half[1, 1]) == tuple(int(round(0.5 * grey + 0.5 * c)) for c in viewer.LABEL_COLOURS[0])
    assert tuple(half[5, 5]) == tuple(int(round(0.5 * grey + 0.5 * c)) for c in viewer.LABEL_COLOURS[1])


def test_legend_names_each_declared_label_with_the_colour_it_is_drawn_in():
    gt = np.array([[1, 2, 3]], np.uint8)
    rgb = viewer.compose(None, gt, None, viewer.Overlay("fill", "off", 1.0))
    legend = viewer.label_legend({"ENH": 3, "NEC": 1, "EDE": 2})
    assert legend == "NEC (1) red, EDE (2) green, ENH (3) yellow"
    named = dict(zip(viewer.LABEL_COLOUR_NAMES, viewer.LABEL_COLOURS, strict=True))
    for i, part in enumerate(legend.split(", ")):
        assert tuple(rgb[0, i]) == named[part.rsplit(" ", 1)[1]]
    assert viewer.label_legend({"metastasis": 1}) == "metastasis (1) red"  # one label: one colour, not four
    assert viewer.label_legend({}) == "1 red, 2 green, 3 yellow, 4 blue"


def test_one_pixel_lesion_survives_a_4288_pixel_image_and_crop():
    img = np.full((2848, 4288), 50, np.uint8)
    gt = np.zeros(img.shape, np.uint8)
    gt[1400, 3001] = 1
    rgb = viewer.render_view(img, gt, None, overlay=viewer.Overlay("fill", "off", 1.0), max_side=720)
    assert max(rgb.shape[:2]) == 720
    assert (rgb == viewer.LABEL_COLOURS[0]).all(axis=2).any()
    box = viewer.lesion_crop_box(gt)
    assert box[0] <= 1400 < box[1]
    assert box[2] <= 3001 < box[3]
    assert box[1] - box[0] == 32
    zoomed = viewer.render_view(img, gt, None, overlay=viewer.Overlay("fill", "off", 1.0), crop=box, max_side=320)
    hit = (zoomed == viewer.LABEL_COLOURS[0]).all(axis=2)
    assert hit.sum() == 100  # one pixel of a 32 x 32 crop shown at 320 px: a 10 x 10 block
    assert viewer.lesion_crop_box(np.zeros((4, 4))) is None


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return built_store(tmp_path_factory)


def test_real_3d_case_overlay_at_a_ground_truth_voxel(run):
    project, store = run
    f = data.case_files(store, "BraTS2024_SSA", "BraTS2024_SSA-00230-000")
    disp = data.dataset_display(project, "BraTS2024_SSA")
    img = viewer.read_cached(f.images["t1ce"])
    gt_img = viewer.read_cached(f.ground_truth, "mask", disp.mask_encoding)
    vol = viewer.to_view(img)
    gt = viewer.to_view(gt_img, viewer.orientation_of(img))  # AUDIT's GT header is wrong: the image's is used
    voxel = tuple(int(v) for v in np.argwhere(gt_img.array == 2)[len(np.argwhere(gt_img.array == 2)) // 2])
    k = viewer.centroid_slice(vol, voxel, "axial")
    s, spacing = viewer.take_slice(vol, "axial", k)
    g, _ = viewer.take_slice(gt, "axial", k)
    r, c = viewer.display_pixel(vol, "axial", voxel)
    assert g[r, c] == 2
    rgb = viewer.render_view(s, g, None, spacing, viewer.Overlay("fill", "off", 1.0), viewer.window_bounds(vol.array))
    sr, sc = rgb.shape[0] / s.shape[0], rgb.shape[1] / s.shape[1]
    assert tuple(rgb[int((r + 0.5) * sr), int((c + 0.5) * sc)]) == viewer.LABEL_COLOURS[1]
    # The image itself is not blank and the label's pixels scale with the voxels on the slice.
    plain = viewer.render_view(s, None, None, spacing, window=viewer.window_bounds(vol.array))
    assert plain.std() > 10
    painted = (rgb == viewer.LABEL_COLOURS[1]).all(axis=2).sum()
    assert painted == pytest.approx((g == 2).sum() * sr * sc, rel=0.05)


def test_real_2d_slice_with_a_green_drawn_prediction(run):
    project, store = run
    wb = data.worst_best_cases(store, "brainmets_t2w_slices", "dice", 1)
    case = wb[wb.rank_kind == "best"].case.iloc[0]  # the best case: its prediction is not empty
    f = data.case_files(store, "brainmets_t2w_slices", case)
    disp = data.dataset_display(project, "brainmets_t2w_slices")
    img = viewer.to_view(viewer.read_cached(f.images["image"]))
    pred = viewer.to_view(viewer.read_cached(f.predictions["unet"], "mask", data.model_encoding(disp, "unet")))
    raw = np.asarray(PILImage.open(f.predictions["unet"]).convert("RGB"))
    assert np.array_equal(pred.array != 0, raw[..., 1] > 64)  # the green channel, thresholded as the project says
    s, spacing = viewer.take_slice(img, "axial", 0)
    p, _ = viewer.take_slice(pred, "axial", 0)
    rgb = viewer.render_view(s, None, p, spacing, viewer.Overlay("off", "outline", 1.0), max_side=s.shape[1])
    cyan = (rgb == viewer.PREDICTION_COLOUR).all(axis=2)
    assert cyan.sum() == viewer.outline(p != 0).sum() > 0


def test_volumes_are_read_once(tmp_path):
    a, _ = phantom()
    p = save_nifti(tmp_path / "once.nii.gz", a, np.eye(4))
    first = viewer.read_cached(p)
    assert viewer.read_cached(p) is first
    assert viewer.read_cached(p, "mask", MaskEncoding()) is not first
