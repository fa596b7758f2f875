"""Cohort structure: train/validation/test splits (with a leakage check) and longitudinal volume tracking.

Both read the store's tables: ``cases`` (dataset, case, subject, timepoint, metadata JSON) and ``features``
(lesion volumes of the ground truth, ``model = ''``, and of each model's prediction). Volumes are always mm³
(mm² in 2D) on both sides; AUDIT compares voxel counts with mm³.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd


def cases_with_metadata(cases: pd.DataFrame) -> pd.DataFrame:
    """The cases table with its metadata JSON expanded into columns (metadata names kept as they are)."""
    meta = pd.json_normalize([json.loads(m) if isinstance(m, str) and m else (m or {}) for m in cases.metadata])
    meta.index = cases.index
    meta = meta.drop(columns=[c for c in meta.columns if c in cases.columns], errors="ignore")
    return pd.concat([cases.drop(columns="metadata"), meta], axis=1)


def lesion_volumes(features: pd.DataFrame, model: str = "") -> pd.DataFrame:
    """Volume (mm³) per dataset, case and label/region from the features table; ``model`` '' = ground truth."""
    f = features[(features.group == "lesion") & (features.feature == "volume")
                 & (features.model.fillna("") == model) & ~features.source.str.startswith("instances/")]
    return f.rename(columns={"source": "region", "value": "volume"})[["dataset", "case", "region", "volume"]]


def split_overview(cases: pd.DataFrame, features: pd.DataFrame, split_column: str = "split") -> pd.DataFrame:
    """Per dataset × split × region: cases, subjects, cases with a non-empty ground truth and the lesion rate.

    ``cases`` may be the raw store table (metadata JSON) or already expanded; the split comes from
    ``split_column``. Cases without a split are grouped under ``"(none)"``.
    """
    c = cases_with_metadata(cases) if "metadata" in cases.columns else cases
    if split_column not in c.columns:
        raise ValueError(f"no split column {split_column!r} in the cases' metadata (columns: {', '.join(c.columns)})")
    c = c.assign(split=c[split_column].fillna("(none)").astype(str))
    vol = lesion_volumes(features).merge(c[["dataset", "case", "split"]], on=["dataset", "case"])
    rows = []
    for (ds, split), g in c.groupby(["dataset", "split"], sort=True):
        v = vol[(vol.dataset == ds) & (vol.split == split)]
        base = {"dataset": ds, "split": split, "cases": g.case.nunique(),
                "subjects": g.subject.fillna(g.case).nunique()}
        for region, r in v.groupby("region", sort=True):
            nonempty = int((r.volume > 0).sum())
            rows.append({**base, "region": region, "cases_with_lesion": nonempty,
                         "lesion_rate": nonempty / base["cases"] if base["cases"] else np.nan})
        if v.empty:
            rows.append({**base, "region": "", "cases_with_lesion": 0, "lesion_rate": np.nan})
    return pd.DataFrame(rows)


def split_leakage(cases: pd.DataFrame, split_column: str = "split") -> pd.DataFrame:
    """Subjects whose cases sit in more than one split (patient-level leakage): dataset, subject, splits, cases.

    Empty when there is none. A case without a subject is its own subject.
    """
    c = cases_with_metadata(cases) if "metadata" in cases.columns else cases
    c = c.assign(subject=c.subject.fillna(c.case), split=c[split_column].astype(str))
    c = c[c[split_column].notna()]
    g = c.groupby(["dataset", "subject"]).agg(splits=("split", lambda s: sorted(set(s))), cases=("case", list))
    g = g[g.splits.map(len) > 1].reset_index()
    g["splits"] = g.splits.map(", ".join)
    g["cases"] = g.cases.map(", ".join)
    return g


def longitudinal_volumes(cases: pd.DataFrame, features: pd.DataFrame, region: str = "WT") -> pd.DataFrame:
    """True and predicted lesion volume per subject and time point, growth and relative volume error.

    Columns: dataset, subject, timepoint, case, model, true_volume, pred_volume (mm³), relative_error
    ((pred - true) / true; NaN when the truth is 0), true_growth and pred_growth (mm³ change from the
    subject's previous time point) and their relative forms. Only cases with a subject and a time point.
    """
    c = cases[cases.subject.notna() & cases.timepoint.notna()][["dataset", "case", "subject", "timepoint"]]
    truth = lesion_volumes(features)
    truth = truth[truth.region == region].rename(columns={"volume": "true_volume"}).drop(columns="region")
    models = sorted(m for m in features.model.dropna().unique() if m)
    preds = pd.concat([lesion_volumes(features, m).assign(model=m) for m in models], ignore_index=True) \
        if models else pd.DataFrame(columns=["dataset", "case", "region", "volume", "model"])
    preds = preds[preds.region == region].rename(columns={"volume": "pred_volume"}).drop(columns="region")
    t = c.merge(truth, on=["dataset", "case"]).merge(preds, on=["dataset", "case"], how="left")
    t["_tp"] = pd.to_numeric(t.timepoint, errors="coerce")
    t = t.sort_values(["dataset", "subject", "model", "_tp", "timepoint"], kind="stable")
    with np.errstate(divide="ignore", invalid="ignore"):
        t["relative_error"] = np.where(t.true_volume > 0, (t.pred_volume - t.true_volume) / t.true_volume, np.nan)
    grp = t.groupby(["dataset", "subject", "model"], dropna=False, sort=False)
    t["true_growth"] = grp.true_volume.diff()
    t["pred_growth"] = grp.pred_volume.diff()
    prev_true = grp.true_volume.shift()
    prev_pred = grp.pred_volume.shift()
    t["true_growth_rel"] = np.where(prev_true > 0, t.true_growth / prev_true, np.nan)
    t["pred_growth_rel"] = np.where(prev_pred > 0, t.pred_growth / prev_pred, np.nan)
    return t.drop(columns="_tp").reset_index(drop=True)
