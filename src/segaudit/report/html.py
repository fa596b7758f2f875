"""``segaudit report``: one self-contained HTML file (figures inlined as PNG data, no network) from a store.

Sections, each shown only when the store has what it needs: overview and QC, metric summary with bootstrap
CIs, per-case strip plots with quality bands, failure taxonomy, error matrices, a pairwise comparison of the
first two models of each dataset with the test explained in words, lesion volume against Dice, longitudinal
volumes, and image panels (ground truth and prediction over the image, TP/FP/FN colours) for the worst and best
cases when the project is given.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np
import pandas as pd

from segaudit.analysis.cohorts import longitudinal_volumes
from segaudit.analysis.compare import compare_models
from segaudit.analysis.error_matrix import error_matrix
from segaudit.analysis.failures import FAILURE_CLASSES, failure_counts, failure_taxonomy, worst_best
from segaudit.analysis.summary import summarize
from segaudit.metrics.evaluate import CONFUSION_REGION
from segaudit.metrics.overlap import values_mask
from segaudit.report.figures import pyplot
from segaudit.store.store import ResultsStore, atomic_write_text

CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
h1{font-size:1.6em}h2{border-bottom:2px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}td,th{border:1px solid #ddd;padding:3px 6px;
text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
img{max-width:100%}.note{color:#555;font-size:.9em}.panel{display:inline-block;margin:4px;text-align:center;
font-size:.8em}"""
SUMMARY_METRICS = ("dice", "hd95", "nsd@1mm", "lesion_f1")


def _png(fig) -> str:
    plt = pyplot()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return f'<img alt="figure" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def _table(df: pd.DataFrame, digits: int = 3) -> str:
    return df.round(digits).to_html(index=False, na_rep="–", border=0, escape=True)


def _strip_plot(metrics: pd.DataFrame, dataset: str) -> str:
    plt = pyplot()
    d = metrics[(metrics.dataset == dataset) & (metrics.metric == "dice") & (metrics.region != CONFUSION_REGION)]
    regions, models = sorted(d.region.unique()), sorted(d.model.unique())
    fig, ax = plt.subplots(figsize=(max(5, 1.1 * len(regions) * max(1, len(models))), 3))
    ax.axhspan(0, 0.4, color="#ffebee", zorder=0)
    ax.axhspan(0.4, 0.6, color="#fff8e1", zorder=0)
    ax.axhspan(0.6, 1.0, color="#e8f5e9", zorder=0)
    rng = np.random.default_rng(0)
    width = 0.8 / max(1, len(models))
    for mi, model in enumerate(models):
        for ri, region in enumerate(regions):
            v = d[(d.model == model) & (d.region == region)].value.dropna().to_numpy()
            x = ri + (mi - (len(models) - 1) / 2) * width + rng.uniform(-width / 4, width / 4, v.size)
            ax.scatter(x, v, s=12, color=f"C{mi}", label=model if ri == 0 else None, zorder=2)
    ax.set_xticks(range(len(regions)), regions)
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("Dice per case")
    ax.set_title(f"{dataset}: bands bad < 0.4 ≤ mid < 0.6 ≤ good", fontsize=10)
    if models:
        ax.legend(fontsize=8, loc="lower right")
    return _png(fig)


def _failure_bars(counts: pd.DataFrame, dataset: str) -> str:
    plt = pyplot()
    c = counts[counts.dataset == dataset]
    piv = c.pivot_table(index=["model", "region"], columns="failure", values="percent", fill_value=0)
    piv = piv.reindex(columns=[f for f in FAILURE_CLASSES if f in piv.columns])
    colours = {"good": "#2e7d32", "partial": "#f9a825", "disjoint": "#ef6c00", "gt_nonempty_pred_empty": "#c62828",
               "gt_empty_pred_nonempty": "#6a1b9a", "both_empty": "#90a4ae"}
    fig, ax = plt.subplots(figsize=(8, 0.3 * len(piv) + 1.2))
    left = np.zeros(len(piv))
    labels = [f"{m} / {r}" for m, r in piv.index]
    for col in piv.columns:
        ax.barh(labels, piv[col], left=left, color=colours.get(col, "#607d8b"), label=col.replace("_", " "))
        left += piv[col].to_numpy()
    ax.set_xlabel("% of cases")
    ax.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.25))
    return _png(fig)


