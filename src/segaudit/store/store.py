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
``inputs``    the fingerprint of every input file of each stored job (step, dataset, case, model, role, key, path,
              exists, size_bytes, mtime_ns, digest): a re-run re-does a job whose files changed since
              (:mod:`segaudit.pipeline.resume`)
``prompts``   one row per prompt a promptable model was given (``segaudit prompt``): dataset, case, model
              (``litemedsam/<kind>``), region, kind, setting, component, the prompt as JSON, seed, preprocessing,
              predicted IoU, Dice against its component, encoder and decoder seconds, the mask file
``attributions`` modality attribution (``segaudit attribute``): Dice per kept subset of sequences, exact
              Shapley values and drop-one losses per sequence, per case; ``source`` live (removal) or declared
              (the project file's subset predictions)
``meta``      key/value facts about the store itself; ``schema_version`` (:data:`SCHEMA_VERSION`)

The store's schema has a version (:data:`SCHEMA_VERSION`, in ``meta``): written when the store is created,
checked on every open. A store from a newer segaudit is refused with a message saying so; one from an older
segaudit is upgraded in place (missing tables and columns added, NULL-filled) when opened for writing, and
readable as it is (the typed readers fill the missing columns) when opened read-only.

Writes are atomic: :meth:`ResultsStore.replace` deletes the step's own rows (for the datasets it touched) and
inserts the new ones in one transaction, so a crash leaves the previous rows intact, and a re-run of one step
never touches another step's rows. Exported files are written to a temporary name and renamed.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import sys
import uuid
import warnings
from datetime import datetime, timezone
from functools import partial
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import duckdb
import pandas as pd

from segaudit.errors import SegauditError
from segaudit.io.atomic import atomic_write, pid_alive

# Defined in the schema; importable from here too.
from segaudit.store.schema import CONFUSION_REGION, DB_NAME, SCHEMA_VERSION, SCHEMAS, UNIQUE_KEYS

#: Columns of the typed readers (:meth:`ResultsStore.metrics` ...): the tables without their ``run_id``.
METRICS_COLUMNS = ("dataset", "case", "model", "region", "metric", "value", "unit")
FEATURES_COLUMNS = ("dataset", "case", "model", "source", "group", "feature", "value")
LESIONS_COLUMNS = ("dataset", "case", "model", "region", "source", "lesion_id", "volume", "centroid", "bbox",
                   "matched", "dice", "hd95", "counted")
ERRORS_COLUMNS = ("step", "dataset", "case", "model", "path", "message", "severity")
INPUTS_COLUMNS = ("step", "dataset", "case", "model", "role", "key", "path", "exists", "size_bytes", "mtime_ns",
                  "digest")
PROMPTS_COLUMNS = tuple(c for c in SCHEMAS["prompts"] if c != "run_id")
ATTRIBUTIONS_COLUMNS = tuple(c for c in SCHEMAS["attributions"] if c != "run_id")
CASES_COLUMNS = ("dataset", "case", "subject", "timepoint", "metadata")
FILES_COLUMNS = tuple(c for c in SCHEMAS["files"] if c != "run_id")
QC_COLUMNS = ("dataset", "case", "role", "key", "check", "severity", "message", "path")
RUNS_COLUMNS = tuple(SCHEMAS["runs"])
_PANDAS_DTYPES = {"DOUBLE": "float64", "INTEGER": "Int32", "BIGINT": "Int64", "BOOLEAN": "boolean"}

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


class StoreVersionWarning(UserWarning):
    """A results store written by an older segaudit was opened read-only (read as it is)."""


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
        self.read_only = read_only
        if read_only:
            if not self.path.is_file():
                raise SegauditError(f"{self.directory}: no results store here (expected {DB_NAME})")
        else:
            self.directory.mkdir(parents=True, exist_ok=True)
        try:
            # No DuckDB progress bar: a long query (an export) would draw one on the terminal, over our output.
            self.con = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.Error as exc:
            raise SegauditError(f"{self.path}: cannot open results store ({exc})") from exc
        self.con.execute("SET enable_progress_bar = false")
        try:
            #: The schema version the store was opened with (an older store opened for writing is upgraded).
            self.schema_version = self._check_version()
            #: Runs found ``running`` whose process is gone, marked ``interrupted`` by this open.
            self.orphaned_runs: list[str] = []
            if not read_only:
                for table in SCHEMAS:
                    self._ensure(table)
                if self.schema_version < 4:
                    # Before version 4 every attribution was the live one (segaudit attribute's removal).
                    self.con.execute("UPDATE attributions SET source = 'live' WHERE source IS NULL")
                self._set_meta("schema_version", str(SCHEMA_VERSION))
                self.schema_version = SCHEMA_VERSION
                self.orphaned_runs = self._close_orphaned_runs()
        except BaseException:
            self.con.close()
            raise

    # ------------------------------------------------------------------ version and orphaned runs
    def _stored_version(self) -> int | None:
        """The ``schema_version`` in ``meta``; 1 for a store without one (written before versions); None if empty."""
        tables = set(self.tables())
        if "meta" in tables:
            row = self.con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if row is not None:
                try:
                    return int(row[0])
                except (TypeError, ValueError):
                    raise SegauditError(f"{self.path}: unreadable schema version {row[0]!r} in table meta") \
                        from None
        return 1 if tables else None

    def _check_version(self) -> int:
        """Refuse a store written by a newer segaudit; say what happens to an older one."""
        found = self._stored_version()
        if found is None:
            return SCHEMA_VERSION
        if found > SCHEMA_VERSION:
            raise SegauditError(
                f"{self.path}: results store schema version {found} is newer than this segaudit's "
                f"({SCHEMA_VERSION}); it was written by a newer segaudit: upgrade segaudit to read it "
                "(nothing was changed)")
        if found < SCHEMA_VERSION and self.read_only:
            warnings.warn(
                f"{self.path}: results store schema version {found} is older than this segaudit's "
                f"({SCHEMA_VERSION}); read as it is, with the columns added since left empty (any writing "
                "command, e.g. segaudit scan, upgrades it in place)", StoreVersionWarning, stacklevel=3)
        return found

    def _rollback(self) -> None:
        """Roll back the open transaction; a connection already closed or interrupted has nothing to undo."""
        try:
            self.con.execute("ROLLBACK")
        except Exception:  # the error being handled is the one the caller re-raises
            pass

    def _set_meta(self, key: str, value: str) -> None:
        self.con.execute("BEGIN TRANSACTION")
        try:
            self.con.execute("DELETE FROM meta WHERE key = ?", [key])
            self.con.execute("INSERT INTO meta (key, value) VALUES (?, ?)", [key, value])
            self.con.execute("COMMIT")
        except BaseException:  # Ctrl-C too: an open transaction would swallow the run's final status
            self._rollback()
            raise

    def _close_orphaned_runs(self) -> list[str]:
        """Mark ``interrupted`` every run left ``running`` by a process that is gone; returns their ids.

        Opening for writing takes DuckDB's exclusive lock on the database file (the lock DuckDB names with its
        holder's PID when it refuses a second writer), and the OS drops that lock when its process dies. So a
        run still ``running`` that another process of this host started cannot still be going: that process is
        dead (or has closed the store, which a live run never does). Runs started by this process, and runs of
        another host (whose processes cannot be checked), are left as they are.
        """
        host = socket.gethostname()
        rows = self.con.execute("SELECT run_id, pid, host FROM runs WHERE status = 'running'").fetchall()
        orphaned = []
        for run_id, pid, run_host in rows:
            if run_host not in (None, host) or pid == os.getpid():
                continue
            who = f"process {pid}" if pid is not None else "the process (an older segaudit, PID not recorded)"
            alive = pid is not None and pid_alive(int(pid))
            why = (f"{who} {'no longer holds the store' if alive else 'is gone'}: the run ended without "
                   "finishing (killed or crashed); marked interrupted when the store was next opened")
            self.con.execute("UPDATE runs SET status = 'interrupted', summary = ? WHERE run_id = ?",
                             [json.dumps({"interrupted": why}), run_id])
            orphaned.append(run_id)
        return orphaned

    # ------------------------------------------------------------------ basics
    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close the DuckDB connection."""
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

    # ------------------------------------------------------------------ typed readers
    def _columns(self, table: str) -> set[str]:
        """The column names ``table`` has in this store (an older store may lack some)."""
        return {r[0] for r in self.con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [table]).fetchall()}

    def _typed(self, table: str, columns: tuple[str, ...], order: tuple[str, ...], datasets: list[str] | None,
               step: str | None = None) -> pd.DataFrame:
        """Read ``columns`` of ``table``, filtered and ordered.

        NULL where an older store lacks a column; ordered by ``order`` (the stored order when empty).
        """
        if table not in self.tables():
            return pd.DataFrame({c: pd.Series(dtype=_PANDAS_DTYPES.get(SCHEMAS[table][c], "object"))
                                 for c in columns})
        have = self._columns(table)
        select = ", ".join(f"t.{_quote(c)}" if c in have else f"CAST(NULL AS {SCHEMAS[table][c]}) AS {_quote(c)}"
                           for c in columns)
        clauses, params = [], []
        if datasets is not None:
            clauses.append(f"t.dataset IN ({', '.join('?' * len(datasets)) or 'NULL'})")
            params += list(datasets)
        if step is not None:
            if "step" in SCHEMAS[table]:
                clauses.append("t.step = ?")
            else:
                clauses.append("t.run_id IN (SELECT run_id FROM runs WHERE step = ?)")
            params.append(step)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        # An older store lacks some key columns (read as NULL): order by those it has.
        order = tuple(c for c in order if c in have)
        orderby = f" ORDER BY {', '.join(f't.{_quote(c)}' for c in order)}" if order else ""
        return self.con.execute(f"SELECT {select} FROM {_quote(table)} t{where}{orderby}", params).df()

    def metrics(self, datasets: list[str] | None = None, step: str | None = None,
                ordered: bool = True) -> pd.DataFrame:
        """The long metric rows, one per value, ordered by their key.

        Columns: ``dataset``, ``case``, ``model``, ``region`` (label or region name; ``confusion`` for the
        error-matrix cells), ``metric`` (registry name; ``agree_*`` for model-vs-model rows of ``agree``),
        ``value`` (float; NaN where undefined, inf where a distance is infinite), ``unit`` (``mm``, ``mm3``,
        ``px``, ``px2``, ``''`` for ratios; None where not recorded). ``datasets`` keeps those datasets only;
        ``step`` keeps rows written by runs of that step (``evaluate``, ``agree``, ``import-audit``).
        ``ordered=False`` keeps the stored order instead (the order ``evaluate`` wrote them: confusion cells in
        label order, which :func:`segaudit.analysis.error_matrix.error_matrix` relies on).
        """
        order = UNIQUE_KEYS["metrics"] if ordered else ()
        return self._typed("metrics", METRICS_COLUMNS, order, datasets, step)

    def metric_values(self, metrics: list[str], datasets: list[str] | None = None) -> pd.DataFrame:
        """Segmentation metric rows of some metrics only: ``dataset, case, model, region, metric, value``.

        The ``confusion`` cells and the ``agree_*`` rows are left out (they are not a region's scores); the rows
        come in the stored order. Reading four metrics of 3000 cases costs a fraction of the whole table.
        """
        clauses = ["region <> ?", "NOT starts_with(metric, 'agree_')",
                   f"metric IN ({', '.join('?' * len(metrics)) or 'NULL'})"]
        params: list = [CONFUSION_REGION, *metrics]
        if datasets is not None:
            clauses.append(f"dataset IN ({', '.join('?' * len(datasets)) or 'NULL'})")
            params += list(datasets)
        return self.con.execute('SELECT dataset, "case", model, region, metric, value FROM metrics WHERE '
                                + " AND ".join(clauses), params).df()

    def scored_keys(self, datasets: list[str] | None = None) -> pd.DataFrame:
        """Distinct ``dataset, case, model`` with segmentation metric rows (no ``agree_*`` rows), sorted."""
        clauses, params = ["NOT starts_with(metric, 'agree_')"], []
        if datasets is not None:
            clauses.append(f"dataset IN ({', '.join('?' * len(datasets)) or 'NULL'})")
            params += list(datasets)
        return self.con.execute('SELECT DISTINCT dataset, "case", model FROM metrics WHERE ' + " AND ".join(clauses)
                                + ' ORDER BY dataset, "case", model', params).df()

    def features(self, datasets: list[str] | None = None) -> pd.DataFrame:
        """The long feature rows.

        ``dataset``, ``case``, ``model`` (``''`` for images and ground truth), ``source`` (sequence, ``gt``/label, or
        prediction), ``group`` (first_order, texture, shape, lesion, ...), ``feature``, ``value`` (float, NaN where
        undefined), ordered by their key.
        """
        return self._typed("features", FEATURES_COLUMNS, UNIQUE_KEYS["features"], datasets)

    def lesions(self, datasets: list[str] | None = None) -> pd.DataFrame:
        """The per-lesion rows of ``evaluate``.

        ``dataset``, ``case``, ``model``, ``region``, ``source`` (``gt`` or ``pred``), ``lesion_id`` (int), ``volume``
        (mm³, px² on photos), ``centroid`` and ``bbox`` (text vectors), ``matched`` (bool), ``dice``, ``hd95`` (of the
        matched pair, NaN if unmatched), ``counted`` (bool: above the size threshold), ordered by their key.
        """
        return self._typed("lesions", LESIONS_COLUMNS, UNIQUE_KEYS["lesions"], datasets)

    def errors(self, step: str | None = None, datasets: list[str] | None = None) -> pd.DataFrame:
        """Per-case failures and warnings.

        ``step``, ``dataset``, ``case``, ``model`` (``''`` when not one model's), ``path`` (the file, ``''`` when none),
        ``message`` (one line naming the file and the reason), ``severity`` (``error``, ``warning``, ``info``), ordered
        by step, dataset, case, model, path.
        """
        return self._typed("errors", ERRORS_COLUMNS, ("step", "dataset", "case", "model", "path"), datasets, step)

    def inputs(self, step: str | None = None, datasets: list[str] | None = None) -> pd.DataFrame:
        """The recorded input fingerprints (see :mod:`segaudit.pipeline.resume`).

        ``step``, ``dataset``, ``case``, ``model``, ``role``, ``key``, ``path``, ``exists``, ``size_bytes``,
        ``mtime_ns``, ``digest``.
        """
        return self._typed("inputs", INPUTS_COLUMNS, UNIQUE_KEYS["inputs"], datasets, step)

    def prompts(self, datasets: list[str] | None = None, setting: str | None = None) -> pd.DataFrame:
        """The prompts given to promptable models (``segaudit prompt``), ordered by their key.

        Columns: ``dataset``, ``case``, ``model`` (``litemedsam/<kind>``), ``region``, ``kind`` (``box``,
        ``box-jitter``, ``point``, ``clicks``...), ``setting`` (``default``, or the robustness variant, e.g.
        ``filter=area``), ``component`` (Int32: the ground-truth component prompted, 0 for all of them),
        ``prompt`` (JSON: box, points, labels in original pixel coordinates), ``seed`` (Int64),
        ``preprocessing`` (JSON), ``predicted_iou``, ``dice`` (against the prompt's component), ``clicks_dice``
        (JSON list: Dice after each click, ``clicks`` only), ``clicks_to`` (JSON: clicks to reach each Dice
        target), ``encode_seconds``, ``decode_seconds``, ``mask_path`` (the kind's mask file of the case; None for
        robustness settings, which keep no mask), ``image_path`` and ``ground_truth_path`` (the files prompted).
        Kind ``box-3d`` (3D volumes) has one row per case, component 0: the key slice's box, and per propagated
        slice its box, source, predicted IoU and Dice under ``slices`` in ``prompt``; ``predicted_iou`` is their
        mean, the seconds their sums, ``dice`` the whole volume's, ``image_path`` the first chosen sequence.
        Empty with these columns in a store written before the table existed (schema version < 3).
        """
        out = self._typed("prompts", PROMPTS_COLUMNS, UNIQUE_KEYS["prompts"], datasets)
        return out if setting is None else out[out.setting == setting].reset_index(drop=True)

    def attributions(self, datasets: list[str] | None = None) -> pd.DataFrame:
        """Modality attribution rows (``segaudit attribute``), ordered by their key.

        Columns: ``dataset``, ``case``, ``model``, ``region``, ``method`` (``subset``: the Dice with only
        ``sequences`` kept; ``shapley``: the exact Shapley value of the one sequence in ``sequences``;
        ``drop_one``: the Dice lost when it alone is removed), ``sequences`` (names joined by ``+``; ``''`` is
        the empty subset), ``value``, ``fill`` (what replaced a removed sequence), ``slice`` (Int32: the slice
        index along the last axis; NULL for ``declared`` rows), ``source`` (``live``: sequences removed from the
        model's input by ``segaudit attribute``; ``declared``: the project file's ``subset_predictions`` scored by
        ``segaudit attribute --from-predictions``), ``note`` (why a value is NaN or left out of the aggregates,
        e.g. the subsets missing for Shapley; None otherwise). Empty with these columns in a store written before
        the table existed; rows of a store older than schema version 4 read as ``source`` ``live``.
        """
        out = self._typed("attributions", ATTRIBUTIONS_COLUMNS, UNIQUE_KEYS["attributions"], datasets)
        if len(out):
            out["source"] = out["source"].fillna("live")
        return out

    def cases(self, datasets: list[str] | None = None, ordered: bool = True) -> pd.DataFrame:
        """The scanned cases, ordered by dataset and case (in stored order with ``ordered=False``).

        Columns (all text): ``dataset``, ``case``, ``subject`` and ``timepoint`` (None where the project
        declares none), ``metadata`` (the case's metadata row as a JSON object). ``datasets`` keeps those only.
        """
        return self._typed("cases", CASES_COLUMNS, ("dataset", "case") if ordered else (), datasets)

    def files(self, datasets: list[str] | None = None) -> pd.DataFrame:
        """The files ``scan`` found or expected, one row per case and file, ordered by dataset, case, role, key.

        Columns: ``dataset``, ``case``, ``role`` (``image``, ``gt``, ``prediction``, ...), ``key`` (sequence or
        model name), ``path`` (text), ``exists`` and ``readable`` (boolean), ``size_bytes`` (Int64, bytes),
        ``shape``, ``spacing`` (mm), ``origin``, ``orientation`` (text vectors), ``disk_dtype``,
        ``labels_present`` (text). ``datasets`` keeps those datasets only.
        """
        return self._typed("files", FILES_COLUMNS, ("dataset", "case", "role", "key", "path"), datasets)

    def qc(self, datasets: list[str] | None = None) -> pd.DataFrame:
        """The QC findings of ``scan``, ordered by dataset, case, check.

        Columns (all text): ``dataset``, ``case``, ``role`` and ``key`` (the file's), ``check``, ``severity``
        (``error``, ``warning``, ``info``), ``message``, ``path``. ``datasets`` keeps those datasets only.
        """
        return self._typed("qc", QC_COLUMNS, ("dataset", "case", "check"), datasets)

    def row_counts(self) -> dict[str, int]:
        """Rows per table of the store (tables an older or imported store lacks are left out)."""
        return {t: int(self.con.execute(f"SELECT count(*) FROM {_quote(t)}").fetchone()[0])  # type: ignore[index]
                for t in self.tables()}

    def runs(self, step: str | None = None) -> pd.DataFrame:
        """The recorded runs, oldest first (ordered by ``started_at``, then ``run_id``).

        Columns: ``run_id``, ``step``, ``started_at`` and ``finished_at`` (timestamps with time zone; NaT while
        running), ``status`` (``running``, ``ok``, ``interrupted``, ...), ``segaudit_version``,
        ``python_version``, ``platform``, ``packages`` (JSON), ``config_hash``, ``config`` (JSON), ``argv``
        (JSON), ``summary`` (JSON, None until finished), ``pid`` (Int64), ``host``. ``step`` keeps that step.
        """
        return self._typed("runs", RUNS_COLUMNS, ("started_at", "run_id"), None, step)

    def step_datasets(self, step: str, table: str = "metrics") -> set[str]:
        """The datasets with rows in ``table`` written by runs of ``step`` (empty when either table is absent)."""
        if not {table, "runs"} <= set(self.tables()):
            return set()
        return {r[0] for r in self.con.execute(
            f"SELECT DISTINCT t.dataset FROM {_quote(table)} t JOIN runs r USING (run_id) WHERE r.step = ?",
            [step]).fetchall()}

    def step_models(self, step: str, config_hash: str, metric: str) -> pd.DataFrame:
        """Distinct ``dataset``, ``case``, ``model`` (text) with a ``metric`` row of a step's runs.

        Only runs of ``step`` with settings ``config_hash``; models starting with ``~`` (consensus rows) are left
        out. Unordered.
        """
        return self.query("""SELECT DISTINCT m.dataset, m."case", m.model FROM metrics m JOIN runs r USING (run_id)
                             WHERE r.step = ? AND r.config_hash = ? AND m.metric = ?
                             AND NOT starts_with(m.model, '~')""", [step, config_hash, metric])

    def metric_summary(self, datasets: list[str], hd: str = "hd95") -> pd.DataFrame:
        """Per ``dataset``, ``model``, ``region`` (ordered so).

        ``n`` (distinct cases), ``dice_mean`` (over defined values), ``dice_undefined`` (count of NaN), ``<hd>_mean``
        (over finite values), ``<hd>_undefined`` (NaN or inf), ``gt_empty`` (sum of the flag). Confusion and ``agree_*``
        rows are left out; an empty frame when ``datasets`` is empty.
        """
        if not datasets:
            return pd.DataFrame()
        ph = ", ".join("?" * len(datasets))
        mean, undefined = _quote(f"{hd}_mean"), _quote(f"{hd}_undefined")
        return self.query(
            f"""SELECT dataset, model, region, count(DISTINCT "case") AS n,
                   avg(value) FILTER (WHERE metric = 'dice' AND NOT isnan(value)) AS dice_mean,
                   count(*) FILTER (WHERE metric = 'dice' AND isnan(value)) AS dice_undefined,
                   avg(value) FILTER (WHERE metric = ? AND NOT isnan(value) AND NOT isinf(value)) AS {mean},
                   count(*) FILTER (WHERE metric = ? AND (isnan(value) OR isinf(value))) AS {undefined},
                   sum(value) FILTER (WHERE metric = 'gt_empty') AS gt_empty
            FROM metrics WHERE dataset IN ({ph}) AND region <> 'confusion'
                  AND NOT starts_with(metric, 'agree_')  -- model-vs-model rows of segaudit agree
            GROUP BY dataset, model, region
            ORDER BY dataset, model, region""", [hd, hd, *datasets])

    def metric_units(self, metric: str, column: str = "unit") -> pd.DataFrame:
        """Per ``dataset``.

        ``column`` (text), the distinct units of ``metric``'s rows joined by ``/`` (``''`` for a row without one).
        Unordered.
        """
        return self.query(f"SELECT dataset, string_agg(DISTINCT coalesce(unit, ''), '/') AS {_quote(column)} "
                          "FROM metrics WHERE metric = ? GROUP BY dataset", [metric])

    def units(self) -> pd.DataFrame:
        """Distinct (dataset, metric, unit) of the ``metrics`` table (unit '' for dimensionless values).

        Confusion-matrix rows are summarised as one ``confusion`` metric; rows without a recorded unit (older
        stores, AUDIT imports) are left out; an empty frame with these columns when the table or its ``unit``
        column is absent (stores written before units were recorded).
        """
        if "metrics" not in self.tables() or "unit" not in self._columns("metrics"):
            return pd.DataFrame(columns=["dataset", "metric", "unit"])
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
        return self.replace_many([(table, rows, where)])[0]

    def replace_many(self, writes: list[tuple[str, pd.DataFrame, dict[str, list] | None]]) -> list[int]:
        """Several :meth:`replace` writes ``(table, rows, where)`` in one transaction: all of them or none.

        A step that writes several tables (``scan``: cases, files, qc) uses this, so a failure part-way never
        leaves one table from the new run beside another from the previous one. Returns the rows inserted per
        write.
        """
        counts = []
        self.con.execute("BEGIN TRANSACTION")
        try:
            for table, rows, where in writes:
                self._delete_where(table, where)
                counts.append(self._insert(table, rows))
                self._check_unique(table)
            self.con.execute("COMMIT")
        except BaseException:  # Ctrl-C too: an open transaction would swallow the run's final status
            self._rollback()
            raise
        return counts

    def _delete_where(self, table: str, where: dict[str, list] | None) -> None:
        if not where:
            return
        clauses, params = [], []
        for col, values in where.items():
            values = list(values)
            if not values:
                clauses.append("FALSE")
                continue
            clauses.append(f"{_quote(col)} IN ({', '.join('?' * len(values))})")
            params += values
        self.con.execute(f"DELETE FROM {_quote(table)} WHERE {' AND '.join(clauses)}", params)

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
                if step and "step" in SCHEMAS[table]:  # errors, inputs: the step is a column
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
        except BaseException:  # Ctrl-C too: an open transaction would swallow the run's final status
            self._rollback()
            raise

    def step_cases(self, step: str, tables: list[str], datasets: list[str]) -> pd.DataFrame:
        """Distinct (dataset, case) that runs of ``step`` stored in ``tables`` for these datasets.

        Rows count as the step's when their ``step`` column says so (``errors``, ``inputs``) or their run is one
        of the step's (strictly: rows without a run, such as imports, are nobody's here).
        """
        parts, params = [], []
        ph = ", ".join("?" * len(datasets)) or "NULL"
        for table in tables:
            if table not in self.tables():
                continue
            if "step" in SCHEMAS[table]:
                own = "t.step = ?"
            else:
                own = "t.run_id IN (SELECT run_id FROM runs WHERE step = ?)"
            parts.append(f'SELECT DISTINCT t.dataset, t."case" FROM {_quote(table)} t '
                         f"WHERE {own} AND t.dataset IN ({ph})")
            params += [step, *datasets]
        if not parts:
            return pd.DataFrame(columns=["dataset", "case"])
        return self.con.execute(" UNION ".join(parts) + ' ORDER BY 1, 2', params).df()

    def drop_cases(self, step: str, cases: pd.DataFrame, tables: list[str]) -> int:
        """Delete, in one transaction, every row of ``tables`` that ``step`` owns for these (dataset, case).

        Ownership as in :meth:`replace_keyed` with ``step``: another step's rows of the same cases are kept.
        Returns the number of (dataset, case) pairs given.
        """
        if cases.empty:
            return 0
        keys = cases[["dataset", "case"]].drop_duplicates()
        self.replace_keyed({t: pd.DataFrame(columns=list(SCHEMAS[t])) for t in tables if t in self.tables()},
                           keys, step=step)
        return len(keys)

    def drop_scan_cases(self, cases: pd.DataFrame) -> None:
        """Delete the ``cases``, ``files`` and ``qc`` rows of these (dataset, case), in one transaction.

        For cases that are gone from disk: what an earlier ``scan`` recorded about them no longer holds.
        """
        if cases.empty:
            return
        keys = cases[["dataset", "case"]].drop_duplicates()
        self.replace_keyed({t: pd.DataFrame(columns=list(SCHEMAS[t])) for t in ("cases", "files", "qc")}, keys)

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
            "pid": os.getpid(), "host": socket.gethostname(),
        }])
        self.replace("runs", row)
        return run_id

    def finish_run(self, run_id: str, status: str = "ok", summary: dict | None = None) -> None:
        """Mark a run finished with a status and a JSON summary."""
        self.con.execute("UPDATE runs SET finished_at = ?, status = ?, summary = ? WHERE run_id = ?",
                         [datetime.now(timezone.utc), status, json.dumps(summary or {}, default=str), run_id])

    # ------------------------------------------------------------------ export
    def export(self, out_dir: str | Path, fmt: str = "csv", force: bool = False) -> list[Path]:
        """Write every table to ``out_dir/<table>.<csv|parquet>``; each file appears whole or not at all.

        A file of that name that is not an earlier export of the same table (its header differs) is never
        replaced; an earlier export is replaced only with ``force`` (:func:`segaudit.store.outputs.check_output_file`).
        Every target is checked before the first is written, so a refusal writes nothing.
        """
        from segaudit.store.outputs import check_output_file

        if fmt not in ("csv", "parquet"):
            raise SegauditError(f"unknown export format {fmt!r} (csv or parquet)")
        tables = self.tables()
        for table in tables:
            columns = [d[0] for d in self.con.execute(f"SELECT * FROM {_quote(table)} LIMIT 0").description]
            check_output_file(Path(out_dir) / f"{table}.{fmt}", columns, force, "export")
        # DuckDB's own overwrite-through-a-temporary (USE_TMP_FILE) would put a visible ``tmp_<name>`` beside the
        # result; atomic_write already writes to a hidden temporary and renames it.
        opts = "(FORMAT csv, HEADER true, USE_TMP_FILE false)" if fmt == "csv" else \
            "(FORMAT parquet, USE_TMP_FILE false)"

        def copy(table: str, tmp: str) -> None:
            sql_path = tmp.replace("'", "''")
            self.con.execute(f"COPY {_quote(table)} TO '{sql_path}' {opts}")

        written = []
        for table in tables:
            written.append(atomic_write(Path(out_dir) / f"{table}.{fmt}", partial(copy, table)))
        return written
