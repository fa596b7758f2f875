"""``segaudit report``: one self-contained HTML file (figures inlined as PNG data, no network) from a store.

Sections, each shown only when the store has what it needs: overview and QC, splits (with the patient-level
leakage check), metric summary with bootstrap CIs, per-case strip plots with quality bands, failure taxonomy,
error matrices, a pairwise comparison of the first two models of each dataset with the test explained in
words, a ranking of three or more models (Friedman, Nemenyi), bias (Dice against lesion size, Dice by
metadata group), agreement between models (without ground truth), longitudinal volumes, training curves (when logs
are given) and image panels (ground truth
and prediction over the image, TP/FP/FN colours) for the worst and best cases (when the project is given).

A section that cannot be drawn says why in the report instead of failing the whole report.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

import numpy as np
import pandas as pd

from segaudit.analysis.bias import covariate_columns, metric_by_group, metric_vs_feature, subgroup_tests
from segaudit.analysis.cohorts import (
    cases_with_metadata,
    lesion_volumes,
    longitudinal_volumes,
    split_leakage,
    split_overview,
)
from segaudit.analysis.compare import compare_models, mean_over_regions
from segaudit.analysis.coverage import coverage, expected_cases, failure_list
from segaudit.analysis.error_matrix import matrix_with_background_row, over_segmentation
from segaudit.analysis.failures import (
    failed_lesion_sizes,
    failure_counts,
    failure_taxonomy,
    worst_best,
)
from segaudit.analysis.image_overview import intensity_summary, intensity_table, iqr_outliers
from segaudit.analysis.minimums import MIN_BOOTSTRAP_CI, MIN_CORRELATION, MIN_GROUP
from segaudit.analysis.per_case import per_case_table
from segaudit.analysis.ranking import rank_models, ranking_table
from segaudit.analysis.summary import drop_both_empty, subject_of, summarize
from segaudit.analysis.training import read_training_log, training_summary
from segaudit.errors import SegauditError
from segaudit.io.atomic import atomic_write_text
from segaudit.metrics.evaluate import CONFUSION_REGION
from segaudit.metrics.overlap import values_mask
from segaudit.report import figures
from segaudit.report.agreement import agreement_metrics, agreement_section
from segaudit.store.store import ResultsStore

CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
h1{font-size:1.6em}h2{border-bottom:2px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}td,th{border:1px solid #ddd;padding:3px 6px;
text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
img{max-width:100%}.note{color:#555;font-size:.9em}.panel{display:inline-block;margin:4px;text-align:center;
font-size:.8em;vertical-align:top}figure.panel{width:240px}figcaption{font-size:.8em;color:#333}
.warn{color:#b71c1c;font-weight:600}nav a{margin-right:.8em;font-size:.9em}
.why{color:#6d4c41;font-style:italic}figure.panel.large{width:320px}"""
SUMMARY_METRICS = {"dice": "Dice (0–1)", "hd95": "HD95 (mm)", "nsd@1mm": "NSD at 1 mm (0–1)",
                   "lesion_f1": "lesion F1 (0–1)"}
_PANEL_SEQUENCES = {k: i for i, k in enumerate(("flair", "t2f", "t2w", "t2", "t1ce", "t1c", "t1gd", "t1"))}


def _png(fig) -> str:
    data = base64.b64encode(figures.png_bytes(fig, dpi=90)).decode()
    return f'<img alt="figure" src="data:image/png;base64,{data}">'


def _table(df: pd.DataFrame, digits: int = 3) -> str:
    """An HTML table; p-values (columns ``p``, ``p_*``, ``*_p``) in 3 significant digits, the rest rounded."""
    pcols = [c for c in df.columns if isinstance(c, str) and (c == "p" or c.startswith("p_") or c.endswith("_p"))
             and pd.api.types.is_float_dtype(df[c])]
    df = df.round({c: digits for c in df.columns if c not in pcols})  # p-values formatted unrounded (no "0")
    for col in pcols:
        df[col] = [("–" if pd.isna(v) else f"{v:.3g}") for v in df[col]]
    return df.to_html(index=False, na_rep="–", border=0, escape=True)


def _headline_region(d: pd.DataFrame) -> str:
    """The region a per-dataset figure shows: WT when the dataset has it, else its first region by name."""
    return "WT" if (d.region == "WT").any() else sorted(d.region.unique())[0]


def _panel_image(files: pd.DataFrame) -> np.ndarray | None:
    """The case's image for panels (FLAIR / T2 / contrast T1 preferred; colour images stay in colour), or None."""
    from segaudit.io.image import read_image

    im_row = files[(files.role == "image") & files.exists]
    if im_row.empty:
        return None
    # Lesions show best on FLAIR / T2 / contrast T1; otherwise the first sequence.
    im_row = im_row.assign(_p=im_row.key.str.lower().map(_PANEL_SEQUENCES).fillna(len(_PANEL_SEQUENCES)))
    try:
        im = read_image(im_row.sort_values("_p", kind="stable").path.iloc[0])
    except Exception:  # noqa: BLE001 - a panel without its image is still informative
        return None
    return im.array if not im.is_color else im.array[..., :3]


def _failure_slice(g: np.ndarray, p: np.ndarray) -> int:
    """The axial slice a 3D panel shows: the one with most wrong voxels (false positives + false negatives),
    else the ground truth's largest, else the prediction's."""
    for a in (g ^ p, g, p):
        if a.any():
            return int(np.argmax(a.sum(axis=(0, 1))))
    return g.shape[2] // 2


def _panel(img: np.ndarray | None, g: np.ndarray, p: np.ndarray, title: str) -> str:
    """One slice (3D: the one with most errors) cropped around ground truth and prediction, TP/FP/FN colours
    over the image (in colour for colour images)."""
    if g.ndim == 3:
        k = _failure_slice(g, p)
        g, p = g[:, :, k], p[:, :, k]
        img = img[:, :, k] if img is not None and img.ndim == 3 else None
        g, p = g.T[::-1], p.T[::-1]  # radiological display of an axial slice
        img = img.T[::-1] if img is not None else None
    shown = img is not None and img.shape[:2] == g.shape
    fig = figures.overlay_panel(img if shown else None, g, p, crop=True)
    rows, cols = figures.crop_box(g, p)
    where = f"<br><span class='note'>rows {rows.start}–{rows.stop - 1}, columns {cols.start}–{cols.stop - 1}</span>"
    note = "" if shown else "<br><span class='note'>(no image file in the project: masks only)</span>"
    return f'<figure class="panel large">{_png(fig)}<figcaption>{title}{where}{note}</figcaption></figure>'


