"""Property tests of the distance metrics on random masks: symmetry, bounds, translation, spacing."""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from segaudit.metrics.surface import assd, hausdorff, masd, nsd, surface_distances

shapes = st.tuples(st.integers(3, 10), st.integers(3, 10), st.integers(3, 10))
spacings = st.tuples(*[st.sampled_from([0.5, 1.0, 1.5, 3.0])] * 3)


@settings(max_examples=50, deadline=None)
@given(st.data(), shapes, spacings, st.sampled_from(["surfel", "voxel"]))
def test_symmetry_bounds_and_identity(data, shape, spacing, definition):
    g = data.draw(arrays(bool, shape))
    p = data.draw(arrays(bool, shape))
    assume(g.any() and p.any())
    a = surface_distances(g, p, spacing, definition)
    b = surface_distances(p, g, spacing, definition)
    for f in (hausdorff, assd, masd):
        assert f(a) == pytest.approx(f(b))  # symmetric metrics
    assert hausdorff(a, 95) == pytest.approx(hausdorff(b, 95))
    diag = float(np.sqrt(np.sum((np.array(shape) * np.array(spacing)) ** 2)))
    assert 0 <= masd(a) <= hausdorff(a) <= diag + 1e-9
    assert 0 <= assd(a) <= hausdorff(a) + 1e-9
    assert hausdorff(a, 95) <= hausdorff(a) + 1e-9
    assert 0.0 <= nsd(a, 1.0) <= nsd(a, 2.0) <= 1.0  # monotone in the tolerance
    same = surface_distances(g, g, spacing, definition)
    assert hausdorff(same) == 0.0
    assert nsd(same, 0.0) == 1.0


@settings(max_examples=40, deadline=None)
@given(st.data(), spacings, st.tuples(*[st.integers(0, 4)] * 3))
def test_translation_invariance_and_spacing_scaling(data, spacing, shift):
    core = data.draw(arrays(bool, (5, 5, 5)))
    core2 = data.draw(arrays(bool, (5, 5, 5)))
    assume(core.any() and core2.any())

    def place(m, at):
        out = np.zeros((14, 14, 14), bool)
        out[at[0]:at[0] + 5, at[1]:at[1] + 5, at[2]:at[2] + 5] = m
        return out

    a = surface_distances(place(core, (1, 1, 1)), place(core2, (2, 1, 3)), spacing)
    b = surface_distances(place(core, [1 + s for s in shift]), place(core2, [2 + shift[0], 1 + shift[1],
                                                                             3 + shift[2]]), spacing)
    assert hausdorff(a, 95) == pytest.approx(hausdorff(b, 95))
    assert assd(a) == pytest.approx(assd(b))
    # Scaling every spacing by k scales every distance by k and leaves NSD at k*tau unchanged.
    k = 2.5
    c = surface_distances(place(core, (1, 1, 1)), place(core2, (2, 1, 3)), [s * k for s in spacing])
    assert hausdorff(c) == pytest.approx(k * hausdorff(a))
    assert assd(c) == pytest.approx(k * assd(a))
    assert nsd(c, k * 1.0) == pytest.approx(nsd(a, 1.0))
