"""``segaudit app``: the verb starts the dashboard's server over a real store and says what a wide bind means."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from segaudit.cli import main

ROOT = Path(__file__).resolve().parents[2]
AUDIT_CSV = "audit_outputs/metrics/BraTS_2024_by_site/extracted_information_Indiana.csv"

pytest.importorskip("streamlit", reason="the app extra is not installed") if os.environ.get("CI") != "true" else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_app_verb_serves_the_store_and_stops_on_ctrl_c(tmp_path, tests_data):
    run = tmp_path / "run"
    assert main(["import-audit", "--metrics", str(tests_data / AUDIT_CSV), "--out", str(run)]) == 0
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen([sys.executable, "-m", "segaudit", "app", str(run), "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        health = None
        for _ in range(240):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                    health = r.read().decode()
                    break
            except OSError:
                time.sleep(0.5)
        assert health == "ok"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as r:
            assert r.status == 200
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert f"http://127.0.0.1:{port}" in out
    assert "Traceback" not in err


def test_app_verb_refuses_a_folder_without_a_store(tmp_path, capsys):
    assert main(["app", str(tmp_path)]) == 2
    assert "no results store here" in capsys.readouterr().err


def test_app_verb_checks_the_port_at_parse_time(tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["app", str(tmp_path), "--port", "0"])
    assert exc.value.code == 2
