"""Read-only inputs (issue 13): with the data folder and the project file made read-only, ``scan``,
``evaluate``, ``report`` and ``export`` succeed writing only under the output folder, and no input file's
bytes or mtime change (nor any input folder's mtime: nothing created or deleted next to the data).

Run twice: as this user with ``chmod a-w`` (root ignores the modes, so there the bytes/mtime checks carry the
test), and, when this process is root and the platform lets an unprivileged user run this interpreter, as
uid/gid 65534 through ``setpriv`` so that a write to an input would really be refused.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from robustness.generators import SRC, brainmets_project, child_env, segaudit_cmd

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX modes and users")

NOBODY = 65534


def state(root: Path) -> dict[str, tuple]:
    """Every file's (SHA-256, mtime ns) and every folder's mtime ns under root."""
    out = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        if stat.S_ISDIR(st.st_mode):
            out[str(p.relative_to(root))] = ("dir", st.st_mtime_ns)
        else:
            out[str(p.relative_to(root))] = (hashlib.sha256(p.read_bytes()).hexdigest(), st.st_mtime_ns)
    return out


def set_writable(root: Path, writable: bool) -> None:
    """chmod a-w (or u+w back) on root and everything under it."""
    for p in [root, *root.rglob("*")]:
        mode = p.lstat().st_mode
        p.chmod(mode | stat.S_IWUSR if writable else mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def unprivileged_prefix() -> tuple[list[str] | None, str]:
    """``setpriv`` arguments that run a command as uid/gid 65534, or None with the reason it cannot be done."""
    if os.geteuid() != 0:
        return None, "not root: the chmod-only test already runs as an unprivileged user"
    setpriv = shutil.which("setpriv")
    if not setpriv:
        return None, "setpriv (util-linux) not installed"
    prefix = [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    probe = subprocess.run([*prefix, sys.executable, "-c", "import segaudit, duckdb, nibabel"],
                           env=child_env(HOME="/tmp"), capture_output=True, text=True, timeout=120)
    if probe.returncode:
        why = (probe.stderr.strip().splitlines() or ["?"])[-1]
        return None, f"uid {NOBODY} cannot run {sys.executable} with {SRC} on this platform ({why})"
    return prefix, ""


def run_on_read_only_inputs(base: Path, prefix: list[str]) -> None:
    inputs, out, home = base / "inputs", base / "out", base / "home"
    proj = brainmets_project(inputs, copies=1, images=True, limit=6)
    out.mkdir()
    home.mkdir()
    # Everything the commands may write is under out/ (or home/, checked to stay empty).
    env = child_env(HOME=str(home), MPLCONFIGDIR=str(out / "mplconfig"), TMPDIR=str(out / "tmp"))
    (out / "tmp").mkdir()
    if prefix:
        for d in (base, inputs, *inputs.rglob("*")):
            d.chmod(d.stat().st_mode | stat.S_IROTH | (stat.S_IXOTH if d.is_dir() else 0))
        base.chmod(0o755)
        for p in (out, home, *out.rglob("*")):
            os.chown(p, NOBODY, NOBODY)
    set_writable(inputs, False)
    try:
        before_inputs, before_home = state(inputs), state(home)
        run_dir = out / "run"
        for args in (("scan", proj, "--out", run_dir, "--no-progress"),
                     ("evaluate", proj, "--out", run_dir, "--no-progress"),
                     ("report", run_dir, "--out", out / "report.html"),
                     ("export", run_dir, "--out", out / "export")):
            r = subprocess.run([*prefix, *segaudit_cmd(*args)], env=env, cwd=out, capture_output=True, text=True,
                               timeout=600)
            assert r.returncode == 0, (args[0], r.stderr)
            assert "Traceback" not in r.stderr, (args[0], r.stderr)
        assert state(inputs) == before_inputs  # bytes, mtimes, nothing created or removed among the inputs
        assert state(home) == before_home
        assert sorted(p.name for p in base.iterdir()) == ["home", "inputs", "out"]
        assert (out / "report.html").stat().st_size > 0
        assert (run_dir / "segaudit.duckdb").is_file()
        assert (out / "export" / "metrics.csv").is_file()
    finally:
        set_writable(inputs, True)


def test_read_only_inputs_are_never_written(tmp_path):
    run_on_read_only_inputs(tmp_path, [])


def test_read_only_inputs_as_an_unprivileged_user():
    prefix, why = unprivileged_prefix()
    if prefix is None:
        pytest.skip(why)
    # Not under pytest's tmp_path: its parent folders are private to this user.
    base = Path(tempfile.mkdtemp(prefix="segaudit-ro-"))
    try:
        run_on_read_only_inputs(base, prefix)
    finally:
        shutil.rmtree(base, ignore_errors=True)
