"""The store's fast paths keep their behaviour: off-thread hashing, gathered upload writes,
batched read-ahead, drop-behind of a sequential reader's chunks."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
from typing import Any

import cachetools
import pytest
import trio

from osfs.store.errors import TooLarge
from osfs.store.nats import digest
from osfs.store.nats.digest import Sha256Pipe
from osfs.store.nats.read.cache import ChunkCache, Landing
from osfs.store.nats.read.fetch import DROP_BEHIND
from osfs.store.nats.store import HAND_OFF
from osfs.store.types import BucketConfig, ObjectInfo, ObjectMeta

StoreRunner = Any  # tests/store/conftest.py: the ``nats_store`` runner fixture

KiB = 1024
MiB = 1024 * KiB


@pytest.mark.parametrize("seed", range(4))
def test_sha256_pipe_equals_hashlib_in_any_mix_of_block_sizes(seed: int) -> None:
    rnd = random.Random(seed)
    sizes = [0, 1, 100, digest.INLINE_BELOW - 1, digest.INLINE_BELOW, 300 * KiB, 2 * MiB]
    blocks = [os.urandom(rnd.choice(sizes)) for _ in range(40)]

    async def main() -> bytes:
        pipe = Sha256Pipe(backlog=rnd.choice([1, 512 * KiB, 64 * MiB]))
        i = 0
        while i < len(blocks):
            if rnd.random() < 0.5:
                await pipe.update(blocks[i])
                i += 1
            else:
                n = rnd.randint(1, 5)
                await pipe.update_all(blocks[i : i + n])
                i += n
        return await pipe.digest()

    assert asyncio.run(main()) == hashlib.sha256(b"".join(blocks)).digest()


def test_upload_hands_writes_over_a_mib_at_a_time(nats_store: StoreRunner) -> None:
    b = nats_store.bucket
    data = os.urandom(3 * MiB + 5)
    piece = 64 * KiB

    async def main(store: Any) -> None:
        await store.create_bucket(BucketConfig(b))
        up = await store.begin_put(b, ObjectMeta("big"), chunk_size=128 * KiB)
        crossed = []
        for pos in range(0, len(data), piece):
            await up.write(data[pos : pos + piece])
            assert up.size == min(pos + piece, len(data))
            crossed.append(up._pipe.size)
        # the pipeline saw nothing until a MiB was gathered, then whole MiBs
        assert crossed[0] == 0
        assert all(c % HAND_OFF == 0 for c in crossed)
        info = await up.commit()
        assert info.size == len(data)
        assert b"".join([blk async for blk in store.get(info)]) == data
        assert await store.read(info, MiB - 3, 7) == data[MiB - 3 : MiB + 4]

    nats_store(main)


def test_write_past_the_max_object_size_fails_at_once(nats_store: StoreRunner) -> None:
    b = nats_store.bucket

    async def main(store: Any) -> None:
        await store.create_bucket(BucketConfig(b, max_object_size=100 * KiB))
        old = await store.put(b, ObjectMeta("f"), b"old")
        up = await store.begin_put(b, ObjectMeta("f"), chunk_size=16 * KiB)
        for _ in range(3):
            await up.write(os.urandom(30 * KiB))
        with pytest.raises(TooLarge):
            await up.write(os.urandom(30 * KiB))
        await up.abort()
        assert (await store.info(b, "f")).nuid == old.nuid
        assert await store.read(old, 0, 10) == b"old"

    nats_store(main)


async def _read_with_readahead(store: Any, bucket: str, data: bytes, cs: int) -> ObjectInfo:
    """Store ``data`` in chunks of ``cs``, read its first chunk with 64 chunks of read-ahead
    and wait until they are cached; the object's info."""
    await store.create_bucket(BucketConfig(bucket))
    info = await store.put(bucket, ObjectMeta("seq"), data, chunk_size=cs)
    assert await store.read(info, 0, cs, readahead=64 * cs) == data[:cs]
    with trio.fail_after(10):
        while store.cache_bytes < 65 * cs:
            await trio.sleep(0.01)
    return info


def test_readahead_goes_in_batches_and_is_shared_with_reads(nats_store: StoreRunner) -> None:
    cs = 16 * KiB
    data = os.urandom(cs * 200)

    async def main(store: Any) -> None:
        base = store.stats.batch_gets
        info = await _read_with_readahead(store, nats_store.bucket, data, cs)
        assert store.stats.readahead_fetches == 64
        assert store.stats.batch_gets - base == 1, "64 chunks of 16 KiB are one request"
        fetched = store.stats.chunk_fetches
        assert await store.read(info, cs, 64 * cs) == data[cs : 65 * cs]
        assert store.stats.chunk_fetches == fetched
        # a read past the read-ahead window fetches only what it lacks, in one request
        assert await store.read(info, 60 * cs, 20 * cs) == data[60 * cs : 80 * cs]
        assert store.stats.chunk_fetches == fetched + 15
        assert store.stats.batch_gets - base == 2

    nats_store(main)


