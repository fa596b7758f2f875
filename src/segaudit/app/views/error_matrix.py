"""Error matrix.

Voxel confusion matrix of one model, summed over a dataset or of one case, raw or row-normalised, from the stored
confusion rows (never recomputed from files).
"""


import plotly.express as px
import streamlit as st

from segaudit.app import ui

run = ui.run_dir()
st.title("Error matrix")
datasets = [d for d in ui.call("datasets") if ui.call("has_confusion", d)]
if not datasets:
    st.text("This store holds no confusion rows (segaudit evaluate writes them; AUDIT imports have none).")
    st.stop()
c1, c2, c3 = st.columns(3)
with c1:
    dataset = ui.select("Dataset", datasets, "dataset")
with c2:
    model = ui.select("Model", ui.call("models", dataset), "model")
if model is None:
    st.stop()
with c3:
    case = ui.select("Case", ["all cases"] + ui.call("case_ids", dataset), "case")
scale = st.radio("Values", ["raw voxel counts", "row-normalised (fraction of each true label)"], horizontal=True,
                 key="em_scale")
background = st.checkbox("Include background", value=True, key="em_background")
assert scale is not None  # a radio with a default index always holds one of its options
normalise = scale.startswith("row")
try:
    mat = ui.call("confusion", dataset, model, None if case == "all cases" else case, normalise=normalise,
                  background=background)
except ValueError as exc:
    st.text(str(exc))
    st.stop()
st.text(f"Rows: ground truth; columns: prediction. {model} on {dataset}, "
        f"{'all cases' if case == 'all cases' else 'case ' + case}.")
st.dataframe(mat, width="stretch")
labels = [ui.label(str(x)) for x in mat.columns]
fig = px.imshow(mat.to_numpy(), x=labels, y=[ui.label(str(x)) for x in mat.index], text_auto=".3g" if normalise
                else True, color_continuous_scale="Blues", aspect="auto",
                labels={"x": "prediction", "y": "ground truth", "color": "fraction" if normalise else "voxels"})
st.plotly_chart(fig, width="stretch", key="em_fig")
