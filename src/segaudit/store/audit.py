"""AUDIT compatibility: export segaudit metrics as AUDIT metric CSVs and import AUDIT's tables into a store.

AUDIT (github caumente/AUDIT) writes metric tables long per region::

    ID, region, DICE, JACC, ACCU, PREC, SENS, SPEC, HAUS, SIZE, model

and feature tables wide, one row per case (``ID`` + numeric columns). Column meanings differ from segaudit's in
two places, so the import keeps them apart instead of pretending they are equal:

* ``HAUS`` is AUDIT's one-directional Hausdorff distance from the prediction's voxels to the ground truth's, in
  voxel units; it is imported as ``hd_audit``. On export, ``HAUS`` receives segaudit's symmetric ``hd`` (mm)
  when the store has it, else ``hd_audit`` (a store imported from AUDIT exports AUDIT's own HAUS back
  unchanged); :func:`export_audit_tables` says which, per dataset.
* ``SIZE`` is the predicted volume (voxel count x voxel volume): imported as and exported from ``pred_volume``.

Imported feature tables also feed segaudit's analyses: ``lesion_size_<label>`` becomes the ground truth's lesion
volume of that label (``group = "lesion"``, ``feature = "volume"``, label upper-cased, ``whole`` -> ``WT``;
AUDIT counts voxels, mm³ on 1 mm grids), ``longitudinal_id`` and ``time_point`` become the ``cases`` table's
subject and time point, and the metric table's ``SIZE`` becomes each model's predicted lesion volume (its
whole-tumour volume is the sum over AUDIT's disjoint labels, an empty ``SIZE`` being an empty prediction).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from segaudit.errors import SegauditError
from segaudit.io.atomic import atomic_write_text
from segaudit.io.paths import output_path
from segaudit.store.store import ResultsStore

AUDIT_METRIC_COLUMNS = ["ID", "region", "DICE", "JACC", "ACCU", "PREC", "SENS", "SPEC", "HAUS", "SIZE", "model"]
# AUDIT column -> segaudit metric (export uses the reverse).
AUDIT_TO_SEGAUDIT = {"DICE": "dice", "JACC": "iou", "ACCU": "accuracy", "PREC": "precision",
                     "SENS": "sensitivity", "SPEC": "specificity", "HAUS": "hd_audit", "SIZE": "pred_volume",
                     "FBETA": "f1", "ASSD": "assd_audit", "MASD": "masd_audit"}
EXPORT_MAP = {"DICE": "dice", "JACC": "iou", "ACCU": "accuracy", "PREC": "precision", "SENS": "sensitivity",
              "SPEC": "specificity", "HAUS": "hd", "SIZE": "pred_volume"}


def dataset_name(path: str | Path) -> str:
    """Dataset name from an AUDIT file name: ``extracted_information_<name>.csv`` -> ``<name>``."""
    stem = Path(path).stem
    return re.sub(r"^extracted_information_", "", stem) or stem


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except Exception as exc:
        raise SegauditError(f"{path}: not a readable CSV ({exc})") from exc


def read_audit_metrics(path: str | Path, dataset: str | None = None) -> pd.DataFrame:
    """An AUDIT metric CSV as long segaudit rows: dataset, case, model, region, metric, value."""
    path = Path(path)
    df = _read_csv(path)
    missing = {"ID", "region", "model"} - set(df.columns)
    if missing:
        raise SegauditError(f"{path}: not an AUDIT metric table (missing column(s) {sorted(missing)})")
    value_cols = [c for c in df.columns if c not in ("ID", "region", "model")]
    unknown = [c for c in value_cols if c.upper() not in AUDIT_TO_SEGAUDIT]
    if unknown:
        raise SegauditError(f"{path}: unknown AUDIT metric column(s) {unknown}")
    long = df.melt(id_vars=["ID", "region", "model"], value_vars=value_cols, var_name="metric", value_name="value")
    long["metric"] = long["metric"].str.upper().map(AUDIT_TO_SEGAUDIT)
    long = long.rename(columns={"ID": "case"})
    long.insert(0, "dataset", dataset or dataset_name(path))
    long["value"] = pd.to_numeric(long["value"], errors="coerce").astype(float)
    for col in ("case", "model", "region"):
        long[col] = long[col].astype(str)
    cols = ["dataset", "case", "model", "region", "metric", "value"]
    return pd.concat([long[cols], audit_empty_flags(df, dataset or dataset_name(path))],
                     ignore_index=True)


def audit_empty_flags(table: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """``gt_empty``/``pred_empty`` rows inferred from AUDIT's own columns (AUDIT writes no flags).

    What AUDIT writes, checked on all six of its metric tables in the public sample (9,442 rows): ``SIZE``
    (predicted volume) is NaN for an empty prediction; ``SENS`` and ``PREC`` are both NaN whenever there is no
    true-positive voxel (AUDIT never writes a sensitivity of 0), so a NaN ``SENS`` alone cannot tell an empty
    ground truth from a total miss. With TP = 0, though, ``ACCU = TN / (TN + FP + FN)`` equals
    ``SPEC = TN / (TN + FP)`` exactly when FN = 0, i.e. when the ground truth is empty. So:

    * ``pred_empty`` = ``SIZE`` is NaN or 0 (without ``SIZE``: never inferred, 0);
    * ``gt_empty`` = ``SENS`` is NaN and ``ACCU == SPEC`` (to 1e-12).

    Every row both rules call both-empty has AUDIT's both-empty ``DICE`` of 1, and every empty prediction with
    ``DICE`` 1 is called both-empty (tested). A table without these columns gets no flags, and its rows count
    as non-empty.
    """
    upper = {c.upper(): c for c in table.columns}
    cols = ["dataset", "case", "model", "region", "metric", "value"]
    if not {"ID", "REGION", "MODEL", "SENS", "ACCU", "SPEC"} <= set(upper):
        return pd.DataFrame(columns=cols)

    def num(name: str) -> pd.Series:
        return pd.to_numeric(table[upper[name]], errors="coerce")

    gt_empty = num("SENS").isna() & np.isclose(num("ACCU"), num("SPEC"), rtol=0, atol=1e-12)
    if "SIZE" in upper:
        size = num("SIZE")
        pred_empty = size.isna() | (size == 0)
    else:
        pred_empty = pd.Series(False, index=table.index)
    base = pd.DataFrame({"dataset": dataset, "case": table[upper["ID"]].astype(str),
                         "model": table[upper["MODEL"]].astype(str), "region": table[upper["REGION"]].astype(str)})
    return pd.concat([base.assign(metric="gt_empty", value=gt_empty.astype(float).to_numpy()),
                      base.assign(metric="pred_empty", value=pred_empty.astype(float).to_numpy())],
                     ignore_index=True)[cols]


def read_audit_features(path: str | Path, dataset: str | None = None) -> pd.DataFrame:
    """An AUDIT feature CSV (wide) as long segaudit feature rows: dataset, case, source, group, feature, value.

    Non-numeric columns are skipped; ``source`` is ``"audit"`` and ``group`` the feature family guessed from the
    column name (``spatial``, ``tumor``, ``statistical``, ``texture`` or ``other``).
    """
    path = Path(path)
    df = _read_csv(path)
    if "ID" not in df.columns:
        raise SegauditError(f"{path}: not an AUDIT feature table (no ID column)")
    numeric = [c for c in df.columns if c != "ID" and pd.api.types.is_numeric_dtype(df[c])]
    long = df.melt(id_vars=["ID"], value_vars=numeric, var_name="feature", value_name="value")
    long = long.rename(columns={"ID": "case"})
    long.insert(0, "dataset", dataset or dataset_name(path))
    long.insert(2, "source", "audit")
    long.insert(3, "group", long["feature"].map(_feature_group))
    long["case"] = long["case"].astype(str)
    long["value"] = long["value"].astype(float)
    return long[["dataset", "case", "source", "group", "feature", "value"]]


def _feature_group(name: str) -> str:
    n = name.lower()
    if "resolution" in n or "center" in n or "centre" in n:
        return "spatial"
    if any(k in n for k in ("lesion", "tumor", "tumour", "_size", "volume")):
        return "tumor"
    if any(k in n for k in ("mean", "std", "max", "min", "median", "percentile", "skew", "kurt", "range")):
        return "statistical"
    if any(k in n for k in ("glcm", "contrast", "homogeneity", "energy", "correlation", "entropy", "dissimil")):
        return "texture"
    return "other"


def import_audit(out_dir: str | Path, metrics: Sequence[str | Path] = (), features: Sequence[str | Path] = (),
                 dataset: str | None = None, argv: list[str] | None = None) -> dict[str, int]:
    """Read AUDIT metric/feature CSVs into a results store; returns rows imported per table.

    Rows of the same datasets already in the store are replaced (each table in one transaction).
    """
    if not metrics and not features:
        raise SegauditError("give at least one AUDIT table (--metrics CSV or --features CSV)")
    m = pd.concat([read_audit_metrics(p, dataset) for p in metrics]) if metrics else None
    f = pd.concat([read_audit_features(p, dataset) for p in features]) if features else None
    cases = pd.concat([read_audit_cases(p, dataset) for p in features]) if features else None
    if f is not None:
        f = pd.concat([f.assign(model=""), audit_lesion_volumes(f)], ignore_index=True)
    if m is not None:
        pred = audit_predicted_volumes(m)
        f = pred if f is None else pd.concat([f, pred], ignore_index=True)
    counts = {}
    with ResultsStore(out_dir) as store:
        run_id = store.start_run("import-audit", "", {"metrics": [str(p) for p in metrics],
                                                      "features": [str(p) for p in features]}, argv)
        if m is not None:
            m = m.assign(run_id=run_id)
            counts["metrics"] = store.replace("metrics", m, {"dataset": sorted(m.dataset.unique())})
        if f is not None:
            # Keyed by (dataset, model): importing a metric table later keeps the imported ground-truth
            # features, and importing features keeps the predicted volumes of an earlier metric import.
            f = f.assign(run_id=run_id)
            store.replace_keyed({"features": f}, f[["dataset", "model"]].drop_duplicates())
            counts["features"] = len(f)
        if cases is not None and len(cases):
            cases = cases.assign(run_id=run_id)
            counts["cases"] = store.replace("cases", cases, {"dataset": sorted(cases.dataset.unique())})
        store.finish_run(run_id, "ok", counts)
    return counts


@dataclass
class AuditExport:
    """What :func:`export_audit_tables` wrote.

    The files, and per dataset the store metric put under ``HAUS`` (``"hd"``, ``"hd_audit"`` or ``None`` when the store
    has neither and the column is empty).
    """

    paths: list[Path] = field(default_factory=list)
    haus: dict[str, str | None] = field(default_factory=dict)


def haus_metric(present: set[str]) -> str | None:
    """The store metric exported as AUDIT's ``HAUS``.

    Segaudit's ``hd`` when computed, else an imported ``hd_audit`` (AUDIT's own value, so an import-export round trip
    reproduces it), else None.
    """
    return next((m for m in ("hd", "hd_audit") if m in present), None)


def export_audit_tables(store: ResultsStore, out_dir: str | Path, force: bool = False) -> AuditExport:
    """Write one AUDIT-style metric CSV per dataset (``extracted_information_<dataset>.csv``), atomically.

    ``<dataset>`` is made a safe file name (:func:`segaudit.io.paths.safe_component`); the file always lands
    in ``out_dir``.

    Regions are segaudit's labels and regions; values missing in the store are empty. ``HAUS`` is filled from
    :func:`haus_metric` of each dataset's metrics; the result names the one used. A file of that name that
    is not an earlier AUDIT export is never replaced; an earlier one only with ``force`` (checked for every
    dataset before the first file is written).
    """
    from segaudit.store.outputs import check_output_file

    wanted = {*EXPORT_MAP.values(), "hd_audit"}
    df = store.query("SELECT dataset, \"case\", model, region, metric, value FROM metrics WHERE metric IN "
                     f"({', '.join(repr(v) for v in sorted(wanted))})")
    out_dir = Path(out_dir)
    result = AuditExport()
    for ds in sorted(df.dataset.unique()):
        check_output_file(output_path(out_dir, f"extracted_information_{ds}", suffix=".csv"), AUDIT_METRIC_COLUMNS,
                          force, "export")
    for ds, part in df.groupby("dataset", sort=True):
        keys = ["case", "region", "model", "metric"]
        wide = (part.drop_duplicates(keys, keep="last").set_index(keys)["value"].unstack("metric")
                .reset_index())
        columns = {**EXPORT_MAP, "HAUS": haus_metric(set(part.metric))}
        table = pd.DataFrame({"ID": wide["case"], "region": wide["region"]})
        for col, metric in columns.items():
            table[col] = wide[metric] if metric in wide else np.nan
        table["model"] = wide["model"]
        table = table.sort_values(["model", "ID", "region"], kind="stable")[AUDIT_METRIC_COLUMNS]
        # The dataset name comes from data: a safe file name, checked to stay in out_dir.
        path = output_path(out_dir, f"extracted_information_{ds}", suffix=".csv")
        result.paths.append(atomic_write_text(path, table.to_csv(index=False)))
        result.haus[str(ds)] = columns["HAUS"]
    return result


def export_audit(store: ResultsStore, out_dir: str | Path) -> list[Path]:
    """:func:`export_audit_tables`, returning only the paths written."""
    return export_audit_tables(store, out_dir).paths


def _audit_label(name: str) -> str:
    """AUDIT's lower-case label name in feature columns (``et``, ``snfh``, ``whole``) as a store region."""
    return "WT" if name == "whole" else name.upper()


