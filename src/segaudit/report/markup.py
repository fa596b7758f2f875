"""The report's HTML building blocks, shared by every section.

A figure as an inline PNG, a table, a note, a 'not drawn' line, and the page's stylesheet (package data,
``report.css``).

Every function returns HTML text; anything that comes from data is escaped here (tables by pandas with
``escape=True``, notes and reasons with :func:`html.escape`), so a section never writes data unescaped through
these helpers.
"""

from __future__ import annotations

import base64
import html
from functools import cache
from importlib.resources import files

import pandas as pd

from segaudit.report import figures

#: The stylesheet's file inside the package (shipped as package data, see pyproject.toml).
CSS_RESOURCE = "report.css"


@cache
def load_css() -> str:
    """The report's stylesheet, read from the package data file :data:`CSS_RESOURCE` of ``segaudit.report``.

    Returns
    -------
    str
        The CSS text without its final newline (the file ends with one; the page inlines it in ``<style>``).
        Read once per process.
    """
    return files("segaudit.report").joinpath(CSS_RESOURCE).read_text(encoding="utf-8").rstrip("\n")


def png_html(fig) -> str:
    """An ``<img>`` holding a matplotlib figure as inline PNG data (90 dpi; the figure is closed)."""
    data = base64.b64encode(figures.png_bytes(fig, dpi=90)).decode()
    return f'<img alt="figure" src="data:image/png;base64,{data}">'


def table_html(df: pd.DataFrame, digits: int = 3) -> str:
    """An HTML table; p-values (columns ``p``, ``p_*``, ``*_p``) in 3 significant digits, the rest rounded.

    Missing values show as '–'; cell text is escaped.
    """
    pcols = [c for c in df.columns if isinstance(c, str) and (c == "p" or c.startswith("p_") or c.endswith("_p"))
             and pd.api.types.is_float_dtype(df[c])]
    df = df.round({c: digits for c in df.columns if c not in pcols})  # p-values formatted unrounded (no "0")
    for col in pcols:
        df[col] = [("–" if pd.isna(v) else f"{v:.3g}") for v in df[col]]
    return df.to_html(index=False, na_rep="–", border=0, escape=True)


def note_html(text: str) -> str:
    """A paragraph of explanation (class ``note``); ``text`` is escaped."""
    return f'<p class="note">{html.escape(text)}</p>'


def why_html(text: str) -> str:
    """A section (or part) that cannot be drawn: why, with the advice that applies (class ``why``, escaped)."""
    return f'<p class="why">Not drawn: {html.escape(text)}.</p>'
