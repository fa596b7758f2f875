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

from segaudit.analysis.bias import metric_by_group, metric_vs_feature
from segaudit.analysis.cohorts import (
    cases_with_metadata,
    lesion_volumes,
    longitudinal_volumes,
    split_leakage,
    split_overview,
)
from segaudit.analysis.compare import compare_models
from segaudit.analysis.coverage import coverage, expected_cases, failure_list
from segaudit.analysis.error_matrix import error_matrix
from segaudit.analysis.failures import (
    failed_lesion_sizes,
    failure_counts,
    failure_taxonomy,
    worst_best,
)
from segaudit.analysis.ranking import rank_models, ranking_table
from segaudit.analysis.summary import drop_both_empty, summarize
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
.warn{color:#b71c1c;font-weight:600}nav a{margin-right:.8em;font-size:.9em}"""
SUMMARY_METRICS = {"dice": "Dice (0–1)", "hd95": "HD95 (mm)", "nsd@1mm": "NSD at 1 mm (0–1)",
                   "lesion_f1": "lesion F1 (0–1)"}
_PANEL_SEQUENCES = {k: i for i, k in enumerate(("flair", "t2f", "t2w", "t2", "t1ce", "t1c", "t1gd", "t1"))}
#: Metadata columns never used as bias groups (identifiers, splits, time).
_NOT_GROUPS = {"case", "subject", "timepoint", "dataset", "split", "slice", "id"}


def _png(fig) -> str:
    data = base64.b64encode(figures.png_bytes(fig, dpi=90)).decode()
    return f'<img alt="figure" src="data:image/png;base64,{data}">'


def _table(df: pd.DataFrame, digits: int = 3) -> str:
    """An HTML table; p-values (columns ``p``, ``p_*``, ``*_p``) in 3 significant digits, the rest rounded."""
    df = df.round(digits)
    for col in df.columns:
        if (col == "p" or col.startswith("p_") or col.endswith("_p")) and pd.api.types.is_float_dtype(df[col]):
            df[col] = [("–" if pd.isna(v) else f"{v:.3g}") for v in df[col]]
    return df.to_html(index=False, na_rep="–", border=0, escape=True)


def _headline_region(d: pd.DataFrame) -> str:
    """The region a per-dataset figure shows: WT when the dataset has it, else its first region by name."""
    return "WT" if (d.region == "WT").any() else sorted(d.region.unique())[0]


def _panel_image(files: pd.DataFrame) -> np.ndarray | None:
    """The case's image for panels (FLAIR / T2 / contrast T1 preferred, colour averaged to grey), or None."""
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
    return im.array if not im.is_color else im.array[..., :3].mean(axis=-1)


def _panel(img: np.ndarray | None, g: np.ndarray, p: np.ndarray, title: str) -> str:
    """One slice (the ground truth's largest, else the prediction's) with TP/FP/FN colours over the image."""
    if g.ndim == 3:
        area = g.sum(axis=(0, 1)) if g.any() else p.sum(axis=(0, 1))
        k = int(np.argmax(area))
        g, p = g[:, :, k], p[:, :, k]
        img = img[:, :, k] if img is not None and img.ndim == 3 else None
        g, p = g.T[::-1], p.T[::-1]  # radiological display of an axial slice
        img = img.T[::-1] if img is not None else None
    shown = img is not None and img.shape == g.shape
    fig = figures.overlay_panel(img if shown else None, g, p)
    note = "" if shown else "<br><span class='note'>(no image file in the project: masks only)</span>"
    return f'<figure class="panel">{_png(fig)}<figcaption>{title}{note}</figcaption></figure>'


def _panels(project, metrics: pd.DataFrame, k: int = 2) -> str:
    from segaudit.dataset.discover import discover
    from segaudit.io.image import read_mask

    files = discover(project).files_frame()
    out = []
    for ds in project.datasets:
        # Both-empty cases are set apart: a Dice of 1 on nothing is never shown as a "best" case.
        d, _ = drop_both_empty(metrics[(metrics.dataset == ds.name)
                                       & metrics.metric.isin(["dice", "gt_empty", "pred_empty"])])
        d = d[d.metric == "dice"]
        if d.empty:
            continue
        region = _headline_region(d)
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
            out.append(f"<h3>{html.escape(ds.name)} ({region})</h3>" + "".join(cells))
    return "".join(out)


def _note(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


def _overview(cases: pd.DataFrame, files: pd.DataFrame, qc: pd.DataFrame) -> str:
    if cases.empty:
        return _note("No scan in this store (run segaudit scan).")
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


def _summary(metrics: pd.DataFrame, cov: pd.DataFrame | None = None) -> str:
    """One compact table per dataset: model × region rows, coverage, 'mean [CI]' per metric.

    A model that did not score every expected case is flagged in red with its missing and failed counts.
    """
    s = summarize(metrics[metrics.metric.isin([*SUMMARY_METRICS, "gt_empty", "pred_empty"])], n_resamples=1000,
                  coverage=cov)
    if s.empty:
        return _note("No summary metric (Dice, HD95, NSD, lesion F1) in this store.")
    s = s.assign(cell=[("–" if pd.isna(r.mean) else f"{r.mean:.3f}"
                        + ("" if pd.isna(r.ci_low) else f" [{r.ci_low:.3f}, {r.ci_high:.3f}]"))
                       for r in s.itertuples()])
    parts = []
    for ds, g in s.groupby("dataset", sort=True):
        wide = g.pivot_table(index=["model", "region"], columns="metric", values="cell", aggfunc="first")
        wide = wide.reindex(columns=[m for m in SUMMARY_METRICS if m in wide.columns])
        wide.columns = [SUMMARY_METRICS[c] for c in wide.columns]
        d = g[g.metric == "dice"] if (g.metric == "dice").any() else g
        counts = d.groupby(["model", "region"]).agg(n=("n", "max"), both_empty=("n_both_empty", "max"),
                                                    undefined=("n_undefined", "max"))
        warn = ""
        if cov is not None and len(cov):
            c = cov[cov.dataset == ds].set_index("model")
            cols = {"n_expected": "expected", "n_scored": "scored", "n_missing": "missing", "n_failed": "failed"}
            cc = c[list(cols)].rename(columns=cols)
            counts = counts.join(cc, on="model")
            counts = counts[["expected", "scored", "missing", "failed", "n", "both_empty", "undefined"]]
            bad = c[~c.complete.astype(bool)]
            warn = "".join(
                f"<p class='warn'>{html.escape(str(m))} scored {int(r.n_scored)} of {int(r.n_expected)} expected "
                f"cases ({int(r.n_missing)} missing, {int(r.n_failed)} failed: see 'Failed and missing "
                "predictions'). Its means cover only the scored cases; the comparison and the ranking score the "
                "others as empty predictions.</p>" for m, r in bad.iterrows())
        table = _table(counts.join(wide).reset_index())
        parts.append(f"<h3>{html.escape(ds)}</h3>" + warn + table)
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
    return (f"<li><b>{html.escape(r.region)}</b>: mean Dice {html.escape(cand)} {r.mean_candidate:.3f} vs "
            f"{html.escape(base)} {r.mean_baseline:.3f} (difference {r.mean_diff:+.3f}, 95 % CI "
            f"{r.ci_low:+.3f} to {r.ci_high:+.3f}, n = {r.n}). We used the {html.escape(r.test)} because "
            f"{html.escape(r.reason)}; p = {r.p:.3g}, Holm p = {r.p_holm:.3g}: {verdict}. Cohen's d_z = "
            f"{r.cohens_dz:.2f}, rank-biserial = {r.rank_biserial:.2f}; {r.n_flip_to_correct} case(s) went from "
            f"fail to pass at Dice {r.pass_threshold:g} and {r.n_flip_to_incorrect} from pass to fail "
            f"(exact McNemar p = {r.mcnemar_p:.3g}).</li>")


def _comparisons(m: pd.DataFrame, metrics: pd.DataFrame, expected: pd.DataFrame | None = None) -> str:
    parts = []
    for ds in sorted(m.dataset.unique()):
        models = sorted(m[(m.dataset == ds) & (m.metric == "dice")].model.unique())
        if len(models) < 2:
            continue
        res = compare_models(metrics, models[0], models[1], "dice", dataset=ds, missing="worst", expected=expected)
        parts.append(f"<h3>{html.escape(ds)}: {html.escape(models[1])} vs {html.escape(models[0])}</h3>")
        first = res.iloc[0]
        parts.append(_note(f"Missing-prediction policy 'worst': a case a model lacks is scored as an empty "
                           f"prediction (cases scored so: {models[0]} {int(first.n_imputed_baseline)}, {models[1]} "
                           f"{int(first.n_imputed_candidate)}). Cases where both models are both-empty are set "
                           "apart (n_both_empty)."))
        parts.append(_table(res[["region", "n", "n_both_empty", "mean_baseline", "mean_candidate", "mean_diff",
                                 "ci_low", "ci_high", "test", "p", "p_holm", "cohens_dz", "rank_biserial",
                                 "n_flip_to_correct", "n_flip_to_incorrect", "mcnemar_p", "sign_p"]], 4))
        words = "".join(_comparison_words(r, (models[0], models[1])) for r in res.itertuples())
        parts.append(f"<ul class='note'>{words}</ul>")
        notes = [f"{r.region}: {r.note}" for r in res.itertuples() if r.note]
        parts += [f"<p class='warn'>{html.escape(n)}</p>" for n in notes]
    return "".join(parts) or _note("No dataset has two models scored on the same cases.")


def _ranking(m: pd.DataFrame, expected: pd.DataFrame | None = None) -> str:
    parts = []
    for ds in sorted(m.dataset.unique()):
        d = m[(m.dataset == ds)]
        if d[d.metric == "dice"].model.nunique() < 3:
            continue
        wide, info = ranking_table(d, ds, "dice", missing="worst", expected=expected)
        ranks, fried, post = rank_models(wide, n_resamples=500)
        if fried["n"] < 2:
            continue
        parts.append(f"<h3>{html.escape(ds)}</h3>")
        parts.append(_note(f"Per case, Dice averaged over regions (AUDIT's per-subject aggregation); "
                           f"{fried['n']} complete cases, {fried['k']} models; {info['policy']}; "
                           f"{info['n_both_empty']} region value(s) where every model is both-empty set apart. "
                           f"Friedman chi² = {fried['statistic']:.2f}, p = {fried['p']:.3g}. Nemenyi critical "
                           f"difference of mean ranks: {fried['critical_difference']:.2f}. Rank stability = share "
                           "of 500 bootstrap resamples of the cases in which a model keeps its place."))
        parts.append(_png(figures.rank_plot(ranks, fried["critical_difference"], f"{ds}: mean ranks")))
        parts.append(_table(ranks, 3) + _table(post, 4))
    return "".join(parts)


def _group_columns(meta: pd.DataFrame) -> dict[str, pd.Series]:
    """Categorical metadata usable as groups (2–12 groups, not one case per group); ``age`` in quartile bins."""
    out = {}
    if meta.subject.notna().any():
        out["subject"] = meta.subject
    for col in meta.columns:
        if col in _NOT_GROUPS:
            continue
        v = meta[col]
        if col.lower() in ("age", "age_years", "age_at_diagnosis") and pd.api.types.is_numeric_dtype(v):
            v = pd.qcut(v, 4, duplicates="drop").astype(str).where(v.notna())
        elif pd.api.types.is_numeric_dtype(v) and v.nunique() > 12:
            continue
        out[col] = v
    return {c: v for c, v in out.items() if 2 <= v.nunique() <= 12 and v.value_counts().max() >= 2}


def _bias(m: pd.DataFrame, feats: pd.DataFrame, meta: pd.DataFrame) -> str:
    parts = []
    dice = m[m.metric == "dice"]
    vols = lesion_volumes(feats) if not feats.empty else pd.DataFrame(columns=["dataset", "case", "region",
                                                                                "volume"])
    for ds in sorted(dice.dataset.unique()):
        d = dice[dice.dataset == ds]
        region = _headline_region(d)
        d = d[d.region == region]
        figs, notes, trend = [], [], []
        v = vols[(vols.dataset == ds) & (vols.region == region) & (vols.volume > 0)]
        ds_meta = meta[meta.dataset == ds] if not meta.empty else meta
        groups = _group_columns(ds_meta) if not ds_meta.empty else {}
        for model in sorted(d.model.unique()):
            dm = d[d.model == model][["case", "value"]].rename(columns={"value": "metric"})
            t = dm.merge(v[["case", "volume"]], on="case")
            if len(t) >= 5:
                res = metric_vs_feature(t.assign(feature=np.log10(t.volume)), n_resamples=1000)
                if np.isfinite(res["spearman_rho"]):
                    figs.append(_png(figures.bias_scatter(t, res, f"{ds} / {model} / {region}")))
                    trend.append({"model": model, "region": region, "n": res["n"],
                                  "spearman_rho": res["spearman_rho"], "ci_low": res["ci_low"],
                                  "ci_high": res["ci_high"], "p": res["p"]})
            for col, g in groups.items():
                gt = dm.merge(pd.DataFrame({"case": ds_meta.case, "group": g}), on="case")
                table, test = metric_by_group(gt, n_resamples=1000)
                if test["groups"] < 2:
                    continue
                figs.append(_png(figures.group_plot(table, test["overall_mean"], f"{ds} / {model} / {region} by {col}: "
                                        f"Kruskal–Wallis p = {test['p']:.2g}")))
                flagged = table[table.differs_from_overall].group.astype(str).tolist()
                if flagged:
                    notes.append(f"{model}, by {col}: the CI of {', '.join(flagged)} excludes the overall mean "
                                 f"{test['overall_mean']:.3f}.")
        if figs:
            parts.append(f"<h3>{html.escape(ds)} ({html.escape(region)})</h3>"
                         + "".join(f'<div class="panel">{f}</div>' for f in figs)
                         + (_table(pd.DataFrame(trend)) if trend else "")
                         + "".join(f"<p class='warn'>{html.escape(n)}</p>" for n in notes))
    if not parts:
        return ""
    return _note("Dice against the true lesion size (cases with a lesion; Spearman's rho with a bootstrap CI, p "
                 "tests for a monotone trend; LOWESS on log size) and Dice by metadata group (red: the group's "
                 "bootstrap CI excludes the overall mean).") + "".join(parts)


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


def build_report(run_dir: str | Path, out: str | Path, project=None, title: str = "segaudit report",
                 training_logs: dict[str, str | Path] | None = None) -> Path:
    """Write the HTML report of a results store to ``out`` (atomically) and return its path.

    ``project`` (a :class:`~segaudit.dataset.project.ProjectConfig`) adds image panels of the worst and best
    cases and the declared split columns; ``training_logs`` maps a model name to a training-log CSV (see
    :func:`segaudit.analysis.training.read_training_log`). A section whose input is missing is left out; one
    that fails says why in the report.
    """
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
    m = metrics[metrics.region != CONFUSION_REGION] if not metrics.empty else metrics
    agreement = agreement_metrics(m)
    m = m.drop(agreement.index)  # model-vs-model rows (segaudit agree) never enter the ground-truth sections
    cov = coverage(m, errors, files) if not m.empty else pd.DataFrame()
    expected = expected_cases(m, errors, files) if not m.empty else None
    meta = cases_with_metadata(cases) if not cases.empty else cases  # metadata JSON parsed once for all sections
    sections: list[tuple[str, object]] = [("Datasets and QC", lambda: _overview(cases, files, qc))]
    if not cases.empty:
        sections.append(("Splits", lambda: _splits(meta, feats, project)))
    if not m.empty:
        sections += [
            ("Metric summary", lambda: _note("Mean with BCa bootstrap 95 % CI over cases. Cases where ground truth "
                                             "and prediction are both empty are counted apart (both_empty) and "
                                             "left out; undefined values are counted, never averaged.")
             + _summary(metrics, cov)),
            ("Failed and missing predictions", lambda: _failed_predictions(cov, errors)),
            ("Per-case Dice with quality bands", lambda: _strips(m)),
            ("Failure taxonomy", lambda: _failures(m, lesions)),
            ("Segmentation error matrices", lambda: _error_matrices(metrics)),
            ("Pairwise comparison", lambda: _comparisons(m, metrics, expected)),
            ("Model ranking", lambda: _ranking(m, expected)),
            ("Bias: lesion size and subgroups", lambda: _bias(m, feats, meta)),
        ]
    if not agreement.empty:
        sections.append(("Agreement between models (no ground truth needed)", lambda: agreement_section(agreement)))
    if not feats.empty and not cases.empty:
        sections.append(("Longitudinal volumes", lambda: _longitudinal(cases, feats)))
    if training_logs:
        sections.append(("Training curves", lambda: _training(training_logs)))
    if project is not None and not m.empty:
        sections.append(("Worst and best cases", lambda: _note("Green = true positive, red = false positive, "
                                                               "blue = false negative.") + _panels(project, m)))
    body = []
    for name, make in sections:
        try:
            content = make()
        except Exception as exc:  # noqa: BLE001 - one section's failure must not cost the whole report
            content = f"<p class='warn'>This section could not be drawn: {html.escape(str(exc))}</p>"
        if content:
            body.append((name, content))
    anchor = {name: f"s{i}" for i, (name, _) in enumerate(body)}
    nav = "<nav>" + "".join(f'<a href="#{anchor[n]}">{html.escape(n)}</a>' for n, _ in body) + "</nav>"
    parts = [f"<h1>{html.escape(title)}</h1>",
             _note(f"Results store: {Path(run_dir).resolve()}."), nav]
    parts += [f'<h2 id="{anchor[n]}">{html.escape(n)}</h2>{c}' for n, c in body]
    doc = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
           f"<style>{CSS}</style></head><body>{''.join(parts)}</body></html>")
    return atomic_write_text(out, doc)


def _failures(m: pd.DataFrame, lesions: pd.DataFrame) -> str:
    counts = failure_counts(failure_taxonomy(m))
    parts = [f"<h3>{html.escape(ds)}</h3>" + _png(figures.failure_bars(counts, ds))
             for ds in sorted(counts.dataset.unique())]
    if not lesions.empty:
        sizes = failed_lesion_sizes(lesions)
        if not sizes.empty:
            parts.append("<h3>Are the missed lesions small?</h3>" + _note(
                "Ground-truth lesions (lesion-wise matching of segaudit evaluate) missed or detected by each model: "
                "count and median volume [quartiles] in mm³ (mm² in 2D).") + _table(_side_by_side(sizes)))
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


def _error_matrices(metrics: pd.DataFrame) -> str:
    conf = metrics[metrics.region == CONFUSION_REGION]
    if conf.empty:
        return ""
    cells = []
    for (ds, model), _ in conf.groupby(["dataset", "model"], sort=True):
        # Rows over every voxel of the true label (its 'background' column = missed voxels); the background
        # row itself is dropped because background-background dwarfs the rest.
        mat = error_matrix(metrics, dataset=ds, model=model, normalise=True, background=True)
        mat = mat.drop(index="background", errors="ignore")
        if mat.size:
            cells.append(f'<div class="panel">{_png(figures.matrix_plot(mat, f"{ds} / {model}"))}</div>')
    return _note("Share of each true label's voxels (rows) predicted as each label (columns), summed over cases; "
                 "the background column is the share missed.") + "".join(cells)


def _longitudinal(cases: pd.DataFrame, feats: pd.DataFrame) -> str:
    lon = longitudinal_volumes(cases, feats)
    if lon.empty or not lon.pred_volume.notna().any():
        return ""
    t = lon[["dataset", "subject", "timepoint", "model", "true_volume", "pred_volume", "relative_error",
             "true_growth", "pred_growth"]].rename(columns={
                 "true_volume": "true volume (mm³)", "pred_volume": "predicted volume (mm³)",
                 "relative_error": "relative error", "true_growth": "true growth (mm³)",
                 "pred_growth": "predicted growth (mm³)"})
    return _note("Whole-tumour volume per time point, ground truth against each model; growth is the change from "
                 "the subject's previous time point. Volumes in mm³ on both sides.") \
        + _png(figures.longitudinal_plot(lon)) + _table(t, 2)
