"""File fingerprints: a cheap, content-based answer to "is this still the file that was scored?".

A fingerprint is the file's size, its modification time in nanoseconds and a BLAKE2b digest of its content.
The ``edge`` digest covers the first and the last :data:`EDGE_BYTES` bytes (the whole file when it is smaller
than twice that), so fingerprinting a 3D volume costs two small reads whatever its size; a replaced file almost
always differs in size, time or those blocks (a compressed NIfTI changes from its gzip header on). The
``full`` digest reads the whole file, for data edited in place with sizes and times preserved.
"""

from __future__ import annotations

import errno
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

#: Bytes hashed at each end of a file by the ``edge`` digest (64 KiB).
EDGE_BYTES = 64 * 1024
FINGERPRINT_MODES = ("edge", "full")
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Fingerprint:
    """What identifies one file's content.

    Attributes
    ----------
    exists:
        Whether the path names an existing file (a dangling symlink or a symlink loop does not).
    size_bytes, mtime_ns:
        From :func:`os.stat` (symlinks followed); None when the file does not exist.
    digest:
        ``"<mode>:<hex>"`` (``edge`` or ``full``, 32 hex digits of BLAKE2b-128); ``"unreadable:<ERRNO>"`` when
        the file exists but cannot be read (a directory, no permission); ``""`` when it does not exist.
    """

    exists: bool
    size_bytes: int | None
    mtime_ns: int | None
    digest: str

    @property
    def mode(self) -> str:
        """The digest's mode (``edge``, ``full``), ``unreadable`` or ``''``."""
        return self.digest.split(":", 1)[0]


def file_fingerprint(path: str | Path, mode: str = "edge") -> Fingerprint:
    """The :class:`Fingerprint` of ``path``; never raises for a missing or unreadable file.

    Parameters
    ----------
    path:
        The file.
    mode:
        ``"edge"``: hash the first and last :data:`EDGE_BYTES` bytes; ``"full"``: hash every byte.

    Returns
    -------
    Fingerprint
        The size and the digest are taken from the same open file (the size it has when read).
    """
    if mode not in FINGERPRINT_MODES:
        raise ValueError(f"fingerprint mode must be one of {FINGERPRINT_MODES}, not {mode!r}")
    try:
        st = os.stat(path)
    except OSError:  # missing, dangling symlink, symlink loop
        return Fingerprint(False, None, None, "")
    try:
        h = hashlib.blake2b(digest_size=16)
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if mode == "full" or size <= 2 * EDGE_BYTES:
                while chunk := fh.read(_CHUNK):
                    h.update(chunk)
            else:
                h.update(fh.read(EDGE_BYTES))
                fh.seek(size - EDGE_BYTES)
                h.update(fh.read(EDGE_BYTES))
        return Fingerprint(True, int(size), int(st.st_mtime_ns), f"{mode}:{h.hexdigest()}")
    except OSError as exc:
        name = errno.errorcode.get(exc.errno or 0, "EIO")
        return Fingerprint(True, int(st.st_size), int(st.st_mtime_ns), f"unreadable:{name}")
