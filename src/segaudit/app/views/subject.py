"""Subject exploration.

Everything about one case: its metadata, each feature against the cohort (median, mean ± SD, IQR outliers at
k = 1.5 and 3, as AUDIT's page), its metrics per model, its QC findings and errors, its other time points, and a
link to the case viewer.
"""

import streamlit as st

from segaudit.app import explore, ui

run = ui.run_dir()
st.title("Subject exploration")
c1, c2 = st.columns(2)
dataset, case = ui.pick_case(c1, c2)
props = ui.call("properties", dataset)
cols = ui.call("property_columns", dataset)
row = props[props.case.astype(str) == case]

st.subheader("Metadata")
meta_cols = [c for c in props.columns if c not in cols.features and c not in ("dataset", "case")]
if row.empty or not meta_cols:
    st.text("No metadata recorded for this case.")
else:
    meta = row.iloc[0][meta_cols]
    st.dataframe(meta.astype(str).rename("value").rename_axis("column").reset_index(), hide_index=True,
                 width="stretch", key="subj_meta")
    subject = row.iloc[0].get("subject")
    if isinstance(subject, str) and subject:
        same = props[props.subject.astype(str) == subject].case.astype(str).tolist()
        st.text(f"Subject {subject}: {len(same)} case(s) in {dataset}: {', '.join(same)}.")

st.subheader("Features against the cohort")
if row.empty or not cols.features:
    st.text("No stored features for this case (segaudit features writes them).")
else:
    only_gt = st.checkbox("Images and ground truth only (no prediction features)", value=True, key="subj_gt")
    feats = [c for c in cols.features if c.count(":") == 2] if only_gt else cols.features
    pos = explore.cohort_position(props, row.index[0], feats)
    flagged = pos[pos.outlier != ""]
    st.text(f"{len(pos)} features against {len(props)} cases of {dataset}; {int((pos.outlier == 'mild').sum())} "
            f"outside the IQR fences with k = 1.5, {int((pos.outlier == 'extreme').sum())} beyond k = 3.")
    show = st.radio("Show", ["outliers first", "all, by name"], horizontal=True, key="subj_order")
    if show == "outliers first":
        pos = pos.assign(_o=pos.outlier.map({"extreme": 0, "mild": 1, "": 2})).sort_values(["_o", "feature"]) \
            .drop(columns="_o")
    st.dataframe(pos, hide_index=True, width="stretch", key="subj_features",
                 column_config={c: st.column_config.NumberColumn(format="%.4g")
                                for c in ("value", "median", "mean", "sd", "q1", "q3", "z")})
    if len(flagged):
        st.text("Outlying: " + ", ".join(f"{r.feature} ({r.outlier})" for r in flagged.head(12).itertuples())
                + (" ..." if len(flagged) > 12 else ""))

st.subheader("Metrics per model")
metrics = ui.call("case_metrics", dataset, case)
metrics = metrics[~metrics.metric.isin(["gt_empty", "pred_empty"])]
if metrics.empty:
    st.text("No metric rows for this case.")
else:
    st.dataframe(metrics.pivot_table(index=["metric", "region"], columns="model", values="value",
                                     aggfunc="first").reset_index(), hide_index=True, width="stretch",
                 key="subj_metrics")

st.subheader("QC findings and errors")
qc = ui.call("case_qc", dataset, case)
errors = ui.call("case_errors", dataset, case)
if qc.empty:
    st.text("No QC finding for this case.")
else:
    st.dataframe(qc, hide_index=True, width="stretch", key="subj_qc")
if errors.empty:
    st.text("No pipeline step (evaluate, features, agree...) recorded an error or warning for this case.")
else:
    st.dataframe(errors, hide_index=True, width="stretch", key="subj_errors")

models = ui.call("models", dataset)
if st.button("Open in the case viewer", key="subj_open"):
    st.switch_page("views/case_viewer.py", query_params={"dataset": dataset, "case": case,
                                                          **({"model": models[0]} if models else {})})
