"""Dataset explorer.

Univariate (histogram, box, violin or box + points of any stored feature per dataset, site or metadata group, with
AUDIT's outlier filters and a highlighted case), multivariate (a scatter of two features coloured by a third or a
group), case embeddings (PCA, t-SNE, UMAP when installed) over a chosen feature set, and for one case the
per-sequence intensity histograms, the cross-sequence correlation and a voxel embedding coloured by label.
Only the chosen view is computed; every computation is cached.
"""


import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from segaudit.app import explore, ui

VIEWS = ["Univariate", "Multivariate", "Case embeddings", "One case"]
ALL = "(all datasets)"

run = ui.run_dir()
st.title("Dataset explorer")
c1, c2 = st.columns([1, 2])
with c1:
    chosen_dataset = ui.select("Dataset", ui.call("datasets") + [ALL], "dataset")
if chosen_dataset is None:
    st.stop()
dataset = None if chosen_dataset == ALL else chosen_dataset
with c2:
    view = ui.select("View", VIEWS, "view")
props = ui.call("properties", dataset)
cols = ui.call("property_columns", dataset)
if not cols.numeric and view != "One case":
    st.text(f"{chosen_dataset} has no stored features (run segaudit features, or import AUDIT feature tables).")
    st.stop()


def esc(values) -> list[str]:
    """Data values as escaped text for Plotly labels (Plotly reads a subset of HTML in them)."""
    return [ui.label(str(v)) for v in values]


def default_feature(names: list[str]) -> str | None:
    """A lesion volume if there is one (the feature people look at first), else the first feature."""
    return next((n for n in names if n.endswith(":WT:volume")), next((n for n in names if n.endswith(":volume")),
                                                                     names[0] if names else None))


@st.fragment
def univariate() -> None:
    u1, u2, u3 = st.columns(3)
    with u1:
        feature = ui.select("Feature", cols.numeric, "feature", default=default_feature(cols.numeric))
    with u2:
        group = ui.select("Group by", cols.groups, "group")
    with u3:
        kind = ui.select("Plot", ["histogram", "box", "violin", "box + points"], "plot")
    f1, f2, f3, f4 = st.columns(4)
    method = f1.selectbox("Outlier filter", list(explore.OUTLIER_FILTERS), key="ex_filter")
    assert method is not None  # a selectbox with a default index always holds one of its options
    k = f2.number_input("k (IQR or SD)", min_value=0.0, value=1.5, step=0.5, key="ex_k")
    x = pd.to_numeric(props[feature], errors="coerce")
    finite = x[np.isfinite(x)]
    lo0, hi0 = (float(finite.min()), float(finite.max())) if len(finite) else (0.0, 1.0)
    low = f3.number_input("Clip low", value=lo0, key="ex_low")
    high = f4.number_input("Clip high", value=hi0, key="ex_high")
    keep = explore.outlier_mask(x, method, k, low, high)
    cases = sorted(props.case.astype(str))
    highlight = st.selectbox("Highlight this case", ["(none)"] + cases, key="ex_highlight")
    t = pd.DataFrame({"case": props.case.astype(str), "group": props[group].astype(str), "value": x})[keep]
    t = t[np.isfinite(t.value)]
    removed = props.case[~keep & np.isfinite(x)].astype(str).tolist()
    st.text(f"{len(t)} of {int(np.isfinite(x).sum())} cases with a value shown; the filter removed {len(removed)}"
            + (f": {', '.join(removed[:20])}" + (" ..." if len(removed) > 20 else "") if removed else "") + ".")
    plot = t.assign(case_text=esc(t.case), group_text=esc(t.group))
    if kind == "histogram":
        fig = px.histogram(plot, x="value", color="group_text", barmode="overlay", opacity=0.7, nbins=40)
    elif kind == "violin":
        fig = px.violin(plot, x="group_text", y="value", box=True, points="all", hover_name="case_text")
    else:
        fig = px.box(plot, x="group_text", y="value", points="all" if kind == "box + points" else "outliers",
                     hover_name="case_text")
    if highlight != "(none)":
        h = plot[plot.case == highlight]
        if h.empty:
            st.text(f"{highlight} has no value of this feature, or the filter removed it.")
        elif kind == "histogram":
            fig.add_vline(x=float(h.value.iloc[0]), line_color="black", line_dash="dash")
        else:
            fig.add_trace(go.Scatter(x=h.group_text, y=h.value, mode="markers", name="highlighted case",
                                     marker={"color": "black", "size": 14, "symbol": "star"},
                                     hovertext=h.case_text))
    fig.update_layout(xaxis_title=ui.label(group) if kind != "histogram" else ui.label(feature),
                      yaxis_title=ui.label(feature) if kind != "histogram" else "cases",
                      legend_title_text=ui.label(group), height=440)
    st.plotly_chart(fig, width="stretch", key="ex_uni_fig")
    summary = t.groupby("group").value.agg(["count", "mean", "std", "median", "min", "max"]).reset_index()
    st.dataframe(summary, hide_index=True, width="stretch", key="ex_uni_table")
    if highlight != "(none)" and highlight in set(t.case):
        v = float(t.loc[t.case == highlight, "value"].iloc[0])
        st.text(f"{highlight}: {ui.fmt(v, 4)}; {int((t.value < v).sum())} of {len(t)} shown cases are lower.")


