"""The segmentation error matrix (AUDIT's): which ground-truth labels each model predicts as which.

``evaluate`` stores the voxel confusion matrix of every case-model once, as metric rows of region
``confusion`` named ``<gt label>-><pred label>``; nothing here re-reads images.
"""

from __future__ import annotations

import pandas as pd

from segaudit.metrics.evaluate import CONFUSION_REGION


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
