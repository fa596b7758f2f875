"""Longitudinal.

True and predicted lesion volume per subject over its time points, the growth between time points and each
prediction's relative volume error (:func:`segaudit.analysis.longitudinal_volumes` on the stored volumes).
"""


import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from segaudit.app import ui

run = ui.run_dir()
st.title("Longitudinal")
datasets = [d for d in ui.call("datasets") if not ui.call("longitudinal", d).empty]
if not datasets:
    st.text("No dataset has cases with a subject and a time point and a stored lesion volume (declare "
            "longitudinal: in the project, and run segaudit features; AUDIT feature tables carry both).")
    st.stop()
c1, c2, c3 = st.columns(3)
with c1:
    dataset = ui.select("Dataset", datasets, "dataset")
with c2:
    region = ui.select("Region", ui.call("volume_regions", dataset), "region", default="WT")
if region is None:
    st.stop()
t = ui.call("longitudinal", dataset, region)
if t.empty:
    st.text(f"No stored volume of {region} in {dataset}.")
    st.stop()
with c3:
    subject = ui.select("Subject", sorted(t.subject.astype(str).unique()), "subject")
s = t[t.subject.astype(str) == subject]
models = sorted(s.model.dropna().astype(str).unique())
truth = s.drop_duplicates("case")
n_tp = truth.timepoint.nunique()
st.text(f"{subject}: {n_tp} time point(s) in {dataset}; {region} volume in mm³ (mm² on 2D images), "
        f"{len(models)} model(s).")
fig = go.Figure(go.Scatter(x=[ui.label(str(v)) for v in truth.timepoint], y=truth.true_volume,
                           mode="lines+markers", name="ground truth", line={"color": "black", "width": 3}))
for m in models:
    p = s[s.model == m]
    fig.add_trace(go.Scatter(x=[ui.label(str(v)) for v in p.timepoint], y=p.pred_volume, mode="lines+markers",
                             name=ui.label(m), line={"dash": "dash"}))
fig.update_layout(xaxis_title="time point", yaxis_title=f"{ui.label(region)} volume", height=400,
                  xaxis_type="category")
st.plotly_chart(fig, width="stretch", key="long_fig")

st.subheader("Relative volume error ((predicted - true) / true)")
err = s.dropna(subset=["model"])
if len(err):
    fig = px.bar(err.assign(tp=[ui.label(str(v)) for v in err.timepoint], model_text=err.model.map(ui.label)),
                 x="tp", y="relative_error", color="model_text", barmode="group")
    fig.update_layout(xaxis_title="time point", yaxis_title="relative error", legend_title_text="model", height=340,
                      xaxis_type="category")
    st.plotly_chart(fig, width="stretch", key="long_err_fig")
show = [c for c in ("timepoint", "case", "model", "true_volume", "pred_volume", "relative_error", "true_growth",
                    "pred_growth", "true_growth_rel", "pred_growth_rel") if c in s.columns]
st.dataframe(s[show], hide_index=True, width="stretch", key="long_table")
growth = truth.dropna(subset=["true_growth"])
if len(growth):
    last = growth.iloc[-1]
    st.text(f"Ground-truth growth from the previous time point to {last.timepoint}: {ui.fmt(last.true_growth, 4)} "
            f"mm³ ({ui.fmt(100 * last.true_growth_rel, 3)} %).")

st.subheader("All subjects: mean absolute relative error per model")
summary = t.dropna(subset=["model", "relative_error"]).assign(abs_error=lambda d: d.relative_error.abs()) \
    .groupby("model").agg(subjects=("subject", "nunique"), time_points=("case", "nunique"),
                          mean_abs_relative_error=("abs_error", "mean")).reset_index()
st.dataframe(summary, hide_index=True, width="stretch", key="long_summary")
