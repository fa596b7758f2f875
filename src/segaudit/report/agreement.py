"""The agreement heatmap (no ground truth needed): pairwise agreement between models as a matplotlib Figure.

:func:`agreement_heatmap` returns a Figure (as the functions of :mod:`segaudit.report.figures`); the report's
section that draws it is :mod:`segaudit.report.sections.agreement`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from segaudit.report.figures import pyplot


def agreement_heatmap(mat: pd.DataFrame, title: str, metric: str = "agree_dice"):
    """Heatmap of a model × model agreement matrix, each cell annotated ('–' on the diagonal and for no value).

    Dice on a fixed 0–1 scale (dark = agree); distances (mm) from 0 to the matrix's largest finite value, reversed
    so that dark still means agreement.
    """
    plt = pyplot()
    n = len(mat)
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * max(n, 2), 0.8 + 0.6 * max(n, 2)))
    values = mat.to_numpy(dtype=float)
    finite = values[np.isfinite(values)]
    if metric.endswith("dice"):
        im = ax.imshow(values, cmap="Blues", vmin=0, vmax=1)
    else:
        im = ax.imshow(values, cmap="Blues_r", vmin=0, vmax=float(finite.max()) if finite.size else 1.0)
    ax.set_xticks(range(n), mat.columns, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(n), mat.index, fontsize=7)
    for i in range(n):
        for j in range(n):
            v = values[i, j]
            dark = np.isfinite(v) and im.norm(v) > 0.6  # white text on the dark (agreeing) cells
            ax.text(j, i, "–" if not np.isfinite(v) else (f"{v:.2f}" if metric.endswith("dice") else f"{v:.1f}"),
                    ha="center", va="center", fontsize=7, color="white" if dark else "black")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    ax.set_title(title, fontsize=8)
    return fig
