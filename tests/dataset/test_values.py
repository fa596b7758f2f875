"""ValueCheck: the words and the test of an option's values; the choice lists match the modules using them."""

from __future__ import annotations

import math

import pytest

from segaudit.dataset.project import PROJECT_KEYS, section_checks
from segaudit.dataset.values import CONNECTIVITIES, choice, integer, number
from segaudit.features.case import GROUPS
from segaudit.metrics.evaluate import UNKNOWN_LABEL_CHOICES
from segaudit.metrics.lesions import MATCHING_RULES
from segaudit.metrics.policy import DISTANCE_EMPTY_CHOICES
from segaudit.metrics.surface import SURFACE_DEFINITIONS


def test_choice_lists_are_those_of_the_modules():
    ev, fe = section_checks("evaluate"), section_checks("features")
    assert ev["surface"].choices == SURFACE_DEFINITIONS
    assert ev["lesion_matching"].choices == MATCHING_RULES
    assert ev["unknown_labels"].choices == UNKNOWN_LABEL_CHOICES
    assert ev["distance_one_empty"].choices == DISTANCE_EMPTY_CHOICES
    assert fe["groups"].choices == GROUPS
    assert fe["foreground"].choices == ("auto", "nonzero", "positive")


def test_connectivities_are_those_scipy_structures_exist_for():
    # 2D: 4 (rank 1) and 8 (rank 2); 3D: 6, 18, 26 -- counted from scipy's structuring elements.
    from scipy import ndimage

    counts = {int(ndimage.generate_binary_structure(nd, r).sum()) - 1 for nd in (2, 3) for r in range(1, nd + 1)}
    assert set(CONNECTIVITIES) == counts


def test_every_option_section_key_has_a_check():
    for k in PROJECT_KEYS:
        section = k.key.split(".")[0]
        if section in ("qc", "evaluate", "features") and k.key != "evaluate.policy":
            assert k.check is not None, k.key


@pytest.mark.parametrize(("check", "good", "bad"), [
    (integer(0), [0, 3], [-1, 1.5, True, "3", None]),
    (integer(choices=CONNECTIVITIES, optional=True), [None, 4, 26], [7, 0, "6"]),
    (number(0, 100, low_open=True), [100, 0.5, 95], [0, 101, math.nan, math.inf, "95", False]),
    (number(choices=(0, 1), nan=True), [0, 1, 1.0, math.nan, "nan"], [0.5, 2, "one"]),
    (choice("a", "b"), ["a"], ["c", 1, None]),
])
def test_accepts_and_refuses(check, good, bad):
    for v in good:
        assert check(v) is v
    for v in bad:
        with pytest.raises(ValueError, match=r"^must be .+, not "):
            check(v)


def test_parse_text_converts_command_line_words():
    assert integer(0).parse_text("4") == 4
    assert number(0).parse_text("0.5") == 0.5
    assert math.isnan(number(choices=(0, 1), nan=True).parse_text("nan"))
    with pytest.raises(ValueError, match="an integer >= 0, not -4"):
        integer(0).parse_text("-4")
    with pytest.raises(ValueError, match="an integer >= 0, not x$"):
        integer(0).parse_text("x")
