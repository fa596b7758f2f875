"""The disk embedding cache: round trip, key check, bound (least recently used removed), atomic files."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from segaudit.models.cache import DiskEmbeddingCache


def test_round_trip_and_foreign_file_is_a_miss(tmp_path):
    cache = DiskEmbeddingCache(tmp_path)
    arr = np.arange(12, dtype=np.float32).reshape(1, 3, 4)
    cache.put("a", arr, {"encode_seconds": 0.5, "input_size": [3, 4]})
    got, meta = cache.get("a")
    assert np.array_equal(got, arr)
    assert got.dtype == np.float32
    assert meta["input_size"] == [3, 4]
    # Another key's content under a's file name (a collision, or a file copied by hand) is not returned.
    os.replace(cache.put("b", arr + 1, {}), cache.path("a"))
    assert cache.get("a") is None
    assert cache.misses == 1
    cache.path("c").write_bytes(b"not an npz")
    assert cache.get("c") is None
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".segaudit-tmp")]


def test_bound_removes_least_recently_used(tmp_path):
    arr = np.zeros(1000, np.float32)  # about 4 kB per entry
    cache = DiskEmbeddingCache(tmp_path, max_bytes=10_000)
    cache.put("old", arr, {})
    cache.put("used", arr, {})
    past = time.time() - 100
    os.utime(cache.path("old"), (past, past))
    os.utime(cache.path("used"), (past + 1, past + 1))
    assert cache.get("used") is not None  # touched: now the most recent
    cache.put("new", arr, {})
    assert not cache.path("old").exists()
    assert cache.path("used").exists()
    assert cache.path("new").exists()
    assert cache.size_bytes() <= 10_000
    (tmp_path / "mine.txt").write_text("x" * 20_000)  # not an entry: never removed, not counted
    cache.put("newer", arr, {})
    assert (tmp_path / "mine.txt").exists()


def test_bound_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="max_bytes"):
        DiskEmbeddingCache(tmp_path, max_bytes=0)
