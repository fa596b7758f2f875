"""The report's sections, one module each, in the order :mod:`segaudit.report.page` places them.

Every section module has

- ``TITLE``: its heading in the report (and in the page's navigation bar), and
- ``render(inputs)``: its HTML from a :class:`segaudit.report.inputs.ReportInputs` alone, without the heading.

A section with nothing to draw returns why (a ``<p class="why">`` line) and what would provide it; the page turns
an exception of one section into a warning in that section, so the rest of the report is still written.
"""

from __future__ import annotations

from typing import Protocol

from segaudit.report.inputs import ReportInputs

__all__ = ["Section"]


class Section(Protocol):
    """What a section module provides (a module satisfies this protocol)."""

    TITLE: str

    def render(self, inputs: ReportInputs) -> str:
        """The section's HTML (no heading)."""
        ...
