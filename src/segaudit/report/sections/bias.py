"""Section 'Bias: lesion size and subgroups': Dice against the true lesion size and Dice by metadata covariate."""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

from segaudit.analysis.bias import covariate_columns, metric_by_group, metric_vs_feature, subgroup_tests
from segaudit.analysis.cohorts import lesion_volumes
from segaudit.analysis.minimums import MIN_CORRELATION, MIN_GROUP
from segaudit.report import figures
from segaudit.report.inputs import ReportInputs, volume_units
from segaudit.report.markup import note_html, png_html, table_html, why_html

#: The section's heading (``<h2>``) in the report.
TITLE = "Bias: lesion size and subgroups"


def headline_region(d: pd.DataFrame) -> str:
    """The region a per-dataset figure shows: WT when the dataset has it, else its first region by name."""
    return "WT" if (d.region == "WT").any() else sorted(d.region.unique())[0]


def declared_covariates(project, ds: str) -> list[str] | None:
    """The dataset's ``metadata: {covariates: [...]}`` when the project declares them, else None."""
    if project is None:
        return None
    spec = next((d.metadata for d in project.datasets if d.name == ds), None)
    return spec.covariates if spec is not None else None


def bias_html(m: pd.DataFrame, feats: pd.DataFrame, meta: pd.DataFrame, project=None,
              units: pd.DataFrame | None = None) -> str:
    """Per dataset (its headline region).

    Dice against the true lesion size per model (Spearman's rho with a bootstrap CI, a scatter with LOWESS), and Dice by
    metadata covariate (subgroup tests, Holm-corrected; a group plot per categorical covariate).

    ``m``: ground-truth metric rows; ``feats``: the features table (true lesion volumes); ``meta``: the cases with
    their metadata in columns; ``project`` gives declared covariates; ``units`` the stored volume units. Without
    any size or covariate to test, why.
    """
    parts = []
    dice = m[m.metric == "dice"]
    vols = lesion_volumes(feats) if not feats.empty else pd.DataFrame(columns=["dataset", "case", "region",
                                                                                "volume"])
    for ds in sorted(dice.dataset.unique()):
        d = dice[dice.dataset == ds]
        region = headline_region(d)
        d = d[d.region == region]
        figs, notes, trend, tests = [], [], [], []
        v = vols[(vols.dataset == ds) & (vols.region == region) & (vols.volume > 0)]
        ds_meta = meta[meta.dataset == ds].reset_index(drop=True) if not meta.empty else meta
        covs, excluded = covariate_columns(ds_meta, declared_covariates(project, ds)) if not ds_meta.empty \
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
                    figs.append(png_html(figures.bias_scatter(t, res, f"{ds} / {model} / {region}",
                                                            volume_units(None if units is None else
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
                figs.append(png_html(figures.group_plot(
                    table, test["overall_mean"], f"{ds} / {model} / {region} by {col}: "
                    f"Kruskal–Wallis p = {test['p']:.2g} (Holm {row.p_holm:.2g})")))
                flagged = table[table.differs_from_overall].group.astype(str).tolist()
                if flagged:
                    notes.append(f"{model}, by {col}: the CI of {', '.join(flagged)} excludes the overall mean "
                                 f"{test['overall_mean']:.3f}.")
        body = "".join(f'<div class="panel">{f}</div>' for f in figs)
        if trend:
            body += table_html(pd.DataFrame(trend))
        if tests:
            body += note_html("Subgroup tests, one per covariate (Kruskal–Wallis for categories, Spearman for "
                              "numbers), Holm-corrected across the covariates:") + table_html(
                pd.concat(tests, ignore_index=True)[["model", "region", "covariate", "kind", "test", "n", "groups",
                                                     "statistic", "p", "p_holm", "note"]])
        if len(excluded):
            body += note_html("Metadata columns not used as subgroups: " + "; ".join(
                f"{r.column} ({r.reason})" for r in excluded.itertuples()) + ".")
        body += "".join(f"<p class='warn'>{html.escape(n)}</p>" for n in notes)
        if figs or trend or tests:
            parts.append(f"<h3>{html.escape(ds)} ({html.escape(region)})</h3>" + body)
    if not parts:
        if vols.empty:
            return why_html("no true lesion sizes in this store: run segaudit features (group lesion), or import "
                            "AUDIT's feature table (its lesion_size_* columns) with import-audit --features")
        return why_html("no model and region has 5 or more cases with a true lesion size and a Dice, and no metadata "
                        "column groups the cases (2–12 groups)")
    return note_html("Dice against the true lesion size (cases with a lesion; Spearman's rho with a bootstrap CI, p "
                     f"tests for a monotone trend; LOWESS on log size; at least {MIN_CORRELATION} cases) and Dice by "
                     "metadata covariate (declared in the project's metadata: covariates, or columns that look like "
                     f"one; groups of at least {MIN_GROUP} cases; red: the group's bootstrap CI excludes the overall "
                     "mean).") + "".join(parts)


def render(inputs: ReportInputs) -> str:
    """The section's HTML: size trends and subgroup tests per dataset, or why there are none."""
    return bias_html(inputs.m, inputs.features, inputs.meta, inputs.project, inputs.units)
