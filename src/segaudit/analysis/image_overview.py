"""What a project without ground truth (or without any metric) still tells.

Per-sequence intensity distributions across cases and sites (datasets), and cases whose features are outliers.

Both read the store's long ``features`` table: segaudit's own rows (group ``intensity``, source = the sequence,
statistics over the image's foreground) and imported AUDIT rows (source ``audit``, columns such as
``t1_mean_intensity``: statistics over voxels > 0, see :mod:`segaudit.store.audit`).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

#: Intensity statistics shown, in order (segaudit's feature names).
INTENSITY_STATS = ("mean", "std", "p10", "p25", "median", "p75", "p90")
_AUDIT_STATS = {"mean": "mean", "std": "std", "median": "median", "10th_percentile": "p10",
                "90th_percentile": "p90", "min": "min", "max": "max"}
_AUDIT_INTENSITY = re.compile(r"^(?P<seq>.+?)_(?P<stat>mean|std|median|10th_percentile|90th_percentile|min|max)"
                              r"_intensity$")
#: Fewest cases a feature needs before the IQR rule flags anything (quartiles of fewer are not quartiles).
MIN_OUTLIER_CASES = 8


def _image_rows(features: pd.DataFrame) -> pd.DataFrame:
    """Rows describing images and ground truth, not predictions (``model`` empty or missing)."""
    return features[features.model.fillna("").eq("")] if "model" in features else features


def intensity_table(features: pd.DataFrame) -> pd.DataFrame:
    """Per-case intensity statistics of each sequence: dataset, case, sequence, stat, value, origin.

    segaudit rows: group ``intensity`` with a sequence source (the whole foreground; ``seq/label`` sources,
    statistics inside a label, are left out), stats of :data:`INTENSITY_STATS`. AUDIT rows: ``<seq>_<stat>_
    intensity`` columns (``10th_percentile`` -> ``p10``). ``origin`` is ``segaudit`` or ``audit``: the two
    define the region differently, so they are never pooled.
    """
    f = _image_rows(features)
    own = f[(f.group == "intensity") & ~f.source.str.contains("/", regex=False) & f.feature.isin(INTENSITY_STATS)]
    own = pd.DataFrame({"dataset": own.dataset, "case": own.case, "sequence": own.source, "stat": own.feature,
                        "value": own.value, "origin": "segaudit"})
    audit = f[f.source.eq("audit")]
    match = audit.feature.str.extract(_AUDIT_INTENSITY)
    ok = match.seq.notna()
    audit = pd.DataFrame({"dataset": audit.dataset[ok], "case": audit.case[ok], "sequence": match.seq[ok],
                          "stat": match.stat[ok].map(_AUDIT_STATS), "value": audit.value[ok], "origin": "audit"})
    return pd.concat([own, audit], ignore_index=True)


def intensity_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per dataset, sequence and statistic: cases, and the median and quartiles of the per-case values.

    Quartiles are numpy's linear-interpolation percentiles over the cases with a value (NaN skipped).
    """
    rows = []
    for (origin, ds, seq, stat), g in table.groupby(["origin", "dataset", "sequence", "stat"], sort=True):
        v = g.value.dropna().to_numpy(float)
        q1, med, q3 = np.percentile(v, [25, 50, 75]) if v.size else (np.nan,) * 3
        rows.append({"origin": origin, "dataset": ds, "sequence": seq, "stat": stat, "cases": int(v.size),
                     "median": med, "q1": q1, "q3": q3})
    return pd.DataFrame(rows, columns=["origin", "dataset", "sequence", "stat", "cases", "median", "q1", "q3"])


def iqr_outliers(features: pd.DataFrame, k: float = 1.5, min_cases: int = MIN_OUTLIER_CASES) -> pd.DataFrame:
    """Cases whose image or ground-truth feature lies outside Tukey's fences, per dataset and feature.

    Definition: with Q1, Q3 the 25th and 75th percentiles (numpy, linear interpolation) of one feature over a
    dataset's cases and IQR = Q3 - Q1, a value is an outlier when it is < Q1 - k·IQR or > Q3 + k·IQR
    (k = 1.5, Tukey 1977). A feature with fewer than ``min_cases`` values in a dataset is not judged. An IQR of
    0 (a feature constant on most cases, e.g. the image size) flags every value that differs from it.

    Returns dataset, case, source, group, feature, value, q1, q3, low, high and ``iqr_units`` (distance beyond
    the fence in IQRs; inf when the IQR is 0), sorted by ``iqr_units`` descending.
    """
    f = _image_rows(features).dropna(subset=["value"])
    out = []
    for (ds, src, grp, feat), g in f.groupby(["dataset", "source", "group", "feature"], sort=True):
        v = g.value.to_numpy(float)
        if v.size < min_cases:
            continue
        q1, q3 = np.percentile(v, [25, 75])
        iqr = q3 - q1
        low, high = q1 - k * iqr, q3 + k * iqr
        bad = (v < low) | (v > high)
        if not bad.any():
            continue
        beyond = np.where(v < low, low - v, v - high)[bad]
        with np.errstate(divide="ignore"):
            units = beyond / iqr if iqr > 0 else np.full(beyond.shape, np.inf)
        out.append(pd.DataFrame({"dataset": ds, "case": g.case.to_numpy()[bad], "source": src, "group": grp,
                                 "feature": feat, "value": v[bad], "q1": q1, "q3": q3, "low": low, "high": high,
                                 "iqr_units": units}))
    cols = ["dataset", "case", "source", "group", "feature", "value", "q1", "q3", "low", "high", "iqr_units"]
    if not out:
        return pd.DataFrame(columns=cols)
    return pd.concat(out, ignore_index=True).sort_values("iqr_units", ascending=False, kind="stable")[cols] \
        .reset_index(drop=True)
