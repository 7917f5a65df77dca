"""Ranged reads check the digest of a version read in order: a tampered version read from
start to end fails with ``Corrupt`` at the latest on the read that reaches the end, and
every read after; a good one is verified; random readers are never failed; the cursors are
bounded. The first tests run against a real server, the last ones drive
:class:`DigestVerifier` directly."""

from __future__ import annotations

import hashlib
import os
import random
import threading
from datetime import UTC, datetime
from typing import Any

import pytest
import trio

from osfs.config import ConnectOptions
from osfs.store.errors import Corrupt
from osfs.store.nats import wire
from osfs.store.nats.read.index import ChunkIndex
from osfs.store.nats.read.verify import MAX_CURSORS, DigestVerifier, Verdict
from osfs.store.nats.store import NatsStore
from osfs.store.types import BucketConfig, ObjectInfo, ObjectMeta

StoreRunner = Any  # tests/store/conftest.py: the ``nats_store`` runner fixture

KiB = 1024
CS = 16 * KiB


async def _api(store: NatsStore, subject: str, body: dict | None = None) -> dict:
    return await store._bridge.run(store._core.conn.api, subject, body)


async def _tamper(store: NatsStore, info: ObjectInfo, data: bytes, chunk: int, chunk_size: int = CS) -> bytes:
    """Replace the chunks of ``info`` by those of ``data`` with one byte of ``chunk`` flipped
    (same lengths, so only the digest can tell); return the tampered content."""
    bad = bytearray(data)
    bad[chunk * chunk_size + 5] ^= 0xFF
    stream = wire.stream_name(info.bucket)
    subject = wire.chunk_subject(info.bucket, info.nuid)
    await _api(store, f"STREAM.PURGE.{stream}", {"filter": subject})
    for pos in range(0, len(bad), chunk_size):
        await store._bridge.run(store._core.conn.publish, subject, bytes(bad[pos : pos + chunk_size]), None)
    return bytes(bad)


def _put(runner: StoreRunner, data: bytes, *, allow_direct: bool = True) -> ObjectInfo:
    """Store ``data`` as ``f`` in chunks of ``CS``; ``allow_direct=False`` makes a bucket as
    old JS clients did (read chunk by chunk with ``STREAM.MSG.GET``)."""

    async def put(store: Any) -> ObjectInfo:
        if allow_direct:
            await store.create_bucket(BucketConfig(runner.bucket))
        else:
            stream = wire.stream_name(runner.bucket)
            await _api(
                store,
                f"STREAM.CREATE.{stream}",
                {
                    "name": stream,
                    "subjects": [f"$O.{runner.bucket}.C.>", f"$O.{runner.bucket}.M.>"],
                    "allow_rollup_hdrs": True,
                    "discard": "new",
                    "allow_direct": False,
                },
            )
        return await store.put(runner.bucket, ObjectMeta("f"), data, chunk_size=CS)

    return runner(put)


@pytest.mark.parametrize(
    ("piece", "readahead", "allow_direct"),
    [(CS, 0, True), (5000, 0, True), (4 * KiB, 64 * KiB, True), (CS, 0, False), (7000, 32 * KiB, False)],
)
def test_sequential_reader_of_a_tampered_version_gets_corrupt(
    nats_store: StoreRunner, piece: int, readahead: int, allow_direct: bool
) -> None:
    data = os.urandom(20 * CS + 123)
    info = _put(nats_store, data, allow_direct=allow_direct)

    async def tamper(store: Any) -> bytes:
        return await _tamper(store, info, data, 7)

    bad = nats_store(tamper)

    async def read(store: Any) -> None:
        failed_at = None
        for off in range(0, info.size, piece):
            try:
                got = await store.read(info, off, piece, readahead=readahead)
            except Corrupt as exc:
                failed_at = off
                assert info.nuid in str(exc) and "digest" in str(exc)
                break
            assert got == bad[off : off + piece]  # served before the end: not checked yet
        assert failed_at is not None, "a tampered version was read to its end without an error"
        # from then on every read fails, cached chunks or not
        for off in (0, 7 * CS, failed_at, info.size - 1):
            with pytest.raises(Corrupt, match="digest"):
                await store.read(info, off, 1)
        with pytest.raises(Corrupt, match="digest"):
            [blk async for blk in store.get(info)]
        assert store.stats.digest_failures == 1 and store.stats.verified == 0
        assert store.cache_bytes == 0

    nats_store(read)