def audit_lesion_volumes(features: pd.DataFrame) -> pd.DataFrame:
    """Ground-truth lesion volumes from imported AUDIT features (``lesion_size_<label>`` columns).

    As segaudit lesion rows: dataset, case, model '', source <LABEL>, group ``lesion``, feature ``volume``, value.

    AUDIT's sizes are voxel counts (mm³ on BraTS's 1 mm grids); NaN stays NaN.
    """
    f = features[features.feature.str.match(r"^lesion_size_[a-z0-9]+$")]
    return pd.DataFrame({"dataset": f.dataset, "case": f.case, "model": "",
                         "source": f.feature.str.removeprefix("lesion_size_").map(_audit_label),
                         "group": "lesion", "feature": "volume", "value": f.value.astype(float)})


def audit_predicted_volumes(metrics: pd.DataFrame) -> pd.DataFrame:
    """Each model's predicted lesion volume per case and label from imported AUDIT metrics.

    ``SIZE``, i.e. ``pred_volume``, plus ``WT`` = the sum over the labels, as feature rows like
    :func:`audit_lesion_volumes`.

    AUDIT leaves ``SIZE`` empty when the prediction of a label is empty, so an empty cell counts 0 in the sum;
    AUDIT's regions are disjoint labels, so the sum is the whole lesion. A table that already has ``WT`` keeps it.
    """
    v = metrics[metrics.metric == "pred_volume"][["dataset", "case", "model", "region", "value"]]
    if v.empty:
        return pd.DataFrame(columns=["dataset", "case", "model", "source", "group", "feature", "value"])
    parts = [v]
    if not (v.region == "WT").any():
        parts.append(v.assign(value=v.value.fillna(0.0)).groupby(["dataset", "case", "model"], as_index=False)
                     .value.sum().assign(region="WT"))
    out = pd.concat(parts, ignore_index=True).rename(columns={"region": "source"})
    return out.assign(group="lesion", feature="volume")[["dataset", "case", "model", "source", "group", "feature",
                                                         "value"]]


