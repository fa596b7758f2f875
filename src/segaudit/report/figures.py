"""The figures of the report and of ``segaudit flips``, drawn with matplotlib's non-interactive backend.

Each plot function takes tidy analysis tables and returns a matplotlib Figure; ``save_png`` writes one to a
file atomically and the HTML report inlines them.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd

from segaudit.analysis.compare import higher_is_better
from segaudit.analysis.failures import DEFAULT_BANDS, FAILURE_CLASSES
from segaudit.analysis.results import Trend
from segaudit.analysis.training import training_summary
from segaudit.io.atomic import atomic_write, atomic_write_text
from segaudit.metrics.evaluate import CONFUSION_REGION

_GROUP_COLOURS = {"flip_to_correct": "#2e7d32", "flip_to_incorrect": "#c62828", "correct_correct": "#90a4ae",
                  "incorrect_incorrect": "#455a64"}


def pyplot():
    """matplotlib.pyplot on the non-interactive Agg backend (figures are only ever written to files)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # Labels come from data (model, case, label names): plain text, never math. A '$' in a model name would
    # otherwise be parsed as mathtext and an invalid expression would fail the figure.
    plt.rcParams["text.parse_math"] = False
    return plt


def png_bytes(fig, dpi: int = 120) -> bytes:
    """A matplotlib figure as PNG bytes (tight bounding box); closes the figure."""
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    finally:
        pyplot().close(fig)
    return buf.getvalue()


def save_png(fig, path: str | Path) -> Path:
    """Save a matplotlib figure to ``path`` atomically (temporary file, then rename); closes the figure."""
    data = png_bytes(fig)
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def write_flips(result, out_dir: str | Path, baseline: str, candidate: str) -> list[Path]:
    """Write a :class:`~segaudit.analysis.flips.FlipResult` as ``flips.csv`` and ``flips.png`` in ``out_dir``.

    Each is written atomically; records and returns the paths.
    """
    out = Path(out_dir)
    files = [atomic_write_text(out / "flips.csv", result.groups.to_csv(index=False)),
             flip_bar_plot(result.groups, out / "flips.png", baseline, candidate, result.p)]
    result.files = files
    return files


