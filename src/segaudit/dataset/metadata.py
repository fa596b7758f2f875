"""Per-case metadata tables (CSV, TSV, XLSX) joined on the case id.

Problems with the table (unreadable file, unknown id column, duplicate ids, ids without images) are returned
as :class:`MetadataIssue` records rather than raised: the scan goes on and QC reports them. Rows whose id is
duplicated are not joined to any case, because picking one of them would be a silent guess.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from segaudit.base.types import Severity
from segaudit.errors import ConfigError


@dataclass
class MetadataIssue:
    """A problem found in a metadata table."""

    dataset: str
    case: str  # '' when the issue concerns the whole table
    severity: Severity
    check: str
    path: str
    message: str


def read_table(path: str | Path, sheet: str | int | None = None) -> pd.DataFrame:
    """Read a CSV (``.csv``), TSV (``.tsv``/``.txt``) or Excel (``.xlsx``/``.xls``) table, all as strings.

    Values are read as text so that ids like ``002`` keep their leading zeros.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: metadata table not found")
    suffix = path.suffix.lower()
    try:
        if suffix in (".xlsx", ".xlsm", ".xls"):
            return pd.read_excel(path, sheet_name=sheet if sheet is not None else 0, dtype=str)
        sep = "\t" if suffix in (".tsv", ".txt") else ","
        return pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, na_values=[""])
    except Exception as exc:
        raise ConfigError(f"{path}: cannot read metadata table ({type(exc).__name__}: {exc})") from exc


def _clean(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


def read_metadata(spec, dataset: str, cases: list[str]) -> tuple[dict[str, dict], list[MetadataIssue]]:
    """Join a metadata table to the discovered cases.

    Parameters
    ----------
    spec:
        A :class:`~segaudit.dataset.project.MetadataSpec`.
    dataset:
        Dataset name (for the issue records).
    cases:
        Case ids found on disk.

    Returns
    -------
    rows, issues
        ``rows`` maps case id -> {column: value}; the id column itself is left out. A case id matches a table
        id exactly, or else the table id with a file extension removed (tables often list file names).
    """
    path = str(spec.path)
    issues: list[MetadataIssue] = []
    try:
        df = read_table(spec.path, spec.sheet)
    except ConfigError as exc:
        return {}, [MetadataIssue(dataset, "", "error", "metadata_unreadable", path, str(exc))]
    if df.empty or len(df.columns) == 0:
        return {}, [MetadataIssue(dataset, "", "error", "metadata_empty", path, f"{path}: table has no rows")]
    id_col = spec.id_column or df.columns[0]
    if id_col not in df.columns:
        msg = f"{path}: id column {id_col!r} not found (columns: {', '.join(map(str, df.columns))})"
        return {}, [MetadataIssue(dataset, "", "error", "metadata_id_column", path, msg)]
    ids = df[id_col].astype(str).str.strip()
    stems = ids.str.replace(r"\.(nii\.gz|nii|png|jpe?g|tiff?|bmp)$", "", regex=True, case=False)
    case_set = set(cases)
    key = stems.where(~ids.isin(case_set), ids)
    dup = key[key.duplicated(keep=False)]
    dup_ids = sorted(set(dup))
    if dup_ids:
        shown = ", ".join(dup_ids[:10]) + (" ..." if len(dup_ids) > 10 else "")
        issues.append(MetadataIssue(
            dataset, "", "error", "metadata_duplicate_ids", path,
            f"{path}: {len(dup_ids)} id(s) appear more than once in column {id_col!r} ({shown}); "
            "their rows are not joined to any case"))
    rows: dict[str, dict] = {}
    for k, (_, row) in zip(key, df.iterrows(), strict=True):
        if k in dup_ids:
            continue
        rows[k] = {str(c): _clean(row[c]) for c in df.columns if c != id_col}
    for case in cases:
        if case not in rows and case not in dup_ids:
            issues.append(MetadataIssue(dataset, case, "warning", "metadata_missing_row", path,
                                        f"{path}: no row for case {case!r} in column {id_col!r}"))
    extra = sorted(set(rows) - case_set)
    if extra:
        shown = ", ".join(extra[:5]) + (" ..." if len(extra) > 5 else "")
        issues.append(MetadataIssue(dataset, "", "info", "metadata_extra_rows", path,
                                    f"{path}: {len(extra)} row(s) name cases not found on disk ({shown})"))
    return {c: r for c, r in rows.items() if c in case_set}, issues