def read_audit_cases(path: str | Path, dataset: str | None = None) -> pd.DataFrame:
    """The cases of an AUDIT feature table with AUDIT's ``longitudinal_id`` (subject) and ``time_point``.

    Columns: dataset, case, subject (None where AUDIT's is empty), timepoint (text; None without a subject,
    since AUDIT writes time point 0 for every cross-sectional case), metadata (``{}``).
    """
    path = Path(path)
    df = pd.read_csv(path, dtype={"ID": str, "longitudinal_id": str, "time_point": str})
    subject = df["longitudinal_id"] if "longitudinal_id" in df else pd.Series(None, index=df.index, dtype=object)
    subject = subject.where(subject.notna() & subject.astype(str).str.strip().ne(""), None)
    tp = df["time_point"] if "time_point" in df else pd.Series(None, index=df.index, dtype=object)
    tp = tp.where(subject.notna(), None)
    return pd.DataFrame({"dataset": dataset or dataset_name(path), "case": df["ID"].astype(str),
                         "subject": subject, "timepoint": tp, "metadata": "{}"})


# ---------------------------------------------------------------------------------------------- feature parity
AUDIT_PLANES = {"axial": 2, "coronal": 1, "sagittal": 0}  # AUDIT's (z, y, x) arrays vs NIfTI storage (i, j, k)
AUDIT_LABELS = {"enh": "ENH", "nec": "NEC", "ede": "EDE", "whole": "WT"}
AUDIT_SEQUENCES = ("t1", "t2", "t1ce", "flair")
AUDIT_STATS = {"max_intensity": "max", "min_intensity": "min", "mean_intensity": "mean",
               "median_intensity": "median", "std_intensity": "std", "10th_percentile_intensity": "p10",
               "90th_percentile_intensity": "p90", "range_intensity": "range", "skewness": "skewness",
               "kurtosis": "kurtosis"}
