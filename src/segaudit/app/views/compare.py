"""Compare models.

The paired test of two models with its reason in words, effect sizes and flips, per-case difference bars (sortable,
top-k, clip) with a CSV download; Friedman, mean ranks with the critical difference and the post hoc table when a
dataset has three or more models (and, when the best mean rank and the best mean are different models, why);
bias: the metric against any feature (Spearman, LOWESS, log axis) and by metadata group (flagged groups).
"""


import numpy as np
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from segaudit.app import ui

run = ui.run_dir()
st.title("Compare models")
datasets = [d for d in ui.call("datasets") if len(ui.call("models", d)) >= 2]
if not datasets:
    st.text("No dataset has two models to compare.")
    st.stop()
c1, c2, c3, c4 = st.columns(4)
with c1:
    dataset = ui.select("Dataset", datasets, "dataset")
models = ui.call("models", dataset)
with c2:
    baseline = ui.select("Baseline", models, "baseline")
with c3:
    candidate = ui.select("Candidate", [m for m in models if m != baseline], "candidate")
with c4:
    metric = ui.select("Metric", ui.call("stored_metric_names", dataset), "metric", default="dice")
aggregate = st.radio("Aggregation", ["per-region", "mean-over-regions"], horizontal=True, key="cmp_agg")

st.subheader("Pairwise test")
st.text(f"{candidate} vs {baseline}")  # names from the data: text, never markdown (``$`` would be math)
try:
    res = ui.call("pairwise", dataset, baseline, candidate, metric, aggregate)
except ValueError as exc:
    st.text(str(exc))
    st.stop()
show = [c for c in ("region", "n", "unit", "mean_baseline", "mean_candidate", "mean_diff", "ci_low", "ci_high",
                    "test", "p", "p_holm", "cohens_dz", "rank_biserial", "n_flip_to_correct",
                    "n_flip_to_incorrect", "mcnemar_p", "n_both_empty") if c in res.columns]
PFMT = {c: st.column_config.NumberColumn(format="%.3g") for c in ("p", "p_holm", "mcnemar_p", "wilcoxon_p",
                                                                    "nemenyi_p")}
st.dataframe(res[show], hide_index=True, width="stretch", column_config=PFMT)
for r in res.itertuples():
    st.text(f"{r.region}: {r.test}, p = {ui.fmt(r.p)} (Holm {ui.fmt(r.p_holm)}), mean difference "
            f"{ui.fmt(r.mean_diff)} on {r.n} {r.unit}. Why this test: {r.reason}."
            + (f" Note: {r.note}" if getattr(r, "note", "") else ""))

st.subheader("Per-case differences (candidate - baseline)")
regions = ["mean over regions"] + sorted(res.region.astype(str)) if aggregate == "per-region" else \
    ["mean over regions"]
d1, d2, d3 = st.columns(3)
region = d1.selectbox("Region", regions, key="cmp_region")
order = d2.radio("Sort by", ["difference", "case"], horizontal=True, key="cmp_sort")
diff = ui.call("case_differences", dataset, baseline, candidate, metric,
               None if region == "mean over regions" else region)
top = d3.slider("Show top k by |difference|", 1, max(1, len(diff)), min(30, max(1, len(diff))), key="cmp_top") \
    if len(diff) > 1 else 1
clip = st.number_input("Clip bars at ± (0 = no clip)", min_value=0.0, value=0.0, step=0.1, key="cmp_clip")
shown = diff.reindex(diff.difference.abs().sort_values(ascending=False).index).head(top)
shown = shown.sort_values("difference" if order == "difference" else "case")
bars = shown.difference.clip(-clip, clip) if clip > 0 else shown.difference
fig = go.Figure(go.Bar(x=[ui.label(c) for c in shown.case], y=bars,
                       marker_color=["#2a9d3a" if v > 0 else "#d1495b" for v in shown.difference]))
fig.update_layout(xaxis_title="case", yaxis_title=f"{metric} difference", height=380)
st.plotly_chart(fig, width="stretch", key="cmp_fig")
st.download_button("Download the per-case differences (CSV)", diff.to_csv(index=False).encode(),
                   file_name="differences.csv", mime="text/csv", key="cmp_csv")



def ranking_section() -> None:
    """Friedman, mean ranks with the critical difference, the post hoc table, and why rank and mean may differ."""
    st.subheader("All models: Friedman test and mean ranks")
    if len(models) < 3:
        st.text(f"{dataset} has {len(models)} models: ranking needs three or more.")
        return
    rk = ui.call("ranking", dataset, metric)
    f = rk.friedman
    st.text(f"Friedman chi-square = {ui.fmt(f.get('statistic'))}, p = {ui.fmt(f.get('p'))} on {f.get('n')} cases "
            f"and {f.get('k')} models; Nemenyi critical difference {ui.fmt(f.get('critical_difference'))}. "
            f"Ranks: 1 = best ({'higher' if ui.data.better_is_higher(metric) else 'lower'} {metric} is better)."
            + (f" {f['note']}." if f.get("note") else "") + f" {rk.policy.get('policy', '')}")
    if rk.disagreement:
        st.text(rk.disagreement)
    st.dataframe(rk.ranks, hide_index=True, width="stretch")
    cd = f.get("critical_difference")
    ranks = rk.ranks.sort_values("mean_rank")
    fig = px.scatter(x=ranks.mean_rank, y=[ui.label(m) for m in ranks.model],
                     error_x=[cd / 2 if cd == cd else 0] * len(ranks), labels={"x": "mean rank (1 = best)", "y": ""})
    fig.update_layout(height=120 + 40 * len(ranks), title="Mean ranks; bars span the critical difference")
    st.plotly_chart(fig, width="stretch", key="rank_fig")
    st.dataframe(rk.posthoc, hide_index=True, width="stretch", column_config=PFMT)