def test_sequential_reader_of_a_good_version_is_verified(nats_store: StoreRunner) -> None:
    data = os.urandom(40 * CS + 1)
    info = _put(nats_store, data)

    async def read(store: Any) -> None:
        for readahead in (0, 128 * KiB):
            got = b"".join(
                [await store.read(info, off, 5000, readahead=readahead) for off in range(0, len(data), 5000)]
            )
            assert got == data
        assert store.stats.verified == 1  # the second pass found everything hashed already
        assert store.stats.digest_failures == 0
        assert len(store._reader.verifier) == 0

    nats_store(read)


@pytest.mark.parametrize("chunks", [2, 3])
def test_small_versions_are_checked_from_the_chunks_the_index_brought(
    nats_store: StoreRunner, chunks: int
) -> None:
    """The first and last chunk come with the index: a read that starts past byte 0 and
    reaches the end is checked from chunk 0 in the cache on."""
    data = os.urandom(chunks * CS - 10)
    info = _put(nats_store, data)

    async def read_good(store: Any) -> None:
        assert await store.read(info, 3, 4) == data[3:7]
        assert store.stats.verified == 0  # the end was not served
        assert await store.read(info, 7, len(data)) == data[7:]
        assert store.stats.verified == 1

    nats_store(read_good)

    async def tamper(store: Any) -> None:
        await _tamper(store, info, data, chunks - 1)

    nats_store(tamper)

    async def read_bad(store: Any) -> None:
        with pytest.raises(Corrupt, match="digest"):
            await store.read(info, 3, len(data))
        with pytest.raises(Corrupt, match="digest"):
            await store.read(info, 0, 4)
        assert store.stats.digest_failures == 1

    nats_store(read_bad)


def test_whole_object_get_failure_fails_ranged_reads_too(nats_store: StoreRunner) -> None:
    data = os.urandom(6 * CS)
    info = _put(nats_store, data)

    async def tamper(store: Any) -> None:
        await _tamper(store, info, data, 4)

    nats_store(tamper)

    async def read(store: Any) -> None:
        with pytest.raises(Corrupt, match="digest"):
            [blk async for blk in store.get(info)]
        with pytest.raises(Corrupt, match="digest"):
            await store.read(info, CS, 10)
        assert store.stats.digest_failures == 1

    nats_store(read)


def _random_ranges(rnd: random.Random, size: int) -> list[tuple[int, int]]:
    """Uniformly random ranges."""
    return [(rnd.randrange(size), rnd.choice([1, 100, CS, 3 * CS + 5])) for _ in range(200)]


def _jittery_ranges(rnd: random.Random, size: int) -> list[tuple[int, int]]:
    """Forward to the end, but stepping back over a few chunks now and then, and now and
    then skipping some: chunks are fetched again, out of order, or never."""
    ranges, pos = [], 0
    while pos < size:
        n = rnd.choice([100, 5000, CS, 2 * CS + 3])
        ranges.append((pos, n))
        pos += n
        if rnd.random() < 0.2:
            pos = max(0, pos - rnd.randrange(4 * CS))
        elif rnd.random() < 0.03:
            pos += rnd.randrange(3 * CS)
    return ranges


@pytest.mark.parametrize("cache_size", [6 * CS, 64 * 1024 * KiB])
@pytest.mark.parametrize("pattern", [_random_ranges, _jittery_ranges])
@pytest.mark.parametrize("seed", range(3))
def test_random_reader_never_fails_a_good_version(
    nats_url: str, nats_store: StoreRunner, seed: int, pattern: Any, cache_size: int
) -> None:
    """Random and jittery readers, with a cache too small to hold the version (chunks are
    evicted before the cursor reaches them) or large enough: never an error, always the
    stored bytes; whatever check completes matches."""
    rnd = random.Random(seed)
    data = os.urandom(48 * CS + 77)
    info = _put(nats_store, data)

    async def main() -> None:
        store = await NatsStore.connect(ConnectOptions(servers=(nats_url,)), cache_size=cache_size)
        try:
            for off, n in pattern(rnd, len(data)):
                ahead = rnd.choice([0, 0, 4 * CS])
                assert await store.read(info, off, n, readahead=ahead) == data[off : off + n]
            assert store.stats.digest_failures == 0
            assert store.stats.verified <= 1
        finally:
            await store.close()

    trio.run(main)


