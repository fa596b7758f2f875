"""``segaudit app``: the dashboard over a results store (:func:`segaudit.app.launch.run_app`)."""

from __future__ import annotations

import importlib.util
import sys
import warnings

from segaudit.errors import SegauditError


def cmd_app(args) -> int:
    """Start the Streamlit dashboard on ``args.results`` (and the project's images) until Ctrl-C."""
    if importlib.util.find_spec("streamlit") is None or importlib.util.find_spec("plotly") is None:
        raise SegauditError("the dashboard needs the app extra: pip install 'segaudit[app]' (streamlit, plotly)")
    from segaudit.app.launch import host_warning, run_app

    message = host_warning(args.host)
    if message:
        print(f"segaudit: warning: {message}", file=sys.stderr)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # said once, above, as a line and not a Python warning
        return run_app(args.results, args.project, args.host, args.port)
