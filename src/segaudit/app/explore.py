"""The dataset explorer's computations, as pure functions over arrays and DataFrames (no Streamlit, no store).

Outlier filters as AUDIT offers them (IQR k, ±k SD, clip range), case embeddings (PCA, t-SNE, UMAP when
``umap-learn`` is installed) of standardised features, per-sequence intensity histograms, the cross-sequence
correlation of one case and a seeded voxel sample for a voxel embedding, and one case's features against its
cohort (the subject exploration page).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

#: Outlier filters of the univariate view.
OUTLIER_FILTERS = ("none", "IQR", "SD", "clip range")
#: Voxels drawn for a voxel embedding (t-SNE is quadratic in them).
MAX_VOXELS = 5000


def outlier_mask(values, method: str = "none", k: float = 1.5, low: float | None = None,
                 high: float | None = None) -> np.ndarray:
    """Which values the filter keeps (boolean array; NaN is never kept unless ``method`` is ``"none"``).

    ``"IQR"`` keeps ``[Q1 - k·IQR, Q3 + k·IQR]`` (Tukey fences; k = 1.5 the usual, 3 the far-out ones),
    ``"SD"`` keeps ``|x - mean| <= k·SD`` (sample SD), ``"clip range"`` keeps ``low <= x <= high`` (a bound
    of None is open), ``"none"`` keeps everything.

    >>> outlier_mask([1.0, 2.0, 3.0, 100.0], "IQR", 1.5).tolist()
    [True, True, True, False]
    >>> outlier_mask([1.0, 2.0, 3.0], "clip range", low=2).tolist()
    [False, True, True]
    """
    x = np.asarray(values, dtype=float)
    if method == "none":
        return np.ones(x.shape, dtype=bool)
    ok = np.isfinite(x)
    if not ok.any():
        return ok
    if method == "IQR":
        q1, q3 = np.percentile(x[ok], [25, 75])
        lo, hi = q1 - k * (q3 - q1), q3 + k * (q3 - q1)
    elif method == "SD":
        mean, sd = x[ok].mean(), x[ok].std(ddof=1) if ok.sum() > 1 else 0.0
        lo, hi = mean - k * sd, mean + k * sd
    elif method == "clip range":
        lo = -np.inf if low is None else float(low)
        hi = np.inf if high is None else float(high)
    else:
        raise ValueError(f"outlier filter must be one of {', '.join(OUTLIER_FILTERS)}, not {method!r}")
    return ok & (x >= lo) & (x <= hi)


#: A metadata column with at most this many levels can group cases.
MAX_GROUP_LEVELS = 30


@dataclass
class ColumnKinds:
    """Which columns of a per-case table are numeric (features, numeric metadata) and which group cases."""

    numeric: list[str]
    groups: list[str]
    features: list[str]


def column_kinds(table: pd.DataFrame) -> ColumnKinds:
    """Numeric columns (features first: images' and ground truth's, then predictions'), and grouping columns.

    Grouping columns: ``dataset`` and metadata columns with 2 to 30 levels (not one level per case).
    """
    features = [c for c in table.columns if c.count(":") >= 2 and pd.api.types.is_numeric_dtype(table[c])
                and table[c].notna().any()]
    features.sort(key=lambda c: (c.count(":"), c))  # images' and ground truth's first, then each model's
    numeric, groups = [], ["dataset"]
    for c in table.columns:
        if c in ("dataset", "case") or c in features:
            continue
        num = pd.to_numeric(table[c], errors="coerce")
        text = table[c].dropna().astype(str)
        if len(text) and num.notna().sum() == len(text) and num.nunique() > 5:
            numeric.append(c)
        elif 2 <= text.nunique() <= MAX_GROUP_LEVELS and text.nunique() < max(len(text), 2):
            groups.append(c)
    return ColumnKinds(features + numeric, groups, features)


def embedding_methods() -> list[str]:
    """The embeddings available here: PCA always, t-SNE with scikit-learn, UMAP with ``umap-learn``."""
    out = ["PCA"]
    if importlib.util.find_spec("sklearn") is not None:
        out.append("t-SNE")
    if importlib.util.find_spec("umap") is not None:
        out.append("UMAP")
    return out


@dataclass
class Embedding:
    """A 2D embedding of rows: ``coords`` (n × 2, rows aligned with ``index``), what was used and dropped."""

    coords: np.ndarray
    index: pd.Index
    method: str
    columns: list[str] = field(default_factory=list)
    dropped_columns: list[str] = field(default_factory=list)
    dropped_rows: int = 0
    note: str = ""


def standardise(x: np.ndarray) -> np.ndarray:
    """Columns to mean 0 and SD 1 (a constant column becomes 0)."""
    sd = x.std(axis=0)
    return (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0)


def embed(x: np.ndarray, method: str = "PCA", seed: int = 0) -> np.ndarray:
    """2D embedding of the rows of an already standardised matrix (n × p, finite values).

    PCA by SVD (numpy only); t-SNE (scikit-learn, perplexity ``min(30, (n - 1) / 3)``, PCA initialisation,
    seeded); UMAP (``umap-learn``, seeded). Fewer than 3 rows or one column: the columns padded with zeros.
    """
    n, p = x.shape
    if n < 3 or p < 2:
        out = np.zeros((n, 2))
        out[:, : min(p, 2)] = x[:, : min(p, 2)]
        return out
    if method == "PCA":
        xc = x - x.mean(axis=0)
        u, s, _ = np.linalg.svd(xc, full_matrices=False)
        out = u[:, :2] * s[:2]
        # A fixed sign (largest loading positive) so a rerun draws the same picture.
        signs = np.sign(out[np.abs(out).argmax(axis=0), range(out.shape[1])])
        return out * np.where(signs == 0, 1, signs)
    if method == "t-SNE":
        from sklearn.manifold import TSNE

        perplexity = float(max(1.0, min(30.0, (n - 1) / 3)))
        return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)
    if method == "UMAP":
        import umap

        return umap.UMAP(n_components=2, random_state=seed, n_neighbors=min(15, n - 1)).fit_transform(x)
    raise ValueError(f"embedding must be one of PCA, t-SNE, UMAP, not {method!r}")


def embed_table(table: pd.DataFrame, columns: list[str], method: str = "PCA", seed: int = 0) -> Embedding:
    """Embed the rows of ``table`` over ``columns`` (standardised).

    Columns with no finite value or a constant one are dropped (named in ``dropped_columns``), then rows with a
    missing value in a kept column (counted in ``dropped_rows``).
    """
    x = table[columns].apply(pd.to_numeric, errors="coerce").replace([np.inf, -np.inf], np.nan)
    keep = [c for c in columns if x[c].notna().any() and x[c].nunique(dropna=True) > 1]
    dropped = [c for c in columns if c not in keep]
    x = x[keep].dropna()
    note = ""
    if len(keep) < 2:
        note = "fewer than two features vary over these cases: nothing to embed"
    elif len(x) < 3:
        note = f"{len(x)} case(s) have every chosen feature: an embedding needs three"
    coords = embed(standardise(x.to_numpy(dtype=float)), method, seed) if not note else np.zeros((len(x), 2))
    return Embedding(coords, x.index, method, keep, dropped, len(table) - len(x), note)


def foreground(arrays: dict[str, np.ndarray]) -> np.ndarray:
    """Voxels non-zero in any sequence (skull-stripped MRI: the brain), as a boolean array."""
    arrays_ = list(arrays.values())
    fg = np.zeros(arrays_[0].shape, dtype=bool)
    for a in arrays_:
        fg |= a != 0
    return fg


def intensity_histograms(arrays: dict[str, np.ndarray], mask: np.ndarray | None = None,
                         bins: int = 64) -> pd.DataFrame:
    """Per-sequence histogram of the voxels in ``mask`` (default: each sequence's own non-zero voxels).

    Long DataFrame: ``sequence``, ``low``, ``high`` (bin edges, the image's units), ``count``; a sequence with no
    voxel in the mask has no rows.

    >>> t = intensity_histograms({"t1": np.array([0.0, 1.0, 2.0, 2.0])}, bins=2)
    >>> t["count"].tolist()
    [1, 2]
    """
    rows = []
    for name, a in arrays.items():
        v = a[mask] if mask is not None else a[a != 0]
        v = v[np.isfinite(v)].astype(float)
        if v.size == 0:
            continue
        counts, edges = np.histogram(v, bins=bins)
        rows.append(pd.DataFrame({"sequence": name, "low": edges[:-1], "high": edges[1:], "count": counts}))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=["sequence", "low", "high", "count"])


def sequence_correlation(arrays: dict[str, np.ndarray], mask: np.ndarray | None = None,
                         method: str = "pearson") -> pd.DataFrame:
    """The sequences' correlation over the voxels of ``mask`` (default :func:`foreground`): sequences × sequences.

    High off-diagonal values mean two sequences carry much the same signal; a sequence with constant values
    gives NaN.
    """
    if mask is None:
        mask = foreground(arrays)
    t = pd.DataFrame({name: a[mask].astype(float) for name, a in arrays.items()})
    return t.corr(method=method)


def voxel_sample(arrays: dict[str, np.ndarray], labels: np.ndarray | None = None, n: int = MAX_VOXELS,
                 seed: int = 0, mask: np.ndarray | None = None) -> pd.DataFrame:
    """A seeded sample of at most ``n`` voxels: one column per sequence and ``label`` (ground truth; 0 without one).

    Drawn from ``mask`` (default :func:`foreground`), stratified so each label keeps at least
    ``min(its voxels, n // (2 · number of labels))`` voxels: a small label stays visible beside the brain.
    """
    if mask is None:
        mask = foreground(arrays)
    idx = np.flatnonzero(mask)
    shape = mask.shape
    # Index through unravelled coordinates: a view-ordered (non-contiguous) volume is never copied whole.
    lab = labels[np.unravel_index(idx, shape)].astype(int) if labels is not None else np.zeros(idx.size, dtype=int)
    rng = np.random.default_rng(seed)
    if idx.size > n:
        values = np.unique(lab)
        floor = n // (2 * len(values))
        taken = np.zeros(idx.size, dtype=bool)
        for v in values:
            members = np.flatnonzero(lab == v)
            taken[rng.choice(members, min(floor, members.size), replace=False)] = True
        rest = np.flatnonzero(~taken)
        extra = n - int(taken.sum())
        if extra > 0:
            taken[rng.choice(rest, extra, replace=False)] = True
        pick = np.flatnonzero(taken)
    else:
        pick = np.arange(idx.size)
    where = np.unravel_index(idx[pick], shape)
    out = pd.DataFrame({name: a[where].astype(float) for name, a in arrays.items()})
    out["label"] = lab[pick]
    return out


def cohort_position(cohort: pd.DataFrame, case_index, columns: list[str]) -> pd.DataFrame:
    """Each feature of one case against the cohort (AUDIT's subject exploration).

    ``cohort``: one row per case, ``case_index`` the case's row label. Per feature: ``value``, the cohort's
    ``median``, ``mean``, ``sd``, ``q1``, ``q3``, ``n`` (cases with a value), ``z`` ((value - mean) / sd) and
    ``outlier``: ``""``, ``"mild"`` (outside the IQR fences with k = 1.5) or ``"extreme"`` (k = 3).
    """
    rows = []
    for c in columns:
        x = pd.to_numeric(cohort[c], errors="coerce").to_numpy(dtype=float)
        ok = np.isfinite(x)
        v = pd.to_numeric(pd.Series([cohort.at[case_index, c]]), errors="coerce").iloc[0]
        if not ok.any():
            continue
        q1, q3 = np.percentile(x[ok], [25, 75])
        mean, sd = x[ok].mean(), x[ok].std(ddof=1) if ok.sum() > 1 else np.nan
        iqr = q3 - q1
        out = ""
        if np.isfinite(v):
            if v < q1 - 3 * iqr or v > q3 + 3 * iqr:
                out = "extreme"
            elif v < q1 - 1.5 * iqr or v > q3 + 1.5 * iqr:
                out = "mild"
        rows.append({"feature": c, "value": float(v), "median": float(np.median(x[ok])), "mean": float(mean),
                     "sd": float(sd), "q1": float(q1), "q3": float(q3), "n": int(ok.sum()),
                     "z": float((v - mean) / sd) if sd and np.isfinite(sd) and sd > 0 else np.nan,
                     "outlier": out})
    return pd.DataFrame(rows, columns=["feature", "value", "median", "mean", "sd", "q1", "q3", "n", "z", "outlier"])
