"""Exceptions raised by segaudit.

Every error carries a message meant for a person: it names the file (when there is one) and the reason, so
the CLI can print it as one line and the results store can record it next to the failed case.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path


class SegauditError(Exception):
    """Base class of every error segaudit raises on purpose."""


class ConfigError(SegauditError, ValueError):
    """The project file (YAML) or an option is invalid; the message names the file (or option) and the entry.

    Also a :class:`ValueError`, so library callers that catch ``ValueError`` for bad options keep working.
    """


class ImageReadError(SegauditError):
    """A file could not be read as an image: missing, empty, corrupt, truncated or of an unknown format."""

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class MaskValueError(ImageReadError):
    """A mask holds values that cannot be label values (non-integral floats, NaN, RGB without a channel)."""


def failure_message(exc: BaseException) -> str:
    """The one-line reason recorded for a failed case: our own messages as they are, others with their type."""
    return str(exc) if isinstance(exc, SegauditError | ValueError | OSError) else f"{type(exc).__name__}: {exc}"


def check_keys(data: Mapping, allowed: Iterable[str], where: str) -> None:
    """Refuse the keys of ``data`` that are not ``allowed``: the one unknown-key check of every config section.

    Parameters
    ----------
    data:
        A mapping read from a project file (or built by a library caller).
    allowed:
        The keys the section accepts.
    where:
        Where the mapping is, for the message: ``"p.yaml: dataset 'A'"``, ``"p.yaml: evaluate"``.

    Raises
    ------
    ConfigError
        ``"<where>: unknown key(s) 'a', 'b'; allowed keys: x, y"`` when any key is not allowed (so a typo never
        silently disables a setting). Keys that are not text (YAML ``1:``) are shown as written.
    """
    allowed = {str(k) for k in allowed}
    unknown = sorted(str(k) for k in data if str(k) not in allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; allowed keys: "
                          f"{', '.join(sorted(allowed))}")
