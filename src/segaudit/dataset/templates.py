"""Path templates: ``"{root}/{case}/{case}_{sequence}.nii.gz"`` matched against the file system.

Fields
------
``{root}``
    The dataset root (substituted literally before matching).
``{case}``
    Required in every template: the case identifier. It may repeat; repeats must be equal.
``{sequence}`` / ``{model}``
    The image sequence (channel) or the prediction's model. When the dataset declares the allowed values,
    matching is restricted to them, which removes ambiguity in names like ``BraTS20_Training_001_t1ce``.
any other ``{name}``
    A wildcard within one path component (e.g. ``{ext}`` for mixed ``.jpg``/``.png`` files). It is matched
    but not used to identify the file.

No field matches across a ``/``.
"""

from __future__ import annotations

import glob
import os
import re
import string
from dataclasses import dataclass
from pathlib import Path

from segaudit.errors import ConfigError

KNOWN_FIELDS = ("root", "case", "sequence", "model")


@dataclass(frozen=True)
class Match:
    """One file matched by a template, with the field values read from its path."""

    path: str
    case: str
    key: str  # the sequence or model ('' when the template has neither)
    fields: dict


def template_fields(template: str) -> list[str]:
    """Names of the ``{fields}`` in a template, in order, repeats included."""
    try:
        return [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        raise ConfigError(f"template {template!r} is malformed: {exc}") from exc


def validate_template(template: str, where: str, key_field: str | None = None) -> None:
    """Raise ConfigError when a template lacks ``{case}`` or has an empty ``{}`` field."""
    if not isinstance(template, str) or not template:
        raise ConfigError(f"{where}: template must be a non-empty string, not {template!r}")
    fields = template_fields(template)
    if "" in fields:
        raise ConfigError(f"{where}: template {template!r} has an empty {{}} field; name it, e.g. {{ext}}")
    if "case" not in fields:
        raise ConfigError(f"{where}: template {template!r} has no {{case}} field, so files cannot be told "
                          "apart by case; add {case} where the case identifier appears in the path")
    for f in fields:
        if not f.isidentifier():
            raise ConfigError(f"{where}: template {template!r} has an invalid field name {{{f}}}")


def _compile(template: str, root: str, choices: dict[str, list[str]]) -> tuple[str, re.Pattern]:
    """Return (glob pattern, regex) for a template after substituting ``{root}``."""
    glob_parts: list[str] = []
    rx_parts: list[str] = []
    seen: set[str] = set()
    for literal, fname, _spec, _conv in string.Formatter().parse(template):
        if literal:
            glob_parts.append(glob.escape(literal))
            rx_parts.append(re.escape(literal))
        if fname is None:
            continue
        if fname == "root":
            glob_parts.append(glob.escape(root))
            rx_parts.append(re.escape(root))
            continue
        glob_parts.append("*")
        group = fname if fname in KNOWN_FIELDS else f"w_{fname}"
        if fname in seen:
            rx_parts.append(f"(?P={group})")
            continue
        seen.add(fname)
        if fname in choices and choices[fname]:
            alts = "|".join(re.escape(c) for c in sorted(choices[fname], key=len, reverse=True))
            rx_parts.append(f"(?P<{group}>{alts})")
        elif fname == "case":
            rx_parts.append(f"(?P<{group}>[^/]+)")  # greedy: '{case}_{sequence}' keeps underscores in the case
        else:
            rx_parts.append(f"(?P<{group}>[^/]+?)")
    return "".join(glob_parts), re.compile("".join(rx_parts) + r"\Z")


def match_template(template: str, root: str | Path, key_field: str | None = None,
                   choices: dict[str, list[str]] | None = None) -> list[Match]:
    """Find the files a template describes.

    Parameters
    ----------
    template:
        A path template (see module docstring). Relative results are resolved against ``root``.
    root:
        Value of ``{root}``.
    key_field:
        ``"sequence"`` or ``"model"``: which field becomes :attr:`Match.key`.
    choices:
        Allowed values per field (e.g. ``{"sequence": ["t1", "t2"]}``).

    Returns
    -------
    list of Match
        Sorted by path. Files the glob finds but the regex rejects (e.g. a sequence not declared) are left out.
    """
    root = str(Path(root))
    tpl = template if os.path.isabs(template) or template.startswith("{root}") else "{root}/" + template
    pattern, rx = _compile(tpl, root, choices or {})
    out: list[Match] = []
    for path in sorted(glob.glob(pattern)):
        m = rx.match(path.replace(os.sep, "/")) if os.sep != "/" else rx.match(path)
        if not m or not os.path.isfile(path) and not os.path.islink(path):
            continue
        groups = m.groupdict()
        key = groups.get(key_field, "") if key_field else ""
        out.append(Match(path=path, case=groups["case"], key=key or "", fields=groups))
    return out


def format_template(template: str, root: str | Path, case: str, key_field: str | None = None,
                    key: str = "") -> str:
    """The path a template names for one case (wildcard fields are shown as ``*``)."""
    tpl = template if os.path.isabs(template) or template.startswith("{root}") else "{root}/" + template
    values = {"root": str(Path(root)), "case": case}
    if key_field:
        values[key_field] = key
    parts = []
    for literal, fname, _s, _c in string.Formatter().parse(tpl):
        parts.append(literal)
        if fname is not None:
            parts.append(values.get(fname, "*"))
    return "".join(parts)
