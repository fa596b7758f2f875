"""The results store: one DuckDB database per project run, one long-format schema.

The schema (:mod:`segaudit.store.schema`) loads eagerly and imports nothing; :class:`ResultsStore` and the
DuckDB driver load on first use, so a lower layer that needs only the schema's names (``metrics`` writes the
``confusion`` region) does not load the database.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from segaudit.store.schema import CONFUSION_REGION, DB_NAME, SCHEMAS, TABLES, UNIQUE_KEYS

if TYPE_CHECKING:
    from segaudit.io.atomic import atomic_write_text
    from segaudit.store.store import ResultsStore, package_versions

__all__ = ["CONFUSION_REGION", "DB_NAME", "SCHEMAS", "TABLES", "UNIQUE_KEYS", "ResultsStore", "atomic_write_text",
           "package_versions"]


def __getattr__(name: str):
    # PEP 562: the DuckDB-backed names are imported on first access.
    if name in ("ResultsStore", "package_versions"):
        from segaudit.store import store

        value = getattr(store, name)
    elif name == "atomic_write_text":
        from segaudit.io.atomic import atomic_write_text as value
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # resolved once; later lookups (and documentation tools) find it in the module
    return value
