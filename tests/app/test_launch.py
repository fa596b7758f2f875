"""segaudit.app.launch: the command line the server runs with, loopback binding and its warning."""

import warnings

import pytest

from segaudit.app import launch
from segaudit.errors import SegauditError


def test_loopback_hosts():
    assert launch.is_loopback("127.0.0.1")
    assert launch.is_loopback("localhost")
    assert launch.is_loopback("::1")
    assert launch.is_loopback("127.0.0.2")
    assert not launch.is_loopback("0.0.0.0")
    assert not launch.is_loopback("192.168.1.10")
    assert not launch.is_loopback("example.org")
    assert launch.host_warning("127.0.0.1") is None
    assert "reachable by anyone" in launch.host_warning("0.0.0.0")


def test_command_turns_usage_stats_off_and_binds_the_host(tmp_path):
    cmd = launch.app_command(tmp_path, None, "127.0.0.1", 8600)
    assert cmd[cmd.index("--browser.gatherUsageStats") + 1] == "false"
    assert cmd[cmd.index("--server.address") + 1] == "127.0.0.1"
    assert cmd[cmd.index("--server.port") + 1] == "8600"
    assert cmd[cmd.index("run") + 1] == str(launch.MAIN)
    assert launch.MAIN.is_file()
    assert cmd[cmd.index("--") + 1:] == ["--run", str(tmp_path.resolve())]
    proj = tmp_path / "p.yaml"
    assert launch.app_command(tmp_path, proj)[-2:] == ["--project", str(proj.resolve())]


def test_refuses_a_folder_without_a_store_and_warns_off_loopback(tmp_path):
    with pytest.raises(SegauditError, match="no results store"):
        launch.start_app(tmp_path)
    (tmp_path / "segaudit.duckdb").write_bytes(b"")
    with pytest.raises(SegauditError, match="project file not found"):
        launch.start_app(tmp_path, tmp_path / "missing.yaml")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(SegauditError):
            launch.start_app(tmp_path, tmp_path / "missing.yaml", host="0.0.0.0")
    assert caught == []  # refused before binding anything: no warning for a server that never starts
