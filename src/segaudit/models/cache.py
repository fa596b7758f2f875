"""A bounded on-disk cache of image embeddings, so that a second run over the same images does not re-encode.

Entries are keyed by a text key that the backend builds from the image content, the preprocessing and the weights
(:meth:`segaudit.models.litemedsam.LiteMedSAM.encode`); the file name is the key's SHA-256, and the key itself is
stored inside the entry and compared on every read, so a foreign or damaged file is a miss, never a wrong
embedding. Each entry is one ``.npz`` file (the embedding array, the key and a JSON record) written atomically
(:func:`segaudit.io.atomic.atomic_write`); after each write the least recently used entries are removed until the
folder holds at most ``max_bytes`` (a read marks an entry used by touching its modification time). Only files of
this cache's own name pattern are ever removed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from segaudit.io.atomic import atomic_write

__all__ = ["DEFAULT_CACHE_BYTES", "DiskEmbeddingCache"]

#: Default bound of a disk embedding cache: 1 GiB (about 250 LiteMedSAM embeddings of 4 MiB).
DEFAULT_CACHE_BYTES = 1 << 30
_ENTRY = re.compile(r"^emb-[0-9a-f]{40}\.npz$")


class DiskEmbeddingCache:
    """Embeddings on disk under ``folder``, at most ``max_bytes`` in all (least recently used removed first).

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> cache = DiskEmbeddingCache(tempfile.mkdtemp())
    >>> _ = cache.put("image|prep|weights", np.ones((1, 2), np.float32), {"encode_seconds": 1.0})
    >>> arr, meta = cache.get("image|prep|weights")
    >>> arr.shape, meta["encode_seconds"]
    ((1, 2), 1.0)
    >>> cache.get("another key") is None
    True
    """

    def __init__(self, folder: str | Path, max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be > 0, got {max_bytes}")
        self.folder = Path(folder)
        self.max_bytes = int(max_bytes)
        self.hits = 0
        self.misses = 0

    def path(self, key: str) -> Path:
        """The entry file of ``key`` (whether or not it exists)."""
        return self.folder / f"emb-{hashlib.sha256(key.encode()).hexdigest()[:40]}.npz"

    def get(self, key: str) -> tuple[np.ndarray, dict[str, Any]] | None:
        """(embedding, record) stored for ``key``, or None (absent, unreadable, or another key's file)."""
        path = self.path(key)
        try:
            with np.load(path, allow_pickle=False) as data:
                if str(data["key"]) != key:
                    self.misses += 1
                    return None
                arr = np.array(data["embedding"])
                meta = json.loads(str(data["record"]))
            os.utime(path)  # used now: the last to be evicted
        except (OSError, ValueError, KeyError):
            self.misses += 1
            return None
        self.hits += 1
        return arr, meta

    def put(self, key: str, embedding: np.ndarray, record: dict[str, Any]) -> Path:
        """Store ``embedding`` (any numpy array) with a JSON-able ``record`` under ``key``; then enforce the bound."""
        arr = np.ascontiguousarray(embedding)

        def write(tmp: str) -> None:
            with open(tmp, "wb") as fh:
                np.savez(fh, embedding=arr, key=np.array(key), record=np.array(json.dumps(record, default=str)))

        out = atomic_write(self.path(key), write)
        self.prune(keep=out)
        return out

    def entries(self) -> list[Path]:
        """The entry files of this cache, least recently used first."""
        if not self.folder.is_dir():
            return []
        files = [p for p in self.folder.iterdir() if _ENTRY.match(p.name) and p.is_file()]
        return sorted(files, key=lambda p: p.stat().st_mtime_ns)

    def size_bytes(self) -> int:
        """Bytes held by the entries."""
        return sum(p.stat().st_size for p in self.entries())

    def prune(self, keep: Path | None = None) -> list[Path]:
        """Remove least recently used entries until at most ``max_bytes`` remain (never ``keep``); returns them."""
        files = self.entries()
        total = sum(p.stat().st_size for p in files)
        removed = []
        for p in files:
            if total <= self.max_bytes:
                break
            if keep is not None and p == keep:
                continue
            size = p.stat().st_size
            p.unlink(missing_ok=True)
            total -= size
            removed.append(p)
        return removed
