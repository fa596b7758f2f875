import pytest

from segaudit.dataset.templates import format_template, match_template, validate_template
from segaudit.errors import ConfigError


def test_match_audit_layout_with_repeated_case(demo_data):
    root = demo_data / "brats_audit/BraTS2020"
    tpl = "{root}/BraTS2020_images/{case}/{case}_{sequence}.nii.gz"
    matches = match_template(tpl, root, "sequence", {"sequence": ["t1", "t1ce", "t2", "flair"]})
    pairs = {(m.case, m.key) for m in matches}
    assert ("BraTS20_Training_001", "t1ce") in pairs
    assert ("BraTS20_Training_001", "t1") in pairs
    assert ("BraTS20_Training_369", "t1") not in pairs  # really missing
    assert len(matches) == 7  # 4 + 3 sequences; the _seg files are not sequences
    assert all("seg" not in m.key for m in matches)


def test_undeclared_sequences_keep_underscores_in_case(demo_data):
    root = demo_data / "brats_audit/BraTS2020"
    matches = match_template("{root}/BraTS2020_images/{case}/{case}_{sequence}.nii.gz", root, "sequence")
    assert {m.case for m in matches} == {"BraTS20_Training_001", "BraTS20_Training_369"}
    assert {m.key for m in matches} == {"t1", "t1ce", "t2", "flair", "seg"}


def test_wildcard_field_for_mixed_extensions(tests_data):
    matches = match_template("{root}/images/{case}.{ext}", tests_data / "chest_xray_lungs")
    assert len(matches) == 5
    assert {m.fields["w_ext"] for m in matches} == {"png", "jpg"}


def test_format_template():
    assert format_template("{root}/{case}/{case}_{sequence}.nii.gz", "/d", "c1", "sequence", "t1") == \
        "/d/c1/c1_t1.nii.gz"
    assert format_template("{root}/img/{case}.{ext}", "/d", "c1") == "/d/img/c1.*"


@pytest.mark.parametrize(("tpl", "msg"), [
    ("{root}/images/{sequence}.nii.gz", r"has no \{case\} field"),
    ("{root}/{}/x.nii.gz", "empty"),
    ("", "non-empty"),
    ("{root}/{case", "malformed"),
])
def test_invalid_templates(tpl, msg):
    with pytest.raises(ConfigError, match=msg):
        validate_template(tpl, "demo.yaml: dataset 'X': images")
