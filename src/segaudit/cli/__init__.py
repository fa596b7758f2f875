"""The ``segaudit`` command line, a thin shell over the Python API: one module per verb group.

:mod:`~segaudit.cli.parser` builds the parser and dispatches (:func:`main`, the ``segaudit`` console script and
``python -m segaudit``); :mod:`~segaudit.cli.project` (``init``, ``scan``, ``slices``), :mod:`~segaudit.cli.steps`
(``evaluate``, ``agree``, ``features``), :mod:`~segaudit.cli.analysis` (``compare``, ``flips``, ``metrics``),
:mod:`~segaudit.cli.export` (``report``, ``export``, ``import-audit``) and :mod:`~segaudit.cli.demo` run the
verbs; :mod:`~segaudit.cli.output` prints.
"""

from segaudit.cli.parser import build_parser, main

__all__ = ["build_parser", "main"]