def test_sequential_reader_drops_what_it_left_behind(nats_store: StoreRunner) -> None:
    b = nats_store.bucket
    cs = 64 * KiB
    data = os.urandom(DROP_BEHIND * 3)

    async def main(store: Any) -> None:
        await store.create_bucket(BucketConfig(b))
        info = await store.put(b, ObjectMeta("stream"), data, chunk_size=cs)
        for pos in range(0, len(data), MiB):
            assert await store.read(info, pos, MiB, readahead=2 * MiB) == data[pos : pos + MiB]
            assert store.cache_bytes <= DROP_BEHIND + 4 * MiB
        # a reader without a read-ahead hint (a random reader) keeps what it read
        for pos in range(0, len(data), MiB):
            assert await store.read(info, pos, MiB) == data[pos : pos + MiB]
        assert store.cache_bytes == len(data)

    nats_store(main)


def test_a_sequential_reader_asks_for_read_ahead_once_per_half_window(nats_store: StoreRunner) -> None:
    """Cached reads hand read-ahead to the loop (a wake-up of its thread) only when what was
    asked before reaches less than half a window ahead: a 32 MiB read of 1 MiB reads with
    8 MiB of read-ahead asks at most 32 / 4 + 1 times (it asked once per read before)."""
    b = nats_store.bucket
    cs = 128 * KiB
    window = 8 * MiB
    data = os.urandom(32 * MiB)

    async def main(store: Any) -> None:
        await store.create_bucket(BucketConfig(b))
        info = await store.put(b, ObjectMeta("stream"), data, chunk_size=cs)
        before = store.stats.readahead_handoffs
        for pos in range(0, len(data), MiB):
            assert await store.read(info, pos, MiB, readahead=window) == data[pos : pos + MiB]
        asked = store.stats.readahead_handoffs - before
        assert asked <= len(data) // (window // 2) + 1
        assert store.stats.readahead_fetches >= len(data) // cs - window // cs

    nats_store(main)


def test_reads_inside_one_batch_are_views_of_it(nats_store: StoreRunner) -> None:
    """Chunks fetched in one batch lie back to back: a read within them is one view, no copy;
    a read across two batches is joined."""
    cs = 16 * KiB
    data = os.urandom(cs * 200)

    async def main(store: Any) -> None:
        info = await _read_with_readahead(store, nats_store.bucket, data, cs)  # 1..64: one batch
        got = await store.read(info, 3 * cs + 5, 20 * cs)
        assert isinstance(got, memoryview) and isinstance(got.obj, Landing) and got.readonly
        assert got == data[3 * cs + 5 : 23 * cs + 5]
        across = await store.read(info, 60 * cs, 10 * cs)  # 65..69 come in another batch
        assert isinstance(across, bytes) and across == data[60 * cs : 70 * cs]

    nats_store(main)


def _batch(cache: ChunkCache, first: int, count: int, size: int) -> Landing:
    land = Landing(count * size, first * size, first, count)
    for i in range(first, first + count):
        view = land.place([memoryview(os.urandom(size))])
        assert view is not None
        cache[("b", "n", i)] = view
    return land


def test_cache_evicts_the_chunks_of_a_batch_together() -> None:
    cache = ChunkCache(maxsize=10 * KiB, getsizeof=len)
    _batch(cache, 0, 4, KiB)
    _batch(cache, 4, 4, KiB)
    assert cache.currsize == 8 * KiB
    cache[("b", "n", 2)]  # recently used: the batch's other chunks still go first
    cache[("b", "other", 0)] = os.urandom(3 * KiB)  # 1 KiB too many: one chunk must go
    assert [k[2] for k in cache if k[1] == "n"] == [4, 5, 6, 7]
    assert cache.currsize == 7 * KiB


@pytest.mark.parametrize("seed", range(3))
def test_cache_never_holds_more_than_it_counts(seed: int) -> None:
    """Under LRU eviction alone, a batch's buffer is referenced by the cache only while all
    of its chunks are there: the bytes held equal the bytes counted."""
    rnd = random.Random(seed)
    cache = ChunkCache(maxsize=64 * KiB, getsizeof=len)
    first = 0
    for _ in range(200):
        if rnd.random() < 0.3 and len(cache):
            cache[rnd.choice(list(cache))]  # a hit reorders the LRU
            continue
        count = rnd.randint(1, 8)
        _batch(cache, first, count, rnd.choice([KiB, 3 * KiB]))
        first += count
        values = [cachetools.Cache.__getitem__(cache, k) for k in list(cache)]  # LRU untouched
        held = {id(v.obj): len(v.obj) for v in values}
        assert sum(held.values()) == cache.currsize <= cache.maxsize
