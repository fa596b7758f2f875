"""The diversity report: numbers recomputed from the records, every data text escaped, written atomically."""

from __future__ import annotations

import re
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from segaudit.instruct import distinct_n, export_instructions

sys.path.insert(0, str(Path(__file__).parent))
from conftest_instruct import MODALITIES, small_project  # noqa: E402

HOSTILE = '<script>alert("x")</script> & outline the {target}'


class _Cells(HTMLParser):
    """Text of every table cell and every tag name seen."""

    def __init__(self):
        super().__init__()
        self.tags: set[str] = set()
        self.cells: list[str] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        if tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.cells.append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("diversity")
    extra = tmp / "templates.yaml"
    extra.write_text("segment:\n  lay:\n    imperative:\n      - '" + HOSTILE.replace("'", "''") + "'\n")
    res = export_instructions(small_project(tmp), tmp / "out", per_image=6, seed=0, use_model=False,
                              modalities=MODALITIES, template_files=[extra], quotas={"task": 20})
    page = (tmp / "out" / "report.html").read_text()
    parser = _Cells()
    parser.feed(page)
    return tmp / "out", res, page, parser


def test_report_is_written_atomically_and_escapes_data_text(report):
    out, res, page, parser = report
    assert out / "report.html" in res.files
    assert not list(out.rglob(".*"))
    assert "script" not in parser.tags  # the hostile template is shown as text, never as markup
    assert "&lt;script&gt;" in page
    assert any(HOSTILE.split(" & ")[0] in c for c in parser.cells)


def test_report_numbers_are_the_records_numbers(report):
    _, res, page, parser = report
    s, records = res.summary, res.records
    texts = [r.instruction for r in records]
    assert f"{distinct_n(texts, 2):.3f}" in page
    views: dict[str, list[str]] = {}
    for r in records:
        views.setdefault(r.id.rsplit("/", 1)[0], []).append(r.instruction)
    per_view = sum(distinct_n(v, 2) for v in views.values()) / len(views)
    assert s["distinct_2_per_view"] == pytest.approx(per_view, abs=1e-4)
    assert f"{per_view:.3f}" in page
    assert f"{s['negative_share']:.1%}" in page
    cells = parser.cells
    for task, n in s["tasks"].items():  # the "Records per task" table: task, records, negatives
        i = cells.index(task)
        assert int(cells[i + 1]) == n == sum(1 for r in records if r.task == task)
    assert "Quotas" in page
    assert re.search(r"<h2>Mask sizes per class</h2>", page)
    assert all(f"<code>{r.id}</code>" in page for r in [next(x for x in records if x.task == "segment")])
