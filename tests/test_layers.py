"""Import layering of segaudit: every arrow points down the layer order stated in the README.

Static imports only (``import x``, ``from x import y``, relative imports, and imports inside functions, which
are arrows as well: they only run later). Each module of ``src/segaudit`` is mapped to its layer; an import of
a module of a higher layer, or of a sibling package of the same layer, is a violation.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

# Layer order, bottom first (the README's "Layers" section). Packages on one line are siblings: independent of
# each other, so neither imports the other. The README lists the stages in data-flow order (the pipeline writes
# the store, analysis reads it); in import order the store sits below the pipeline, which imports it to write.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("segaudit", "segaudit.errors", "segaudit.base", "segaudit.store.schema"),
    ("segaudit.io",),
    ("segaudit.dataset",),
    ("segaudit.metrics", "segaudit.features", "segaudit.qc", "segaudit.preprocess", "segaudit.models"),
    # instruct sits above models (the lead's decision, issue 18): segaudit.instruct.ask prompts LiteMedSAM with
    # prototypes, so instruct may import models, never the reverse; it still imports none of its other siblings.
    ("segaudit.instruct",),
    ("segaudit.store",),
    ("segaudit.pipeline",),
    ("segaudit.analysis",),
    ("segaudit.report", "segaudit.app"),
    ("segaudit.demo",),
    ("segaudit.cli",),
    ("segaudit.__main__",),
)

# Known arrows against the order, each with the issue that removes it. The lead deletes an entry once the fix is
# merged; the test fails on an entry that no longer occurs, so the list cannot go stale.
ALLOWED: dict[tuple[str, str], str] = {
}


@dataclass(frozen=True)
class Arrow:
    """One static import of a segaudit module by another, with where it is written."""

    source: str
    target: str
    path: str
    line: int


def module_names(src: Path) -> dict[str, Path]:
    """Dotted name of every module under ``src`` (a package is named by its ``__init__``)."""
    out = {}
    for path in sorted(src.rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def imports_of(name: str, path: Path, known: set[str]) -> list[Arrow]:
    """Every segaudit module that ``name`` (file ``path``) imports, at any depth of the syntax tree."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    arrows = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package[: len(package) - (node.level - 1)]
                base = ".".join(parent + ([node.module] if node.module else []))
            # ``from segaudit.store import schema`` imports the module segaudit.store.schema.
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for target in dict.fromkeys(targets):
            if target == "segaudit" or target.startswith("segaudit."):
                arrows.append(Arrow(name, target, str(path), node.lineno))
    return arrows


def layer_of(module: str) -> tuple[int, str]:
    """(layer index, owning group) of a module: the longest group name that is the module or a parent of it."""
    best: tuple[int, str] | None = None
    for index, groups in enumerate(LAYERS):
        for group in groups:
            if (module == group or module.startswith(group + ".")) and (best is None or len(group) > len(best[1])):
                best = (index, group)
    if best is None:
        raise KeyError(f"{module} is in no layer: add its package to LAYERS and to the README's layer order")
    return best


def violations(src: Path, allowed: dict[tuple[str, str], str] | None = None) -> tuple[list[str], set]:
    """Arrows against the layer order, as readable lines, and the allowed arrows that were seen."""
    allowed = allowed or {}
    names = module_names(src)
    out, seen = [], set()
    for name, path in names.items():
        src_layer, src_group = layer_of(name)
        for arrow in imports_of(name, path, set(names)):
            dst_layer, dst_group = layer_of(arrow.target)
            upward = dst_layer > src_layer
            sideways = dst_layer == src_layer and dst_group != src_group and src_layer != 0
            if not (upward or sideways):
                continue
            if (arrow.source, arrow.target) in allowed:
                seen.add((arrow.source, arrow.target))
                continue
            kind = "up" if upward else "sideways"
            rel = Path(arrow.path).relative_to(src)
            out.append(f"{rel}:{arrow.line}: {arrow.source} imports {arrow.target} ({kind}: layer "
                       f"{src_layer} {src_group} -> layer {dst_layer} {dst_group})")
    return out, seen


def test_imports_follow_the_layer_order():
    bad, seen = violations(SRC, ALLOWED)
    assert not bad, "imports against the layer order (README, Layers):\n" + "\n".join(bad)
    stale = set(ALLOWED) - seen
    assert not stale, f"allow-listed imports that no longer occur (remove them from ALLOWED): {sorted(stale)}"


def test_every_module_has_a_layer():
    for name in module_names(SRC):
        layer_of(name)  # raises KeyError naming the module


def test_checker_finds_planted_arrows(tmp_path):
    """The checker itself: an upward import inside a function, a relative one and a sideways one are found."""
    pkg = tmp_path / "segaudit"
    for sub in ("metrics", "features", "report", "io"):
        (pkg / sub).mkdir(parents=True)
        (pkg / sub / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "metrics" / "a.py").write_text("def f():\n    from segaudit.report import html\n")
    (pkg / "report" / "html.py").write_text("")
    (pkg / "features" / "b.py").write_text("from ..metrics import a\n")
    (pkg / "io" / "c.py").write_text("import numpy\nfrom segaudit.errors import SegauditError\n")
    (pkg / "errors.py").write_text("")
    bad, _ = violations(tmp_path)
    assert len(bad) == 2, bad
    assert any("segaudit.metrics.a imports segaudit.report.html (up" in b for b in bad)
    assert any("segaudit.features.b imports segaudit.metrics.a (sideways" in b for b in bad)


@pytest.mark.parametrize("package", ["segaudit.metrics", "segaudit.features"])
def test_core_packages_load_nothing_above_them(package):
    """At run time too, the functional core loads only lower layers, and no database driver.

    A parent package loaded only to reach a bottom-layer module (``segaudit.store`` for ``segaudit.store.schema``,
    whose ``__init__`` defers the DuckDB store) is not counted; whatever else it loaded would be.
    """
    code = (f"import sys, {package}; "
            "print('\\n'.join(m for m in sys.modules if m in ('duckdb', 'segaudit') or m.startswith('segaudit.')))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            env={"PYTHONPATH": str(SRC), "PATH": ""}).stdout.split()
    assert "duckdb" not in loaded
    own_layer, own_group = layer_of(package)

    def above(module: str) -> bool:
        layer, group = layer_of(module)
        return layer > own_layer or (layer == own_layer and group != own_group)

    reached = {m for m in loaded if not above(m)}
    parents_only = {m for m in loaded if any(r.startswith(m + ".") for r in reached)}
    bad = sorted(m for m in loaded if above(m) and m not in parents_only)
    assert not bad, f"import {package} loads {bad}"
