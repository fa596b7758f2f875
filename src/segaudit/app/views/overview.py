"""Overview.

Datasets, cases, subjects, sequences and models; QC findings with filters; the errors table; run provenance.
"""

import streamlit as st

from segaudit.app import ui

run = ui.run_dir()
st.title("Overview")
st.text(f"Results store: {run}")
counts = ui.call("table_counts")
cols = st.columns(5)
overview = ui.call("dataset_overview")
cols[0].metric("Datasets", len(overview))
cols[1].metric("Cases", int(overview.cases.sum()) if len(overview) else 0)
cols[2].metric("Models", len({m for s in overview.models for m in s.split(", ") if m}))
cols[3].metric("Metric rows", counts.get("metrics", 0))
cols[4].metric("QC findings", counts.get("qc", 0))

st.subheader("Datasets")
st.dataframe(overview, hide_index=True, width="stretch")

st.subheader("QC findings")
@st.fragment
def qc_section(total: int) -> None:
    """The QC filters and table: a fragment, so a filter change reruns only this part."""
    choices = ui.call("qc_choices")
    f1, f2, f3 = st.columns(3)
    sev = f1.multiselect("Severity", choices["severity"], default=choices["severity"], key="qc_severity")
    ds = f2.multiselect("Dataset", choices["dataset"], default=choices["dataset"], key="qc_dataset")
    chk = f3.multiselect("Check", choices["check"], default=choices["check"], key="qc_check")
    qc = ui.call("qc_findings", sev, ds, chk)
    st.text(f"{len(qc)} of {total} findings shown")
    st.dataframe(qc, hide_index=True, width="stretch")


qc_section(counts.get("qc", 0))

st.subheader("Errors")
errors = ui.call("error_rows")
if errors.empty:
    st.text("No step recorded an error or warning for any case.")
else:
    st.dataframe(errors, hide_index=True, width="stretch")

st.subheader("Run provenance")
prov = ui.call("run_provenance")
if prov.empty:
    st.text("No step run is recorded in this store (an imported table?).")
else:
    st.dataframe(prov[["step", "status", "started_at", "finished_at", "seconds", "segaudit_version",
                       "python_version", "platform", "config_hash", "packages"]], hide_index=True, width="stretch")
