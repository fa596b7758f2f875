"""Start the dashboard: ``streamlit run`` on :mod:`segaudit.app.main` as a subprocess, bound to loopback.

``segaudit app RUN [--project P] [--host H] [--port N]`` calls :func:`run_app`.
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
import warnings
from pathlib import Path

from segaudit.errors import SegauditError
from segaudit.store.store import DB_NAME

MAIN = Path(__file__).with_name("main.py")

#: Streamlit settings the app always runs with: no usage statistics, nothing fetched from outside the local
#: server, no browser opened from the server process, no file watcher (the app's code does not change).
FLAGS = ("--browser.gatherUsageStats", "false", "--server.headless", "true", "--server.fileWatcherType", "none",
         "--global.developmentMode", "false", "--client.toolbarMode", "minimal", "--server.enableStaticServing",
         "false", "--theme.base", "light")


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1); False for anything else, including
    ``0.0.0.0`` (every interface).
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_warning(host: str) -> str | None:
    """The warning for a non-loopback ``host`` (None on loopback)."""
    if is_loopback(host):
        return None
    return (f"segaudit app binds {host}: the results, and the images the project names, become reachable by "
            "anyone who can reach this machine on that address")


def app_command(run_dir: str | Path, project: str | Path | None = None, host: str = "127.0.0.1",
                port: int = 8501) -> list[str]:
    """The ``python -m streamlit run main.py ... -- --run RUN [--project P]`` command line."""
    cmd = [sys.executable, "-m", "streamlit", "run", str(MAIN), "--server.address", host, "--server.port",
           str(int(port)), *FLAGS, "--", "--run", str(Path(run_dir).resolve())]
    if project is not None:
        cmd += ["--project", str(Path(project).resolve())]
    return cmd


def start_app(run_dir: str | Path, project: str | Path | None = None, host: str = "127.0.0.1", port: int = 8501,
              **popen) -> subprocess.Popen:
    """Start the app server and return its process (the caller waits on it or terminates it).

    Raises SegauditError when ``run_dir`` holds no store or ``project`` is not a file; warns (UserWarning)
    when ``host`` is not a loopback address: the data then becomes reachable by others on the network.
    """
    if not (Path(run_dir) / DB_NAME).is_file():
        raise SegauditError(f"{run_dir}: no results store here (expected {DB_NAME})")
    if project is not None and not Path(project).is_file():
        raise SegauditError(f"{project}: project file not found")
    message = host_warning(host)
    if message:
        warnings.warn(message, UserWarning, stacklevel=2)
    env = {**os.environ, **popen.pop("env", {})}
    # The server must import this very segaudit (a source checkout may not be the installed one).
    src = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join([src, *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])])
    env["STREAMLIT_BROWSER_GATHER_USAGE_STATS"] = "false"
    return subprocess.Popen(app_command(run_dir, project, host, port), env=env, **popen)


def run_app(run_dir: str | Path, project: str | Path | None = None, host: str = "127.0.0.1",
            port: int = 8501) -> int:
    """Run the app server in the foreground until it stops (Ctrl-C); returns its exit status."""
    proc = start_app(run_dir, project, host, port)
    print(f"segaudit app: http://{host}:{port}  (Ctrl-C to stop)", flush=True)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        return proc.wait()