AUDIT_TEXTURES = {"contrast": "contrast", "dissimilarity": "dissimilarity", "homogeneity": "homogeneity",
                  "asm": "asm", "energy": "energy", "correlation": "correlation"}

_AXES_NOTE = ("AUDIT reads (z, y, x) arrays and multiplies them by (x, y, z) spacing; segaudit pairs each array "
              "axis with its own spacing (equal on isotropic 1 mm BraTS, different on anisotropic scans)")


def audit_feature_map(sequences=AUDIT_SEQUENCES, labels: dict[str, str] | None = None) -> pd.DataFrame:
    """Every AUDIT feature column and the segaudit feature it corresponds to, or why there is none.

    Columns: ``audit`` (AUDIT's column), ``group``, ``source``, ``feature`` (segaudit's long keys; empty when
    not provided), ``agreement`` and ``note``. ``agreement`` is ``same`` (same definition: values agree),
    ``fixed`` (AUDIT's value is wrong in a documented way; segaudit's differs on purpose), ``different`` (a
    different, documented definition), ``metadata`` (a cases-table column) or ``not provided``.
    """
    labels = labels or AUDIT_LABELS
    rows = []

    def add(audit, group="", source="", feature="", agreement="same", note=""):
        rows.append({"audit": audit, "group": group, "source": source, "feature": feature,
                     "agreement": agreement, "note": note})

    for plane, axis in AUDIT_PLANES.items():
        add(f"{plane}_plane_resolution", "spatial", "image", f"shape_{axis}", "same",
            "AUDIT calls the array shape 'resolution'; the physical voxel size is spacing_<i> (mm)")
        add(f"{plane}_plane_center_of_mass", "spatial", "image", f"com_{axis}_mm", "fixed",
            "AUDIT: voxels != 0 of the first sequence, no hole filling; segaudit: union of the sequences' "
            "foregrounds (holes filled). " + _AXES_NOTE)
    for name, label in labels.items():
        for plane, axis in AUDIT_PLANES.items():
            add(f"{plane}_{name}_center_mass", "lesion", label, f"com_{axis}_mm", "fixed", _AXES_NOTE)
        add(f"{name}_tumor_location", "lesion", label, "distance", "fixed",
            "distance (mm) from the foreground centre of mass; inherits both centres' axis handling")
        add(f"lesion_size_{name}", "lesion", label, "volume", "fixed",
            "AUDIT truncates volumes to integers (lesion_size_whole excepted); segaudit keeps the float mm³")
    for plane, axis in AUDIT_PLANES.items():
        whole = labels.get("whole", "WT")
        add(f"{plane}_tumor_slices", "lesion", whole, f"slices_{axis}", "same", "slices holding any label")
        add(f"lower_{plane}_tumor_slice", "lesion", whole, f"bbox_lo_{axis}", "same", "first slice index")
        add(f"upper_{plane}_tumor_slice", "lesion", whole, f"bbox_hi_{axis}", "same", "last slice index")
    for seq in sequences:
        for audit, ours in AUDIT_STATS.items():
            add(f"{seq}_{audit}", "intensity", seq, ours, "fixed",
                "AUDIT: voxels > 0 (drops zero and negative tissue of z-scored MRI or CT); segaudit: the "
                "foreground. Same values when no foreground voxel is <= 0 (skull-stripped, unnormalised MRI)")
        for stat in ("mean", "std"):
            for audit, ours in AUDIT_TEXTURES.items():
                add(f"{seq}_{stat}_{audit}", "texture", seq, ours if stat == "mean" else "", "different",
                    "AUDIT: 2D GLCMs of every axial slice of the brain's bounding box, background included, "
                    "rescaled to 256 levels, 4 angles, mean/std over slices (empty slices count). segaudit: "
                    "one 3D GLCM over foreground voxels only (13 directions, 32 bins); no per-slice std")
    add("longitudinal_id", "metadata", "cases", "subject", "metadata", "cases.subject (project longitudinal:)")
    add("time_point", "metadata", "cases", "timepoint", "metadata", "cases.timepoint")
    add("*", "metadata", "cases", "", "metadata", "any other column (age, survival_days, Grade, ...) is a column of "
        "the dataset's metadata table: segaudit.pipeline.features.features_table joins it beside the features")
    return pd.DataFrame(rows)


def to_audit_features(features: pd.DataFrame, sequences=AUDIT_SEQUENCES,
                      labels: dict[str, str] | None = None) -> pd.DataFrame:
    """Segaudit long features (ground truth and images) as an AUDIT-style wide table: ``ID`` + AUDIT columns.

    Only columns with a segaudit counterpart are filled (see :func:`audit_feature_map`); lesion sizes stay
    floats. Prediction rows (non-empty ``model``) are ignored.
    """
    fmap = audit_feature_map(sequences, labels)
    fmap = fmap[fmap.feature.ne("") & fmap.group.ne("metadata")]
    f = features
    if "model" in f:
        f = f[f.model.fillna("").eq("")]
    out = []
    for case, sub in f.groupby("case", sort=True):
        vals = {(g, s, k): v for g, s, k, v in zip(sub.group, sub.source, sub.feature, sub.value, strict=True)}
        out.append({"ID": case, **{r.audit: float(vals.get((r.group, r.source, r.feature), np.nan))
                                   for r in fmap.itertuples()}})
    return pd.DataFrame(out, columns=["ID", *fmap.audit])
