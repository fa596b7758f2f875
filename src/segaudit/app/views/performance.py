"""Performance.

Summary with bootstrap CIs per model/region, box and strip plots on the quality bands, worst and best cases; a selected
case opens in the case viewer.
"""


import plotly.express as px
import streamlit as st

from segaudit.app import data, ui

run = ui.run_dir()
st.title("Performance")
datasets = ui.call("datasets")
c1, c2 = st.columns(2)
with c1:
    dataset = ui.select("Dataset", datasets, "dataset")
if dataset is None:
    st.stop()
with c2:
    metric = ui.select("Metric", ui.call("stored_metric_names", dataset), "metric", default="dice")
if metric is None:
    st.stop()

summary = ui.call("summary", dataset, metric)
st.subheader("Summary (mean with 95 % bootstrap CI)")
if summary.empty:
    st.text("No values of this metric.")
    st.stop()
cols = [c for c in ("model", "region", "n", "n_both_empty", "mean", "ci_low", "ci_high", "median", "iqr", "std",
                    "resampled", "ci_note") if c in summary.columns]
st.dataframe(summary[cols], hide_index=True, width="stretch")
best = summary.dropna(subset=["mean"])
if len(best):
    top = best.loc[best["mean"].idxmax() if data.better_is_higher(metric) else best["mean"].idxmin()]
    st.text(f"{len(summary)} model-region groups. Best mean {metric}: {top.model} on {top.region}, "
            f"{ui.fmt(top['mean'], 4)} (95 % CI {ui.fmt(top.ci_low, 4)} to {ui.fmt(top.ci_high, 4)}, n = {top.n}"
            + (f", {top.ci_note}" if top.ci_note else "") + ").")

values = ui.call("values", dataset, metric)
kind = st.radio("Plot", ["box + points", "strip"], horizontal=True, key="perf_plot")
plot = values.assign(case_text=values.case.map(ui.label), model_text=values.model.map(ui.label))
if kind == "strip":
    fig = px.strip(plot, x="region", y="value", color="model_text", hover_name="case_text")
else:
    fig = px.box(plot, x="region", y="value", color="model_text", points="all", hover_name="case_text")
if metric in ("dice", "iou", "nsd@1mm", "lesion_dice", "lesion_f1"):
    # Quality bands as in the report: poor below 0.5, fair to 0.8, good above.
    for y0, y1, colour in ((0, 0.5, "rgba(255,0,0,0.06)"), (0.5, 0.8, "rgba(255,200,0,0.08)"),
                           (0.8, 1.0, "rgba(0,160,0,0.06)")):
        fig.add_hrect(y0=y0, y1=y1, fillcolor=colour, line_width=0)
fig.update_layout(legend_title_text="model", yaxis_title=metric, height=420)
st.plotly_chart(fig, width="stretch", key="perf_fig")

st.subheader("Worst and best cases")
k = st.slider("Cases per list", 1, 20, 5, key="perf_k")
wb = ui.call("worst_best_cases", dataset, metric, k)
table = wb[["rank_kind", "rank", "model", "region", "case", "value"]]
event = st.dataframe(table, hide_index=True, width="stretch", on_select="rerun", selection_mode="single-row",
                     key="perf_wb")
rows = getattr(getattr(event, "selection", None), "rows", []) if event is not None else []
cases = sorted(values.case.astype(str).unique())
picked = table.iloc[rows[0]] if rows else None
default_case = str(picked.case) if picked is not None else ui.param("case")
case = st.selectbox("Case", cases, index=cases.index(default_case) if default_case in cases else 0, key="perf_case")
models = sorted(values.model.astype(str).unique())
model = str(picked.model) if picked is not None else (ui.param("model") if ui.param("model") in models else models[0])
if st.button("Open in the case viewer", key="perf_open"):
    st.switch_page("views/case_viewer.py", query_params={"dataset": dataset, "case": case, "model": model})