def test_cursor_table_stays_bounded(nats_store: StoreRunner) -> None:
    """Each version read at its start keeps a cursor (its middle chunk is still to come);
    past ``MAX_CURSORS`` the least recently fed ones are dropped. A dropped one starts again
    from the cache when its middle chunk lands while its first chunk is still cached."""
    n = MAX_CURSORS + 6
    blobs = [os.urandom(3 * CS) for _ in range(n)]

    async def main(store: Any) -> None:
        await store.create_bucket(BucketConfig(nats_store.bucket))
        infos = [
            await store.put(nats_store.bucket, ObjectMeta(f"o{k}"), b, chunk_size=CS)
            for k, b in enumerate(blobs)
        ]
        verifier = store._reader.verifier
        for info, blob in zip(infos, blobs, strict=True):
            assert await store.read(info, 0, 10) == blob[:10]
            assert len(verifier) <= MAX_CURSORS
        assert len(verifier) == MAX_CURSORS
        for info, blob in zip(infos, blobs, strict=True):
            assert await store.read(info, 0, 3 * CS) == blob
            assert len(verifier) <= MAX_CURSORS
        assert store.stats.verified == n
        assert len(verifier) == 0

    nats_store(main)


# ----- the verifier's logic, with a dict as the cache ---------------------------------------

C = 100  # chunk size of the fake versions


class _PeekableDict(dict):
    """A dict as the chunk cache the verifier looks in."""

    def peek(self, key: tuple[str, str, int]) -> bytes | None:
        return self.get(key)


class _Fake:
    """A version of ``chunks`` (``C`` bytes each but the last), a dict as its chunk cache,
    and a :class:`DigestVerifier` over them."""

    def __init__(
        self, chunks: list[bytes], digest: str | None = None, nuid: str = "NUID", size: int = C, **kw: Any
    ) -> None:
        self.chunks = chunks
        self.cache: _PeekableDict = kw.pop("cache", _PeekableDict())
        self.lock = kw.pop("lock", threading.Lock())
        verifier = kw.pop("verifier", None)
        if verifier is None:
            verifier = DigestVerifier(self.lock, max_cursors=4, max_given_up=2)
        self.verifier = verifier
        self.content = b"".join(chunks)
        if digest is None:
            digest = wire.encode_digest(hashlib.sha256(self.content).digest())
        self.info = ObjectInfo("b", "n", nuid, len(self.content), len(chunks), digest, _NOW)
        self.idx = ChunkIndex(len(chunks), len(self.content), 1, size)

    def cache_chunks(self, *numbers: int) -> None:
        for i in numbers:
            self.cache[("b", self.info.nuid, i)] = self.chunks[i]

    def serve(self, offset: int, n: int, data: bytes | None = None) -> Verdict | None:
        """Serve ``n`` bytes at ``offset`` (``data`` instead of the stored bytes if given)."""
        got = self.content[offset : offset + n] if data is None else data
        return self.verifier.served(self.info, self.idx, offset, got, self.cache)


_NOW = datetime.now(UTC)


def _chunks(n: int, last: int = C, size: int = C) -> list[bytes]:
    return [os.urandom(size) for _ in range(n - 1)] + [os.urandom(last)]


def test_ranges_in_order_complete_the_check_on_the_last_byte() -> None:
    f = _Fake(_chunks(4, last=37))
    for off in range(0, f.info.size - 10, 30):
        assert f.serve(off, 30) is None
    assert len(f.verifier) == 1
    assert f.serve(f.info.size - 10, 10) is Verdict.MATCH
    assert len(f.verifier) == 0
    assert f.serve(0, 10) is None and len(f.verifier) == 0, "a good version is not hashed again"


def test_a_range_served_out_of_order_is_hashed_from_the_cache() -> None:
    f = _Fake(_chunks(5))
    f.cache_chunks(0, 1, 2, 3, 4)
    f.cache.pop(("b", "NUID", 2))
    assert f.serve(0, C) is None  # 0 and 1 hashed (1 from the cache); 2 is not cached
    assert f.serve(3 * C, 2 * C) is None  # ahead of the cursor: waits for 2
    assert len(f.verifier) == 1
    assert f.serve(2 * C, C) is Verdict.MATCH  # 2 served, then 3 and 4 from the cache


