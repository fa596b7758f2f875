"""The segaudit dashboard: a Streamlit app over one results store (``segaudit app RUN``)."""

from segaudit.app.launch import app_command, run_app, start_app

__all__ = ["app_command", "run_app", "start_app"]
