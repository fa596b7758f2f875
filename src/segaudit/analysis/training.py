"""Training logs: per-epoch train/validation curves read from CSV, and where each run peaked.

Accepted layouts (one row per epoch, or several rows per epoch that are averaged, as PyTorch Lightning's
``CSVLogger`` writes them):

* ``epoch, train_loss, val_loss, train_dice, val_dice, ...`` (prefixes ``train_``/``val_``, also
  ``valid_``/``validation_`` and the suffix forms ``loss_train``/``loss/val``...);
* Keras' ``CSVLogger``: ``epoch, loss, dice, val_loss, val_dice`` (an unprefixed column with a ``val_``
  twin is the training value).

Values are kept in the log's own units; ``epoch`` is whatever the log counts from (0 or 1).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from segaudit.analysis.compare import higher_is_better
from segaudit.errors import SegauditError

_SPLITS = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val"}
_PREFIX = re.compile(r"^(train|training|val|valid|validation)[_/](.+)$", re.IGNORECASE)
_SUFFIX = re.compile(r"^(.+?)[_/](train|training|val|valid|validation)$", re.IGNORECASE)


def _split_name(column: str) -> tuple[str, str] | None:
    m = _PREFIX.match(column)
    if m:
        return _SPLITS[m.group(1).lower()], m.group(2)
    m = _SUFFIX.match(column)
    if m:
        return _SPLITS[m.group(2).lower()], m.group(1)
    return None


def read_training_log(path: str | Path, model: str | None = None) -> pd.DataFrame:
    """A training log as long rows: model, epoch, split (``train``/``val``), name, value.

    ``model`` defaults to the file's stem. Rows of the same epoch are averaged (NaN ignored); non-numeric
    cells become NaN. Raises :class:`SegauditError` naming the file when it is missing, unreadable, has no
    ``epoch`` column or no train/validation columns.
    """
    path = Path(path)
    if not path.is_file():
        raise SegauditError(f"{path}: training log not found")
    try:
        df = pd.read_csv(path, sep=None, engine="python")
    except Exception as exc:
        raise SegauditError(f"{path}: not a readable CSV training log ({exc})") from exc
    cols = {c.strip(): c for c in df.columns}
    epoch_col = next((cols[c] for c in cols if c.lower() == "epoch"), None)
    if epoch_col is None:
        raise SegauditError(f"{path}: no 'epoch' column (columns: {', '.join(map(str, df.columns))})")
    mapping: dict[str, tuple[str, str]] = {}
    lowered = {c.lower() for c in cols}
    for c in cols:
        if c.lower() in ("epoch", "step", "lr", "learning_rate", "time", "wall_time"):
            continue
        parsed = _split_name(c)
        if parsed is None and f"val_{c.lower()}" in lowered:
            parsed = ("train", c)  # Keras: 'loss' beside 'val_loss'
        if parsed is not None:
            mapping[cols[c]] = parsed
    if not mapping:
        raise SegauditError(f"{path}: no train_*/val_* columns (columns: {', '.join(map(str, df.columns))})")
    epoch = pd.to_numeric(df[epoch_col], errors="coerce")
    rows = []
    for col, (split, name) in mapping.items():
        v = pd.DataFrame({"epoch": epoch, "value": pd.to_numeric(df[col], errors="coerce")}).dropna()
        v = v.groupby("epoch", as_index=False).value.mean()
        rows.append(v.assign(split=split, name=name))
    out = pd.concat(rows, ignore_index=True)
    if out.empty:
        raise SegauditError(f"{path}: no numeric epoch/value pairs in the train/val columns")
    out.insert(0, "model", model or path.stem)
    out["epoch"] = out.epoch.astype(int) if np.all(out.epoch == out.epoch.round()) else out.epoch
    return out[["model", "epoch", "split", "name", "value"]]


def training_summary(log: pd.DataFrame) -> pd.DataFrame:
    """Per model and curve name.

    Epochs, best validation epoch and value, last train and validation values, and the generalisation gap at the last
    epoch (val - train, in the curve's units).

    The best epoch is the minimum of losses/errors/distances and the maximum of anything else; a curve without
    validation values has NaN there.
    """
    rows = []
    for (model, name), g in log.groupby(["model", "name"], sort=True):
        tr = g[g.split == "train"].sort_values("epoch")
        va = g[g.split == "val"].sort_values("epoch")
        row = {"model": model, "name": name, "epochs": int(g.epoch.nunique()), "best_epoch": np.nan,
               "best_val": np.nan, "last_train": tr.value.iloc[-1] if len(tr) else np.nan,
               "last_val": va.value.iloc[-1] if len(va) else np.nan}
        if len(va):
            i = va.value.idxmax() if higher_is_better(name) else va.value.idxmin()
            row.update(best_epoch=va.epoch[i], best_val=va.value[i])
        row["gap_last"] = row["last_val"] - row["last_train"]
        rows.append(row)
    return pd.DataFrame(rows)
