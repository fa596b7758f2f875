"""The split of the old ``io/image.py`` (issue 14 item 3): readers, mask decoding and geometry in their own
modules; the re-export shim is gone, so every caller imports from the module that defines the name."""

import ast
import importlib
import inspect

import nibabel as nib
import numpy as np
import pytest

import segaudit.io as io_pkg
from segaudit.io import geometry, masks, readers


def test_package_re_exports_the_defining_modules_objects():
    for name in io_pkg.__all__:
        home = next(m for m in (readers, masks, geometry) if name in vars(m))
        assert getattr(io_pkg, name) is getattr(home, name), name


@pytest.mark.parametrize("shim", ["segaudit.io.image", "segaudit.dataset.detect"])
def test_re_export_shims_are_gone(shim):
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(shim)


def test_each_module_does_one_job(demo_data):
    seg = demo_data / "brats_audit/LUMIERE/LUMIERE_images/Patient-002-week-000/Patient-002-week-000_seg.nii.gz"
    ref = nib.load(seg)
    img = readers.read_image(seg)
    assert img.physical
    assert img.spacing == tuple(float(z) for z in ref.header.get_zooms())
    labels = masks.read_mask(seg).array
    np.testing.assert_array_equal(labels, np.asanyarray(ref.dataobj))
    geo = geometry.read_geometry(seg)
    assert geo.shape == ref.shape
    assert geometry.compare_geometry(geo, geometry.Geometry.of(img)) == []
    # the layers inside io point one way: geometry and masks build on readers, readers on neither
    assert not _imports(readers) & {"segaudit.io.masks", "segaudit.io.geometry", "segaudit.io.image"}
    assert "segaudit.io.readers" in _imports(masks)
    assert "segaudit.io.readers" in _imports(geometry)
    assert not _imports(masks) & {"segaudit.io.geometry", "segaudit.io.image"}


def _imports(module) -> set[str]:
    tree = ast.parse(inspect.getsource(module))
    return {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
