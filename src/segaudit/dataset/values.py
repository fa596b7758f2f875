"""The values an option takes, checked once for the project file and the command line alike.

A :class:`ValueCheck` says in words what an option accepts (``"an integer >= 0"``) and tests one value: the
project file's ``qc:``, ``evaluate:`` and ``features:`` entries are checked by :func:`~segaudit.dataset.project.
parse_project` when the file is loaded, and the command-line flags of the same settings are checked by argparse
with the same object (:meth:`ValueCheck.parse_text`), so ``--dilation -4`` and ``evaluate: {dilation: -4}`` are
refused with the same sentence before anything runs.

This module sits in the dataset layer, below metrics and features: the choice lists it holds (surface
definitions, matching rules, feature groups...) repeat those of the modules that use them, and
``tests/dataset/test_values.py`` checks that they are the same.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: Neighbourhoods a connected-component option may name: 4/8 in 2D, 6/18/26 in 3D (the image decides which).
CONNECTIVITIES = (4, 6, 8, 18, 26)


@dataclass(frozen=True)
class ValueCheck:
    """What one option accepts, and the test of a value.

    Parameters
    ----------
    kind:
        ``"number"`` (int or float), ``"integer"``, ``"boolean"``, ``"choice"`` (one of ``choices``),
        ``"numbers"`` (a number or a list of numbers) or ``"choices"`` (a list of ``choices``).
    low, high:
        Bounds of numbers (``None``: unbounded); ``low_open`` / ``high_open`` exclude the bound itself.
    choices:
        The allowed values of ``choice`` and ``choices``; of ``integer`` and ``number`` when given
        (connectivity 4/6/8/18/26, ``both_empty`` 0 or 1).
    optional:
        ``None`` (YAML ``null``) is accepted and means the documented default.
    nan:
        ``nan`` (YAML ``.nan`` or the word ``nan``) is accepted besides the bounded numbers.

    Edge cases: booleans are never numbers (``true`` is not ``1``), text is never a number in a project file
    (``"abc"`` and ``"0.1"`` are refused: quote nothing), NaN and infinities are refused unless ``nan`` allows
    NaN.
    """

    kind: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple = ()
    optional: bool = False
    nan: bool = False

    def describe(self) -> str:
        """The accepted values in words: ``"an integer >= 0"``, ``"one of surfel, voxel"``."""
        if self.kind == "boolean":
            text = "true or false"
        elif self.choices:
            listed = ", ".join(map(str, self.choices))
            text = f"a list of {listed}" if self.kind == "choices" else f"one of {listed}"
            if self.nan:
                text += " or nan"
        else:
            text = {"number": "a number", "integer": "an integer", "numbers": "a number or a list of numbers"}[
                self.kind]
            if self.low is not None and self.high is not None:
                text += (f" in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}"
                         f"{')' if self.high_open else ']'}")
            elif self.low is not None:
                text += f" {'>' if self.low_open else '>='} {self.low:g}"
            elif self.high is not None:
                text += f" {'<' if self.high_open else '<='} {self.high:g}"
            if self.nan:
                text += " or nan"
        return text + (" (or null)" if self.optional else "")

    def __call__(self, value):
        """``value`` if it is accepted, else a :class:`ValueError` ``"must be <describe()>, not <value>"``."""
        if value is None and self.optional:
            return None
        if self._accepts(value):
            return value
        raise ValueError(f"must be {self.describe()}, not {value!r}")

    def parse_text(self, text: str):
        """A command-line word converted (``"3"`` -> 3, ``"0.5"`` -> 0.5, ``"nan"``) and checked.

        The message quotes the word as typed.
        """
        value: object = text
        if self.kind in ("number", "numbers") or (self.nan and text.strip().lower() == "nan"):
            try:
                value = float(text)
            except ValueError:
                pass
        elif self.kind == "integer":
            try:
                value = int(text)
            except ValueError:
                pass
        try:
            return self(value)
        except ValueError:
            raise ValueError(f"must be {self.describe()}, not {text}") from None  # the word as typed

    def _number_ok(self, v) -> bool:
        if isinstance(v, bool) or not isinstance(v, int | float):
            return False
        if math.isnan(v):
            return self.nan
        if math.isinf(v):
            return False
        if self.choices:
            return v in self.choices
        if self.low is not None and (v < self.low or (self.low_open and v == self.low)):
            return False
        return not (self.high is not None and (v > self.high or (self.high_open and v == self.high)))

    def _accepts(self, v) -> bool:
        if self.kind == "boolean":
            return isinstance(v, bool)
        if self.kind == "choice":
            return isinstance(v, str) and v in self.choices
        if self.kind == "choices":
            return isinstance(v, list | tuple) and all(isinstance(x, str) and x in self.choices for x in v)
        if self.kind == "number":
            return (self.nan and isinstance(v, str) and v.lower() == "nan") or self._number_ok(v)
        if self.kind == "integer":
            return isinstance(v, int) and self._number_ok(v)
        if self.kind == "numbers":
            return all(self._number_ok(x) for x in (v if isinstance(v, list | tuple) else [v]))
        raise AssertionError(self.kind)


def choice(*values: str) -> ValueCheck:
    """One of ``values`` (text)."""
    return ValueCheck("choice", choices=tuple(values))


def number(low: float | None = None, high: float | None = None, *, low_open: bool = False, high_open: bool = False,
           choices: tuple[float, ...] = (), optional: bool = False, nan: bool = False) -> ValueCheck:
    """A finite number within the bounds (or one of ``choices``), or NaN when ``nan``."""
    return ValueCheck("number", low, high, low_open, high_open, choices, optional, nan)


def integer(low: int | None = None, high: int | None = None, *, choices: tuple[int, ...] = (),
            optional: bool = False) -> ValueCheck:
    """An integer within the bounds (or one of ``choices``)."""
    return ValueCheck("integer", low, high, choices=choices, optional=optional)


BOOLEAN = ValueCheck("boolean")
