"""The memory figure of the scale test and benchmark (``generators.run_measured``) is the command's own.

Linux folds a process's memory high-water mark into its ``ru_maxrss`` across ``exec``; a child started straight
from a large pytest process reported pytest's peak (the scan's 1910 MB in the full suite; alone it peaks at
253 MB). Here a parent process holding 400 MB measures ``segaudit --version``: the figure must be that small
command's.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from robustness.generators import child_env

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss in KiB: Linux")

PARENT = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from robustness.generators import run_measured
held = bytearray(400 * 2**20)
for i in range(0, len(held), 4096):
    held[i] = 1  # resident, not only reserved
m = run_measured("--version", log_dir=Path(sys.argv[2]))
print(m.returncode, round(m.peak_rss_mb), m.stdout.strip())
"""


def test_peak_rss_of_a_command_started_by_a_large_parent_is_its_own(tmp_path):
    tests_dir = Path(__file__).resolve().parents[1]
    r = subprocess.run([sys.executable, "-c", PARENT, str(tests_dir), str(tmp_path / "log")], capture_output=True,
                       text=True, timeout=120, env=child_env())
    assert r.returncode == 0, r.stderr
    code, peak_mb, version = r.stdout.split(maxsplit=2)
    assert code == "0"
    assert version.startswith("segaudit ")
    assert 5 < int(peak_mb) < 200, peak_mb  # the parent's 400 MB would show here
