"""The results store's schema: file name, tables and their columns, key columns, reserved region names.

A contract between the steps that write the store (metrics rows, features, QC) and everything that reads it
(analysis, report, export). It imports nothing, so every layer may use it (the README's layer order puts it at
the bottom, beside :mod:`segaudit.base`), and importing it loads no database driver.
"""

from __future__ import annotations

DB_NAME = "segaudit.duckdb"

SCHEMAS: dict[str, dict[str, str]] = {
    "runs": {
        "run_id": "VARCHAR", "step": "VARCHAR", "started_at": "TIMESTAMPTZ", "finished_at": "TIMESTAMPTZ",
        "status": "VARCHAR", "segaudit_version": "VARCHAR", "python_version": "VARCHAR", "platform": "VARCHAR",
        "packages": "VARCHAR", "config_hash": "VARCHAR", "config": "VARCHAR", "argv": "VARCHAR",
        "summary": "VARCHAR", "pid": "BIGINT", "host": "VARCHAR",
    },
    "cases": {"dataset": "VARCHAR", "case": "VARCHAR", "subject": "VARCHAR", "timepoint": "VARCHAR",
              "metadata": "VARCHAR", "run_id": "VARCHAR"},
    "files": {
        "dataset": "VARCHAR", "case": "VARCHAR", "role": "VARCHAR", "key": "VARCHAR", "path": "VARCHAR",
        "exists": "BOOLEAN", "readable": "BOOLEAN", "size_bytes": "BIGINT", "shape": "VARCHAR",
        "spacing": "VARCHAR", "origin": "VARCHAR", "orientation": "VARCHAR", "disk_dtype": "VARCHAR",
        "labels_present": "VARCHAR", "run_id": "VARCHAR",
    },
    "qc": {"dataset": "VARCHAR", "case": "VARCHAR", "role": "VARCHAR", "key": "VARCHAR", "path": "VARCHAR",
           "check": "VARCHAR", "severity": "VARCHAR", "message": "VARCHAR", "run_id": "VARCHAR"},
    "metrics": {"dataset": "VARCHAR", "case": "VARCHAR", "model": "VARCHAR", "region": "VARCHAR",
                "metric": "VARCHAR", "value": "DOUBLE", "run_id": "VARCHAR", "unit": "VARCHAR"},
    "lesions": {"dataset": "VARCHAR", "case": "VARCHAR", "model": "VARCHAR", "region": "VARCHAR",
                "source": "VARCHAR", "lesion_id": "INTEGER", "volume": "DOUBLE", "centroid": "VARCHAR",
                "bbox": "VARCHAR", "matched": "BOOLEAN", "dice": "DOUBLE", "hd95": "DOUBLE",
                "counted": "BOOLEAN", "run_id": "VARCHAR"},
    "features": {"dataset": "VARCHAR", "case": "VARCHAR", "model": "VARCHAR", "source": "VARCHAR", "group": "VARCHAR",
                 "feature": "VARCHAR", "value": "DOUBLE", "run_id": "VARCHAR"},
    "errors": {"step": "VARCHAR", "dataset": "VARCHAR", "case": "VARCHAR", "model": "VARCHAR",
               "path": "VARCHAR", "message": "VARCHAR", "severity": "VARCHAR", "run_id": "VARCHAR"},
    "inputs": {"step": "VARCHAR", "dataset": "VARCHAR", "case": "VARCHAR", "model": "VARCHAR", "role": "VARCHAR",
               "key": "VARCHAR", "path": "VARCHAR", "exists": "BOOLEAN", "size_bytes": "BIGINT",
               "mtime_ns": "BIGINT", "digest": "VARCHAR", "run_id": "VARCHAR"},
    "meta": {"key": "VARCHAR", "value": "VARCHAR"},
    # One row per prompt given to a promptable model (``segaudit prompt``): ``component`` is the ground-truth
    # connected component the prompt was simulated from (0: all of them), ``setting`` the preprocessing/prompt
    # variant (``default``, or a robustness variant such as ``filter=area``), ``prompt`` the exact prompt as JSON
    # (original pixel coordinates), ``preprocessing`` the model's recorded preprocessing as JSON.
    "prompts": {"dataset": "VARCHAR", "case": "VARCHAR", "model": "VARCHAR", "region": "VARCHAR",
                "kind": "VARCHAR", "setting": "VARCHAR", "component": "INTEGER", "prompt": "VARCHAR",
                "seed": "BIGINT", "preprocessing": "VARCHAR", "predicted_iou": "DOUBLE", "dice": "DOUBLE",
                "clicks_dice": "VARCHAR", "clicks_to": "VARCHAR", "encode_seconds": "DOUBLE",
                "decode_seconds": "DOUBLE", "mask_path": "VARCHAR", "image_path": "VARCHAR",
                "ground_truth_path": "VARCHAR", "run_id": "VARCHAR"},
    # Modality attribution (``segaudit attribute``): per case, ``method`` ``subset`` (the Dice with only the
    # sequences in ``sequences`` kept, joined by '+', '' for none), ``shapley`` or ``drop_one`` (one sequence);
    # ``source`` ``live`` (sequences removed from the model's input) or ``declared`` (the project file's
    # predictions made with subsets); ``note`` why a value is NaN or left out of the aggregates (else NULL).
    "attributions": {"dataset": "VARCHAR", "case": "VARCHAR", "model": "VARCHAR", "region": "VARCHAR",
                     "method": "VARCHAR", "sequences": "VARCHAR", "value": "DOUBLE", "fill": "VARCHAR",
                     "slice": "INTEGER", "source": "VARCHAR", "note": "VARCHAR", "run_id": "VARCHAR"},
}

#: Version of the store's tables and columns (the ``schema_version`` row of ``meta``). 1: every store written
#: before the version was recorded; 2: ``runs.pid``/``runs.host``, the ``inputs`` and ``meta`` tables; 3: the
#: ``prompts`` and ``attributions`` tables (``segaudit prompt``, ``segaudit attribute``); 4: ``attributions.source``
#: (``live`` or ``declared``; the rows of older stores are ``live``, set so by the upgrade) and
#: ``attributions.note``, ``source`` in the table's key.
SCHEMA_VERSION = 4

# Table names, in creation order.
TABLES: tuple[str, ...] = tuple(SCHEMAS)

# The columns that identify one value: no table may hold two rows with the same key, since every summary,
# plot and test counts rows (a duplicated row is a case counted twice). Checked on every write.
UNIQUE_KEYS: dict[str, tuple[str, ...]] = {
    "metrics": ("dataset", "case", "model", "region", "metric"),
    "lesions": ("dataset", "case", "model", "region", "source", "lesion_id"),
    "features": ("dataset", "case", "model", "source", "group", "feature"),
    "inputs": ("step", "dataset", "case", "model", "role", "key"),
    "prompts": ("dataset", "case", "model", "region", "setting", "component"),
    "attributions": ("dataset", "case", "source", "model", "region", "method", "sequences"),
}

# Region of the ``metrics`` rows that hold the voxel confusion matrix of a case-model, once per case-model,
# one row per cell named ``<gt label><CONFUSION_SEPARATOR><pred label>``; never a segmentation region, so
# summaries leave it out.
CONFUSION_REGION = "confusion"
CONFUSION_SEPARATOR = "->"