@st.fragment
def bias_section() -> None:
    """Metric against any feature (Spearman, LOWESS) and by metadata group (flagged groups); a fragment."""
    st.subheader("Bias: does the metric depend on a case property?")
    cols = ui.call("property_columns", dataset)
    b1, b2 = st.columns(2)
    bias_model = b1.selectbox("Model", models, index=models.index(candidate) if candidate in models else 0,
                              key="bias_model")
    regions_b = ["mean over regions"] + sorted(res.region.astype(str)) if aggregate == "per-region" else \
        ["mean over regions"]
    region_b = b2.selectbox("Region", regions_b, key="bias_region")
    assert bias_model is not None  # a selectbox with a default index always holds one of its options
    reg = None if region_b == "mean over regions" else region_b
    numeric = list(cols.numeric)
    if not numeric:
        st.text("No stored feature or numeric metadata to correlate with (segaudit features writes them).")
    else:
        f1, f2 = st.columns([3, 1])
        # The ground truth's whole-lesion volume, else the model's own predicted volume.
        default = next((c for c in numeric if c == "lesion:WT:volume"),
                       next((c for c in numeric if c == f"{bias_model}:lesion:WT:volume"), numeric[0]))
        feature = f1.selectbox("Feature", numeric, index=numeric.index(default), key="bias_feature")
        log = f2.checkbox("Log x axis", value=False, key="bias_log")
        assert feature is not None
        pts, trend = ui.call("bias_trend", dataset, bias_model, metric, reg, feature)
        if trend["note"]:
            st.text(f"Spearman: {trend['note']} ({trend['n']} cases with both values).")
        else:
            st.text(f"Spearman rho = {ui.fmt(trend['spearman_rho'])} (95 % CI {ui.fmt(trend['ci_low'])} to "
                    f"{ui.fmt(trend['ci_high'])}, resampling {trend['resampled']}), p = {ui.fmt(trend['p'])} on "
                    f"{trend['n']} cases" + (f", {trend['n_dropped']} without a value left out" if trend['n_dropped']
                                             else "") + ".")
        plot = pts[np.isfinite(pts.feature) & np.isfinite(pts.metric)]
        if log:
            plot = plot[plot.feature > 0]
        fig = go.Figure(go.Scatter(x=plot.feature, y=plot.metric, mode="markers", name="cases",
                                   hovertext=[ui.label(c) for c in plot.case]))
        tr = trend["trend"]
        if len(tr):
            tr = tr[tr.x > 0] if log else tr
            fig.add_trace(go.Scatter(x=tr.x, y=tr.fitted, mode="lines", name="LOWESS"))
        fig.update_layout(xaxis_title=ui.label(feature), yaxis_title=metric, height=380,
                          xaxis_type="log" if log else "linear")
        st.plotly_chart(fig, width="stretch", key="bias_fig")
    groups = [c for c in cols.groups if c != "dataset"]
    if not groups:
        st.text("No metadata column groups these cases (2 to 30 levels): no group comparison.")
        return
    column = st.selectbox("Metadata group", groups, key="bias_group")
    assert column is not None
    pts, table, test = ui.call("bias_groups", dataset, bias_model, metric, reg, column)
    flagged = table[table.differs_from_overall].group.astype(str).tolist() if len(table) else []
    st.text(f"Kruskal-Wallis over {test['groups']} group(s) of {test['unit']}: "
            + (f"H = {ui.fmt(test['statistic'])}, p = {ui.fmt(test['p'])}" if not test["note"] else test["note"])
            + f". Overall mean {ui.fmt(test['overall_mean'])}. "
            + (f"Flagged (95 % CI excludes the overall mean): {', '.join(flagged)}." if flagged else
               "No group's 95 % CI excludes the overall mean."))
    st.dataframe(table, hide_index=True, width="stretch", key="bias_table")
    fig = px.box(pts.assign(group_text=[ui.label(g) for g in pts.group],
                            flagged=["flagged" if g in flagged else "not flagged" for g in pts.group],
                            case_text=[ui.label(c) for c in pts.case]),
                 x="group_text", y="metric", color="flagged", points="all", hover_name="case_text",
                 color_discrete_map={"flagged": "#d1495b", "not flagged": "#4c78a8"})
    fig.update_layout(xaxis_title=ui.label(column), yaxis_title=metric, height=380)
    st.plotly_chart(fig, width="stretch", key="bias_group_fig")


ranking_section()
bias_section()