def _matrix_plot(mat: pd.DataFrame, title: str) -> str:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(3.2, 2.8))
    ax.imshow(mat.to_numpy(dtype=float), cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(mat.columns)), mat.columns, rotation=45, fontsize=7)
    ax.set_yticks(range(len(mat.index)), mat.index, fontsize=7)
    for i in range(mat.shape[0]):
        for j in range(mat.shape[1]):
            v = mat.iat[i, j]
            ax.text(j, i, "–" if pd.isna(v) else f"{v:.2f}", ha="center", va="center", fontsize=7)
    ax.set_xlabel("prediction", fontsize=8)
    ax.set_ylabel("ground truth", fontsize=8)
    ax.set_title(title, fontsize=8)
    return _png(fig)


def _longitudinal_plot(t: pd.DataFrame) -> str:
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
    return _png(fig)


def _panel(image_path: str | None, gt, pred, title: str) -> str:
    """One slice (the ground truth's largest, else the prediction's) with TP/FP/FN colours over the image."""
    plt = pyplot()
    from segaudit.io.image import read_image

    g = gt.array > 0
    p = pred.array > 0
    img = None
    if image_path:
        try:
            im = read_image(image_path)
            img = im.array if not im.is_color else im.array[..., :3].mean(axis=-1)
        except Exception:  # noqa: BLE001 - a panel without its image is still informative
            img = None
    if g.ndim == 3:
        area = g.sum(axis=(0, 1)) if g.any() else p.sum(axis=(0, 1))
        k = int(np.argmax(area))
        g, p = g[:, :, k], p[:, :, k]
        img = img[:, :, k] if img is not None and img.ndim == 3 else None
        g, p = g.T[::-1], p.T[::-1]  # radiological display of an axial slice
        img = img.T[::-1] if img is not None else None
    overlay = np.zeros((*g.shape, 4))
    overlay[g & p] = (0.2, 0.8, 0.2, 0.6)   # true positive: green
    overlay[~g & p] = (0.9, 0.2, 0.2, 0.6)  # false positive: red
    overlay[g & ~p] = (0.2, 0.4, 1.0, 0.6)  # false negative: blue
    fig, ax = plt.subplots(figsize=(2.6, 2.6))
    if img is not None and img.shape == g.shape:
        ax.imshow(img, cmap="gray")
    ax.imshow(overlay)
    ax.set_axis_off()
    return f'<div class="panel">{_png(fig)}<br>{title}</div>'


def _panels(project, metrics: pd.DataFrame, k: int = 2) -> str:
    from segaudit.dataset.discover import discover
    from segaudit.io.image import read_mask

    files = discover(project).files_frame()
    out = []
    for ds in project.datasets:
        d = metrics[(metrics.dataset == ds.name) & (metrics.metric == "dice")]
        if d.empty:
            continue
        region = "WT" if (d.region == "WT").any() else sorted(d.region.unique())[0]
        wb = worst_best(d[d.region == region], "dice", k=k)
        cells = []
        for r in wb.itertuples():
            f = files[(files.dataset == ds.name) & (files.case == r.case)]
            gt_row = f[f.role == "ground_truth"]
            pr_row = f[(f.role == "prediction") & (f.key == r.model)]
            im_row = f[(f.role == "image") & f.exists]
            if gt_row.empty or pr_row.empty:
                continue
            try:
                gt = read_mask(gt_row.path.iloc[0], ds.mask_encoding)
                pred = read_mask(pr_row.path.iloc[0], ds.encoding_for(r.model))
                # The panel shows the region ranked, whether it is a region or a single label.
                vals = ds.label_map.regions.get(region) or (ds.label_map.labels[region],)
                gt.array, pred.array = values_mask(gt.array, vals), values_mask(pred.array, vals)
            except Exception:  # noqa: BLE001 - unreadable files are in the errors table already
                continue
            title = f"{r.rank_kind} {r.rank}: {r.case} {r.model} Dice {r.value:.2f}"
            cells.append(_panel(im_row.path.iloc[0] if len(im_row) else None, gt, pred, html.escape(title)))
        if cells:
            out.append(f"<h3>{html.escape(ds.name)} ({region})</h3>" + "".join(cells))
    return "".join(out)


