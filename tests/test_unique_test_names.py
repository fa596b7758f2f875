"""Test modules have unique file names and import shared helpers from conftest, never as the package ``tests``."""

from collections import Counter
from pathlib import Path


def test_test_module_names_are_unique():
    names = Counter(p.name for p in Path(__file__).parent.rglob("test_*.py"))
    assert [n for n, k in names.items() if k > 1] == []


def test_no_test_imports_the_tests_folder_as_a_package():
    """``pytest`` run as a console script does not put the repo root on ``sys.path``: ``from tests.x import`` then
    fails to collect on CI although it works under ``python -m pytest``. Shared helpers live in ``conftest.py``
    (``tests/`` is on the path through ``pythonpath`` in pyproject.toml)."""
    import re

    pattern = re.compile(r"^\s*(from|import)\s+tests[.\s]", re.M)
    offenders = [str(p.relative_to(Path(__file__).parent)) for p in Path(__file__).parent.rglob("*.py")
                 if pattern.search(p.read_text(encoding="utf-8"))]
    assert offenders == []
