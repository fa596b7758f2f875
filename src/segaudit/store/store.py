"""The results store: one directory per project run holding one DuckDB database, ``segaudit.duckdb``.

Tables (created on first use, columns fixed here so every stage writes the same schema):

``runs``      one row per step run, with provenance (package versions, config hash, arguments, times)
``cases``     dataset, case, subject, timepoint, metadata (JSON of the joined metadata row)
``files``     every expected file with what was learnt reading it (shape, spacing, orientation, dtype)
``qc``        QC findings: dataset, case, role, key, path, check, severity, message
``metrics``   long results: dataset, case, model, region, metric, value, unit (filled by ``evaluate``; unit is
              ``mm``/``mm3`` on physical grids, ``px``/``px2`` on photos without a declared spacing, ``''`` for
              ratios; see :mod:`segaudit.metrics.units`; NULL in stores and imports that did not record it)
``lesions``   per-lesion rows (filled by ``evaluate``)
``features``  long features: dataset, case, model ('' for images and ground truth), source, group, feature, value
``errors``    per-case failures and warnings of a step: step, dataset, case, model, path, message, severity

Writes are atomic: :meth:`ResultsStore.replace` deletes the step's own rows (for the datasets it touched) and
inserts the new ones in one transaction, so a crash leaves the previous rows intact, and a re-run of one step
never touches another step's rows. Exported files are written to a temporary name and renamed.
"""

from __future__ import annotations

import json
import platform
import sys
import uuid
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import duckdb
import pandas as pd

from segaudit.errors import SegauditError
from segaudit.io.atomic import atomic_write
from segaudit.store.schema import DB_NAME, SCHEMAS, UNIQUE_KEYS  # defined in the schema; importable here too

PROVENANCE_PACKAGES = ("segaudit", "numpy", "scipy", "nibabel", "pillow", "pandas", "duckdb")


