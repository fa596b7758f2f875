"""The demo is a library function that returns results; the command line prints them (no cycle)."""

from __future__ import annotations

import ast
import inspect

import segaudit.demo as demo


def imported_modules(module) -> set[str]:
    """Every module a module's source imports, at any depth (function-level imports included)."""
    tree = ast.parse(inspect.getsource(module))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
    return out


def test_demo_imports_nothing_of_the_cli():
    mods = imported_modules(demo)
    assert not {m for m in mods if m == "segaudit.cli" or m.startswith("segaudit.cli.")}, mods
    assert "rich" not in {m.split(".")[0] for m in mods}


def test_run_demo_takes_no_console_and_returns_its_results():
    sig = inspect.signature(demo.run_demo)
    assert "console" not in sig.parameters
    assert sig.return_annotation in (demo.DemoResult, "DemoResult")
    fields = set(demo.DemoResult.__dataclass_fields__)
    assert {"scan", "evaluation", "features", "report"} <= fields
