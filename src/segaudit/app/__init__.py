"""The segaudit dashboard: a Streamlit app over one results store (``segaudit app RUN``)."""
