"""Figures as PNG files, drawn with matplotlib's non-interactive backend and written atomically."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pandas as pd

_GROUP_COLOURS = {"flip_to_correct": "#2e7d32", "flip_to_incorrect": "#c62828", "correct_correct": "#90a4ae",
                  "incorrect_incorrect": "#455a64"}


def pyplot():
    """matplotlib.pyplot on the non-interactive Agg backend (figures are only ever written to files)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(fig, path: str | Path) -> Path:
    """Save a matplotlib figure to ``path`` through a temporary file and an atomic rename; closes the figure."""
    plt = pyplot()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


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