def panel_region(d: pd.DataFrame, requested: str | None = None) -> str:
    """The region the panels of a dataset show: ``requested`` when the dataset has it, else its worst region
    (lowest mean Dice over cases and models; undefined values skipped)."""
    if requested is not None and (d.region == requested).any():
        return requested
    return str(d.groupby("region").value.mean().sort_values(kind="stable").index[0])


def _panels(project, metrics: pd.DataFrame, k: int = 2, region: str | None = None) -> str:
    from segaudit.dataset.discover import discover
    from segaudit.io.image import read_mask

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
                images[r.case] = _panel_image(f) if truths[r.case] is not None else None
            pr_row = f[(f.role == "prediction") & (f.key == r.model)]
            if truths[r.case] is None or pr_row.empty:
                continue
            try:
                pred = values_mask(read_mask(pr_row.path.iloc[0], ds.encoding_for(r.model)).array, vals)
            except Exception:  # noqa: BLE001 - unreadable files are in the errors table already
                continue
            title = f"{r.rank_kind} {r.rank}: {r.case}, {r.model}, Dice {r.value:.2f}"
            cells.append(_panel(images[r.case], truths[r.case], pred, html.escape(title)))
        if cells:
            how = "chosen with --region" if region == region_wanted else "its worst region by mean Dice"
            out.append(f"<h3>{html.escape(ds.name)} ({html.escape(region)}, {how})</h3>" + "".join(cells))
    return "".join(out) or _why("no case of the project's datasets has both a readable ground truth and a "
                                "prediction file for the ranked cases (see the errors table)")


