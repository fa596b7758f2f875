"""The dashboard's pages, one Streamlit script each (run by :mod:`segaudit.app.main`)."""
