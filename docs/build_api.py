"""Build the API reference from the docstrings (numpydoc) with pdoc: ``python docs/build_api.py [OUT]``.

One page per public package and module of ``segaudit``, written to ``OUT`` (default ``build/api``). Warnings
(an import that fails, a docstring pdoc cannot parse) are errors, so a broken reference fails CI's test of it.
"""

from __future__ import annotations

import pkgutil
import sys
import warnings
from pathlib import Path


def public_packages() -> list[str]:
    """Every subpackage of segaudit whose name does not start with an underscore, sorted."""
    import segaudit

    return sorted(f"segaudit.{m.name}" for m in pkgutil.iter_modules(segaudit.__path__)
                  if m.ispkg and not m.name.startswith("_"))


def build(out: Path) -> list[Path]:
    """Write the reference under ``out``; returns the HTML files written."""
    import importlib

    import pdoc
    import pdoc.render

    for name in public_packages():  # resolve lazily imported names (PEP 562) so pdoc sees them
        package = importlib.import_module(name)
        for attr in getattr(package, "__all__", ()):
            getattr(package, attr)
    pdoc.render.configure(docformat="numpy", show_source=False, search=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pdoc.pdoc("segaudit", *public_packages(), output_directory=out)
    return sorted(out.rglob("*.html"))


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("build/api")
    pages = build(target)
    print(f"API reference: {len(pages)} page(s) in {target}/ (open {target / 'index.html'})")
