"""Entry point of the segaudit dashboard: ``streamlit run main.py -- --run RUN [--project P]``.

Started by :func:`segaudit.app.launch.run_app` (``segaudit app RUN``). Each page is a script in ``views/``;
the page is the URL path, the other state (dataset, model, case, slice) the query parameters. The page
scripts in ``views/`` are package data, not modules: they run only inside Streamlit.
"""

from pathlib import Path

import streamlit as st

HERE = Path(__file__).parent

PAGES = (("overview", "Overview"), ("explorer", "Dataset explorer"), ("performance", "Performance"),
         ("error_matrix", "Error matrix"), ("compare", "Compare models"), ("longitudinal", "Longitudinal"),
         ("case_viewer", "Case viewer"), ("subject", "Subject exploration"))


def run_page() -> None:
    """Configure the page and run the selected one (Streamlit runs this file as ``__main__``)."""
    st.set_page_config(page_title="segaudit", layout="wide")
    nav = st.navigation([st.Page(HERE / "views" / f"{name}.py", title=title, url_path=name, default=i == 0)
                         for i, (name, title) in enumerate(PAGES)])
    nav.run()


if __name__ == "__main__":
    run_page()
