"""The segmentation error matrix (AUDIT's): which ground-truth labels each model predicts as which.

``evaluate`` stores the voxel confusion matrix of every case-model once, as metric rows of region
``confusion`` named ``<gt label>-><pred label>``; nothing here re-reads images.

The background row (what the model labelled where the truth is background) is where over-segmentation shows:
:func:`over_segmentation` reports it per label as a share of the true volume, and
:func:`matrix_with_background_row` adds it to the row-normalised matrix the report draws.
"""

from __future__ import annotations

import pandas as pd

from segaudit.store.schema import CONFUSION_REGION


def error_matrix(metrics: pd.DataFrame, dataset: str | None = None, model: str | None = None,
                 case: str | None = None, normalise: bool = False, background: bool = True) -> pd.DataFrame:
    """Voxel confusion matrix (rows: ground truth, columns: prediction), summed over the selected case-models.

    ``normalise`` divides each row by its total (the fraction of each true label predicted as each label; a
    label absent from every selected ground truth gets a row of NaN). ``background=False`` drops the background
    row and column (the background-background cell dwarfs the rest in 3D).
    """
    m = metrics[metrics.region == CONFUSION_REGION]
    for col, val in (("dataset", dataset), ("model", model), ("case", case)):
        if val is not None:
            m = m[m[col] == val]
    if m.empty:
        raise ValueError("no stored error matrix for this selection (re-run segaudit evaluate)")
    pairs = m.metric.str.split("->", n=1, expand=True)
    t = pd.DataFrame({"gt": pairs[0], "pred": pairs[1], "value": m.value.to_numpy()})
    seen = list(dict.fromkeys(t["gt"]))  # stored order (label order unless the rows were re-sorted)
    order = ["background"] * ("background" in seen) + [n for n in seen if n != "background"]
    mat = t.pivot_table(index="gt", columns="pred", values="value", aggfunc="sum").reindex(index=order,
                                                                                         columns=order)
    if not background:
        mat = mat.drop(index="background", columns="background", errors="ignore")
    if normalise:
        mat = mat.div(mat.sum(axis=1).where(lambda s: s > 0), axis=0)
    mat.index.name, mat.columns.name = "ground truth", "prediction"
    return mat


def over_segmentation(metrics: pd.DataFrame, dataset: str | None = None, model: str | None = None,
                      by_case: bool = True) -> pd.DataFrame:
    """False positives of each predicted label as a share of its true volume, from the stored error matrices.

    For each label L (and ``"foreground"``: every non-background label together) of each case-model (or summed
    over cases with ``by_case=False``):

    - ``gt_volume``: voxels whose truth is L; ``pred_volume``: voxels predicted as L;
    - ``fp``: voxels predicted as L whose truth is another label or background (pred_volume - tp);
    - ``fp_background``: voxels predicted as L whose truth is background (the background row of the matrix:
      what the model labelled where there is nothing to find);
    - ``fp_share`` = fp / gt_volume and ``fp_background_share`` = fp_background / gt_volume: over-segmentation
      in units of the true volume (1.0 = the model adds as much again as the whole true structure; NaN when the
      truth is empty, where every predicted voxel is a false alarm and ``fp`` says how many).

    Counts are voxels (pixels in 2D); the shares have no unit. For the foreground row, ``fp`` counts only voxels
    whose truth is background (a label confused with another label is still foreground).
    """
    m = metrics[metrics.region == CONFUSION_REGION]
    for col, val in (("dataset", dataset), ("model", model)):
        if val is not None:
            m = m[m[col] == val]
    if m.empty:
        raise ValueError("no stored error matrix for this selection (re-run segaudit evaluate)")
    pairs = m.metric.str.split("->", n=1, expand=True)
    t = m.assign(gt=pairs[0].to_numpy(), pred=pairs[1].to_numpy())
    key = ["dataset", "case", "model"] if by_case else ["dataset", "model"]
    rows = []
    for k, g in t.groupby(key, sort=True):
        mat = g.pivot_table(index="gt", columns="pred", values="value", aggfunc="sum", fill_value=0)
        names = [n for n in dict.fromkeys(g["gt"]) if n != "background"]
        mat = mat.reindex(index=["background", *names], columns=["background", *names], fill_value=0)
        base = dict(zip(key, k, strict=True))
        for label in names:
            gt_v, pred_v, tp = mat.loc[label].sum(), mat[label].sum(), mat.at[label, label]
            fp_bg = mat.at["background", label]
            rows.append({**base, "label": label, "gt_volume": gt_v, "pred_volume": pred_v, "tp": tp,
                         "fp": pred_v - tp, "fp_background": fp_bg})
        fg_gt = mat.loc[names].to_numpy().sum()
        fg_pred = mat[names].to_numpy().sum()
        fp_bg = mat.loc["background", names].sum()
        rows.append({**base, "label": "foreground", "gt_volume": fg_gt, "pred_volume": fg_pred,
                     "tp": fg_pred - fp_bg, "fp": fp_bg, "fp_background": fp_bg})
    out = pd.DataFrame(rows)
    gt = out.gt_volume.where(out.gt_volume > 0)
    out["fp_share"] = out.fp / gt
    out["fp_background_share"] = out.fp_background / gt
    return out


def matrix_with_background_row(metrics: pd.DataFrame, dataset: str | None = None, model: str | None = None,
                               case: str | None = None) -> pd.DataFrame:
    """The error matrix for display.

    Each true label's row normalised by its true volume (the background column is the share missed), and a last row
    ``"background (FP / true volume)"``: voxels predicted as each label where the truth is background, divided by that
    label's true volume (can exceed 1: over-segmentation).

    Summed over the selected case-models. NaN where a label's truth is empty.
    """
    mat = error_matrix(metrics, dataset=dataset, model=model, case=case)
    labels = [n for n in mat.index if n != "background"]
    gt_vol = mat.loc[labels].sum(axis=1)
    rows = mat.loc[labels].div(gt_vol.where(gt_vol > 0), axis=0)
    if "background" in mat.index:
        share = mat.loc["background", labels] / gt_vol.where(gt_vol > 0)
        share["background"] = float("nan")
        rows.loc["background (FP / true volume)"] = share.reindex(rows.columns)
    rows.index.name, rows.columns.name = "ground truth", "prediction"
    return rows