def test_same_length_change_is_a_mismatch() -> None:
    f = _Fake(_chunks(3))
    assert f.serve(0, C) is None
    assert f.serve(C, C, b"x" * C) is None
    assert f.serve(2 * C, C) is Verdict.MISMATCH


def test_chunks_not_served_yet_are_left_for_later() -> None:
    """Read-ahead chunks in the cache are hashed when the reader gets there, not before."""
    f = _Fake(_chunks(6, last=10))
    f.cache_chunks(*range(6))
    assert f.serve(0, 10) is None  # chunk 0 whole; 1..5 wait
    assert f.serve(C, 10) is None and len(f.verifier) == 1
    assert f.serve(5 * C + 9, 1) is Verdict.MATCH  # the end: the rest from the cache


def test_a_random_reader_leaves_the_cursor_waiting_and_fails_nothing() -> None:
    f = _Fake(_chunks(8))
    assert f.serve(0, 10) is None
    for off in (500, 300, 650, 20, 600):
        assert f.serve(off, 7) is None
    assert len(f.verifier) == 1  # at byte 27: chunk 0 is not cached, the cursor waits
    f.cache_chunks(*range(8))
    assert f.serve(20, 7) is None  # hashed up to the end of chunk 6, past byte 657 (the furthest served)
    assert f.serve(8 * C - 1, 1) is Verdict.MATCH  # the rest from the cache


def test_a_version_not_started_at_zero_starts_only_from_a_cached_chunk_zero() -> None:
    f = _Fake(_chunks(3))
    assert f.serve(C, C) is None and len(f.verifier) == 0
    f.cache_chunks(0)
    assert f.serve(C, C) is None and len(f.verifier) == 1  # 0 from the cache, then 1
    assert f.serve(2 * C, C) is Verdict.MATCH


@pytest.mark.parametrize("digest", ["", "MD5=abc", "SHA-256=not base64!"])
def test_versions_without_a_readable_digest_are_not_checked(digest: str) -> None:
    f = _Fake(_chunks(2), digest)
    assert f.serve(0, C) is None and f.serve(C, C) is None
    assert len(f.verifier) == 0


def test_cursors_given_up_and_bad_versions_are_bounded() -> None:
    lock, cache = threading.Lock(), _PeekableDict()
    v = DigestVerifier(lock, max_cursors=4, max_given_up=2)
    content = _chunks(3)
    fakes = [_Fake(content, nuid=f"N{k}", cache=cache, lock=lock, verifier=v) for k in range(10)]
    for k, f in enumerate(fakes):
        assert f.serve(0, 10) is None
        f.cache_chunks(0)
        assert len(v) == min(k + 1, 4)
    assert v.given_up == 6  # N0..N5 pushed out
    # only the last two given up (N4, N5) are remembered: N3 starts again from chunk 0
    assert fakes[5].serve(C, 10) is None and v.given_up == 6
    assert fakes[3].serve(C, 10) is None and v.given_up == 7  # ... pushing N6 out
    assert fakes[5].serve(0, 3 * C) is Verdict.MATCH  # a read from byte 0 always starts one
    assert v.mark_bad(("b", "N1")) and not v.mark_bad(("b", "N1"))
    assert v.is_bad(("b", "N1")) and not v.is_bad(("b", "N2"))
    assert fakes[1].serve(0, 3 * C) is None, "a bad version gets no cursor"


def test_concurrent_servers_hash_each_byte_once() -> None:
    """Threads serving the same version in order, in ranges of their own (all cached, so
    every call may hash far ahead): exactly one of them gets the verdict, and it matches.
    Chunks are large enough for hashlib to let the others run while it hashes."""
    size = 64 * KiB
    f = _Fake(_chunks(48, last=5, size=size), size=size)
    f.cache_chunks(*range(48))
    verdicts: list[Verdict | None] = []

    def reader(step: int) -> None:
        for off in range(0, f.info.size, step):
            verdicts.append(f.serve(off, step))

    threads = [threading.Thread(target=reader, args=(step,)) for step in (size, 3 * size + 1, 7000, 100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert verdicts.count(Verdict.MATCH) == 1 and Verdict.MISMATCH not in verdicts
