"""The project file's format version: ``version: 1`` is read, a missing one means 1, others are refused."""

from __future__ import annotations

import pytest
import yaml

from segaudit.cli import main
from segaudit.dataset import load_project
from segaudit.dataset.project import PROJECT_FILE_VERSION
from segaudit.errors import ConfigError


def write(tmp_path, **top) -> str:
    p = tmp_path / "p.yaml"
    p.write_text(yaml.safe_dump({**top, "datasets": {"A": {"root": str(tmp_path),
                                                          "ground_truth": "{root}/{case}.nii.gz"}}}))
    return p


@pytest.mark.parametrize("top", [{}, {"version": 1}])
def test_version_one_or_none_is_read(tmp_path, top):
    assert [d.name for d in load_project(write(tmp_path, **top)).datasets] == ["A"]


@pytest.mark.parametrize("version", [2, 0, "1", 1.5, True, None])
def test_another_version_is_refused_naming_the_file(tmp_path, version):
    p = write(tmp_path, version=version)
    with pytest.raises(ConfigError, match=rf"^{p}: version {version!r} is not a project-file version this "
                                          rf"segaudit reads \(it reads version 1"):
        load_project(p)


def test_init_writes_version_one(tmp_path, tests_data, capsys):
    out = tmp_path / "p.yaml"
    assert main(["init", str(tests_data / "chest_xray_lungs"), "--out", str(out)]) == 0
    assert yaml.safe_load(out.read_text())["version"] == PROJECT_FILE_VERSION == 1
    assert load_project(out).raw["version"] == 1
