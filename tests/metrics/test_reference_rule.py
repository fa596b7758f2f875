"""One rule for optional independent references (issue 14, item 7): required on CI, skipped elsewhere.

``conftest.require_reference`` is the rule; these tests drive it with the real ``CI`` variable and a module
that cannot exist, and check that the metric test modules no longer skip as a whole.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from conftest import require_reference

MISSING = "segaudit_reference_that_does_not_exist"
# The test folders whose modules compare against optional references (metrics, and features vs pyradiomics).
REFERENCE_TEST_DIRS = (Path(__file__).parent, Path(__file__).parent.parent / "features")


def _test_modules() -> list[Path]:
    return sorted(p for d in REFERENCE_TEST_DIRS for p in d.glob("test_*.py"))


def test_missing_reference_fails_loudly_on_ci(monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="required on CI"):
        require_reference(MISSING)


def test_missing_reference_skips_elsewhere(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=MISSING):
        require_reference(MISSING)


def test_present_reference_is_returned_on_and_off_ci(monkeypatch):
    import scipy.ndimage

    for ci in ("true", ""):
        monkeypatch.setenv("CI", ci)
        assert require_reference("scipy.ndimage") is scipy.ndimage


def test_no_module_level_importorskip_in_metric_tests():
    """A module-level ``pytest.importorskip`` skips every test of its file, reference-free ones included."""
    offenders = []
    for path in _test_modules():
        tree = ast.parse(path.read_text())
        for node in tree.body:  # module level only: inside a test, a skip is that test's own business
            for call in ast.walk(node) if not isinstance(node, ast.FunctionDef | ast.ClassDef) else ():
                if isinstance(call, ast.Attribute) and call.attr == "importorskip":
                    offenders.append(f"{path.name}:{call.lineno}")
    assert offenders == []


def test_reference_tests_carry_the_marker():
    """Every metric test that calls require_reference (directly or through a fixture) is marked ``reference``."""
    unmarked = []
    for path in _test_modules():
        if path.name == Path(__file__).name:
            continue
        tree = ast.parse(path.read_text())
        helpers = {n.name for n in tree.body if isinstance(n, ast.FunctionDef) and not n.name.startswith("test_")
                   and "require_reference" in ast.unparse(n)}
        for node in tree.body:
            if not (isinstance(node, ast.FunctionDef) and node.name.startswith("test_")):
                continue
            names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} | {a.arg for a in node.args.args}
            uses = "require_reference" in names or bool(helpers & names)
            marked = any("mark.reference" in ast.unparse(d) for d in node.decorator_list)
            if uses and not marked:
                unmarked.append(f"{path.name}::{node.name}")
    assert unmarked == []
