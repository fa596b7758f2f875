"""Exceptions raised by segaudit.

Every error carries a message meant for a person: it names the file (when there is one) and the reason, so
the CLI can print it as one line and the results store can record it next to the failed case.
"""

from __future__ import annotations

from pathlib import Path


class SegauditError(Exception):
    """Base class of every error segaudit raises on purpose."""


class ConfigError(SegauditError):
    """The project file (YAML) or an option is invalid."""


class ImageReadError(SegauditError):
    """A file could not be read as an image: missing, empty, corrupt, truncated or of an unknown format."""

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class MaskValueError(ImageReadError):
    """A mask holds values that cannot be label values (non-integral floats, NaN, RGB without a channel)."""


class GeometryError(SegauditError):
    """Two images that must share a voxel grid do not (shape, spacing, origin or direction differ)."""


def failure_message(exc: BaseException) -> str:
    """The one-line reason recorded for a failed case: our own messages as they are, others with their type."""
    return str(exc) if isinstance(exc, SegauditError | ValueError | OSError) else f"{type(exc).__name__}: {exc}"
