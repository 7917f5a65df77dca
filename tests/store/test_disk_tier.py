"""The disk cache under a real NATS store: chunks land there, a new store reads them from
it, they are checked like fetched ones, and replaced versions leave it."""

from __future__ import annotations

import os

import trio

from osfs.config import ConnectOptions
from osfs.store.disk_cache import DiskCache
from osfs.store.errors import Corrupt
from osfs.store.nats.store import NatsStore
from osfs.store.types import BucketConfig, ObjectMeta

DATA = os.urandom(5 * 128 * 1024 + 77)  # six chunks of the default 128 KiB


async def _store(url: str, directory, cache_size: int = 64 * 1024 * 1024) -> NatsStore:
    disk = DiskCache(directory, 10 * 1024 * 1024)
    return await NatsStore.connect(ConnectOptions(servers=(url,)), cache_size=cache_size, disk_cache=disk)


async def _read_all(store: NatsStore, bucket: str, name: str, piece: int = 100_000) -> bytes:
    info = await store.info(bucket, name)
    out = bytearray()
    while len(out) < info.size:
        out += await store.read(info, len(out), piece)
    return bytes(out)


async def _settle_disk(store: NatsStore) -> None:
    """Wait until every chunk of DATA is written to the disk cache (in the background)."""
    disk = store._disk
    with trio.fail_after(20):
        while disk.bytes < len(DATA):
            await trio.sleep(0.02)
    assert disk.bytes == len(DATA)


async def _cached_once(url: str, bucket: str, directory):  # -> (store, info)
    """A store with a disk cache in ``directory`` that has put DATA as ``f`` and read it
    once, so that every chunk of it is on disk."""
    store = await _store(url, directory)
    await store.create_bucket(BucketConfig(bucket))
    info = await store.put(bucket, ObjectMeta("f"), DATA)
    assert await _read_all(store, bucket, "f") == DATA
    await _settle_disk(store)
    return store, info


def test_chunks_read_once_come_from_disk_next_time(nats_url, bucket_name, tmp_path) -> None:
    async def body() -> None:
        store, _ = await _cached_once(nats_url, bucket_name, tmp_path / "dc")
        await store.close()

        again = await _store(nats_url, tmp_path / "dc")  # a fresh store: empty memory cache
        assert await _read_all(again, bucket_name, "f") == DATA
        stats = again.stats
        assert stats.disk_hits == 4, stats  # the index's fast path brings chunks 0 and 5 itself
        assert stats.chunk_fetches == 0, stats
        assert stats.verified == 1  # disk chunks go through the digest check
        await again.close()

    trio.run(body)


def test_damaged_disk_chunk_fails_the_digest_and_leaves_the_cache(nats_url, bucket_name, tmp_path) -> None:
    async def body() -> None:
        store, info = await _cached_once(nats_url, bucket_name, tmp_path / "dc")
        await store.close()
        path = tmp_path / "dc" / "chunks" / bucket_name / info.nuid / "2"
        raw = bytearray(path.read_bytes())
        raw[10] ^= 0xFF  # same length, other bytes
        path.write_bytes(bytes(raw))

        again = await _store(nats_url, tmp_path / "dc")
        try:
            await _read_all(again, bucket_name, "f")
        except Corrupt as exc:
            assert "digest" in str(exc)
        else:
            raise AssertionError("a damaged disk chunk was served")
        with trio.fail_after(10):
            while (tmp_path / "dc" / "chunks" / bucket_name / info.nuid).exists():
                await trio.sleep(0.02)
        await again.close()

    trio.run(body)


def test_replaced_version_leaves_the_disk_cache(nats_url, bucket_name, tmp_path) -> None:
    async def body() -> None:
        store, old = await _cached_once(nats_url, bucket_name, tmp_path / "dc")
        version_dir = tmp_path / "dc" / "chunks" / bucket_name / old.nuid
        assert version_dir.exists()
        await store.put(bucket_name, ObjectMeta("f"), b"new content")
        with trio.fail_after(10):
            while version_dir.exists():
                await trio.sleep(0.02)
        assert await _read_all(store, bucket_name, "f") == b"new content"
        await store.close()

    trio.run(body)
