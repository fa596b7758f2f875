"""Every value is stored once, whatever the label convention (BraTS 2020/2023 name a label and a region ET)."""

import nibabel as nib
import numpy as np
import pytest
import yaml

from segaudit.analysis import summarize
from segaudit.dataset import load_project
from segaudit.dataset.labels import LabelMap
from segaudit.errors import ConfigError
from segaudit.metrics import EvaluationOptions
from segaudit.pipeline.evaluate import evaluate_project

FAST = EvaluationOptions(lesion_matching="brats", distances=False)
# AUDIT value -> BraTS 2023 value: ENH 1 -> ET 3, NEC 2 -> NETC 1, EDE 3 -> SNFH 2.
TO_BRATS2023 = np.array([0, 3, 1, 2])


def _remapped(src_root, dst_root):
    """The real LUMIERE masks rewritten in the BraTS 2023 convention (same voxels, other values)."""
    for f in sorted(src_root.rglob("*.nii.gz")):
        img = nib.load(f)
        arr = np.asarray(img.dataobj).astype(np.int64)
        out = dst_root / f.relative_to(src_root)
        out.parent.mkdir(parents=True, exist_ok=True)
        nib.save(nib.Nifti1Image(TO_BRATS2023[arr].astype(np.uint8), img.affine), out)
    return dst_root


def _project(root, convention, name):
    data = {"datasets": {"LUMIERE": {
        "root": str(root),
        "ground_truth": "{root}/LUMIERE_images/{case}/{case}_seg.nii.gz",
        "predictions": "{root}/LUMIERE_seg/{model}/{case}/{case}_pred.nii.gz",
        "label_convention": convention}}}
    path = root.parent / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_project(path)


@pytest.mark.parametrize("convention", ["brats2020", "brats2023"])
def test_label_and_region_named_alike_are_one(convention):
    lm = LabelMap.from_config(None, None, convention, "test")
    assert "ET" in lm.labels  # scored once, as the label
    assert "ET" not in lm.regions
    assert set(lm.regions) == {"WT", "TC"}
    with pytest.raises(ConfigError, match="name of label 'ET'"):
        LabelMap.from_config(None, {"ET": ["NETC", "ET"]}, "brats2023", "test")


def test_brats2023_lumiere_every_value_once(brats_copy, tmp_path):
    src = brats_copy / "LUMIERE"
    b23 = _remapped(src, tmp_path / "b23" / "LUMIERE")
    res = evaluate_project(_project(b23, "brats2023", "b23"), tmp_path / "run23", FAST, progress=False)
    ref = evaluate_project(_project(src, "audit", "audit"), tmp_path / "runaudit", FAST, progress=False)
    m = res.metrics
    assert not m.duplicated(["dataset", "case", "model", "region", "metric"]).any()
    assert set(m.region) == {"NETC", "SNFH", "ET", "RC", "WT", "TC", "confusion"}
    # Before the fix, every ET row was stored twice: n = 2 per case and a doubled lesion table.
    s = summarize(m[m.metric == "dice"])
    n_cases = m.groupby("model")["case"].nunique()
    for _, row in s.iterrows():
        assert row.n + row.n_both_empty + row.n_undefined == n_cases[row.model], row.to_dict()
    les = res.lesions
    assert not les.duplicated(["case", "model", "region", "source", "lesion_id"]).any()
    # The remapped ET equals the AUDIT-convention ENH (same voxels), value by value.
    a = m[(m.region == "ET") & (m.metric == "dice")].set_index(["case", "model"]).value.sort_index()
    b = ref.metrics[(ref.metrics.region == "ENH") & (ref.metrics.metric == "dice")].set_index(
        ["case", "model"]).value.sort_index()
    np.testing.assert_allclose(a.to_numpy(), b.to_numpy())
    assert len(a) == 6
