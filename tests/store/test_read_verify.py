"""Ranged reads check the digest of a version read in order: a tampered version read from
start to end fails with ``Corrupt`` at the latest on the read that reaches the end, and
every read after; a good one is verified; random readers are never failed; the cursors are
bounded. The first tests run against a real server, the last ones drive
:class:`DigestVerifier` directly."""

from __future__ import annotations

import hashlib
import os
import random
from datetime import UTC, datetime
from typing import Any

import pytest
import trio

from osfs.config import ConnectOptions
from osfs.store import wire
from osfs.store.errors import Corrupt
from osfs.store.nats_store import NatsStore
from osfs.store.nats_verify import MAX_CURSORS, DigestVerifier, Verdict
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
        assert len(store._core.reader.verifier) == 0

    nats_store(read)


@pytest.mark.parametrize("chunks", [1, 2])
def test_small_versions_are_checked_when_indexed(nats_store: StoreRunner, chunks: int) -> None:
    """One or two chunks come with the index (first and last chunk): checked there."""
    data = os.urandom(chunks * CS - 10)
    info = _put(nats_store, data)

    async def read_good(store: Any) -> None:
        assert await store.read(info, 3, 4) == data[3:7]
        assert store.stats.verified == 1

    nats_store(read_good)

    async def tamper(store: Any) -> None:
        await _tamper(store, info, data, chunks - 1)

    nats_store(tamper)

    async def read_bad(store: Any) -> None:
        with pytest.raises(Corrupt, match="digest"):
            await store.read(info, 3, 4)
        with pytest.raises(Corrupt, match="digest"):
            await store.read(info, 0, len(data))
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
        verifier = store._core.reader.verifier
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


class _Fake:
    """A cache and an in-flight set for a :class:`DigestVerifier`."""

    def __init__(self, chunks: list[bytes], digest: str | None = None) -> None:
        self.chunks = chunks
        self.cache: dict[tuple[str, str, int], bytes] = {}
        self.fetching: set[tuple[str, str, int]] = set()
        self.verifier = DigestVerifier(
            self.cache.get, self.fetching.__contains__, max_cursors=4, max_given_up=2
        )
        content = b"".join(chunks)
        if digest is None:
            digest = wire.encode_digest(hashlib.sha256(content).digest())
        self.info = ObjectInfo("b", "n", "NUID", len(content), len(chunks), digest, _NOW)

    def land(self, i: int, data: bytes | None = None) -> Verdict | None:
        verdict = self.verifier.landed(self.info, i, self.chunks[i] if data is None else data)
        self.cache[("b", "NUID", i)] = self.chunks[i]
        self.fetching.discard(("b", "NUID", i))
        return verdict

    def start(self, *numbers: int) -> None:
        self.fetching.update(("b", "NUID", i) for i in numbers)


_NOW = datetime.now(UTC)


def _chunks(n: int) -> list[bytes]:
    return [os.urandom(100) for _ in range(n)]


def test_out_of_order_landing_waits_for_the_chunk_in_flight() -> None:
    f = _Fake(_chunks(6))
    f.start(0, 1, 2, 3, 4, 5)
    assert f.land(3) is None and f.land(4) is None
    assert f.land(0) is None and f.land(1) is None
    assert len(f.verifier) == 1
    assert f.land(5) is None
    assert f.land(2) is Verdict.MATCH  # 2 landed, then 3, 4, 5 from the cache
    assert len(f.verifier) == 0


def test_same_length_change_is_a_mismatch() -> None:
    f = _Fake(_chunks(3))
    assert f.land(0) is None and f.land(1, b"x" * 100) is None
    assert f.land(2) is Verdict.MISMATCH


def test_a_gap_nobody_fetches_gives_the_version_up_until_chunk_zero_lands_again() -> None:
    f = _Fake(_chunks(5))
    assert f.land(0) is None
    assert f.land(3) is None  # chunk 1 is neither cached nor being fetched: a random reader
    assert len(f.verifier) == 0 and f.verifier.given_up == 1
    assert f.land(1) is None and f.land(2) is None and f.land(4) is None
    assert len(f.verifier) == 0, "a given-up version must not restart from a later chunk"
    del f.cache[("b", "NUID", 1)], f.cache[("b", "NUID", 3)]
    assert f.land(0) is None  # a new pass from the start
    assert f.land(1) is None  # 2 from the cache
    assert f.land(3) is Verdict.MATCH  # 4 from the cache


def test_chunk_zero_from_the_cache_starts_a_cursor() -> None:
    f = _Fake(_chunks(3))
    f.cache[("b", "NUID", 0)] = f.chunks[0]
    f.cache[("b", "NUID", 2)] = f.chunks[2]
    assert f.land(1) is Verdict.MATCH


@pytest.mark.parametrize("digest", ["", "MD5=abc", "SHA-256=not base64!"])
def test_versions_without_a_readable_digest_are_not_checked(digest: str) -> None:
    f = _Fake(_chunks(2), digest)
    assert f.land(0) is None and f.land(1) is None
    assert len(f.verifier) == 0


def test_cursors_and_given_up_versions_are_bounded() -> None:
    cache: dict[tuple[str, str, int], bytes] = {}
    v = DigestVerifier(cache.get, lambda _k: False, max_cursors=4, max_given_up=2)
    chunk = b"c" * 10
    digest = wire.encode_digest(hashlib.sha256(chunk * 3).digest())
    infos = [ObjectInfo("b", "n", f"N{k}", 30, 3, digest, _NOW) for k in range(10)]
    for k, info in enumerate(infos):
        assert v.landed(info, 0, chunk) is None
        cache[("b", info.nuid, 0)] = chunk
        assert len(v) == min(k + 1, 4)
    # N6..N9 have cursors; chunk 2 landing with chunk 1 nowhere gives N7, N8, N9 up
    for info in infos[7:]:
        assert v.landed(info, 2, chunk) is None
    assert len(v) == 1 and v.given_up == 3
    # only the last two given up are remembered: N7 starts again from the cached chunk 0
    assert v.landed(infos[8], 1, chunk) is None and len(v) == 1
    assert v.landed(infos[7], 1, chunk) is None and len(v) == 2
    assert v.mark_bad(("b", "N1")) and not v.mark_bad(("b", "N1"))
    assert v.is_bad(("b", "N1")) and not v.is_bad(("b", "N2"))
