"""Figure helpers: a tiny lesion survives the panel's block reduction; plots return figures."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from segaudit.report import figures
from segaudit.report.figures import _block_reduce, overlay_panel


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 7), st.integers(5, 60), st.integers(5, 60), st.data())
def test_block_reduce_any_keeps_every_pixel(f, h, w, data):
    a = np.zeros((h, w), bool)
    r, c = data.draw(st.integers(0, h - 1)), data.draw(st.integers(0, w - 1))
    a[r, c] = True
    out = _block_reduce(a, f, np.any)
    assert out.shape == (-(-h // f), -(-w // f))
    assert out.sum() == 1
    assert out[r // f, c // f]


def test_block_reduce_mean_of_constant_blocks():
    a = np.repeat(np.repeat(np.arange(6, dtype=float).reshape(2, 3), 4, 0), 4, 1)
    np.testing.assert_array_equal(_block_reduce(a, 4, np.mean), np.arange(6).reshape(2, 3))


def test_overlay_panel_draws_a_one_pixel_miss_on_a_large_photo():
    """A single false-negative pixel of a 2848×4288 fundus-sized mask is still drawn (blue) after reduction."""
    g = np.zeros((2848, 4288), bool)
    g[1000, 2000] = True
    fig = overlay_panel(np.zeros(g.shape, np.float32), g, np.zeros_like(g))
    overlay = fig.axes[0].get_images()[-1].get_array()
    assert overlay.shape[0] <= 480
    assert overlay.shape[1] <= 480
    blue = (overlay[..., 2] == 1.0) & (overlay[..., 3] > 0)
    assert blue.sum() == 1
    figures.pyplot().close(fig)


def _smallest_lesion_slice(demo_data):
    """The bundled metastasis slice whose ground-truth lesions span the fewest pixels (real masks)."""
    from segaudit.io.readers import read_image

    best = None
    for path in sorted((demo_data / "brainmets_t2w_slices" / "masks_binary_png").glob("*.png")):
        g = read_image(path).array > 127
        if g.any() and (best is None or _extent(g) < _extent(best[1])):
            best = (path.stem, g)
    return best


def _extent(g):
    r, c = np.nonzero(g)
    return max(r.max() - r.min() + 1, c.max() - c.min() + 1)


def test_crop_keeps_the_smallest_real_lesion_large(demo_data):
    from segaudit.report.figures import crop_box

    case, g = _smallest_lesion_slice(demo_data)
    rows, cols = crop_box(g, np.zeros_like(g))
    window = g[rows, cols]
    # The whole lesion is inside the window, and the window is at most 3× the lesion's extent or 32 px.
    assert window.sum() == g.sum()
    extent = _extent(g)
    assert max(window.shape) <= max(32, 2 * extent + 2), (case, extent)
    assert max(window.shape) < g.shape[0] / 4, (case, extent)
    # Drawn cropped, every lesion pixel is a block of several screen pixels of the 3.4-inch panel.
    fig = overlay_panel(None, g, np.zeros_like(g), crop=True)
    drawn = fig.axes[0].get_images()[-1].get_array()
    assert drawn.shape[:2] == window.shape
    assert (drawn[..., 3] > 0).sum() == g.sum()
    figures.pyplot().close(fig)


def test_colour_photo_is_drawn_in_colour(demo_data):
    from segaudit.io.readers import read_image

    root = demo_data / "fundus_exudates"
    img = read_image(root / "images" / "IDRiD_01.jpg").array
    g = read_image(root / "masks_EX_binary_png" / "IDRiD_01_EX.png").array > 127
    assert img.ndim == 3
    assert img.shape[:2] == g.shape
    fig = overlay_panel(img, g, np.zeros_like(g), crop=True)
    shown = fig.axes[0].get_images()[0].get_array()
    assert shown.ndim == 3
    assert shown.shape[-1] == 3
    # A fundus photo is red-dominant: the drawn background keeps its channels apart (not grey).
    assert float(shown[..., 0].mean()) > float(shown[..., 2].mean()) + 0.05
    figures.pyplot().close(fig)


def test_strip_plot_names_the_worst_cases(tests_data):
    import pandas as pd

    from segaudit.store.audit import read_audit_metrics

    path = tests_data / "audit_outputs/metrics/BraTS_2024_by_site/extracted_information_UCSF.csv"
    fig = figures.strip_plot(read_audit_metrics(path), "UCSF", label_worst=2)
    labels = [t.get_text() for t in fig.axes[0].texts]
    raw = pd.read_csv(path)
    for (model, region), g in raw.dropna(subset=["DICE"]).groupby(["model", "region"]):
        worst = g.sort_values("DICE", kind="stable").ID.head(2)
        for case in worst:
            assert case in labels, (model, region, case)
    assert len(labels) == 2 * raw.groupby(["model", "region"]).ngroups
    figures.pyplot().close(fig)
