"""The report page: which sections, in which order, and the HTML document around them.

:func:`build_report` reads the store once (:func:`segaudit.report.inputs.read_inputs`), renders each section of
:func:`report_sections` (a section that fails says so in its place; the others are still drawn), and writes one
self-contained HTML file: the stylesheet inlined from package data, figures as inline PNG, no script, no network.
"""

from __future__ import annotations

import html
from pathlib import Path

from segaudit.errors import SegauditError
from segaudit.io.atomic import atomic_write_text
from segaudit.report.inputs import ReportInputs, read_inputs
from segaudit.report.markup import load_css, note_html, why_html
from segaudit.report.sections import (
    Section,
    agreement,
    ask_eval,
    bias,
    comparison,
    coverage,
    error_matrices,
    failures,
    intensities,
    longitudinal,
    no_metrics,
    outliers,
    overview,
    per_case,
    prompting,
    ranking,
    splits,
    strips,
    summary,
    training,
    worst_best,
)

#: Marks a file as a segaudit report: only such a file may be replaced (with ``force``).
GENERATOR = '<meta name="generator" content="segaudit report">'

#: The sections drawn from ground-truth metrics; a store without any shows :mod:`.sections.no_metrics` instead.
GROUND_TRUTH_SECTIONS: tuple[Section, ...] = (summary, coverage, strips, per_case, failures, error_matrices,
                                              comparison, ranking, bias)
#: The sections that describe the data itself (images, features, cohorts, training), after the metric sections.
DATA_SECTIONS: tuple[Section, ...] = (intensities, outliers, longitudinal, training, worst_best)


def report_sections(inputs: ReportInputs) -> list[Section]:
    """The sections of a store's report, in page order.

    Datasets and splits first; then the ground-truth sections, or the single 'Metrics' section saying why there
    are none; the agreement section only when the store has agreement rows; the promptable-model section (which
    says how to fill it when the store has no ``prompts`` rows); then the data sections.
    """
    out: list[Section] = [overview, splits]
    out += list(GROUND_TRUTH_SECTIONS) if not inputs.m.empty else [no_metrics]
    if not inputs.agreement.empty:
        out.append(agreement)
    out.append(prompting)  # says how to get it when the store has no prompts rows
    out += list(DATA_SECTIONS)
    if ask_eval.has_rows(inputs):
        out.append(ask_eval)
    return out


def render_section(section: Section, inputs: ReportInputs) -> str:
    """A section's HTML; an exception becomes a warning in its place, an empty result a 'nothing here' line."""
    try:
        content = section.render(inputs)
    except Exception as exc:  # noqa: BLE001 - one section's failure must not cost the whole report
        content = f"<p class='warn'>This section could not be drawn: {html.escape(str(exc))}</p>"
    return content or why_html("nothing in this store for this section")


def page_html(title: str, run_dir: str | Path, body: list[tuple[str, str]]) -> str:
    """The HTML document: title, the store's path, a navigation bar, then each (heading, HTML) of ``body``."""
    anchor = {name: f"s{i}" for i, (name, _) in enumerate(body)}
    nav = "<nav>" + "".join(f'<a href="#{anchor[n]}">{html.escape(n)}</a>' for n, _ in body) + "</nav>"
    parts = [f"<h1>{html.escape(title)}</h1>",
             note_html(f"Results store: {Path(run_dir).resolve()}."), nav]
    parts += [f'<h2 id="{anchor[n]}">{html.escape(n)}</h2>{c}' for n, c in body]
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'>{GENERATOR}<title>{html.escape(title)}</title>"
            f"<style>{load_css()}</style></head><body>{''.join(parts)}</body></html>")


def check_report_target(out: str | Path, run_dir: str | Path, force: bool = False) -> None:
    """Refuse to write a report over a file segaudit did not write as a report.

    Raises :class:`SegauditError` when ``out`` is a folder, is the results store or lies inside it, is an existing
    file that is not a segaudit report (no :data:`GENERATOR` mark in its first 4 kB), or is an existing report
    and ``force`` is not set.
    """
    out, run = Path(out), Path(run_dir)
    store_file = (run / "segaudit.duckdb").resolve()
    if out.resolve() == store_file or out.resolve().parent == store_file:
        raise SegauditError(f"{out}: is the results store; choose another --out")
    if out.is_dir():
        raise SegauditError(f"{out}: is a folder; --out names the HTML file to write")
    if not out.exists():
        return
    with open(out, "rb") as f:
        head = f.read(4096).decode("utf-8", "replace")
    if GENERATOR not in head:
        raise SegauditError(f"{out}: exists and is not a segaudit report; refusing to overwrite it (choose another "
                            "--out)")
    if not force:
        raise SegauditError(f"{out}: a report already exists (use --force to replace it)")


def build_report(run_dir: str | Path, out: str | Path, project=None, title: str = "segaudit report",
                 training_logs: dict[str, str | Path] | None = None,
                 compare: list[tuple[str, str]] | None = None, region: str | None = None,
                 force: bool = False) -> Path:
    """Write the HTML report of a results store to ``out`` (atomically) and return its path.

    An existing ``out`` is replaced only when it is a segaudit report and ``force`` is set; any other file (the
    project file, an image, the results store) is never overwritten (:func:`check_report_target`).

    ``project`` (a :class:`~segaudit.dataset.project.ProjectConfig`) adds image panels of the worst and best
    cases and the declared split columns; ``training_logs`` maps a model name to a training-log CSV (see
    :func:`segaudit.analysis.training.read_training_log`). ``compare`` lists (baseline, candidate) model pairs
    to compare (default :func:`segaudit.report.sections.comparison.default_pairs`); ``region`` is the region the
    panels show (default: each dataset's worst). Every section is shown; one whose input is missing says why and
    what would provide it, one that fails says so, and the rest of the report is still written.
    """
    check_report_target(out, run_dir, force)
    inputs = read_inputs(run_dir, project, training_logs, compare, region)
    body = [(s.TITLE, render_section(s, inputs)) for s in report_sections(inputs)]
    return atomic_write_text(out, page_html(title, run_dir, body))
