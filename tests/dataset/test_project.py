import textwrap

import pytest

from segaudit.dataset import LABEL_CONVENTIONS, LabelMap, discover, load_project, parse_project
from segaudit.errors import ConfigError
from segaudit.pipeline.demo import demo_project


def write(tmp_path, text):
    p = tmp_path / "project.yaml"
    p.write_text(textwrap.dedent(text))
    return p


def test_demo_project_loads_and_discovers(demo_data):
    project = demo_project()
    assert [d.name for d in project.datasets] == ["BraTS2020", "BraTS2024_PED", "LUMIERE", "UCSF",
                                                 "fundus_exudates", "brainmets_t2w_slices"]
    disc = discover(project)
    files = disc.files_frame()
    brats = files[files.dataset == "BraTS2020"]
    assert len(brats) == 10
    assert int(brats.exists.sum()) == 9
    missing = brats[~brats.exists]
    assert list(missing.case) == ["BraTS20_Training_369"]
    assert list(missing.key) == ["t1"]
    lumiere = [c for c in disc.cases if c.dataset == "LUMIERE"]
    assert [(c.subject, c.timepoint) for c in lumiere] == [("Patient-002", "000"), ("Patient-002", "003"),
                                                          ("Patient-002", "021")]
    fundus = [c for c in disc.cases if c.dataset == "fundus_exudates"]
    assert len(fundus) == 6
    assert fundus[0].metadata["pred_dice_vs_gt"] == "0.759"
    ucsf_models = set(files[(files.dataset == "UCSF") & (files.role == "prediction")].key)
    assert ucsf_models == {"SegResNet"}
    assert len(project.config_hash) == 16


def test_unknown_key_is_an_error(tmp_path):
    p = write(tmp_path, """
        datasets:
          A:
            root: .
            ground_truth: "{root}/{case}.nii.gz"
            labells: {x: 1}
        """)
    with pytest.raises(ConfigError, match=r"project.yaml: dataset 'A': unknown key\(s\) 'labells'"):
        load_project(p)
    p = write(tmp_path, "datasets: {A: {root: ., ground_truth: '{root}/{case}.nii.gz'}}\nextra: 1\n")
    with pytest.raises(ConfigError, match="unknown key.*'extra'"):
        load_project(p)


def test_template_without_case(tmp_path):
    p = write(tmp_path, """
        datasets:
          A: {root: ., ground_truth: "{root}/labels/seg.nii.gz"}
        """)
    with pytest.raises(ConfigError, match=r"dataset 'A': ground_truth: template .* has no \{case\} field"):
        load_project(p)


def test_invalid_yaml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="project file not found"):
        load_project(tmp_path / "nope.yaml")
    p = write(tmp_path, "datasets: [unclosed\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_project(p)


def test_label_conventions_and_regions():
    lm = LabelMap.from_config(None, None, "BraTS-2020", "x")
    assert lm.labels == {"NCR_NET": 1, "ED": 2, "ET": 4}
    assert lm.regions["TC"] == (1, 4)
    lm = LabelMap.from_config({"a": 1, "b": 2}, {"both": ["a", "b"], "one": [2]}, None, "x")
    assert lm.regions == {"both": (1, 2), "one": (2,)}
    assert LABEL_CONVENTIONS["brats2023"].regions["ET"] == (3,)
    with pytest.raises(ConfigError, match="unknown label 'c'"):
        LabelMap.from_config({"a": 1}, {"r": ["c"]}, None, "x")
    with pytest.raises(ConfigError, match="unknown label_convention"):
        LabelMap.from_config(None, None, "kits", "x")
    with pytest.raises(ConfigError, match="positive integer"):
        LabelMap.from_config({"bg": 0}, None, None, "x")


def test_metadata_duplicate_ids_reported_not_fatal(tmp_path, demo_data):
    meta = tmp_path / "meta.csv"
    meta.write_text("case,site\nIDRiD_01,A\nIDRiD_01,B\nIDRiD_02,C\nIDRiD_99,D\n")
    project = parse_project({"datasets": {"fundus": {
        "root": str(demo_data / "fundus_exudates"), "images": "{root}/images/{case}.jpg",
        "metadata": {"path": str(meta), "id_column": "case"}}}}, tmp_path)
    disc = discover(project)
    by_check = {i.check: i for i in disc.issues}
    assert "IDRiD_01" in by_check["metadata_duplicate_ids"].message
    assert by_check["metadata_duplicate_ids"].severity == "error"
    assert str(meta) in by_check["metadata_duplicate_ids"].message
    assert "IDRiD_99" in by_check["metadata_extra_rows"].message
    cases = {c.case: c.metadata for c in disc.cases}
    assert cases["IDRiD_02"] == {"site": "C"}
    assert cases["IDRiD_01"] == {}  # ambiguous rows are not joined
    missing = [i.case for i in disc.issues if i.check == "metadata_missing_row"]
    assert sorted(missing) == ["IDRiD_03", "IDRiD_05", "IDRiD_09", "IDRiD_10"]


def test_metadata_xlsx_and_tsv(tmp_path, demo_data):
    import pandas as pd

    df = pd.DataFrame({"id": ["IDRiD_01.jpg", "IDRiD_02.jpg"], "site": ["x", "y"]})
    df.to_excel(tmp_path / "m.xlsx", index=False)
    df.to_csv(tmp_path / "m.tsv", sep="\t", index=False)
    for name in ("m.xlsx", "m.tsv"):
        project = parse_project({"datasets": {"f": {
            "root": str(demo_data / "fundus_exudates"), "images": "{root}/images/{case}.jpg",
            "metadata": str(tmp_path / name)}}}, tmp_path)
        cases = {c.case: c.metadata for c in discover(project).cases}
        assert cases["IDRiD_02"] == {"site": "y"}, name


def test_longitudinal_pattern_must_name_groups(tmp_path):
    with pytest.raises(ConfigError, match="named groups"):
        parse_project({"datasets": {"A": {"root": ".", "ground_truth": "{root}/{case}.nii.gz",
                                          "longitudinal": {"pattern": "(.+)-(\\d+)"}}}}, tmp_path)
