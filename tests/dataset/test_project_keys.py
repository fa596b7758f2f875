"""The project file's keys are documented once (PROJECT_KEYS) and the README's table is generated from it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from segaudit.dataset import load_project
from segaudit.dataset.project import (
    DATASET_KEYS,
    METADATA_KEYS,
    PROJECT_KEYS,
    SUBSET_PREDICTION_KEYS,
    TOP_KEYS,
    project_keys_markdown,
)
from segaudit.errors import ConfigError
from segaudit.features.case import FeatureOptions
from segaudit.metrics import EmptyPolicy, EvaluationOptions
from segaudit.qc.checks import QCOptions

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_table_is_the_generated_one():
    text = README.read_text()
    m = re.search(r"<!-- project-keys:start -->\n(.*?)<!-- project-keys:end -->", text, re.S)
    assert m, "README lacks the project-keys section"
    assert m.group(1) == project_keys_markdown()


def test_every_accepted_key_is_documented_and_nothing_else():
    keys = {k.key for k in PROJECT_KEYS}
    expected = set(TOP_KEYS) | {f"<dataset>.{k}" for k in DATASET_KEYS} | {
        f"<dataset>.metadata.{k}" for k in METADATA_KEYS} | {
        f"<dataset>.subset_predictions.{k}" for k in SUBSET_PREDICTION_KEYS}
    expected |= {f"qc.{k}" for k in QCOptions.__dataclass_fields__}
    expected |= {f"evaluate.{k}" for k in EvaluationOptions.__dataclass_fields__}
    expected |= {f"evaluate.{k}" for k in EmptyPolicy.__dataclass_fields__}
    expected |= {f"features.{k}" for k in FeatureOptions.__dataclass_fields__}
    expected -= {"qc", "evaluate", "features"}  # sections documented by their keys
    assert keys == expected


def test_examples_are_valid_yaml():
    for k in PROJECT_KEYS:
        assert isinstance(yaml.safe_load(k.example), dict), k.key


def test_missing_root_is_an_error_naming_it(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("datasets: {A: {root: no_such_folder, ground_truth: '{root}/{case}.nii.gz'}}\n")
    with pytest.raises(ConfigError, match=r"root .*no_such_folder does not exist"):
        load_project(path)
