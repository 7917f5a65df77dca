"""The on-disk chunk cache: bounded, LRU, crash-safe, never outside its directory."""

from __future__ import annotations

import os
import stat

import pytest

from osfs.store.disk_cache import DiskCache, DiskCacheError

NUID = "A" * 22


def test_round_trip_and_lru_bound(tmp_path) -> None:
    cache = DiskCache(tmp_path / "c", limit=300)
    for i in range(3):
        cache.put(("b", NUID, i), bytes([i]) * 100)
    assert cache.bytes == 300
    assert cache.get(("b", NUID, 0)) == b"\x00" * 100  # now most recently used
    cache.put(("b", NUID, 3), b"\x03" * 100)  # evicts chunk 1, the least recently used
    assert cache.bytes == 300
    assert cache.get(("b", NUID, 1)) is None
    assert not (tmp_path / "c" / "chunks" / "b" / NUID / "1").exists()
    assert cache.get(("b", NUID, 0)) == b"\x00" * 100
    assert cache.get(("b", NUID, 3)) == b"\x03" * 100
    cache.put(("b", NUID, 9), b"x" * 301)  # larger than the whole cache: not kept
    assert ("b", NUID, 9) not in cache
    assert stat.S_IMODE(os.stat(tmp_path / "c").st_mode) == 0o700
    cache.close()


def test_discard_version_deletes_its_chunks_only(tmp_path) -> None:
    cache = DiskCache(tmp_path, limit=10_000)
    other = "B" * 22
    for i in range(3):
        cache.put(("b", NUID, i), b"old")
    cache.put(("b", other, 0), b"other")
    cache.discard_version("b", NUID)
    assert [cache.get(("b", NUID, i)) for i in range(3)] == [None] * 3
    assert not (tmp_path / "chunks" / "b" / NUID).exists()
    assert cache.get(("b", other, 0)) == b"other"
    assert cache.bytes == 5
    cache.close()


def test_reopened_cache_keeps_its_chunks_and_drops_torn_writes(tmp_path) -> None:
    cache = DiskCache(tmp_path, limit=1000)
    cache.put(("b", NUID, 0), b"kept")
    cache.close()
    torn = tmp_path / "chunks" / "b" / NUID / "1.1234.tmp"
    torn.write_bytes(b"half")
    again = DiskCache(tmp_path, limit=1000)
    assert again.get(("b", NUID, 0)) == b"kept"
    assert not torn.exists()
    assert again.bytes == 4
    again.close()
    smaller = DiskCache(tmp_path, limit=3)  # reopened with a smaller bound: trimmed
    assert smaller.bytes == 0 and smaller.get(("b", NUID, 0)) is None
    smaller.close()


def test_one_mount_per_directory(tmp_path) -> None:
    first = DiskCache(tmp_path, limit=100)
    with pytest.raises(DiskCacheError, match="in use"):
        DiskCache(tmp_path, limit=100)
    first.close()
    DiskCache(tmp_path, limit=100).close()


def test_keys_that_are_not_plain_names_are_never_cached(tmp_path) -> None:
    cache = DiskCache(tmp_path / "c", limit=1000)
    for key in [("b", "../../escape", 0), ("b", "a/b", 0), ("..", NUID, 0), ("b", "", 0), ("b", NUID, -1)]:
        cache.put(key, b"data")
        assert cache.get(key) is None
    assert cache.bytes == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]
    cache.close()


def test_damaged_files_are_misses(tmp_path) -> None:
    cache = DiskCache(tmp_path, limit=1000)
    cache.put(("b", NUID, 0), b"12345")
    assert cache.get(("b", NUID, 0), size=4) is None  # wrong length: dropped
    assert ("b", NUID, 0) not in cache
    cache.put(("b", NUID, 1), b"12345")
    os.unlink(tmp_path / "chunks" / "b" / NUID / "1")  # removed behind its back
    assert cache.get(("b", NUID, 1)) is None and cache.bytes == 0
    cache.close()