def flip_bar_plot(groups: pd.DataFrame, path: str | Path, baseline: str, candidate: str, p: float) -> Path:
    """Bar plot of the four flip groups (counts and percentages), McNemar's p in the title."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.6))
    colours = [_GROUP_COLOURS.get(g, "#607d8b") for g in groups.group]
    bars = ax.bar(groups.group.str.replace("_", " "), groups.n, color=colours)
    for bar, (_, row) in zip(bars, groups.iterrows(), strict=True):
        ax.annotate(f"{row.n} ({row.percent:.1f} %)", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center", va="bottom", fontsize=9)
    ax.set_ylabel("items")
    ax.set_title(f"{baseline} → {candidate}: flips (exact McNemar p = {p:.3g})", fontsize=10)
    ax.spines[["top", "right"]].set_visible(False)
    return save_png(fig, path)


_PANEL_PIXELS = 480


def _quality_bands(ax) -> None:
    """The Dice quality bands (bad / mid / good, :data:`DEFAULT_BANDS`) as red, yellow and green backgrounds."""
    lo, hi = DEFAULT_BANDS["dice"]
    ax.axhspan(0, lo, color="#ffebee", zorder=0)
    ax.axhspan(lo, hi, color="#fff8e1", zorder=0)
    ax.axhspan(hi, 1.0, color="#e8f5e9", zorder=0)


def strip_plot(metrics: pd.DataFrame, dataset: str, label_worst: int = 3):
    """Per-case Dice of each model and region over the quality bands.

    The ``label_worst`` lowest points of each model and region carry their case id (every point's case is in the
    report's per-case table).
    """
    plt = pyplot()
    d = metrics[(metrics.dataset == dataset) & (metrics.metric == "dice") & (metrics.region != CONFUSION_REGION)]
    regions, models = sorted(d.region.unique()), sorted(d.model.unique())
    fig, ax = plt.subplots(figsize=(max(5, 1.1 * len(regions) * max(1, len(models))), 3.4))
    _quality_bands(ax)
    rng = np.random.default_rng(0)
    width = 0.8 / max(1, len(models))
    for mi, model in enumerate(models):
        for ri, region in enumerate(regions):
            g = d[(d.model == model) & (d.region == region)].dropna(subset=["value"])
            v = g.value.to_numpy()
            x = ri + (mi - (len(models) - 1) / 2) * width + rng.uniform(-width / 4, width / 4, v.size)
            ax.scatter(x, v, s=12, color=f"C{mi}", label=model if ri == 0 else None, zorder=2)
            for i in np.argsort(v, kind="stable")[:label_worst]:
                ax.annotate(str(g.case.iloc[i]), (x[i], v[i]), xytext=(3, -2), textcoords="offset points",
                            fontsize=5.5, color="#333", zorder=3)
    ax.set_xticks(range(len(regions)), regions)
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("Dice per case")
    lo, hi = DEFAULT_BANDS["dice"]
    ax.set_title(f"{dataset}: bands bad < {lo} ≤ mid < {hi} ≤ good; the {label_worst} worst cases of each model "
                 "and region are named", fontsize=9)
    if models:
        ax.legend(fontsize=8, loc="lower right")
    return fig


def intensity_boxes(summary_table: pd.DataFrame, stat: str, title: str):
    """Box plots of one per-case intensity statistic (``stat``) per sequence, one box per dataset (site).

    ``summary_table``: :func:`segaudit.analysis.image_overview.intensity_table` rows (one value per case).
    """
    plt = pyplot()
    t = summary_table[summary_table.stat == stat].dropna(subset=["value"])
    seqs = sorted(t.sequence.unique())
    fig, axes = plt.subplots(1, max(1, len(seqs)), figsize=(2.6 * max(1, len(seqs)), 3), squeeze=False)
    for ax, seq in zip(axes[0], seqs, strict=False):
        g = t[t.sequence == seq]
        names = sorted(g.dataset.unique())
        ax.boxplot([g[g.dataset == n].value.to_numpy() for n in names], showfliers=True)
        ax.set_xticks(range(1, len(names) + 1), [f"{n}\n(n={int((g.dataset == n).sum())})" for n in names],
                      fontsize=6, rotation=30)
        ax.set_title(seq, fontsize=9)
    axes[0][0].set_ylabel(f"per-case {stat} intensity", fontsize=8)
    fig.suptitle(title, fontsize=9)
    return fig


def failure_bars(counts: pd.DataFrame, dataset: str):
    """Stacked bars of each model and region's failure classes (percent of cases) in one dataset."""
    plt = pyplot()
    c = counts[counts.dataset == dataset]
    piv = c.pivot_table(index=["model", "region"], columns="failure", values="percent", fill_value=0)
    piv = piv.reindex(columns=[f for f in FAILURE_CLASSES if f in piv.columns])
    colours = {"good": "#2e7d32", "mid": "#f9a825", "bad": "#e57373", "disjoint": "#ef6c00", "miss": "#c62828",
               "false_alarm": "#6a1b9a", "both_empty": "#90a4ae", "undefined": "#607d8b"}
    fig, ax = plt.subplots(figsize=(8, 0.3 * len(piv) + 1.2))
    left = np.zeros(len(piv))
    labels = [f"{m} / {r}" for m, r in piv.index]
    for col in piv.columns:
        ax.barh(labels, piv[col], left=left, color=colours.get(col, "#607d8b"), label=col.replace("_", " "))
        left += piv[col].to_numpy()
    ax.set_xlabel("% of cases")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return fig


def matrix_plot(mat: pd.DataFrame, title: str):
    """A row-normalised label-by-label error matrix as a heat map on [0, 1]."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(3.2, 2.8))
    ax.imshow(mat.to_numpy(dtype=float), cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(mat.columns)), mat.columns, rotation=45, fontsize=7)
    ax.set_yticks(range(len(mat.index)), mat.index, fontsize=7)
    for i in range(mat.shape[0]):
        for j in range(mat.shape[1]):
            v = mat.iat[i, j]
            # Over-segmentation shares can exceed 1 by orders of magnitude: no decimals there.
            txt = "–" if pd.isna(v) else f"{v:.2f}" if v < 10 else f"{v:,.0f}"
            ax.text(j, i, txt, ha="center", va="center", fontsize=7, color="white" if v > 0.6 else "black")
    ax.set_xlabel("prediction", fontsize=8)
    ax.set_ylabel("ground truth", fontsize=8)
    ax.set_title(title, fontsize=8)
    return fig


def longitudinal_plot(t: pd.DataFrame):
    """Volume per subject over time points, one line per subject and model."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3))
    for (subject, model), g in t.groupby(["subject", "model"], sort=True, dropna=False):
        x = pd.to_numeric(g.timepoint, errors="coerce")
        ax.plot(x, g.pred_volume / 1000, marker="o", ls="--", label=f"{subject} {model} (pred)")
    for subject, g in t.drop_duplicates(["subject", "case"]).groupby("subject"):
        ax.plot(pd.to_numeric(g.timepoint, errors="coerce"), g.true_volume / 1000, marker="s", color="k",
                label=f"{subject} truth")
    ax.set_xlabel("time point")
    ax.set_ylabel("whole-tumour volume (cm³)")
    ax.legend(fontsize=7)
    return fig


def rank_plot(ranks: pd.DataFrame, cd: float, title: str):
    """Mean rank (1 = best) of each model, with a bar of the Nemenyi critical difference ``cd``."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 0.35 * len(ranks) + 1.2))
    y = np.arange(len(ranks))[::-1]
    ax.scatter(ranks.mean_rank, y, color="C0", zorder=3)
    for yi, r in zip(y, ranks.itertuples(), strict=True):
        ax.plot([r.mean_rank, r.mean_rank + cd], [yi, yi], color="C0", alpha=0.3, lw=4)
    ax.set_yticks(y, ranks.model, fontsize=8)
    ax.set_xlabel("mean rank (1 = best); bar = Nemenyi critical difference")
    ax.set_title(title, fontsize=9)
    return fig


def bias_scatter(t: pd.DataFrame, res: Trend, title: str, size_unit: str = "mm³, mm² in 2D"):
    """Dice against true lesion size (log axis), with the LOWESS trend and Spearman test of ``res``."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.2, 3))
    ax.scatter(t.volume, t.metric, s=14, alpha=0.8)
    tr = res["trend"]
    ax.plot(10 ** tr.x, tr.fitted, color="C3", label="LOWESS")
    ax.set_xscale("log")
    ax.set_xlabel(f"true lesion size ({size_unit})")
    ax.set_ylabel("Dice")
    ax.set_ylim(-0.02, 1.02)
    ci = f"[{res['ci_low']:.2f}, {res['ci_high']:.2f}]" if np.isfinite(res["ci_low"]) else "(CI: n too small)"
    ax.set_title(f"{title}\nSpearman ρ = {res['spearman_rho']:.2f} {ci}, p = {res['p']:.2g}", fontsize=8)
    ax.legend(fontsize=7, loc="lower right")
    return fig


def group_plot(table: pd.DataFrame, overall: float, title: str):
    """Each group's mean with its CI against the overall mean (dashed line); groups that differ in red."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.2, 0.3 * len(table) + 1.3))
    y = np.arange(len(table))[::-1]
    for yi, r in zip(y, table.itertuples(), strict=True):
        colour = "#c62828" if r.differs_from_overall else "C0"
        ax.errorbar([r.mean], [yi], xerr=[[r.mean - r.ci_low], [r.ci_high - r.mean]], fmt="o", color=colour,
                    capsize=3)
    ax.axvline(overall, color="k", ls="--", lw=1)
    ax.set_yticks(y, [f"{g} (n={n})" for g, n in zip(table.group, table.n, strict=True)], fontsize=7)
    ax.set_xlabel("mean Dice with 95 % bootstrap CI (dashed: overall)")
    ax.set_title(title, fontsize=8)
    return fig


def training_plot(log: pd.DataFrame):
    """One panel per curve name: each model's train and validation values per epoch."""
    plt = pyplot()
    names = sorted(log.name.unique())
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3), squeeze=False)
    models = sorted(log.model.unique())
    best = training_summary(log)  # the starred best validation epochs
    for ax, name in zip(axes[0], names, strict=True):
        g = log[log.name == name]
        if higher_is_better(name) and g.value.min() >= 0 and g.value.max() <= 1:
            _quality_bands(ax)
        for i, model in enumerate(models):
            for split, ls in (("train", "-"), ("val", "--")):
                c = g[(g.model == model) & (g.split == split)].sort_values("epoch")
                if len(c):
                    ax.plot(c.epoch, c.value, ls=ls, color=f"C{i}", label=f"{model} {split}")
            b = best[(best.model == model) & (best.name == name)].dropna(subset=["best_epoch"])
            ax.scatter(b.best_epoch, b.best_val, marker="*", s=80, color=f"C{i}", zorder=4)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7)
    return fig


