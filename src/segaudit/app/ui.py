"""Streamlit glue shared by the pages.

The run directory, cached calls into :mod:`segaudit.app.data`, cached volumes for the viewer, and selectors whose value
lives in the URL query parameters.

Every value that comes from the data (names, ids, messages) is shown with ``st.text``, ``st.dataframe`` or a
widget label chosen here, never with ``st.markdown`` or HTML.
"""

from __future__ import annotations

import argparse
import html
import os
import sys
from pathlib import Path
from typing import overload

import streamlit as st

from segaudit.app import data, viewer

RUN_ENV, PROJECT_ENV = "SEGAUDIT_APP_RUN", "SEGAUDIT_APP_PROJECT"


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--run", default=os.environ.get(RUN_ENV, ""))
    p.add_argument("--project", default=os.environ.get(PROJECT_ENV) or None)
    args, _ = p.parse_known_args(sys.argv[1:])
    return args


def run_dir() -> str:
    """The run directory the app shows.

    ``--run`` after ``--`` on the streamlit command line, else ``$SEGAUDIT_APP_RUN``. Stops the page with a message when
    it holds no store.
    """
    run = _args().run
    if not run or not (Path(run) / data.DB_NAME).is_file():
        st.error("No results store: start the app with `segaudit app RUN` on a run directory.")
        st.stop()
    return str(Path(run).resolve())


def project_path() -> str | None:
    """The project file (``--project`` or ``$SEGAUDIT_APP_PROJECT``) that gives the viewer its encodings."""
    p = _args().project
    return str(Path(p).resolve()) if p and Path(p).is_file() else None


@st.cache_data(show_spinner=False, max_entries=1024)
def _call(name: str, version: int, args: tuple, kwargs: tuple):
    # ``version`` (the store's mtime) is only a cache key: a rewritten store is queried again.
    return getattr(data, name)(*args, **dict(kwargs))


def call(name: str, *args, **kwargs):
    """``segaudit.app.data.<name>(run_dir, *args, **kwargs)``, cached per store version."""
    run = run_dir()
    return _call(name, data.store_version(run), (run, *args), tuple(sorted(kwargs.items())))


@st.cache_data(show_spinner=False, max_entries=64)
def _display(project: str | None, mtime: int, dataset: str):
    return data.dataset_display(project, dataset)


def display(dataset: str):
    """The project's encodings, labels and regions of a dataset (None without a project)."""
    p = project_path()
    return _display(p, os.stat(p).st_mtime_ns if p else 0, dataset)


@st.cache_resource(show_spinner=False, max_entries=24)
def _volume(path: str, mtime: int, kind: str, enc_key: str, _encoding, ornt_path: str | None) -> viewer.Volume:
    img = viewer.read_cached(path, kind, _encoding)
    ornt = None
    if ornt_path and ornt_path != path:
        ref = viewer.read_cached(ornt_path, "image")
        if ref.ndim == 3 and ref.shape == img.shape:  # same grid: use the image's header (mask headers can be wrong)
            ornt = viewer.orientation_of(ref)
    return viewer.to_view(img, ornt)


def volume(path: str, kind: str = "image", encoding=None, ornt_path: str | None = None) -> viewer.Volume:
    """A file as a :class:`~segaudit.app.viewer.Volume`, read once per server process (path + mtime key).

    Only paths from the store's ``files`` table reach here (see :func:`segaudit.app.data.case_files`).
    """
    return _volume(path, os.stat(path).st_mtime_ns, kind, repr(encoding), encoding, ornt_path)


@overload
def param(name: str, default: str) -> str: ...


@overload
def param(name: str, default: None = None) -> str | None: ...


def param(name: str, default: str | None = None) -> str | None:
    """A query parameter (None or ``default`` when absent)."""
    v = st.query_params.get(name)
    return v if v is not None else default


def select(label: str, options: list, name: str, default=None, **kw):
    """A selectbox whose choice is kept in query parameter ``name`` (a shared URL reopens the same view).

    An unknown value in the URL falls back to ``default`` or the first option; nothing else is read from it.
    """
    if not options:
        st.text(f"No {label.lower()} in this store.")
        return None
    cur = param(name)
    start = options.index(cur) if cur in options else (options.index(default) if default in options else 0)
    key = f"qp_{name}"
    if key in st.session_state and st.session_state[key] not in options:
        del st.session_state[key]
    value = st.selectbox(label, options, index=start, key=key, **kw)
    st.query_params[name] = str(value)
    return value


def pick_case(dataset_column, case_column) -> tuple[str, str]:
    """The dataset and case selectboxes (kept in the URL) in two columns; stops the page while either is empty."""
    with dataset_column:
        dataset = select("Dataset", call("datasets"), "dataset")
    if dataset is None:
        st.stop()
    with case_column:
        case = select("Case", call("case_ids", dataset), "case")
    if case is None:
        st.stop()
    return dataset, case


def fmt(x, digits: int = 3) -> str:
    """A number as text (``n/a`` for NaN or None)."""
    try:
        f = float(x)
    except (TypeError, ValueError):
        return str(x)
    return "n/a" if f != f else f"{f:.{digits}g}"


def label(x) -> str:
    """A value from the data as a Plotly label: ``<``, ``>`` and ``&`` escaped (Plotly reads a subset of HTML in
    labels and decodes those entities back), quotes left as they are (Plotly would show ``&quot;`` literally).
    """
    return html.escape(str(x), quote=False)
