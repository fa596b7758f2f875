"""The results store: one DuckDB database per project run, one long-format schema."""

from segaudit.io.atomic import atomic_write_text
from segaudit.store.store import DB_NAME, SCHEMAS, ResultsStore, package_versions

__all__ = ["DB_NAME", "SCHEMAS", "ResultsStore", "atomic_write_text", "package_versions"]