def _note(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


def _overview(cases: pd.DataFrame, files: pd.DataFrame, qc: pd.DataFrame, imported: bool = False) -> str:
    if cases.empty:
        return _why("no scan in this store" + (": its tables were imported from AUDIT, which has no file list or "
                                               "QC (run segaudit scan on the data folder for them)" if imported
                                               else " (run segaudit scan)"))
    ov = cases.groupby("dataset").agg(cases=("case", "nunique"), subjects=("subject", "nunique")).reset_index()
    ov["subjects"] = [n if n else "–" for n in ov.subjects]  # 0 means no subject ids, not zero subjects
    if not files.empty:
        fc = files.groupby("dataset").agg(files=("path", "size"), missing=("exists", lambda s: int((~s).sum())))
        ov = ov.merge(fc.reset_index(), on="dataset", how="left")
    if not qc.empty:
        q = qc.pivot_table(index="dataset", columns="severity", values="check", aggfunc="size", fill_value=0)
        ov = ov.merge(q.reset_index(), on="dataset", how="left")
        ov[list(q.columns)] = ov[list(q.columns)].fillna(0).astype(int)  # no QC finding is 0 findings
    return _table(ov)


def _split_columns(meta: pd.DataFrame, project) -> dict[str, str]:
    """Dataset -> the metadata column holding its split (the project's ``split_column``, else ``split``)."""
    out = {}
    for ds, g in meta.groupby("dataset"):
        col = "split"
        if project is not None:
            spec = next((d.metadata for d in project.datasets if d.name == ds), None)
            col = spec.split_column if spec is not None else col
        if col in g.columns and g[col].notna().any():
            out[ds] = col
    return out


def _splits(meta: pd.DataFrame, feats: pd.DataFrame, project) -> str:
    """``meta``: the cases with their metadata expanded into columns (:func:`cases_with_metadata`)."""
    parts = []
    if not _split_columns(meta, project):
        return _why("no split column in the cases' metadata: add a 'split' column to the dataset's metadata "
                    "table or name yours with metadata: split_column in the project file")
    for ds, col in _split_columns(meta, project).items():
        c = meta[meta.dataset == ds]
        ov = split_overview(c, feats if not feats.empty else pd.DataFrame(
            columns=["dataset", "case", "model", "source", "group", "feature", "value"]), col)
        leak = split_leakage(c, col)
        parts.append(f"<h3>{html.escape(ds)} (column {html.escape(col)})</h3>" + _table(ov))
        if leak.empty:
            parts.append(_note("No subject has cases in two splits (no patient-level leakage)."))
        else:
            parts.append(f"<p class='warn'>Patient-level leakage: {len(leak)} subject(s) have cases in more than "
                         "one split.</p>" + _table(leak))
    return "".join(parts)


def _metric_title(metric: str, dataset: str, units: pd.DataFrame | None) -> str:
    """Column title of a summary metric with the unit stored for it in this dataset (HD95 (px) for photos)."""
    title = SUMMARY_METRICS[metric]
    if units is None or units.empty or metric not in ("hd95", "nsd@1mm"):
        return title
    u = units[(units.dataset == dataset) & (units.metric == "hd95")].unit.dropna().unique()
    if not len(u):
        return title
    if metric == "nsd@1mm":  # the tolerance is in the grid's length unit: 1 px on photos
        return "NSD at 1 px (0–1)" if list(u) == ["px"] else title
    return f"HD95 ({'/'.join(sorted(u))})"


def stored_units(store: ResultsStore) -> pd.DataFrame:
    """(dataset, metric, unit) of a store's metrics; empty for stores written before units were recorded."""
    cols = set(store.query("SELECT column_name FROM information_schema.columns WHERE table_name = 'metrics'")
               .column_name)
    return store.units() if "unit" in cols else pd.DataFrame(columns=["dataset", "metric", "unit"])


def penalty_notes(runs: pd.DataFrame) -> dict[str, str]:
    """Dataset -> 'one empty mask scores P unit (how P was chosen)' from the latest evaluate run that says."""
    import json

    out: dict[str, str] = {}
    if runs.empty:
        return out
    for summary in runs[runs.step == "evaluate"].sort_values("started_at").summary.dropna():
        try:
            pen = json.loads(summary).get("empty_distance") or {}
        except (TypeError, ValueError):
            continue
        for ds, p in pen.items():
            if p.get("penalty") is not None:
                out[ds] = f"{p['penalty']:.1f} {p['unit']} ({p['source']})"
    return out


def _summary(metrics: pd.DataFrame, cov: pd.DataFrame | None = None, cases: pd.DataFrame | None = None,
             units: pd.DataFrame | None = None, penalties: dict[str, str] | None = None) -> str:
    """One compact table per dataset: model × region rows, coverage, 'mean [CI]' per metric ('n too small' below
    the minimum); the CI resamples subjects when cases share one (``cases``: the store's cases table).

    A model that did not score every expected case is flagged in red with its missing and failed counts. HD95
    is titled with the unit stored for the dataset (px for photos); the dataset's empty-mask penalty is stated.
    """
    s = summarize(metrics[metrics.metric.isin([*SUMMARY_METRICS, "gt_empty", "pred_empty"])], n_resamples=1000,
                  subjects=subject_of(cases), coverage=cov)
    if s.empty:
        return _note("No summary metric (Dice, HD95, NSD, lesion F1) in this store.")
    s = s.assign(cell=[("–" if pd.isna(r.mean) else f"{r.mean:.3f}"
                        + (f" [{r.ci_low:.3f}, {r.ci_high:.3f}]" if pd.notna(r.ci_low)
                           else " (n too small for a CI)" if r.ci_note else ""))
                       for r in s.itertuples()])
    parts = []
    for ds, g in s.groupby("dataset", sort=True):
        wide = g.pivot_table(index=["model", "region"], columns="metric", values="cell", aggfunc="first")
        wide = wide.reindex(columns=[m for m in SUMMARY_METRICS if m in wide.columns])
        wide.columns = [_metric_title(c, ds, units) for c in wide.columns]
        d = g[g.metric == "dice"] if (g.metric == "dice").any() else g
        counts = d.groupby(["model", "region"]).agg(n=("n", "max"), both_empty=("n_both_empty", "max"),
                                                    undefined=("n_undefined", "max"),
                                                    resampled=("resampled", "first"),
                                                    units=("n_clusters", "max"))
        warn = ""
        if cov is not None and len(cov):
            c = cov[cov.dataset == ds].set_index("model")
            cols = {"n_expected": "expected", "n_scored": "scored", "n_missing": "missing", "n_failed": "failed"}
            cc = c[list(cols)].rename(columns=cols)
            counts = counts.join(cc, on="model")
            counts = counts[["expected", "scored", "missing", "failed", "n", "both_empty", "undefined", "resampled",
                             "units"]]
            bad = c[~c.complete.astype(bool)]
            warn = "".join(
                f"<p class='warn'>{html.escape(str(m))} scored {int(r.n_scored)} of {int(r.n_expected)} expected "
                f"cases ({int(r.n_missing)} missing, {int(r.n_failed)} failed: see 'Failed and missing "
                "predictions'). Its means cover only the scored cases; the comparison and the ranking score the "
                "others as empty predictions.</p>" for m, r in bad.iterrows())
        pen = (penalties or {}).get(ds)
        note = _note(f"Distance when exactly one mask is empty: {pen}, the same for every case "
                     "of the dataset.") if pen else ""
        table = _table(counts.join(wide).reset_index())
        parts.append(f"<h3>{html.escape(ds)}</h3>" + warn + note + table)
    return "".join(parts)


def _strips(m: pd.DataFrame) -> str:
    """Per-case Dice strip plots; both-empty cases are set apart (not drawn at 1.0) and counted."""
    kept, apart = drop_both_empty(m[m.metric.isin(["dice", "gt_empty", "pred_empty"])])
    parts = []
    for ds in sorted(kept[kept.metric == "dice"].dataset.unique()):
        a = apart[apart.dataset == ds]
        note = "" if a.empty else _note("Not drawn (both ground truth and prediction empty, set apart): " + ", ".join(
            f"{r.model}/{r.region} {int(r.n_both_empty)}" for r in a.itertuples()) + ".")
        parts.append(_png(figures.strip_plot(kept, ds)) + note)
    return "".join(parts)


def _failed_predictions(cov: pd.DataFrame, errors: pd.DataFrame) -> str:
    """Each model's missing and failed cases, with the file and the reason from the ``errors`` table."""
    bad = cov[~cov.complete.astype(bool)] if len(cov) else cov
    fails = failure_list(errors)
    if bad.empty and fails.empty:
        return ""
    parts = [_note("Cases a model was expected to score (its dataset has their ground truth) but did not: the "
                   "prediction is missing, or could not be read or scored. The reason comes from the errors "
                   "table.")]
    if len(bad):
        parts.append(_table(bad[["dataset", "model", "n_expected", "n_scored", "n_missing", "n_failed",
                                 "missing_cases", "failed_cases"]]))
    if len(fails):
        parts.append(_table(fails))
    return "".join(parts)


def _comparison_words(r, models: tuple[str, str]) -> str:
    base, cand = models
    if not np.isfinite(r.p):
        return (f"<li><b>{html.escape(r.region)}</b>: mean Dice {html.escape(cand)} {r.mean_candidate:.3f} vs "
                f"{html.escape(base)} {r.mean_baseline:.3f} (difference {r.mean_diff:+.3f}, n = {r.n}); no test: "
                f"{html.escape(r.reason)}.</li>")
    verdict = ("a significant difference" if r.p_holm < 0.05 else "no significant difference") \
        + " at the 0.05 level after Holm's correction across regions"
    ci = f"95 % CI {r.ci_low:+.3f} to {r.ci_high:+.3f}" if np.isfinite(r.ci_low) else f"CI: {r.ci_note}"
    unit = ", subjects: each subject's cases averaged first" if r.unit == "subjects" else ""
    return (f"<li><b>{html.escape(r.region)}</b>: mean Dice {html.escape(cand)} {r.mean_candidate:.3f} vs "
            f"{html.escape(base)} {r.mean_baseline:.3f} (difference {r.mean_diff:+.3f}, {html.escape(ci)}, "
            f"n = {r.n}{unit}). We used the {html.escape(r.test)} because "
            f"{html.escape(r.reason)}; p = {r.p:.3g}, Holm p = {r.p_holm:.3g}: {verdict}. Cohen's d_z = "
            f"{r.cohens_dz:.2f}, rank-biserial = {r.rank_biserial:.2f}; {r.n_flip_to_correct} case(s) went from "
            f"fail to pass at Dice {r.pass_threshold:g} and {r.n_flip_to_incorrect} from pass to fail "
            f"(exact McNemar p = {r.mcnemar_p:.3g}).</li>")


#: Up to this many models, the report compares every pair; beyond, the top-ranked against each other.
ALL_PAIRS_MAX_MODELS = 4


def _why(text: str) -> str:
    """A section (or part) that cannot be drawn: why, with the advice that applies."""
    return f'<p class="why">Not drawn: {html.escape(text)}.</p>'


def default_pairs(d: pd.DataFrame) -> list[tuple[str, str]]:
    """The (baseline, candidate) pairs the report compares in one dataset's Dice rows when the user names none.

    Up to :data:`ALL_PAIRS_MAX_MODELS` models: every pair (sorted by name). Beyond: the top-ranked model (the
    highest mean over cases of the per-case mean over regions) as baseline against each other model.
    """
    models = sorted(d.model.unique())
    if len(models) <= ALL_PAIRS_MAX_MODELS:
        return [(a, b) for i, a in enumerate(models) for b in models[i + 1:]]
    per_case = mean_over_regions(d)
    top = per_case.groupby("model").value.mean().sort_values(ascending=False, kind="stable").index[0]
    return [(top, m) for m in models if m != top]


def _comparisons(m: pd.DataFrame, metrics: pd.DataFrame, pairs: list[tuple[str, str]] | None = None,
                 expected: pd.DataFrame | None = None, cases: pd.DataFrame | None = None) -> str:
    parts, why = [], []
    dice = m[m.metric == "dice"]
    for ds in sorted(dice.dataset.unique()):
        d = dice[dice.dataset == ds]
        have = set(d.model)
        if pairs:
            todo = [pr for pr in pairs if set(pr) <= have]
            if not todo:
                why.append(f"{ds}: none of the requested pairs ({', '.join(f'{a}:{b}' for a, b in pairs)}) has "
                           f"both models here (models: {', '.join(sorted(have))})")
                continue
        else:
            todo = default_pairs(d)
            if not todo:
                why.append(f"{ds}: one model only ({', '.join(sorted(have))}); a comparison needs two scored on "
                           "the same cases")
                continue
        if not pairs and len(have) > ALL_PAIRS_MAX_MODELS:
            parts.append(_note(f"{ds}: {len(have)} models, so the top-ranked ({todo[0][0]}, highest mean Dice over "
                               "regions) against each other; name other pairs with --compare A:B."))
        for base, cand in todo:
            res = compare_models(metrics, base, cand, "dice", dataset=ds, missing="worst", expected=expected,
                                 subjects=subject_of(cases))
            parts.append(f"<h3>{html.escape(ds)}: {html.escape(cand)} vs {html.escape(base)}</h3>")
            first = res.iloc[0]
            parts.append(_note(f"Missing-prediction policy 'worst': a case a model lacks is scored as an empty "
                               f"prediction (cases scored so: {base} {int(first.n_imputed_baseline)}, {cand} "
                               f"{int(first.n_imputed_candidate)}). Cases where both models are both-empty are "
                               "set apart (n_both_empty)."))
            parts.append(_table(res[["region", "n", "unit", "n_both_empty", "mean_baseline", "mean_candidate",
                                     "mean_diff", "ci_low", "ci_high", "test", "p", "p_holm", "cohens_dz",
                                     "rank_biserial", "n_flip_to_correct", "n_flip_to_incorrect", "mcnemar_p",
                                     "sign_p"]], 4))
            words = "".join(_comparison_words(r, (base, cand)) for r in res.itertuples())
            parts.append(f"<ul class='note'>{words}</ul>")
            parts += [f"<p class='warn'>{html.escape(f'{r.region}: {r.note}')}</p>" for r in res.itertuples()
                      if r.note]
    if pairs:
        known = set(dice.model)
        for a, b in pairs:
            if not {a, b} <= known:
                why.append(f"--compare {a}:{b}: no Dice for {', '.join(x for x in (a, b) if x not in known)} in this "
                           f"store (models: {', '.join(sorted(known))})")
    return "".join(parts) + "".join(_why(w) for w in why) if parts or why else \
        _why("no Dice in this store, so no model can be compared")


def _ranking(m: pd.DataFrame, expected: pd.DataFrame | None = None) -> str:
    parts, why = [], []
    for ds in sorted(m.dataset.unique()):
        d = m[(m.dataset == ds) & (m.metric == "dice")]
        if d.model.nunique() < 3:
            why.append(f"{ds}: {d.model.nunique()} model(s); a ranking needs three or more scored on the same cases")
            continue
        wide, info = ranking_table(m[m.dataset == ds], ds, "dice", missing="worst", expected=expected)
        ranks, fried, post = rank_models(wide, n_resamples=500)
        if fried["n"] < 2:
            why.append(f"{ds}: {d.model.nunique()} models but {fried['n']} case(s) scored by all of them; a "
                       "ranking needs at least two shared cases")
            continue
        parts.append(f"<h3>{html.escape(ds)}</h3>")
        if fried["note"]:
            parts.append(_note(f"Per case, Dice averaged over regions; {fried['n']} complete cases, {fried['k']} "
                               f"models: mean ranks only, no Friedman test, critical difference or rank stability "
                               f"({fried['note']})."))
            parts.append(_table(ranks, 3))
            continue
        parts.append(_note(f"Per case, Dice averaged over regions (AUDIT's per-subject aggregation); "
                           f"{fried['n']} complete cases, {fried['k']} models; {info['policy']}; "
                           f"{info['n_both_empty']} region value(s) where every model is both-empty set apart. "
                           f"Friedman chi² = {fried['statistic']:.2f}, p = {fried['p']:.3g}. Nemenyi critical "
                           f"difference of mean ranks: {fried['critical_difference']:.2f}. Rank stability = share "
                           "of 500 bootstrap resamples of the cases in which a model keeps its place."))
        parts.append(_png(figures.rank_plot(ranks, fried["critical_difference"], f"{ds}: mean ranks")))
        parts.append(_table(ranks, 3) + _table(post, 4))
    return "".join(parts) + "".join(_why(w) for w in why)


def _per_case(m: pd.DataFrame) -> str:
    """The per-case wide table of each dataset (:func:`segaudit.analysis.per_case.per_case_table`), folded."""
    t = per_case_table(m)
    if t.empty:
        return _why("no Dice, HD95 or volume in this store")
    parts = [_note("One row per case and model: Dice averaged over regions, then each region's Dice, HD95 (mm; "
                   "hd_audit: AUDIT's own HAUS, voxels), true and predicted volumes (mm³, mm² in 2D). The same "
                   "table as `segaudit export RUN --format wide`.")]
    for ds, g in t.groupby("dataset", sort=True):
        g = g.drop(columns="dataset").dropna(axis=1, how="all").sort_values(["dice mean", "case"]
                                                                             if "dice mean" in g else ["case"])
        parts.append(f"<details><summary>{html.escape(str(ds))}: {g.case.nunique()} cases × "
                     f"{g.model.nunique()} model(s), worst first</summary>{_table(g, 3)}</details>")
    return "".join(parts)


def _declared_covariates(project, ds: str) -> list[str] | None:
    """The dataset's ``metadata: {covariates: [...]}`` when the project declares them, else None."""
    if project is None:
        return None
    spec = next((d.metadata for d in project.datasets if d.name == ds), None)
    return spec.covariates if spec is not None else None


def _intensities(feats: pd.DataFrame) -> str:
    """Per-sequence intensity distributions across cases and sites (datasets)."""
    t = intensity_table(feats) if not feats.empty else pd.DataFrame()
    if t.empty:
        return _why("no intensity features in this store: run segaudit features (group intensity) on a project "
                    "with images, or import AUDIT's feature table with import-audit --features")
    parts = [_note("Each case's intensity statistics of each sequence (segaudit: over the image's foreground; "
                   "AUDIT: over voxels > 0), one box per dataset (site): median, quartiles, 1.5 IQR whiskers. A "
                   "site whose box sits apart was acquired or normalised differently.")]
    for origin, g in t.groupby("origin", sort=True):
        parts.append(_png(figures.intensity_boxes(g, "mean", f"per-case mean intensity ({origin} features)")))
        summ = intensity_summary(g)
        summ = summ[summ.stat.isin(["mean", "p10", "median", "p90"])]
        wide = summ.assign(cell=[f"{r.median:.4g} [{r.q1:.4g}, {r.q3:.4g}]" for r in summ.itertuples()])
        wide = wide.pivot_table(index=["dataset", "sequence"], columns="stat", values="cell", aggfunc="first")
        wide = wide.reindex(columns=[c for c in ("p10", "mean", "median", "p90") if c in wide.columns])
        cases = summ.groupby(["dataset", "sequence"]).cases.max()
        parts.append(_note(f"{origin}: median [quartiles] over cases of each per-case statistic.")
                     + _table(wide.join(cases).reset_index()))
    return "".join(parts)


def _outliers(feats: pd.DataFrame, top: int = 25) -> str:
    """Cases whose image or ground-truth features are outliers by the IQR rule."""
    own = feats[feats.model.fillna("").eq("")] if not feats.empty else feats
    if own.empty:
        return _why("no image or ground-truth features in this store (predicted volumes are not judged): run "
                    "segaudit features, or import AUDIT's feature table with import-audit --features")
    o = iqr_outliers(own)
    if o.empty:
        return _note("No feature value of any case lies outside Q1 − 1.5 IQR to Q3 + 1.5 IQR of its dataset "
                     "(features with fewer than 8 cases are not judged).")
    per_case = (o.groupby(["dataset", "case"]).agg(outlying_features=("feature", "size"))
                .reset_index().sort_values("outlying_features", ascending=False, kind="stable"))
    return (_note("Tukey's rule per dataset and feature: a value below Q1 − 1.5 IQR or above Q3 + 1.5 IQR of the "
                  "dataset's cases is an outlier (features with fewer than 8 cases are not judged). Cases with "
                  "the most outlying features first; then the farthest values (beyond the fence, in IQRs).")
            + _table(per_case.head(top)) + _table(o.head(top), 4))


def _bias(m: pd.DataFrame, feats: pd.DataFrame, meta: pd.DataFrame, project=None,
          units: pd.DataFrame | None = None) -> str:
    parts = []
    dice = m[m.metric == "dice"]
    vols = lesion_volumes(feats) if not feats.empty else pd.DataFrame(columns=["dataset", "case", "region",
                                                                                "volume"])
    for ds in sorted(dice.dataset.unique()):
        d = dice[dice.dataset == ds]
        region = _headline_region(d)
        d = d[d.region == region]
        figs, notes, trend, tests = [], [], [], []
        v = vols[(vols.dataset == ds) & (vols.region == region) & (vols.volume > 0)]
        ds_meta = meta[meta.dataset == ds].reset_index(drop=True) if not meta.empty else meta
        covs, excluded = covariate_columns(ds_meta, _declared_covariates(project, ds)) if not ds_meta.empty \
            else ({}, pd.DataFrame(columns=["column", "reason"]))
        for model in sorted(d.model.unique()):
            dm = d[d.model == model][["case", "value"]].rename(columns={"value": "metric"})
            if len(ds_meta) and ds_meta.subject.notna().any():  # cases of one subject are resampled together
                dm = dm.merge(ds_meta[["case", "subject"]], on="case", how="left")
                dm["subject"] = dm.subject.fillna("case:" + dm.case)
            t = dm.merge(v[["case", "volume"]], on="case")
            if len(t):  # metric_vs_feature resamples subjects when t has them
                res = metric_vs_feature(t.assign(feature=np.log10(t.volume)), n_resamples=1000)
                if np.isfinite(res["spearman_rho"]):
                    figs.append(_png(figures.bias_scatter(t, res, f"{ds} / {model} / {region}",
                                                            _volume_units(None if units is None else
                                                                          units[units.dataset == ds]))))
                trend.append({"model": model, "region": region, "n": res["n"], "spearman_rho": res["spearman_rho"],
                              "ci_low": res["ci_low"], "ci_high": res["ci_high"], "p": res["p"],
                              "resampled": res.get("resampled", "cases"), "note": res["note"] or res["ci_note"]})
            if not covs:
                continue
            st = subgroup_tests(dm, ds_meta, covs, n_resamples=1000)
            tests.append(st.assign(model=model, region=region))
            for col, (kind, g) in covs.items():
                if kind != "categorical":
                    continue
                gt = dm.merge(pd.DataFrame({"case": ds_meta.case, "group": g.to_numpy()}), on="case")
                table, test = metric_by_group(gt, n_resamples=1000)
                if test["groups"] < 2:
                    continue
                row = st[st.covariate == col].iloc[0]
                figs.append(_png(figures.group_plot(table, test["overall_mean"], f"{ds} / {model} / {region} by {col}: "
                                        f"Kruskal–Wallis p = {test['p']:.2g} (Holm {row.p_holm:.2g})")))
                flagged = table[table.differs_from_overall].group.astype(str).tolist()
                if flagged:
                    notes.append(f"{model}, by {col}: the CI of {', '.join(flagged)} excludes the overall mean "
                                 f"{test['overall_mean']:.3f}.")
        body = "".join(f'<div class="panel">{f}</div>' for f in figs)
        if trend:
            body += _table(pd.DataFrame(trend))
        if tests:
            body += _note("Subgroup tests, one per covariate (Kruskal–Wallis for categories, Spearman for numbers), "
                          "Holm-corrected across the covariates:") + _table(
                pd.concat(tests, ignore_index=True)[["model", "region", "covariate", "kind", "test", "n", "groups",
                                                     "statistic", "p", "p_holm", "note"]])
        if len(excluded):
            body += _note("Metadata columns not used as subgroups: " + "; ".join(
                f"{r.column} ({r.reason})" for r in excluded.itertuples()) + ".")
        body += "".join(f"<p class='warn'>{html.escape(n)}</p>" for n in notes)
        if figs or trend or tests:
            parts.append(f"<h3>{html.escape(ds)} ({html.escape(region)})</h3>" + body)
    if not parts:
        if vols.empty:
            return _why("no true lesion sizes in this store: run segaudit features (group lesion), or import "
                        "AUDIT's feature table (its lesion_size_* columns) with import-audit --features")
        return _why("no model and region has 5 or more cases with a true lesion size and a Dice, and no metadata "
                    "column groups the cases (2–12 groups)")
    return _note("Dice against the true lesion size (cases with a lesion; Spearman's rho with a bootstrap CI, p "
                 f"tests for a monotone trend; LOWESS on log size; at least {MIN_CORRELATION} cases) and Dice by "
                 "metadata covariate (declared in the project's metadata: covariates, or columns that look like "
                 f"one; groups of at least {MIN_GROUP} cases; red: the group's bootstrap CI excludes the overall "
                 "mean).") + "".join(parts)


def _training(logs: dict[str, str | Path]) -> str:
    frames, errors = [], []
    for model, path in logs.items():
        try:
            frames.append(read_training_log(path, model))
        except SegauditError as exc:
            errors.append(str(exc))
    parts = [f"<p class='warn'>Training log skipped: {html.escape(e)}</p>" for e in errors]
    if frames:
        log = pd.concat(frames, ignore_index=True)
        parts.insert(0, _note("Solid: training, dashed: validation; star: best validation epoch; Dice-like curves "
                              "on the bad/mid/good bands.") + _png(figures.training_plot(log))
                     + _table(training_summary(log), 4))
    return "".join(parts)


def _imported_datasets(store: ResultsStore) -> set[str]:
    """Datasets whose metrics came from ``segaudit import-audit`` (AUDIT tables: no files behind them)."""
    tables = set(store.tables())
    if not {"metrics", "runs"} <= tables:
        return set()
    q = store.query("SELECT DISTINCT m.dataset FROM metrics m JOIN runs r USING (run_id) WHERE r.step = 'import-audit'")
    return set(q.dataset)


def _no_metrics_why(imported_features: bool) -> str:
    return _why("no metric in this store, so no summary, comparison, ranking or failure analysis: " + (
        "the AUDIT tables imported are feature tables only (add AUDIT's metric table with import-audit "
        "--metrics)" if imported_features else "the project has no ground truth to score against, or segaudit "
        "evaluate has not run (give ground_truth: in the project and run segaudit evaluate)")
        + "; the image sections below still describe the data")


#: Marks a file as a segaudit report: only such a file may be replaced (with ``force``).
GENERATOR = '<meta name="generator" content="segaudit report">'


def check_report_target(out: str | Path, run_dir: str | Path, force: bool = False) -> None:
    """Refuse to write a report over a file segaudit did not write as a report.

    Raises :class:`SegauditError` when ``out`` is a folder, is the results store or lies inside it, is an existing
    file that is not a segaudit report (no :data:`GENERATOR` mark in its first 4 kB), or is an existing report
    and ``force`` is not set.
    """
    out, run = Path(out), Path(run_dir)
    store_file = (run / "segaudit.duckdb").resolve()
    if out.resolve() == store_file or out.resolve().parent == store_file:
        raise SegauditError(f"{out}: is the results store; choose another --out")
    if out.is_dir():
        raise SegauditError(f"{out}: is a folder; --out names the HTML file to write")
    if not out.exists():
        return
    with open(out, "rb") as f:
        head = f.read(4096).decode("utf-8", "replace")
    if GENERATOR not in head:
        raise SegauditError(f"{out}: exists and is not a segaudit report; refusing to overwrite it (choose another "
                            "--out)")
    if not force:
        raise SegauditError(f"{out}: a report already exists (use --force to replace it)")


def build_report(run_dir: str | Path, out: str | Path, project=None, title: str = "segaudit report",
                 training_logs: dict[str, str | Path] | None = None,
                 compare: list[tuple[str, str]] | None = None, region: str | None = None,
                 force: bool = False) -> Path:
    """Write the HTML report of a results store to ``out`` (atomically) and return its path.

    An existing ``out`` is replaced only when it is a segaudit report and ``force`` is set; any other file (the
    project file, an image, the results store) is never overwritten (:func:`check_report_target`).

    ``project`` (a :class:`~segaudit.dataset.project.ProjectConfig`) adds image panels of the worst and best
    cases and the declared split columns; ``training_logs`` maps a model name to a training-log CSV (see
    :func:`segaudit.analysis.training.read_training_log`). ``compare`` lists (baseline, candidate) model pairs
    to compare (default :func:`default_pairs`); ``region`` is the region the panels show (default: each
    dataset's worst). Every section is shown; one whose input is missing says why and what would provide it,
    one that fails says so, and the rest of the report is still written.
    """
    check_report_target(out, run_dir, force)
    with ResultsStore(run_dir, read_only=True) as store:
        tables = set(store.tables())
        metrics = store.query("SELECT dataset, \"case\", model, region, metric, value FROM metrics") \
            if "metrics" in tables else pd.DataFrame()
        cases = store.read("cases") if "cases" in tables else pd.DataFrame()
        files = store.read("files") if "files" in tables else pd.DataFrame()
        qc = store.read("qc") if "qc" in tables else pd.DataFrame()
        feats = store.read("features") if "features" in tables else pd.DataFrame()
        lesions = store.read("lesions") if "lesions" in tables else pd.DataFrame()
        errors = store.read("errors") if "errors" in tables else pd.DataFrame()
        units = stored_units(store) if "metrics" in tables else None
        penalties = penalty_notes(store.read("runs")) if "runs" in tables else {}
        imported = _imported_datasets(store)
        imported_features = "runs" in tables and not store.query(
            "SELECT 1 FROM runs WHERE step = 'import-audit' LIMIT 1").empty
    m = metrics[metrics.region != CONFUSION_REGION] if not metrics.empty else metrics
    agreement = agreement_metrics(m)
    m = m.drop(agreement.index)  # model-vs-model rows (segaudit agree) never enter the ground-truth sections
    cov = coverage(m, errors, files) if not m.empty else pd.DataFrame()
    expected = expected_cases(m, errors, files) if not m.empty else None
    meta = cases_with_metadata(cases) if not cases.empty else cases  # metadata JSON parsed once for all sections
    has_dice = not m.empty and (m.metric == "dice").any()
    sections: list[tuple[str, object]] = [("Datasets and QC", lambda: _overview(cases, files, qc, imported_features))]
    sections.append(("Splits", lambda: _splits(meta, feats, project) if not cases.empty else
                     _why("no cases table in this store (run segaudit scan)")))
    if not m.empty:
        sections += [
            ("Metric summary", lambda: _note("Mean with BCa bootstrap 95 % CI over cases, or over subjects when "
                                             "cases share a subject (slices, time points: resampled = subjects, "
                                             "units = subjects resampled); no CI below "
                                             f"{MIN_BOOTSTRAP_CI} units (n too small). Cases where ground truth "
                                             "and prediction are both empty are counted apart (both_empty) and "
                                             "left out; undefined values are counted, never averaged.")
             + _summary(metrics, cov, cases, units, penalties)),
            ("Failed and missing predictions", lambda: _failed_predictions(cov, errors)
             or _why("every model scored every expected case, so there is no failure to list")),
            ("Per-case Dice with quality bands", lambda: _strips(m) or _why("no Dice in this store")),
            ("Per-case table", lambda: _per_case(m)),
            ("Failure taxonomy", lambda: _failures(m, lesions, bool(imported), units)),
            ("Segmentation error matrices", lambda: _error_matrices(metrics, bool(imported))),
            ("Pairwise comparison", lambda: _comparisons(m, metrics, compare, expected, cases)),
            ("Model ranking", lambda: _ranking(m, expected) if has_dice else _why("no Dice in this store")),
            ("Bias: lesion size and subgroups", lambda: _bias(m, feats, meta, project, units)),
        ]
    else:
        sections.append(("Metrics", lambda: _no_metrics_why(imported_features)))
    if not agreement.empty:
        sections.append(("Agreement between models (no ground truth needed)", lambda: agreement_section(agreement)))
    sections += [("Image intensities by sequence and site", lambda: _intensities(feats)),
                 ("Feature outliers", lambda: _outliers(feats))]
    sections.append(("Longitudinal volumes", lambda: _longitudinal(cases, feats, units) if not cases.empty and
                     not feats.empty else _why("no cases or no features in this store: longitudinal volumes need "
                                               "subjects with time points and lesion volumes")))
    sections.append(("Training curves", lambda: _training(training_logs) if training_logs else
                     _why("no training log given (segaudit report --training-log MODEL=CSV)")))
    sections.append(("Worst and best cases", lambda: _worst_best_section(project, m, imported, region)))
    body = []
    for name, make in sections:
        try:
            content = make()
        except Exception as exc:  # noqa: BLE001 - one section's failure must not cost the whole report
            content = f"<p class='warn'>This section could not be drawn: {html.escape(str(exc))}</p>"
        body.append((name, content or _why("nothing in this store for this section")))
    anchor = {name: f"s{i}" for i, (name, _) in enumerate(body)}
    nav = "<nav>" + "".join(f'<a href="#{anchor[n]}">{html.escape(n)}</a>' for n, _ in body) + "</nav>"
    parts = [f"<h1>{html.escape(title)}</h1>",
             _note(f"Results store: {Path(run_dir).resolve()}."), nav]
    parts += [f'<h2 id="{anchor[n]}">{html.escape(n)}</h2>{c}' for n, c in body]
    doc = (f"<!DOCTYPE html><html><head><meta charset='utf-8'>{GENERATOR}<title>{html.escape(title)}</title>"
           f"<style>{CSS}</style></head><body>{''.join(parts)}</body></html>")
    return atomic_write_text(out, doc)


def _volume_units(units: pd.DataFrame | None) -> str:
    """'mm³ (mm² in 2D)', or the units the store really holds for gt_volume ('px2' for photos)."""
    if units is None or units.empty:
        return "mm³ (mm² in 2D)"
    u = sorted(units[units.metric == "gt_volume"].unit.dropna().unique())
    return ", ".join(u) if u else "mm³ (mm² in 2D)"


def _worst_best_section(project, m: pd.DataFrame, imported: set[str], region: str | None) -> str:
    if m.empty or not (m.metric == "dice").any():
        return _why("no Dice in this store to rank cases by")
    if project is None:
        if imported and imported >= set(m.dataset):
            return _why(f"the metrics of {', '.join(sorted(imported))} were imported from AUDIT tables, which hold "
                        "scores but no images or masks; to see the cases, give --project with the images, ground "
                        "truth and predictions (and run segaudit evaluate on them)")
        return _why("no project given: segaudit report RUN --project PROJECT.yaml draws the worst and best cases "
                    "from its image and mask files")
    return _note("Green = true positive, red = false positive, blue = false negative. Each panel is cropped "
                 "around the ground truth and the prediction (3D: the slice with most wrong voxels).") \
        + _panels(project, m, region=region)


def _failures(m: pd.DataFrame, lesions: pd.DataFrame, imported: bool = False,
              units: pd.DataFrame | None = None) -> str:
    missing = sorted({"dice", "gt_empty", "pred_empty", "tp"} - set(m.metric))
    if missing:
        return _why(f"the taxonomy needs the metrics {', '.join(missing)}, which this store lacks" + (
            ": tables imported from AUDIT carry DICE, JACC, PREC, SENS, SPEC, HAUS and SIZE, not voxel counts "
            "or empty-mask flags (run segaudit evaluate on the masks)" if imported else " (run segaudit evaluate)"))
    counts = failure_counts(failure_taxonomy(m))
    parts = [f"<h3>{html.escape(ds)}</h3>" + _png(figures.failure_bars(counts, ds))
             for ds in sorted(counts.dataset.unique())]
    if not lesions.empty:
        sizes = failed_lesion_sizes(lesions)
        if not sizes.empty:
            parts.append("<h3>Are the missed lesions small?</h3>" + _note(
                "Ground-truth lesions (lesion-wise matching of segaudit evaluate) missed or detected by each model: "
                f"count and median volume [quartiles] in {_volume_units(units)}.") + _table(_side_by_side(sizes)))
    return "".join(parts)


def _side_by_side(sizes: pd.DataFrame) -> pd.DataFrame:
    """Missed and detected lesion sizes of one model and region on one row."""
    sizes = sizes.assign(size=[f"{r.median:.0f} [{r.q1:.0f}, {r.q3:.0f}]" for r in sizes.itertuples()])
    wide = sizes.pivot_table(index=["dataset", "model", "region"], columns="outcome", values=["n", "size"],
                             aggfunc="first")
    wide.columns = [f"{outcome} {'n' if what == 'n' else 'size'}" for what, outcome in wide.columns]
    order = [c for c in ("missed n", "missed size", "detected n", "detected size") if c in wide.columns]
    wide = wide[order]
    for col in ("missed n", "detected n"):
        if col in wide.columns:
            wide[col] = pd.to_numeric(wide[col]).fillna(0).astype(int)
    return wide.reset_index()


def _error_matrices(metrics: pd.DataFrame, imported: bool = False) -> str:
    conf = metrics[metrics.region == CONFUSION_REGION]
    if conf.empty:
        return _why("no label-by-label voxel counts in this store" + (
            ": tables imported from AUDIT hold per-region scores only, and AUDIT does not write which label a "
            "model gave each true voxel (run segaudit evaluate on the masks to get them)" if imported else
            " (segaudit evaluate writes them)"))
    cells = []
    for (ds, model), _ in conf.groupby(["dataset", "model"], sort=True):
        # Rows over every voxel of the true label (its 'background' column = missed voxels), plus the background
        # row as a share of each label's true volume: what the model labelled where there is nothing to find.
        mat = matrix_with_background_row(metrics, dataset=ds, model=model)
        if mat.size:
            cells.append(f'<div class="panel">{_png(figures.matrix_plot(mat, f"{ds} / {model}"))}</div>')
    over = over_segmentation(metrics)
    fg = over[over.label == "foreground"]
    warn = fg[fg.fp_background_share > 1]
    table = fg[["dataset", "case", "model", "gt_volume", "pred_volume", "fp_background", "fp_background_share"]]
    table = table.rename(columns={"gt_volume": "true voxels", "pred_volume": "predicted voxels",
                                  "fp_background": "predicted where truth is background",
                                  "fp_background_share": "over-segmentation (× true volume)"})
    text = "".join("<p class='warn'>" + html.escape(
        f"{r.model} on {r.dataset}/{r.case} labels {r.fp_background:,.0f} voxels outside the true structure: "
        f"{r.fp_background_share:.1f}× its true volume ({r.gt_volume:,.0f} voxels).") + "</p>"
        for r in warn.itertuples())
    return _note("Rows: share of each true label's voxels predicted as each label (columns), summed over cases; "
                 "the background column is the share missed. Last row: voxels predicted as each label where the "
                 "truth is background, as a multiple of that label's true volume (over-segmentation; above 1 the "
                 "model adds more than the whole true structure).") + "".join(cells) + text + _note(
        "Over-segmentation of the whole foreground per case (all tumour labels together):") + _table(table, 2)


def _longitudinal(cases: pd.DataFrame, feats: pd.DataFrame, units: pd.DataFrame | None = None) -> str:
    if not (cases.subject.notna() & cases.timepoint.notna()).any():
        return _why("no case has a subject and a time point: declare longitudinal: in the project file, or import "
                    "an AUDIT feature table whose longitudinal_id column is filled (it gives the subject; "
                    "time_point the time point)")
    lon = longitudinal_volumes(cases, feats)
    if lon.empty or not lon.pred_volume.notna().any():
        return _why("the cases with a subject and a time point have no true and predicted whole-tumour (WT) "
                    "volumes: run segaudit features (group lesion) with the predictions, or import AUDIT's metric "
                    "table (SIZE) and feature table (lesion_size_whole)")
    t = lon[["dataset", "subject", "timepoint", "model", "true_volume", "pred_volume", "relative_error",
             "true_growth", "pred_growth"]]
    vol = None
    if units is not None and not units.empty:
        per_ds = units[units.metric == "gt_volume"].drop_duplicates("dataset").set_index("dataset").unit
        if t.dataset.isin(per_ds.index).all():
            vol = t.dataset.map(per_ds)
    if vol is not None and vol.nunique() > 1:  # several units in one table: a column says which
        t = t.assign(unit=vol.to_numpy())
        label = ""
    else:
        u = vol.iloc[0] if vol is not None and len(vol) else "mm³"
        label = f" ({u})"
    t = t.rename(columns={"true_volume": f"true volume{label}", "pred_volume": f"predicted volume{label}",
                          "relative_error": "relative error", "true_growth": f"true growth{label}",
                          "pred_growth": f"predicted growth{label}"})
    return _note("Whole-tumour volume per time point, ground truth against each model; growth is the change from "
                 "the subject's previous time point. Volumes in the same unit on both sides (mm³ on physical "
                 "grids, pixel areas for photos without a declared spacing).") \
        + _png(figures.longitudinal_plot(lon)) + _table(t, 2)
