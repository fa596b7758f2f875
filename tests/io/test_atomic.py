"""Atomic writes: the target is whole or untouched, and no temporary file is left behind."""

import pytest

from segaudit.io.atomic import atomic_write, atomic_write_text


def test_failed_writer_leaves_the_old_file_and_no_temporary(tmp_path):
    target = atomic_write_text(tmp_path / "out" / "table.csv", "a,b\n1,2\n")

    def broken(tmp):
        with open(tmp, "w") as fh:
            fh.write("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, broken)
    assert target.read_text() == "a,b\n1,2\n"
    assert [p.name for p in target.parent.iterdir()] == ["table.csv"]


def test_temporary_keeps_the_suffix(tmp_path):
    seen = []
    atomic_write(tmp_path / "fig.png", lambda tmp: (seen.append(tmp), open(tmp, "wb").close()))
    assert seen[0].endswith(".png")
    assert (tmp_path / "fig.png").exists()