def _block_reduce(a: np.ndarray, f: int, fn) -> np.ndarray:
    """``a`` (2D) reduced by ``fn`` over f×f blocks, edge-padded to a multiple of f."""
    pad = [(0, (-n) % f) for n in a.shape]
    a = np.pad(a, pad, mode="edge")
    r, c = a.shape[0] // f, a.shape[1] // f
    return fn(a.reshape(r, f, c, f), axis=(1, 3))


def crop_box(gt: np.ndarray, pred: np.ndarray, margin: float = 0.5, min_size: int = 32) -> tuple[slice, slice]:
    """The 2D window a panel shows.

    The bounding box of ground truth and prediction together, grown by ``margin`` × its size on each side and to at
    least ``min_size`` pixels (within the image), so that a one-pixel lesion fills a visible share of the panel. Both
    masks empty: the whole slice.
    """
    both = gt | pred
    if not both.any():
        return slice(0, gt.shape[0]), slice(0, gt.shape[1])
    out = []
    for axis in (0, 1):
        idx = np.flatnonzero(both.any(axis=1 - axis))
        lo, hi = int(idx[0]), int(idx[-1]) + 1
        size = max(int(np.ceil((hi - lo) * (1 + 2 * margin))), min_size)
        n = gt.shape[axis]
        size = min(size, n)
        start = min(max(0, (lo + hi - size) // 2), n - size)
        out.append(slice(start, start + size))
    return out[0], out[1]


def _display(img: np.ndarray) -> np.ndarray:
    """An RGB image as floats in [0, 1] for imshow (uint8 /255; other ranges min-max scaled)."""
    a = img[..., :3].astype(np.float32)
    if img.dtype == np.uint8:
        return a / 255.0
    lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
    return (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)


def overlay_panel(image: np.ndarray | None, gt: np.ndarray, pred: np.ndarray, crop: bool = False):
    """A 2D slice with true positives green, false positives red and false negatives blue over the image.

    ``image`` (or None: grey background) shares the masks' 2D shape; a colour image (H × W × 3: H&E,
    fundus) is drawn in colour, a grey one in grey. ``crop`` shows only :func:`crop_box`'s window around the
    masks. Windows larger than 480 pixels are block-reduced first (masks by any, image by mean), so a tiny
    lesion stays visible and a 4288-pixel photograph does not cost seconds to draw.
    """
    plt = pyplot()
    g, p, img = gt, pred, image
    if crop:
        rows, cols = crop_box(g, p)
        g, p = g[rows, cols], p[rows, cols]
        img = img[rows, cols] if img is not None else None
    f = int(np.ceil(max(g.shape) / _PANEL_PIXELS))
    colour = img is not None and img.ndim == 3
    if f > 1:  # a 4288-pixel fundus photo drawn at 240 px: block-reduce first (masks by any, image by mean)
        g, p = _block_reduce(g, f, np.any), _block_reduce(p, f, np.any)
        if img is not None:
            img = (np.stack([_block_reduce(img[..., c].astype(np.float32), f, np.mean) for c in range(3)], axis=-1)
                   .astype(img.dtype) if colour else _block_reduce(img.astype(np.float32), f, np.mean))
    overlay = np.zeros((*g.shape, 4))
    overlay[g & p] = (0.2, 0.8, 0.2, 0.6)   # true positive: green
    overlay[~g & p] = (0.9, 0.2, 0.2, 0.6)  # false positive: red
    overlay[g & ~p] = (0.2, 0.4, 1.0, 0.6)  # false negative: blue
    fig, ax = plt.subplots(figsize=(3.4, 3.4))
    if img is not None:
        ax.imshow(_display(img)) if colour else ax.imshow(img, cmap="gray")
    else:
        ax.set_facecolor("#eeeeee")
    ax.imshow(overlay, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    return fig
