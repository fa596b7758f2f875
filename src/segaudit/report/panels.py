"""Image panels of the worst and best cases: ground truth and prediction over the image, TP/FP/FN colours.

:func:`panels_html` reads each ranked case's files from the project (the image, the ground truth, the model's
prediction), picks the slice and the crop, and returns the panels as HTML figures; the section that places them
is :mod:`segaudit.report.sections.worst_best`.
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

from segaudit.analysis.failures import worst_best
from segaudit.analysis.summary import drop_both_empty
from segaudit.metrics.overlap import values_mask
from segaudit.report import figures
from segaudit.report.markup import png_html, why_html

#: Sequence preference of a panel's image: lesions show best on FLAIR / T2 / contrast T1 (lower = preferred).
PANEL_SEQUENCES = {k: i for i, k in enumerate(("flair", "t2f", "t2w", "t2", "t1ce", "t1c", "t1gd", "t1"))}


def panel_image(files: pd.DataFrame) -> np.ndarray | None:
    """The case's image for panels (FLAIR / T2 / contrast T1 preferred; colour images stay in colour), or None.

    ``files``: the case's rows of the store's ``files`` table. None when the case has no existing image file or
    it cannot be read (a panel without its image still shows the masks).
    """
    from segaudit.io.readers import read_image

    im_row = files[(files.role == "image") & files.exists]
    if im_row.empty:
        return None
    # Lesions show best on FLAIR / T2 / contrast T1; otherwise the first sequence.
    im_row = im_row.assign(_p=im_row.key.str.lower().map(PANEL_SEQUENCES).fillna(len(PANEL_SEQUENCES)))
    try:
        im = read_image(im_row.sort_values("_p", kind="stable").path.iloc[0])
    except Exception:  # noqa: BLE001 - a panel without its image is still informative
        return None
    return im.array if not im.is_color else im.array[..., :3]


def failure_slice(g: np.ndarray, p: np.ndarray) -> int:
    """The axial slice (index on the last axis) a 3D panel shows.

    The one with most wrong voxels (false positives + false negatives), else the ground truth's largest, else the
    prediction's, else the middle one.
    """
    for a in (g ^ p, g, p):
        if a.any():
            return int(np.argmax(a.sum(axis=(0, 1))))
    return g.shape[2] // 2


def panel_html(img: np.ndarray | None, g: np.ndarray, p: np.ndarray, title: str) -> str:
    """One slice (3D: the one with most errors) cropped around ground truth and prediction.

    TP/FP/FN colours over the image (in colour for colour images).

    ``title`` is HTML (the caller escapes it). The caption gives the crop's rows and columns, and says so when
    there is no image of the mask's shape to draw under the masks.
    """
    if g.ndim == 3:
        k = failure_slice(g, p)
        g, p = g[:, :, k], p[:, :, k]
        img = img[:, :, k] if img is not None and img.ndim == 3 else None
        g, p = g.T[::-1], p.T[::-1]  # radiological display of an axial slice
        img = img.T[::-1] if img is not None else None
    shown = img is not None and img.shape[:2] == g.shape
    fig = figures.overlay_panel(img if shown else None, g, p, crop=True)
    rows, cols = figures.crop_box(g, p)
    where = f"<br><span class='note'>rows {rows.start}–{rows.stop - 1}, columns {cols.start}–{cols.stop - 1}</span>"
    note = "" if shown else "<br><span class='note'>(no image file in the project: masks only)</span>"
    return f'<figure class="panel large">{png_html(fig)}<figcaption>{title}{where}{note}</figcaption></figure>'


def panel_region(d: pd.DataFrame, requested: str | None = None) -> str:
    """The region the panels of a dataset show.

    ``requested`` when the dataset has it, else its worst region (lowest mean Dice over cases and models; undefined
    values skipped).
    """
    if requested is not None and (d.region == requested).any():
        return requested
    return str(d.groupby("region").value.mean().sort_values(kind="stable").index[0])


def panels_html(project, metrics: pd.DataFrame, k: int = 2, region: str | None = None) -> str:
    """The ``k`` worst and best case-models by Dice of each dataset of ``project``, as image panels.

    ``metrics``: ground-truth metric rows (both-empty cases are set apart, never shown as best). Each dataset
    shows ``region`` when it has it, else its worst region. A case whose ground truth or prediction cannot be read
    is skipped (it is in the errors table already); with no panel at all, the reason.
    """
    from segaudit.dataset.discover import discover
    from segaudit.io.masks import read_mask

    files = discover(project).files_frame()
    out = []
    region_wanted = region
    for ds in project.datasets:
        # Both-empty cases are set apart: a Dice of 1 on nothing is never shown as a "best" case.
        d, _ = drop_both_empty(metrics[(metrics.dataset == ds.name)
                                       & metrics.metric.isin(["dice", "gt_empty", "pred_empty"])])
        d = d[d.metric == "dice"]
        if d.empty:
            continue
        region = panel_region(d, region_wanted)
        # The panel shows the region ranked, whether it is a region or a single label.
        vals = ds.label_map.regions.get(region) or (ds.label_map.labels[region],)
        wb = worst_best(d[d.region == region], "dice", k=k)
        # With few cases the best list repeats the worst one: show each case-model once.
        wb = wb.drop_duplicates(["model", "case"], keep="first")
        truths: dict[str, np.ndarray | None] = {}  # a case's ground truth and image are read once for all models
        images: dict[str, np.ndarray | None] = {}
        cells = []
        for r in wb.itertuples():
            f = files[(files.dataset == ds.name) & (files.case == r.case)]
            if r.case not in truths:
                gt_row = f[f.role == "ground_truth"]
                try:
                    truths[r.case] = values_mask(read_mask(gt_row.path.iloc[0], ds.mask_encoding).array, vals) \
                        if len(gt_row) else None
                except Exception:  # noqa: BLE001 - unreadable files are in the errors table already
                    truths[r.case] = None
                images[r.case] = panel_image(f) if truths[r.case] is not None else None
            pr_row = f[(f.role == "prediction") & (f.key == r.model)]
            truth = truths[r.case]
            if truth is None or pr_row.empty:
                continue
            try:
                pred = values_mask(read_mask(pr_row.path.iloc[0], ds.encoding_for(r.model)).array, vals)
            except Exception:  # noqa: BLE001 - unreadable files are in the errors table already
                continue
            title = f"{r.rank_kind} {r.rank}: {r.case}, {r.model}, Dice {r.value:.2f}"
            cells.append(panel_html(images[r.case], truth, pred, html.escape(title)))
        if cells:
            how = "chosen with --region" if region == region_wanted else "its worst region by mean Dice"
            out.append(f"<h3>{html.escape(ds.name)} ({html.escape(region)}, {how})</h3>" + "".join(cells))
    return "".join(out) or why_html("no case of the project's datasets has both a readable ground truth and a "
                                    "prediction file for the ranked cases (see the errors table)")