@st.fragment
def multivariate() -> None:
    m1, m2, m3 = st.columns(3)
    with m1:
        fx = ui.select("x", cols.numeric, "x", default=default_feature(cols.numeric))
    with m2:
        fy = ui.select("y", cols.numeric, "y", default=cols.numeric[1] if len(cols.numeric) > 1 else None)
    with m3:
        colour = ui.select("Colour by", cols.groups + [c for c in cols.numeric if c not in (fx, fy)], "colour")
    log = st.checkbox("Log axes", value=False, key="ex_log")
    t = pd.DataFrame({"case": props.case.astype(str), "x": pd.to_numeric(props[fx], errors="coerce"),
                      "y": pd.to_numeric(props[fy], errors="coerce")})
    numeric_colour = colour in cols.numeric
    t["colour"] = pd.to_numeric(props[colour], errors="coerce") if numeric_colour else esc(props[colour])
    t = t[np.isfinite(t.x) & np.isfinite(t.y)]
    st.text(f"{len(t)} cases with both values.")
    fig = px.scatter(t.assign(case_text=esc(t.case)), x="x", y="y", color="colour", hover_name="case_text",
                     log_x=log, log_y=log)
    fig.update_layout(xaxis_title=ui.label(fx), yaxis_title=ui.label(fy), legend_title_text=ui.label(colour),
                      coloraxis_colorbar_title_text=ui.label(colour), height=480)
    st.plotly_chart(fig, width="stretch", key="ex_multi_fig")


@st.fragment
def embeddings() -> None:
    e1, e2 = st.columns([1, 1])
    with e1:
        method = ui.select("Embedding", explore.embedding_methods(), "embedding")
    with e2:
        colour = ui.select("Colour by", cols.groups + cols.numeric, "colour")
    gt_features = [c for c in cols.features if c.split(":")[0] in ("intensity", "lesion", "spatial", "multimodal",
                                                                    "texture", "statistical", "tumor", "other")]
    chosen = st.multiselect("Features (standardised)", cols.numeric, default=gt_features or cols.numeric,
                            key="ex_emb_features")
    if len(chosen) < 2:
        st.text("Choose two or more features.")
        return
    t, emb = ui.call("case_embedding", dataset, tuple(chosen), method)
    if emb.note:
        st.text(emb.note)
        return
    st.text(f"{method} of {len(t)} cases over {len(emb.columns)} standardised features"
            + (f"; {len(emb.dropped_columns)} constant or empty feature(s) left out" if emb.dropped_columns else "")
            + (f"; {emb.dropped_rows} case(s) lacking a chosen feature left out" if emb.dropped_rows else "") + ".")
    numeric_colour = colour in cols.numeric
    plot = t.assign(case_text=esc(t.case),
                    colour=pd.to_numeric(t[colour], errors="coerce") if numeric_colour else esc(t[colour]))
    fig = px.scatter(plot, x="x", y="y", color="colour", hover_name="case_text")
    fig.update_layout(xaxis_title=f"{method} 1", yaxis_title=f"{method} 2", legend_title_text=ui.label(colour),
                      coloraxis_colorbar_title_text=ui.label(colour), height=500)
    st.plotly_chart(fig, width="stretch", key="ex_emb_fig")


