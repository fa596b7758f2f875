"""The public API: every package says what it supports in ``__all__``, and one name means one thing.

A name exported by two packages must be the same object (a re-export), and a public function or class is
defined under one name in one package only, so ``from segaudit.X import name`` never depends on which X.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections import defaultdict

import pytest

import segaudit

# Names deliberately defined in two packages, with the reason. Empty today; add an entry only with a reason.
DOCUMENTED_DUPLICATES: dict[str, str] = {}


def _modules() -> list[str]:
    return ["segaudit", *(info.name for info in pkgutil.walk_packages(segaudit.__path__, "segaudit."))]


MODULES = _modules()
PACKAGES = [m for m in MODULES if hasattr(importlib.import_module(m), "__path__")]


def _package(module: str) -> str:
    """The top-level package a module belongs to (``segaudit.metrics.surface`` -> ``segaudit.metrics``)."""
    return ".".join(module.split(".")[:2])


@pytest.mark.parametrize("package", PACKAGES)
def test_every_package_lists_its_api(package):
    mod = importlib.import_module(package)
    assert isinstance(getattr(mod, "__all__", None), list | tuple), f"{package} has no __all__"
    names = list(mod.__all__)
    assert all(isinstance(n, str) for n in names)
    repeated = sorted({n for n in names if names.count(n) > 1})
    assert not repeated, f"{package}.__all__ repeats {repeated}"
    missing = [n for n in names if not hasattr(mod, n)]
    assert not missing, f"{package}.__all__ names what it does not have: {missing}"


def test_exported_names_mean_one_thing():
    owners: dict[str, list[tuple[str, object]]] = defaultdict(list)
    for package in PACKAGES:
        mod = importlib.import_module(package)
        for name in mod.__all__:
            owners[name].append((package, getattr(mod, name)))
    clashes = {name: [p for p, _ in found] for name, found in owners.items()
               if len({id(obj) for _, obj in found}) > 1 and name not in DOCUMENTED_DUPLICATES}
    assert not clashes, f"one name, different objects: {clashes}"


def test_public_definitions_are_unique_across_packages():
    where: dict[str, set[str]] = defaultdict(set)
    for module in MODULES:
        for name, obj in vars(importlib.import_module(module)).items():
            if name.startswith("_") or not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue
            if obj.__module__ == module and obj.__name__ == name:  # defined here, not imported
                where[name].add(_package(module))
    clashes = {n: sorted(p) for n, p in where.items() if len(p) > 1 and n not in DOCUMENTED_DUPLICATES}
    assert not clashes, f"defined in more than one package: {clashes}"


def test_metrics_exports_the_functional_metrics():
    """MONAI-style: the array-level metric functions sit beside evaluate_pair, and agree with it."""
    import numpy as np

    from segaudit.metrics import counts, dice, evaluate_pair, hausdorff, iou, nsd, roc_auc, surface_distances

    gt = np.zeros((12, 12, 6), dtype=np.uint8)
    gt[2:8, 3:9, 1:4] = 1
    pred = np.zeros_like(gt)
    pred[3:9, 3:10, 1:5] = 1
    rows = {m: v for r, m, v in evaluate_pair(gt, pred, spacing=(1.0, 1.0, 2.0), labels={"L": 1}).rows if r == "L"}
    c = counts(gt == 1, pred == 1)
    # Dice and IoU by their definitions, counted independently with numpy.
    inter = np.count_nonzero((gt == 1) & (pred == 1))
    assert dice(c) == pytest.approx(2 * inter / (np.count_nonzero(gt) + np.count_nonzero(pred)))
    assert iou(c) == pytest.approx(inter / np.count_nonzero((gt == 1) | (pred == 1)))
    assert dice(c) == pytest.approx(rows["dice"])
    sd = surface_distances(gt == 1, pred == 1, (1.0, 1.0, 2.0))
    assert hausdorff(sd) == pytest.approx(rows["hd"])
    assert hausdorff(sd, 95) == pytest.approx(rows["hd95"])
    assert nsd(sd, 1.0) == pytest.approx(rows["nsd@1mm"])
    assert roc_auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == pytest.approx(0.75)


def test_readme_examples_import_from_package_level():
    """The README's Python examples import only names a package's ``__all__`` lists, from the package itself."""
    import ast
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    assert blocks
    seen = 0
    for block in blocks:
        for node in ast.walk(ast.parse(block)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("segaudit"):
                assert node.module.count(".") == 1, f"README imports from a submodule: {node.module}"
                exported = importlib.import_module(node.module).__all__
                for alias in node.names:
                    assert alias.name in exported, f"README imports {node.module}.{alias.name}, not in __all__"
                    seen += 1
    assert seen > 10
