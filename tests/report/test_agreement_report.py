"""The report's agreement section on the real five-model glioma project (no ground truth)."""

import base64
import re

import numpy as np
import pytest
import yaml

from segaudit.analysis.agreement import agreement_matrix, model_table, volume_table
from segaudit.dataset import load_project
from segaudit.metrics import EvaluationOptions
from segaudit.pipeline.agree import agree_project
from segaudit.report.agreement import agreement_heatmap
from segaudit.report.html import build_report
from segaudit.store import ResultsStore


@pytest.fixture(scope="module")
def agree_store(tmp_path_factory, tests_data):
    tmp = tmp_path_factory.mktemp("agree")
    path = tmp / "segaudit.yaml"
    path.write_text(yaml.safe_dump({"datasets": {"glioma <5>": {
        "root": str(tests_data / "glioma_5models"), "predictions": "{root}/{case}/predictions/{model}.nii.gz",
        "label_convention": "brats2020"}}}))
    out = tmp / "run"
    agree_project(load_project(path), out, EvaluationOptions(lesion_matching="none"), progress=False)
    with ResultsStore(out, read_only=True) as store:
        metrics = store.query('SELECT dataset, "case", model, region, metric, value FROM metrics')
    return out, metrics


def test_readers(agree_store):
    _, m = agree_store
    ds = "glioma <5>"
    mat = agreement_matrix(m, ds, "WT")
    assert mat.shape == (5, 5)
    assert np.isnan(np.diag(mat.to_numpy())).all()
    assert np.allclose(mat.to_numpy(), mat.to_numpy().T, equal_nan=True)
    pair = m[(m.model == "isen-20~scan-20") & (m.region == "WT") & (m.metric == "agree_dice")].value.item()
    assert mat.loc["scan-20", "isen-20"] == pair
    table = model_table(m, ds)
    assert len(table) == 5 * 5  # one model flagged on all its rows, or none
    assert table.outlier.sum() in (0, 5)
    # The outlier flag follows the documented rule on the stored leave-one-out Dice, recomputed here in numpy.
    loo = m[m.metric == "agree_loo_dice"].groupby("model").value.mean()
    low = loo.idxmin()
    expected = low if loo[low] < np.median(loo) - 0.05 and (loo == loo.min()).sum() == 1 else None
    assert sorted(table[table.outlier].model.unique()) == ([expected] if expected else [])
    vols = volume_table(m, ds).set_index("region")
    wt = m[(m.metric == "agree_volume") & (m.region == "WT") & ~m.model.str.startswith("~")].value
    assert vols.loc["WT", "min"] == wt.min()
    assert vols.loc["WT", "cv"] == pytest.approx(wt.std(ddof=1) / wt.mean())


def test_report_has_the_agreement_section(agree_store, tmp_path):
    out, m = agree_store
    page = build_report(out, tmp_path / "r.html").read_text()
    assert "Agreement between models" in page
    assert "glioma &lt;5&gt;" in page  # data names are text, never HTML
    assert "glioma <5>" not in page
    assert "Metric summary" not in page  # no ground truth: no ground-truth section pretends otherwise
    assert "Empty predictions" in page
    assert "ET: isen-20, scan-20, yixinmpl-20" in page
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 5  # one heatmap per label/region, the ET region stored once
    assert all(base64.b64decode(i).startswith(b"\x89PNG") for i in images)


def test_heatmap_figure(agree_store):
    _, m = agree_store
    fig = agreement_heatmap(agreement_matrix(m, "glioma <5>", "WT", "agree_hd95"), "WT HD95", "agree_hd95")
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert len(texts) == 25
    assert texts.count("–") == 5