@st.cache_data(show_spinner=False, max_entries=32)
def _one_case(run: str, project: str | None, dataset: str, case: str, n: int, method: str, seed: int):
    files = ui.call("case_files", dataset, case)
    disp = ui.display(dataset)
    arrays = {k: np.asarray(ui.volume(p).array, dtype=float) for k, p in sorted(files.images.items())}
    arrays = {k: a for k, a in arrays.items() if a.ndim in (2, 3)}  # colour photos have no per-sequence grey values
    shapes = {a.shape for a in arrays.values()}
    if len(shapes) > 1:
        return None, None, None, "the sequences are on different voxel grids"
    ref = next(iter(files.images.values()), None)
    labels = None
    if files.ground_truth and disp is not None:
        gt = ui.volume(files.ground_truth, "mask", disp.mask_encoding, ref).array
        labels = gt if gt.shape == next(iter(shapes)) else None
    hist = explore.intensity_histograms(arrays)
    corr = explore.sequence_correlation(arrays) if len(arrays) > 1 else None
    sample = explore.voxel_sample(arrays, labels, n, seed)
    emb = explore.embed(explore.standardise(sample[list(arrays)].to_numpy()), method, seed) \
        if len(arrays) > 1 else None
    if emb is not None:
        sample = sample.assign(x=emb[:, 0], y=emb[:, 1])
    return hist, corr, sample, ""


def one_case() -> None:
    if dataset is None:
        st.text("Choose one dataset for the case plots.")
        return
    project = ui.project_path()
    if project is None:
        st.text("The case plots read the images: start the app with --project PROJECT.yaml.")
        return
    o1, o2, o3 = st.columns(3)
    with o1:
        case = ui.select("Case", ui.call("case_ids", dataset), "case")
    if case is None:
        return
    files = ui.call("case_files", dataset, case)
    if not files.images:
        st.text(f"The store records no readable image for {case}.")
        return
    with o2:
        method = st.selectbox("Voxel embedding", [m for m in explore.embedding_methods() if m != "UMAP"],
                              key="ex_vox_method")
    with o3:
        n = st.slider("Voxels sampled", 500, explore.MAX_VOXELS, 2000, 500, key="ex_vox_n")
    assert method is not None  # a selectbox with a default index always holds one of its options
    hist, corr, sample, why = _one_case(run, project, dataset, case, int(n), method, 0)
    if why:
        st.text(f"Not drawn: {why}.")
        return
    if hist is None or hist.empty:
        st.text("No grey-level image to histogram (colour photos are shown in the case viewer).")
        return
    st.subheader("Intensity histograms (non-zero voxels)")
    h = hist.assign(centre=(hist.low + hist.high) / 2, sequence=esc(hist.sequence))
    fig = px.line(h, x="centre", y="count", color="sequence", line_shape="hvh")
    fig.update_layout(xaxis_title="intensity", yaxis_title="voxels", height=360)
    st.plotly_chart(fig, width="stretch", key="ex_hist_fig")
    if corr is None:
        st.text("One sequence: no cross-sequence correlation or voxel embedding.")
        return
    st.subheader("Cross-sequence correlation (Pearson, foreground voxels)")
    names = esc(corr.columns)
    fig = px.imshow(corr.to_numpy(), x=names, y=names, zmin=-1, zmax=1, color_continuous_scale="RdBu_r",
                    text_auto=".2f", aspect="auto")
    fig.update_layout(height=360)
    st.plotly_chart(fig, width="stretch", key="ex_corr_fig")
    st.subheader(f"Voxel embedding ({method} of each voxel's sequence intensities)")
    disp = ui.display(dataset)
    by_value = {int(v): name for name, v in disp.labels.items()} if disp is not None else {}

    def label_name(v: int) -> str:
        return "background" if v == 0 else ui.label(f"{by_value[v]} ({v})" if v in by_value else f"label {v}")

    order = [label_name(int(v)) for v in sorted(sample.label.unique())]
    labels = sample.label.map(lambda v: label_name(int(v)))
    fig = px.scatter(sample.assign(label_text=labels), x="x", y="y", color="label_text", opacity=0.6,
                     category_orders={"label_text": order})
    fig.update_traces(marker={"size": 4})
    fig.update_layout(xaxis_title=f"{method} 1", yaxis_title=f"{method} 2", legend_title_text="ground truth",
                      height=480)
    st.plotly_chart(fig, width="stretch", key="ex_vox_fig")
    st.text(f"{len(sample)} voxels of {case} (seeded sample, every label kept), coloured by ground-truth label.")


{"Univariate": univariate, "Multivariate": multivariate, "Case embeddings": embeddings, "One case": one_case}[view]()
