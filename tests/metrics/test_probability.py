"""Soft-prediction metrics against scikit-learn / numpy on probability maps built from real masks.

scikit-learn is imported by ``conftest.require_reference`` (required on CI, skipped elsewhere) in the test marked
``reference`` only."""

import numpy as np
import pytest
from scipy import ndimage

from conftest import require_reference
from segaudit.io import MaskEncoding, read_mask
from segaudit.metrics.probability import average_precision, brier, pearson, roc_auc


@pytest.fixture(scope="module")
def soft_pair(demo_data):
    """A real fundus exudate mask and a soft map: the model's red drawing, blurred (values in [0, 1])."""
    root = demo_data / "fundus_exudates"
    g = read_mask(root / "masks_EX_binary_png" / "IDRiD_03_EX.png", MaskEncoding("binary")).array > 0
    p = read_mask(root / "pred_sarah_antillia_flexunet" / "IDRiD_03.png", MaskEncoding("binary", "red")).array
    prob = np.clip(ndimage.gaussian_filter(p.astype(np.float32), 3), 0, 1)
    sl = (slice(600, 1800), slice(1200, 2600))  # a region with lesions, to keep sklearn quick
    return g[sl], np.round(prob[sl].astype(np.float64), 3)


@pytest.mark.reference
def test_against_scikit_learn(soft_pair):
    sklearn_metrics = require_reference("sklearn.metrics")
    g, prob = soft_pair
    y, s = g.ravel(), prob.ravel()
    assert roc_auc(prob, g) == pytest.approx(sklearn_metrics.roc_auc_score(y, s), rel=1e-9)
    assert average_precision(prob, g) == pytest.approx(sklearn_metrics.average_precision_score(y, s), rel=1e-9)
    assert brier(prob, g) == pytest.approx(sklearn_metrics.brier_score_loss(y, s), rel=1e-9)
    assert pearson(prob, g) == pytest.approx(np.corrcoef(s, y.astype(float))[0, 1], rel=1e-9)


def test_undefined_values():
    z = np.zeros((5, 5))
    assert np.isnan(roc_auc(z, z > 0))
    assert np.isnan(average_precision(z, z > 0))
    assert np.isnan(pearson(z, z > 0))
    assert brier(z, z > 0) == 0.0
