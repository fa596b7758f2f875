"""The layout registry (issue 14, item 3): one module per layout, tried in the order of ``LAYOUTS``.

A real folder that two layouts recognise (an AUDIT dataset folder beside a flat 2D ``images/`` + masks pair,
both real sample files) shows that the registry's order, and nothing else, decides which one wins.
"""

from __future__ import annotations

import importlib
import pkgutil
import shutil

import pytest

import segaudit.dataset.layouts as layouts_pkg
from segaudit.dataset import detect_layout
from segaudit.dataset.layouts import LAYOUTS, Layout, UnknownLayoutError, audit, flat2d

SLICES = ["BraTS-MET-00230-000_1057", "BraTS-MET-00232-000_1051"]


@pytest.fixture
def two_layouts(tmp_path, tests_data, demo_data):
    """``mixed/`` holding an AUDIT dataset folder (symlinked real files) and a 2D images/ + masks/ pair."""
    root = tmp_path / "mixed"
    root.mkdir()
    (root / "BraTS2024_SSA").symlink_to(tests_data / "brats_audit" / "BraTS2024_SSA", target_is_directory=True)
    src = demo_data / "brainmets_t2w_slices"
    for sub, ext in (("images", "jpg"), ("masks_binary_png", "png")):
        (root / sub).mkdir()
        for s in SLICES:
            shutil.copy(src / sub / f"{s}.{ext}", root / sub / f"{s}.{ext}")
    return root


def test_registry_order_decides_which_layout_wins(two_layouts):
    assert [layout.name for layout in LAYOUTS].index("audit") < [layout.name for layout in LAYOUTS].index("flat2d")
    default = detect_layout(two_layouts)
    assert default.layouts == ["audit"]
    assert set(default.project["datasets"]) == {"BraTS2024_SSA"}
    # both detectors really recognise the folder: with flat2d listed first, flat2d wins
    flipped = detect_layout(two_layouts, layouts=(flat2d.LAYOUT, audit.LAYOUT))
    assert flipped.layouts == ["flat2d"]
    assert set(flipped.project["datasets"]) == {"mixed"}
    assert flipped.project["datasets"]["mixed"]["ground_truth"] == "{root}/masks_binary_png/{case}.png"
    # a layout left out of the list is never tried
    with pytest.raises(UnknownLayoutError, match=r"looked for images/ \+ mask folders\)"):
        detect_layout(two_layouts / "BraTS2024_SSA" / "BraTS2024_SSA_images", layouts=(flat2d.LAYOUT,))


def test_a_new_layout_listed_first_wins(two_layouts):
    """A new layout is one module-level ``Layout``; listed first, it is tried before the built-in ones."""

    def detect_masks_only(data_dir, det):
        masks = data_dir / "masks_binary_png"
        if not masks.is_dir():
            return False
        det.project["datasets"]["masks_only"] = {"root": str(data_dir),
                                                 "ground_truth": "{root}/masks_binary_png/{case}.png"}
        det.layouts.append("masks_only")
        return True

    mine = Layout("masks_only", detect_masks_only, "masks_binary_png/")
    det = detect_layout(two_layouts, layouts=(mine, *LAYOUTS))
    assert det.layouts == ["masks_only"]
    assert set(det.project["datasets"]) == {"masks_only"}
    assert detect_layout(two_layouts, layouts=(*LAYOUTS, mine)).layouts == ["audit"]


def test_every_layout_module_is_registered_once():
    """A module of the package that defines ``LAYOUT`` and is missing from ``LAYOUTS`` would never be tried."""
    defined = []
    for info in pkgutil.iter_modules(layouts_pkg.__path__):
        module = importlib.import_module(f"{layouts_pkg.__name__}.{info.name}")
        if isinstance(getattr(module, "LAYOUT", None), Layout):
            defined.append(module.LAYOUT)
    assert sorted(x.name for x in defined) == sorted(x.name for x in LAYOUTS)
    assert len({x.name for x in LAYOUTS}) == len(LAYOUTS)
    assert [x.name for x in LAYOUTS] == ["nnunet", "audit", "brainmetshare", "flat2d", "case_folders"]


def test_unknown_layout_message_lists_every_registered_layout(tests_data):
    with pytest.raises(UnknownLayoutError) as err:
        detect_layout(tests_data / "glioma_5models")
    for layout in LAYOUTS:
        assert layout.looks_for in str(err.value)
