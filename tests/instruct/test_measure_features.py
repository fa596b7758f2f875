"""Measure answers against segaudit's features table for the same masks: areas and volumes (lesion group
``volume``/``voxels``), largest diameters (``shape_features`` ``max_diameter`` of the largest part, equal to the
table's row when the target is one part), and the units said in the answer (mm when the spacing is known, pixels
otherwise)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from segaudit.dataset import load_project
from segaudit.features import FeatureOptions, case_features, shape_features
from segaudit.instruct import export_instructions

sys.path.insert(0, str(Path(__file__).parent))
from conftest_instruct import MODALITIES, source_labels, source_spacing, write_project  # noqa: E402


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("measure")
    project = load_project(write_project(tmp))
    project.datasets = [d for d in project.datasets if d.name in ("chest", "mets", "brats")]
    res = export_instructions(project, tmp / "out", per_image=10, seed=4, use_model=False, modalities=MODALITIES)
    label_maps = {d.name: (dict(d.label_map.labels), dict(d.label_map.regions)) for d in project.datasets}
    return [r for r in res.records if r.task == "measure"], label_maps


def _table(labels2d: np.ndarray, spacing, label_map, shape: bool = True) -> dict[tuple[str, str], float]:
    feats = case_features({}, spacing, labels2d, label_map[0], label_map[1],
                          options=FeatureOptions(groups=("lesion",), shape=shape))
    return {(src, name): value for _, src, group, name, value in feats.rows if group == "lesion"}


def test_measure_areas_and_diameters_equal_the_features_table(measured):
    records, label_maps = measured
    assert {r.provenance.dataset for r in records} == {"chest", "mets", "brats"}
    checked_single = 0
    for r in records:
        t = r.targets[0]
        rec = {"provenance": r.provenance.__dict__}
        labels = source_labels(rec)
        spacing = source_spacing(rec) or (1.0, 1.0)
        table = _table(labels, spacing, label_maps[r.provenance.dataset])
        assert t.pixels == table[(t.name, "voxels")], r.id
        assert t.area == pytest.approx(table[(t.name, "volume")], rel=1e-6), r.id
        mask = np.isin(labels, t.values)
        parts, n = ndimage.label(mask, structure=np.ones((3, 3)))
        assert n == table[(t.name, "n_components")] == t.count
        largest = parts == 1 + int(np.argmax(np.bincount(parts.ravel())[1:]))
        assert t.diameter == pytest.approx(shape_features(largest, spacing)["max_diameter"], abs=1e-3), r.id
        if n == 1:
            assert t.diameter == pytest.approx(table[(t.name, "max_diameter")], abs=1e-3), r.id
            checked_single += 1
        shown = re.search(r"largest diameter of (?:its|their) largest part is ([\d,.]+) (mm|px)", r.answer)
        assert float(shown.group(1).replace(",", "")) == pytest.approx(t.diameter, abs=0.051)
        if r.provenance.dataset == "brats":  # NIfTI: physical units, said so
            assert t.unit == "mm"
            assert shown.group(2) == "mm"
            assert re.search(rf"covers? ({t.area:.1f}|{t.area:,.0f}) mm\u00b2", r.answer)
        else:  # PNG masks carry no spacing: pixels, said so
            assert t.unit == "px"
            assert shown.group(2) == "px"
            assert "pixel spacing of this image is not known" in r.answer
    assert checked_single >= 3


def test_whole_volume_answers_equal_the_3d_features_table(measured):
    records, label_maps = measured
    slices = [r for r in records if r.provenance.dataset == "brats"]
    assert slices
    path = slices[0].provenance.mask_file
    img = nib.load(path)
    vol = np.rint(np.asarray(img.dataobj)).astype(np.int64)
    spacing = tuple(float(z) for z in img.header.get_zooms()[:3])
    table = _table(vol, spacing, label_maps["brats"], shape=False)
    for r in slices:
        t = r.targets[0]
        assert t.volume == pytest.approx(table[(t.name, "volume")], rel=1e-6), r.id
        assert f"it measures {t.volume / 1000:.2f} mL" in r.answer