def package_versions(names=PROVENANCE_PACKAGES) -> dict[str, str]:
    """Installed versions of the packages that shape results ('' when not installed)."""
    out = {}
    for n in names:
        try:
            out[n] = version(n)
        except PackageNotFoundError:
            out[n] = ""
    return out


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class ResultsStore:
    """A run directory with its DuckDB database. Use as a context manager or call :meth:`close`.

    Parameters
    ----------
    directory:
        Run directory; created if needed.
    read_only:
        Open an existing store without writing (raises SegauditError when there is none).
    """

    def __init__(self, directory: str | Path, read_only: bool = False):
        self.directory = Path(directory)
        self.path = self.directory / DB_NAME
        if read_only:
            if not self.path.is_file():
                raise SegauditError(f"{self.directory}: no results store here (expected {DB_NAME})")
        else:
            self.directory.mkdir(parents=True, exist_ok=True)
        try:
            self.con = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.Error as exc:
            raise SegauditError(f"{self.path}: cannot open results store ({exc})") from exc
        if not read_only:
            for table in SCHEMAS:
                self._ensure(table)

    # ------------------------------------------------------------------ basics
    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.con.close()

    def _ensure(self, table: str) -> None:
        cols = ", ".join(f"{_quote(c)} {t}" for c, t in SCHEMAS[table].items())
        self.con.execute(f"CREATE TABLE IF NOT EXISTS {_quote(table)} ({cols})")
        # Stores written by an older segaudit gain the columns added since (filled with NULL).
        have = {r[0] for r in self.con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [table]).fetchall()}
        for col, typ in SCHEMAS[table].items():
            if col not in have:
                self.con.execute(f"ALTER TABLE {_quote(table)} ADD COLUMN {_quote(col)} {typ}")

    def tables(self) -> list[str]:
        """Names of the tables in the store."""
        return [r[0] for r in self.con.execute("SELECT table_name FROM information_schema.tables "
                                               "WHERE table_schema = 'main' ORDER BY table_name").fetchall()]

    def read(self, table: str) -> pd.DataFrame:
        """A whole table as a DataFrame."""
        if table not in self.tables():
            raise SegauditError(f"{self.path}: no table {table!r}")
        return self.con.execute(f"SELECT * FROM {_quote(table)}").df()

    def units(self) -> pd.DataFrame:
        """Distinct (dataset, metric, unit) of the ``metrics`` table (unit '' for dimensionless values).

        Confusion-matrix rows are summarised as one ``confusion`` metric; rows without a recorded unit (older
        stores, AUDIT imports) are left out.
        """
        return self.query(
            "SELECT DISTINCT dataset, CASE WHEN region = 'confusion' THEN 'confusion' ELSE metric END AS metric, "
            "unit FROM metrics WHERE unit IS NOT NULL ORDER BY dataset, metric")

    def query(self, sql: str, params: list | None = None) -> pd.DataFrame:
        """Run SQL against the store and return a DataFrame."""
        return self.con.execute(sql, params or []).df()

    # ------------------------------------------------------------------ writes
    def replace(self, table: str, rows: pd.DataFrame, where: dict[str, list] | None = None) -> int:
        """Replace rows atomically: delete those matching ``where``, insert ``rows``, in one transaction.

        Parameters
        ----------
        table:
            One of :data:`SCHEMAS`.
        rows:
            New rows; missing columns are filled with NULL, extra columns are an error.
        where:
            Column -> values identifying the rows this write owns (e.g. ``{"dataset": ["BraTS2020"]}``).
            ``None`` deletes nothing (append).

        Returns
        -------
        int
            Number of rows inserted.
        """
        self.con.execute("BEGIN TRANSACTION")
        try:
            if where:
                clauses, params = [], []
                for col, values in where.items():
                    values = list(values)
                    if not values:
                        clauses.append("FALSE")
                        continue
                    clauses.append(f"{_quote(col)} IN ({', '.join('?' * len(values))})")
                    params += values
                self.con.execute(f"DELETE FROM {_quote(table)} WHERE {' AND '.join(clauses)}", params)
            n = self._insert(table, rows)
            self._check_unique(table)
            self.con.execute("COMMIT")
        except Exception:
            self.con.execute("ROLLBACK")
            raise
        return n

    def duplicates(self, table: str) -> pd.DataFrame:
        """Keys of ``table`` (see :data:`UNIQUE_KEYS`) held by more than one row, with their count ``n``."""
        key = ", ".join(_quote(c) for c in UNIQUE_KEYS[table])
        return self.con.execute(f"SELECT {key}, count(*) AS n FROM {_quote(table)} GROUP BY {key} "
                                "HAVING count(*) > 1 ORDER BY n DESC").df()

    def _check_unique(self, table: str) -> None:
        if table not in UNIQUE_KEYS:
            return
        dup = self.duplicates(table)
        if len(dup):
            first = dup.iloc[0].drop("n").to_dict()
            raise SegauditError(f"{self.path}: {len(dup)} key(s) of table {table!r} would be stored twice, "
                                f"e.g. {first}; every value must be stored once")

    def _insert(self, table: str, rows: pd.DataFrame) -> int:
        schema = SCHEMAS[table]
        extra = set(rows.columns) - set(schema)
        if extra:
            raise SegauditError(f"table {table!r} has no column(s) {sorted(extra)}")
        frame = rows.reindex(columns=list(schema))
        if table in UNIQUE_KEYS and len(frame):
            dup = frame.duplicated(subset=list(UNIQUE_KEYS[table]), keep=False)
            if dup.any():
                first = frame.loc[dup, list(UNIQUE_KEYS[table])].iloc[0].to_dict()
                raise SegauditError(f"table {table!r}: {int(dup.sum())} incoming rows share their key, e.g. "
                                    f"{first}; every value must be stored once")
        if len(frame):
            self.con.register("_incoming", frame)
            cols = ", ".join(_quote(c) for c in schema)
            casts = ", ".join(f"CAST({_quote(c)} AS {t})" for c, t in schema.items())
            self.con.execute(f"INSERT INTO {_quote(table)} ({cols}) SELECT {casts} FROM _incoming")
            self.con.unregister("_incoming")
        return len(frame)

    def replace_keyed(self, frames: dict[str, pd.DataFrame], keys: pd.DataFrame,
                      step: str | None = None) -> None:
        """Replace the rows of several tables for a set of keys, in one transaction.

        ``keys`` holds key tuples (its columns, e.g. dataset, case, model); every row of each table in
        ``frames`` whose key columns equal one of the tuples is deleted, then the new rows are inserted. A crash
        in between leaves the previous rows untouched. With ``step``, rows that another step wrote are kept
        (``errors``: by its ``step`` column; other tables: rows whose run is another step's), so steps sharing
        a table (``evaluate`` and ``agree`` in ``metrics``) never delete each other's rows.
        """
        cols = list(keys.columns)
        self.con.execute("BEGIN TRANSACTION")
        try:
            self.con.register("_keys", keys.astype(str))
            for table, frame in frames.items():
                cond = " AND ".join(f"t.{_quote(c)} = k.{_quote(c)}" for c in cols)
                params: list = []
                if step and table == "errors":
                    cond += " AND t.step = ?"
                    params.append(step)
                elif step:
                    cond += (" AND (t.run_id IS NULL OR t.run_id NOT IN "
                             "(SELECT run_id FROM runs WHERE step <> ? AND run_id IS NOT NULL))")
                    params.append(step)
                self.con.execute(f"DELETE FROM {_quote(table)} t USING _keys k WHERE {cond}", params)
                self._insert(table, frame)
                if table in UNIQUE_KEYS and len(frame):
                    outside = frame.reindex(columns=cols).astype(str).merge(
                        keys.astype(str).drop_duplicates(), how="left", indicator=True)
                    if (outside["_merge"] == "left_only").any():
                        raise SegauditError(f"table {table!r}: rows outside the keys being replaced")
            self.con.unregister("_keys")
            self.con.execute("COMMIT")
        except Exception:
            self.con.execute("ROLLBACK")
            raise

    def completed(self, table: str, step: str, config_hash: str, keys: list[str]) -> set[tuple]:
        """Distinct ``keys`` tuples of ``table`` rows written by runs of ``step`` with this config hash."""
        cols = ", ".join(f"t.{_quote(k)}" for k in keys)
        rows = self.con.execute(f"SELECT DISTINCT {cols} FROM {_quote(table)} t JOIN runs r USING (run_id) "
                                "WHERE r.step = ? AND r.config_hash = ?", [step, config_hash]).fetchall()
        return {tuple(r) for r in rows}

    def start_run(self, step: str, config_hash: str = "", config: dict | None = None,
                  argv: list[str] | None = None) -> str:
        """Record the start of a step; returns its run id."""
        run_id = uuid.uuid4().hex[:12]
        row = pd.DataFrame([{
            "run_id": run_id, "step": step, "started_at": datetime.now(timezone.utc), "status": "running",
            "segaudit_version": package_versions(("segaudit",))["segaudit"],
            "python_version": sys.version.split()[0], "platform": platform.platform(),
            "packages": json.dumps(package_versions()), "config_hash": config_hash,
            "config": json.dumps(config or {}, default=str), "argv": json.dumps(argv or sys.argv),
        }])
        self.replace("runs", row)
        return run_id

    def finish_run(self, run_id: str, status: str = "ok", summary: dict | None = None) -> None:
        """Mark a run finished with a status and a JSON summary."""
        self.con.execute("UPDATE runs SET finished_at = ?, status = ?, summary = ? WHERE run_id = ?",
                         [datetime.now(timezone.utc), status, json.dumps(summary or {}, default=str), run_id])

    # ------------------------------------------------------------------ export
    def export(self, out_dir: str | Path, fmt: str = "csv") -> list[Path]:
        """Write every table to ``out_dir/<table>.<csv|parquet>``; each file appears whole or not at all."""
        if fmt not in ("csv", "parquet"):
            raise SegauditError(f"unknown export format {fmt!r} (csv or parquet)")
        opts = "(FORMAT csv, HEADER true)" if fmt == "csv" else "(FORMAT parquet)"

        def copy(table: str, tmp: str) -> None:
            sql_path = tmp.replace("'", "''")
            self.con.execute(f"COPY {_quote(table)} TO '{sql_path}' {opts}")

        written = []
        for table in self.tables():
            written.append(atomic_write(Path(out_dir) / f"{table}.{fmt}", lambda tmp, t=table: copy(t, tmp)))
        return written
