"""Compare models.

The paired test of two models with its reason in words, effect sizes and flips, per-case difference bars (sortable,
top-k, clip) with a CSV download; Friedman, mean ranks with the critical difference and the post hoc table when a
dataset has three or more models.
"""

import html

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

st.subheader(f"{candidate} vs {baseline}")
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
fig = go.Figure(go.Bar(x=[html.escape(c) for c in shown.case], y=bars,
                       marker_color=["#2a9d3a" if v > 0 else "#d1495b" for v in shown.difference]))
fig.update_layout(xaxis_title="case", yaxis_title=f"{metric} difference", height=380)
st.plotly_chart(fig, width="stretch", key="cmp_fig")
st.download_button("Download the per-case differences (CSV)", diff.to_csv(index=False).encode(),
                   file_name="differences.csv", mime="text/csv", key="cmp_csv")

st.subheader("All models: Friedman test and mean ranks")
if len(models) < 3:
    st.text(f"{dataset} has {len(models)} models: ranking needs three or more.")
    st.stop()
rk = ui.call("ranking", dataset, metric)
f = rk.friedman
st.text(f"Friedman chi-square = {ui.fmt(f.get('statistic'))}, p = {ui.fmt(f.get('p'))} on {f.get('n')} cases and "
        f"{f.get('k')} models; Nemenyi critical difference {ui.fmt(f.get('critical_difference'))}."
        + (f" {f['note']}." if f.get("note") else "") + f" {rk.policy.get('policy', '')}")
st.dataframe(rk.ranks, hide_index=True, width="stretch")
cd = f.get("critical_difference")
ranks = rk.ranks.sort_values("mean_rank")
fig = px.scatter(x=ranks.mean_rank, y=[html.escape(m) for m in ranks.model],
                 error_x=[cd / 2 if cd == cd else 0] * len(ranks), labels={"x": "mean rank (1 = best)", "y": ""})
fig.update_layout(height=120 + 40 * len(ranks), title="Mean ranks; bars span the critical difference")
st.plotly_chart(fig, width="stretch", key="rank_fig")
st.dataframe(rk.posthoc, hide_index=True, width="stretch", column_config=PFMT)
