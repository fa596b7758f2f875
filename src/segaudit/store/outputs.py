"""Guards for files the export commands write: never over a file segaudit did not write as that output.

``segaudit export --out DIR`` writes ``DIR/<table>.csv`` (``cases.csv``, ``metrics.csv`` ...), AUDIT tables or
the wide per-case table. ``DIR`` may be a folder that already holds other people's files (a dataset's own
``cases.csv``): such a file is never replaced. An earlier export of the same kind (its header starts with the
columns this export writes) is replaced only with ``force``. The export's header is the mark, as the report's
generator tag is for reports, so nothing extra (a manifest) is left in the folder.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from segaudit.errors import SegauditError

__all__ = ["check_output_file", "leading_columns"]


def leading_columns(path: str | Path, n: int) -> list[str] | None:
    """The first ``n`` column names of an existing CSV or Parquet file, or None when it has no readable header.

    CSV: the first row as parsed by :mod:`csv` (at most 64 KiB read); Parquet: the schema's names (DuckDB).
    """
    path = Path(path)
    try:
        if path.suffix == ".parquet":
            import duckdb

            con = duckdb.connect()
            try:
                names = [d[0] for d in con.execute("SELECT * FROM read_parquet(?) LIMIT 0", [str(path)]).description]
            finally:
                con.close()
            return names[:n]
        with open(path, newline="", encoding="utf-8") as f:
            row = next(csv.reader([f.readline(65536)]), None)
        return row[:n] if row else None
    except Exception:  # noqa: BLE001 - any unreadable header means "not ours": the caller refuses
        return None


def check_output_file(path: str | Path, columns: Sequence[str], force: bool, what: str) -> None:
    """Refuse to write ``path`` over a file that is not an earlier output of the same kind.

    Parameters
    ----------
    path:
        The file about to be written.
    columns:
        The leading columns of what is about to be written (a table's columns, or a fixed prefix of them).
    force:
        Replace an earlier output of the same kind.
    what:
        The command, for the message (``"export"``).

    Raises
    ------
    SegauditError
        ``path`` is a folder; exists and its header does not start with ``columns`` (not ours: never replaced);
        or is an earlier output and ``force`` is not set.
    """
    path = Path(path)
    if path.is_dir():
        raise SegauditError(f"{path}: is a folder; segaudit {what} writes a file of that name here")
    if not path.exists():
        return
    if leading_columns(path, len(columns)) != list(columns):
        raise SegauditError(f"{path}: exists and is not a segaudit {what} output; refusing to overwrite it "
                            "(choose another --out)")
    if not force:
        raise SegauditError(f"{path}: an earlier segaudit {what} output is there (use --force to replace it)")