def build_report(run_dir: str | Path, out: str | Path, project=None, title: str = "segaudit report") -> Path:
    """Write the HTML report of a results store to ``out`` (atomically) and return its path."""
    with ResultsStore(run_dir, read_only=True) as store:
        tables = set(store.tables())
        metrics = store.query("SELECT dataset, \"case\", model, region, metric, value FROM metrics") \
            if "metrics" in tables else pd.DataFrame()
        cases = store.read("cases") if "cases" in tables else pd.DataFrame()
        files = store.read("files") if "files" in tables else pd.DataFrame()
        qc = store.read("qc") if "qc" in tables else pd.DataFrame()
        feats = store.read("features") if "features" in tables else pd.DataFrame()
    parts = [f"<h1>{html.escape(title)}</h1>",
             f'<p class="note">Results store: {html.escape(str(Path(run_dir).resolve()))}. Colours in image '
             "panels: green = true positive, red = false positive, blue = false negative.</p>"]

    parts.append("<h2>Datasets and QC</h2>")
    if not cases.empty:
        ov = cases.groupby("dataset").agg(cases=("case", "nunique"),
                                          subjects=("subject", "nunique")).reset_index()
        if not files.empty:
            fc = files.groupby("dataset").agg(files=("path", "size"), missing=("exists", lambda s: int((~s).sum())))
            ov = ov.merge(fc.reset_index(), on="dataset", how="left")
        if not qc.empty:
            q = qc.pivot_table(index="dataset", columns="severity", values="check", aggfunc="size", fill_value=0)
            ov = ov.merge(q.reset_index(), on="dataset", how="left")
        parts.append(_table(ov))
    else:
        parts.append('<p class="note">No scan in this store.</p>')

    m = metrics[metrics.region != CONFUSION_REGION] if not metrics.empty else metrics
    if not m.empty:
        parts.append("<h2>Metric summary</h2><p class='note'>Mean with BCa bootstrap 95 % CI over cases; cases "
                     "where ground truth and prediction are both empty are counted apart (n_both_empty).</p>")
        s = summarize(metrics[metrics.metric.isin([*SUMMARY_METRICS, "gt_empty", "pred_empty"])], n_resamples=1000)
        parts.append(_table(s[["dataset", "model", "region", "metric", "n", "n_undefined", "n_both_empty", "mean",
                               "ci_low", "ci_high", "median", "iqr"]]))
        parts.append("<h2>Per-case Dice with quality bands</h2>")
        for ds in sorted(m.dataset.unique()):
            if (m[(m.dataset == ds)].metric == "dice").any():
                parts.append(_strip_plot(m, ds))
        try:
            tax = failure_taxonomy(m)
            counts = failure_counts(tax)
            parts.append("<h2>Failure taxonomy</h2>")
            for ds in sorted(counts.dataset.unique()):
                parts.append(f"<h3>{html.escape(ds)}</h3>" + _failure_bars(counts, ds))
        except ValueError as exc:
            parts.append(f'<p class="note">Failure taxonomy unavailable: {html.escape(str(exc))}</p>')
        conf = metrics[metrics.region == CONFUSION_REGION]
        if not conf.empty:
            parts.append("<h2>Segmentation error matrices</h2><p class='note'>Voxels of each true label (rows) "
                         "predicted as each label (columns), row-normalised, summed over cases.</p>")
            for (ds, model), _ in conf.groupby(["dataset", "model"], sort=True):
                mat = error_matrix(metrics, dataset=ds, model=model, normalise=True, background=False)
                if mat.size:
                    parts.append(f'<div class="panel">{_matrix_plot(mat, f"{ds} / {model}")}</div>')
        parts.append("<h2>Pairwise comparison</h2>")
        for ds in sorted(m.dataset.unique()):
            models = sorted(m[m.dataset == ds].model.unique())
            if len(models) < 2:
                continue
            res = compare_models(metrics, models[0], models[1], "dice", dataset=ds)
            parts.append(f"<h3>{html.escape(ds)}: {html.escape(models[1])} vs {html.escape(models[0])}</h3>")
            parts.append(_table(res[["region", "n", "mean_baseline", "mean_candidate", "mean_diff", "ci_low",
                                     "ci_high", "test", "p", "p_holm", "cohens_dz", "rank_biserial",
                                     "n_flip_to_correct", "n_flip_to_incorrect", "mcnemar_p"]], 4))
            words = "".join(f"<li>{html.escape(r.region)}: {html.escape(r.test)} because "
                            f"{html.escape(r.reason)}; p = {r.p:.3g} (Holm {r.p_holm:.3g}).</li>"
                            for r in res.itertuples())
            parts.append(f"<ul class='note'>{words}</ul>")
    if not feats.empty and not cases.empty:
        lon = longitudinal_volumes(cases, feats)
        if not lon.empty and lon.pred_volume.notna().any():
            parts.append("<h2>Longitudinal volumes</h2>" + _longitudinal_plot(lon))
            parts.append(_table(lon[["dataset", "subject", "timepoint", "model", "true_volume", "pred_volume",
                                     "relative_error", "true_growth", "pred_growth"]], 1))
    if project is not None and not m.empty:
        panels = _panels(project, m)
        if panels:
            parts.append("<h2>Worst and best cases</h2>" + panels)
    doc = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
           f"<style>{CSS}</style></head><body>{''.join(parts)}</body></html>")
    return atomic_write_text(out, doc)
