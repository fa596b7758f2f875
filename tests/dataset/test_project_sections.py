"""The project file's option sections (qc, evaluate, features) are checked when the file is loaded.

One unknown-key helper (:func:`segaudit.errors.check_keys`) words every section's error alike; each value is
checked by its :class:`~segaudit.dataset.values.ValueCheck` and the message names the file and the entry.
"""

from __future__ import annotations

import pytest
import yaml

from segaudit.dataset import load_project
from segaudit.errors import ConfigError, SegauditError, check_keys
from segaudit.features.case import FeatureOptions
from segaudit.metrics import EmptyPolicy, EvaluationOptions
from segaudit.qc.checks import QCOptions


def project_file(tmp_path, extra: dict | None = None, **dataset) -> str:
    """A real project file over a real folder (tmp_path) with one ground-truth template and ``extra`` keys."""
    ds = {"root": str(tmp_path), "ground_truth": "{root}/{case}.nii.gz", **dataset}
    p = tmp_path / "p.yaml"
    p.write_text(yaml.safe_dump({"datasets": {"A": ds}, **(extra or {})}))
    return p


def test_config_error_is_a_segaudit_error_and_a_value_error():
    assert issubclass(ConfigError, SegauditError)
    assert issubclass(ConfigError, ValueError)


@pytest.mark.parametrize(("extra", "dataset", "where"), [
    ({"zzz": 1}, {}, "p.yaml:"),
    ({}, {"zzz": 1}, "p.yaml: dataset 'A':"),
    ({}, {"metadata": {"path": "m.csv", "zzz": 1}}, "p.yaml: dataset 'A': metadata:"),
    ({}, {"longitudinal": {"pattern": "(?P<subject>.+)_(?P<timepoint>.+)", "zzz": 1}},
     "p.yaml: dataset 'A': longitudinal:"),
    ({}, {"mask_encoding": {"kind": "binary", "zzz": 1}}, "p.yaml: dataset 'A': mask_encoding:"),
    ({}, {"prediction_encoding": {"m1": {"kind": "binary", "zzz": 1}}}, "p.yaml: dataset 'A': prediction_encoding.m1:"),
    ({"qc": {"zzz": 1}}, {}, "p.yaml: qc:"),
    ({"evaluate": {"zzz": 1}}, {}, "p.yaml: evaluate:"),
    ({"evaluate": {"policy": {"zzz": 1}}}, {}, "p.yaml: evaluate.policy:"),
    ({"features": {"zzz": 1}}, {}, "p.yaml: features:"),
])
def test_every_section_words_an_unknown_key_alike(tmp_path, extra, dataset, where):
    with pytest.raises(ConfigError) as err:
        load_project(project_file(tmp_path, extra, **dataset))
    msg = str(err.value)
    assert where in msg, msg
    assert "unknown key(s) 'zzz'; allowed keys: " in msg, msg


@pytest.mark.parametrize(("section", "value", "entry", "says"), [
    ("evaluate", {"surfce": "voxel"}, "evaluate:", "unknown key(s) 'surfce'"),
    ("evaluate", {"surface": "cube"}, "evaluate.surface", "one of surfel, voxel, not 'cube'"),
    ("evaluate", {"dilation": -4}, "evaluate.dilation", "an integer >= 0, not -4"),
    ("evaluate", {"dilation": 1.5}, "evaluate.dilation", "an integer >= 0, not 1.5"),
    ("evaluate", {"connectivity": 7}, "evaluate.connectivity", "one of 4, 6, 8, 18, 26 (or null), not 7"),
    ("evaluate", {"percentile": 0}, "evaluate.percentile", "a number in (0, 100], not 0"),
    ("evaluate", {"tolerances": [1, -2]}, "evaluate.tolerances", "not [1, -2]"),
    ("evaluate", {"distances": "no"}, "evaluate.distances", "true or false, not 'no'"),
    ("evaluate", {"policy": {"both_empty": 0.5}}, "evaluate.both_empty", "one of 0, 1 or nan, not 0.5"),
    ("evaluate", {"penalty": 0}, "evaluate.penalty", "a number > 0 (or null), not 0"),
    ("evaluate", "voxel", "evaluate must be a mapping", ""),
    ("qc", {"spacing_tol": "abc"}, "qc.spacing_tol", "a number >= 0, not 'abc'"),
    ("qc", {"origin_tol": True}, "qc.origin_tol", "a number >= 0, not True"),
    ("features", {"bin_count": 0}, "features.bin_count", "an integer >= 1 (or null), not 0"),
    ("features", {"groups": ["texture", "shape"]}, "features.groups", "not ['texture', 'shape']"),
    ("features", {"foreground": "brain"}, "features.foreground", "one of auto, nonzero, positive"),
])
def test_bad_option_values_are_refused_at_load_time(tmp_path, section, value, entry, says):
    with pytest.raises(ConfigError) as err:
        load_project(project_file(tmp_path, {section: value}))
    msg = str(err.value)
    assert msg.startswith(f"{tmp_path / 'p.yaml'}: "), msg
    assert entry in msg, msg
    assert says in msg, msg


def test_valid_sections_load_and_build_the_options(tmp_path):
    sections = {"qc": {"spacing_tol": 0.01, "origin_tol": 1, "direction_tol": 0.001},
                "evaluate": {"surface": "voxel", "tolerances": [1, 2], "percentile": 90, "dilation": 0,
                             "connectivity": 6, "penalty": None, "policy": {"both_empty": "nan"},
                             "distance_one_empty": "nan"},
                "features": {"groups": ["intensity"], "bin_count": None, "bin_width": 25, "shape": False}}
    project = load_project(project_file(tmp_path, sections))
    ev = EvaluationOptions.from_dict(project.section("evaluate"))
    assert ev.surface == "voxel"
    assert ev.tolerances == (1.0, 2.0)
    assert ev.connectivity == 6
    assert ev.policy.distance_one_empty == "nan"  # NaN
    assert ev.policy.both_empty != ev.policy.both_empty
    assert FeatureOptions.from_dict(project.section("features")).bin_width == 25
    assert QCOptions.from_dict(project.section("qc")).origin_tol == 1.0
    assert project.section("absent") == {}


def test_option_classes_use_the_same_helper_and_error():
    # Library callers get the same words (and still a ValueError).
    for cls, name in ((EvaluationOptions, "evaluate"), (FeatureOptions, "features"), (QCOptions, "qc")):
        with pytest.raises(ValueError, match=rf"^{name}: unknown key\(s\) 'zzz'; allowed keys: ") as err:
            cls.from_dict({"zzz": 1})
        assert isinstance(err.value, ConfigError)
    with pytest.raises(ConfigError, match="surface must be one of"):
        EvaluationOptions(surface="cube")
    with pytest.raises(ConfigError, match="both_empty"):
        EmptyPolicy(both_empty=0.5)


def test_check_keys_names_where_and_what():
    check_keys({"a": 1}, {"a", "b"}, "here")
    with pytest.raises(ConfigError, match=r"^here: unknown key\(s\) '1', 'c'; allowed keys: a, b$"):
        check_keys({"a": 1, "c": 2, 1: 3}, {"a", "b"}, "here")
