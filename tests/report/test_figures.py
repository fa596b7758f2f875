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
    assert out.shape == (-(-h // f), -(-w // f)) and out.sum() == 1 and out[r // f, c // f]


def test_block_reduce_mean_of_constant_blocks():
    a = np.repeat(np.repeat(np.arange(6, dtype=float).reshape(2, 3), 4, 0), 4, 1)
    np.testing.assert_array_equal(_block_reduce(a, 4, np.mean), np.arange(6).reshape(2, 3))


def test_overlay_panel_draws_a_one_pixel_miss_on_a_large_photo():
    """A single false-negative pixel of a 2848×4288 fundus-sized mask is still drawn (blue) after reduction."""
    g = np.zeros((2848, 4288), bool)
    g[1000, 2000] = True
    fig = overlay_panel(np.zeros(g.shape, np.float32), g, np.zeros_like(g))
    overlay = fig.axes[0].get_images()[-1].get_array()
    assert overlay.shape[0] <= 480 and overlay.shape[1] <= 480
    blue = (overlay[..., 2] == 1.0) & (overlay[..., 3] > 0)
    assert blue.sum() == 1
    figures.pyplot().close(fig)
