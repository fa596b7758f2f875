"""Flip analysis of any per-case outcome table (``segaudit flips``): two predictors on the same items.

The table is a CSV with one row per item (case, question...). Outcome columns are either correctness values
(``1/0``, ``true/false``, ``yes/no``, ``correct/incorrect``) or, with a truth column, answers compared with the
truth. Items where either outcome is missing are left out and counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from segaudit.analysis.compare import flip_table
from segaudit.errors import SegauditError

_TRUE = {"1", "true", "t", "yes", "y", "correct", "pass", "1.0"}
_FALSE = {"0", "false", "f", "no", "n", "incorrect", "wrong", "fail", "0.0"}


@dataclass
class FlipResult:
    """What ``segaudit flips`` reports: the four groups, both accuracies, McNemar's exact p, files written."""

    groups: pd.DataFrame
    n: int
    n_dropped: int
    baseline_accuracy: float
    candidate_accuracy: float
    p: float
    files: list[Path]


def _as_correct(col: pd.Series, name: str, path: Path) -> pd.Series:
    text = col.astype("string").str.strip().str.lower()
    bad = text.notna() & ~text.isin(_TRUE | _FALSE)
    if bad.any():
        raise SegauditError(f"{path}: column {name!r} holds {text[bad].iloc[0]!r}, not a correctness value "
                            "(1/0, true/false, correct/incorrect); give --truth to compare answers with a truth "
                            "column")
    return text.map(lambda v: None if pd.isna(v) else v in _TRUE)


def read_outcomes(path: str | Path, baseline: str, candidate: str, truth: str | None = None,
                  id_column: str | None = None) -> tuple[pd.Series, pd.Series, pd.Series, int]:
    """Correctness of baseline and candidate per item (aligned), the item ids, and the rows left out."""
    path = Path(path)
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=True)
    except pd.errors.EmptyDataError:
        raise SegauditError(f"{path}: empty file, no header row (one row per item expected)") from None
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise SegauditError(f"{path}: cannot read the outcome table ({exc})") from exc
    for col in [baseline, candidate, truth, id_column]:
        if col and col not in df.columns:
            raise SegauditError(f"{path}: no column {col!r} (columns: {', '.join(df.columns)})")
    ids = df[id_column] if id_column else df[df.columns[0]]
    if truth:
        t = df[truth].str.strip()
        a = (df[baseline].str.strip() == t).where(df[baseline].notna() & t.notna())
        b = (df[candidate].str.strip() == t).where(df[candidate].notna() & t.notna())
    else:
        a = _as_correct(df[baseline], baseline, path)
        b = _as_correct(df[candidate], candidate, path)
    keep = a.notna() & b.notna()
    if not keep.any():  # nothing to compare: accuracies and McNemar's test would be NaN
        raise SegauditError(f"{path}: no item has both a {baseline!r} and a {candidate!r} outcome "
                            f"({len(df)} row(s))")
    return a[keep].astype(bool), b[keep].astype(bool), ids[keep], int((~keep).sum())


def run_flips(path: str | Path, baseline: str, candidate: str, truth: str | None = None,
              id_column: str | None = None, sample: int = 5) -> FlipResult:
    """Flip analysis of an outcome CSV (nothing written; :func:`segaudit.report.figures.write_flips` writes it)."""
    a, b, ids, dropped = read_outcomes(path, baseline, candidate, truth, id_column)
    res = flip_table(a.to_numpy(), b.to_numpy(), ids.to_numpy(), sample=sample)
    return FlipResult(res["groups"], res["n"], dropped, res["baseline_accuracy"], res["candidate_accuracy"],
                      res["p"], [])
