"""The contracts of ``osfs.store.base`` on both implementations (memory and NATS)."""

from __future__ import annotations

import hashlib
import itertools
import random
from collections.abc import AsyncIterator

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from storekit import StoreRunner

from osfs.store.base import ObjectStore
from osfs.store.errors import (
    BadName,
    BucketNotFound,
    Conflict,
    NotFound,
    ObjectReplaced,
    Sealed,
    StoreError,
    TooLarge,
)
from osfs.store.nats import wire
from osfs.store.types import BucketConfig, Link, ObjectInfo, ObjectMeta

EMPTY_DIGEST = "SHA-256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU="


def blob(n: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)


def digest(data: bytes) -> str:
    return wire.encode_digest(hashlib.sha256(data).digest())


async def collect(store: ObjectStore, info: ObjectInfo) -> bytes:
    return b"".join([block async for block in store.get(info)])


# ----- buckets ----------------------------------------------------------------------------


def test_bucket_lifecycle(store: StoreRunner) -> None:
    b = store.bucket
    cfg = BucketConfig(b, description="docs", max_object_size=5000, ttl=3600, metadata={"k": "v"})

    async def body(s: ObjectStore) -> None:
        status = await s.create_bucket(cfg)
        assert status.bucket == b and status.description == "docs"
        assert status.ttl == 3600 and status.storage == "file" and status.replicas == 1
        assert status.compression == "none" and not status.sealed and not status.read_only
        assert status.max_object_size == 5000 and status.max_bytes == -1
        assert status.metadata["k"] == "v" and "osfs.max_object_size" not in status.metadata
        assert b in await s.bucket_names()
        assert (await s.create_bucket(cfg)).bucket == b  # same config again: no error
        with pytest.raises(Conflict):
            await s.create_bucket(BucketConfig(b, description="other"))
        again = await s.bucket_status(b)
        assert again.description == "docs" and again.size == 0
        await s.delete_bucket(b)
        assert b not in await s.bucket_names()
        with pytest.raises(BucketNotFound):
            await s.bucket_status(b)
        with pytest.raises(BucketNotFound):
            await s.delete_bucket(b)

    store(body)


def test_bucket_names_sorted(store: StoreRunner) -> None:
    names = [store.bucket + suffix for suffix in ("_c", "_a", "_b")]

    async def body(s: ObjectStore) -> None:
        for n in names:
            await s.create_bucket(BucketConfig(n))
        listed = await s.bucket_names()
        assert listed == sorted(listed)
        assert [n for n in listed if n in names] == sorted(names)

    store(body)


def test_status_counts_objects_and_bytes(store: StoreRunner) -> None:
    b = store.bucket

    async def body(s: ObjectStore) -> None:
        await s.create_bucket(BucketConfig(b))
        await s.put(b, ObjectMeta("one"), blob(3000))
        await s.put(b, ObjectMeta("two"), blob(10))
        await s.put(b, ObjectMeta("three"), b"x")
        await s.delete(b, "three")
        status = await s.bucket_status(b)
        assert status.size in (2, -1)
        assert status.bytes >= 3010

    store(body)


@pytest.mark.parametrize("bad", ["", "a.b", "a b", "x\n", "a*", "a>", "é"])
def test_bad_bucket_names(store: StoreRunner, bad: str) -> None:
    async def body(s: ObjectStore) -> None:
        with pytest.raises(BadName):
            await s.create_bucket(BucketConfig(bad))
        with pytest.raises(BadName):
            await s.bucket_status(bad)
        with pytest.raises(BadName):
            await s.delete_bucket(bad)
        with pytest.raises(BadName):
            await s.info(bad, "x")
        with pytest.raises(BadName):
            await s.list_objects(bad)
        with pytest.raises(BadName):
            await s.put(bad, ObjectMeta("x"), b"data")
        assert not [n for n in await s.bucket_names() if "." in n or " " in n]

    store(body)


def test_empty_object_name(store: StoreRunner) -> None:
    b = store.bucket

    async def body(s: ObjectStore) -> None:
        await s.create_bucket(BucketConfig(b))
        with pytest.raises(BadName):
            await s.info(b, "")
        with pytest.raises(BadName):
            await s.put(b, ObjectMeta(""), b"data")
        with pytest.raises(BadName):
            await s.delete(b, "")
        assert await s.list_objects(b, show_deleted=True) == []

    store(body)


def test_missing_bucket(store: StoreRunner) -> None:
    b = store.bucket

    async def body(s: ObjectStore) -> None:
        with pytest.raises(BucketNotFound):
            await s.info(b, "x")
        with pytest.raises(BucketNotFound):
            await s.list_objects(b)
        with pytest.raises(BucketNotFound):
            await s.put(b, ObjectMeta("x"), b"data")

    store(body)


def test_seal(store: StoreRunner) -> None:
    b = store.bucket
    data = blob(2500)

    async def body(s: ObjectStore) -> None:
        await s.create_bucket(BucketConfig(b))
        await s.put(b, ObjectMeta("keep"), data, chunk_size=1000)
        status = await s.seal_bucket(b)
        assert status.sealed and status.read_only
        assert (await s.bucket_status(b)).sealed
        with pytest.raises(Sealed):
            await s.put(b, ObjectMeta("new"), b"more")
        with pytest.raises(Sealed):
            await s.put(b, ObjectMeta("keep"), b"overwrite")
        with pytest.raises(Sealed):
            await s.delete(b, "keep")
        with pytest.raises(Sealed):
            await s.update_meta(b, "keep", ObjectMeta("keep", description="d"))
        with pytest.raises(Sealed):
            await s.rename(b, "keep", "moved")
        info = await s.info(b, "keep")
        assert await collect(s, info) == data
        assert await s.read(info, 1000, 10) == data[1000:1010]
        assert [i.name for i in await s.list_objects(b)] == ["keep"]

    store(body)


# ----- put, info, list, read, get ---------------------------------------------------------


def test_put_info_list_read_get(store: StoreRunner) -> None:
    b = store.bucket
    data = blob(10_500, seed=1)
    meta = ObjectMeta(
        "dir/sub/file.bin",
        description="a file",
        headers={"Content-Type": ("application/octet-stream",), "X-Multi": ("1", "2")},
        metadata={"mode": "0644"},
    )

    async def body(s: ObjectStore) -> None:
        await s.create_bucket(BucketConfig(b))
        put = await s.put(b, meta, data, chunk_size=1000)
        assert (put.bucket, put.name, put.size, put.chunks) == (b, meta.name, len(data), 11)
        assert put.digest == digest(data) and put.max_chunk_size == 1000
        assert put.nuid and not put.deleted and put.link is None
        assert put.mtime.tzinfo is not None and put.mtime.year >= 2024
        assert put.revision > 0
        info = await s.info(b, meta.name)
        assert (info.nuid, info.size, info.chunks, info.digest) == (put.nuid, put.size, 11, put.digest)
        assert info.revision == put.revision
        assert info.description == "a file" and info.metadata == {"mode": "0644"}
        assert info.headers == {"Content-Type": ("application/octet-stream",), "X-Multi": ("1", "2")}
        assert info.mime == "application/octet-stream"
        assert [i.name for i in await s.list_objects(b)] == [meta.name]
        assert await collect(s, info) == data
        for offset, length in [(0, 1), (0, 1000), (999, 2), (1000, 1000), (3456, 4321), (10_000, 500)]:
            assert await s.read(info, offset, length) == data[offset : offset + length]
        assert await s.read(info, 10_400, 1000) == data[10_400:]  # short at EOF
        assert await s.read(info, 10_500, 10) == b""
        assert await s.read(info, 20_000, 10) == b""
        assert await s.read(info, 5, 0) == b""
        assert await s.read(info, 0, 3000, readahead=4000) == data[:3000]
        assert await s.read(info, 3000, 3000) == data[3000:6000]

    store(body)


def test_put_default_chunk_size_and_large_write(store: StoreRunner) -> None:
    b = store.bucket
    data = blob(300_000, seed=2)

    async def body(s: ObjectStore) -> None:
        await s.create_bucket(BucketConfig(b))
        info = await s.put(b, ObjectMeta("big"), data)
        assert info.max_chunk_size == 128 * 1024 and info.chunks == 3
        assert await collect(s, await s.info(b, "big")) == data
        assert await s.read(info, 131_000, 2000) == data[131_000:133_000]

    store(body)


def test_put_empty_object(store: StoreRunner) -> None:
    b = store.bucket

    async def body(s: ObjectStore) -> None:
        await s.create_bucket(BucketConfig(b))
        info = await s.put(b, ObjectMeta("empty"), b"")
        assert (info.size, info.chunks, info.digest) == (0, 0, EMPTY_DIGEST)
        got = await s.info(b, "empty")
        assert got.size == 0 and got.digest == EMPTY_DIGEST
        assert await collect(s, got) == b""
        assert await s.read(got, 0, 100) == b""

    store(body)


def test_put_from_async_iterator(store: StoreRunner) -> None:
    b = store.bucket
    data = blob(9_999, seed=3)
    cuts = [0, 1, 2, 700, 701, 3000, 3000, 8000, 9_999]

    async def blocks() -> AsyncIterator[bytes]:
        for lo, hi in itertools.pairwise(cuts):
            await trio.lowlevel.checkpoint()
            yield data[lo:hi]

    async def body(s: ObjectStore) -> None:
        await s.create_bucket(BucketConfig(b))
        info = await s.put(b, ObjectMeta("streamed"), blocks(), chunk_size=512)
        assert info.size == len(data) and info.chunks == 20 and info.digest == digest(data)
        assert await collect(s, info) == data
        assert await s.read(info, 511, 3) == data[511:514]

    store(body)


def test_names_with_any_characters(store: StoreRunner) -> None:
    b = store.bucket
    names = ["über/straße.txt", "日本語", "a b.c*d>e", "..", "x/", "emoji 🎉", "a" * 300]

    async def body(s: ObjectStore) -> None:
        await s.create_bucket(BucketConfig(b))
        for i, name in enumerate(names):
            await s.put(b, ObjectMeta(name), name.encode() + bytes([i]))
        listed = {i.name: i for i in await s.list_objects(b)}
        assert set(listed) == set(names)
        for i, name in enumerate(names):
            info = await s.info(b, name)
            assert await collect(s, info) == name.encode() + bytes([i])

    store(body)


def test_visible_only_after_commit(store: StoreRunner) -> None:
    b = store.bucket

    async def body(s: ObjectStore) -> None:
        await s.create_bucket(BucketConfig(b))
        old = await s.put(b, ObjectMeta("f"), b"old contents")
        up = await s.begin_put(b, ObjectMeta("f"), chunk_size=100)
        fresh = await s.begin_put(b, ObjectMeta("g"), chunk_size=100)
        await up.write(blob(1000, seed=4))
        await fresh.write(b"new object")
        assert up.size == 1000 and fresh.size == 10
        assert (await s.info(b, "f")).nuid == old.nuid
        with pytest.raises(NotFound):
            await s.info(b, "g")
        assert [i.name for i in await s.list_objects(b)] == ["f"]
        assert await collect(s, await s.info(b, "f")) == b"old contents"
        new = await up.commit()
        assert new.nuid != old.nuid and new.size == 1000
        assert (await s.info(b, "f")).nuid == new.nuid
        await fresh.commit()
        assert {i.name for i in await s.list_objects(b)} == {"f", "g"}
        await up.abort()  # abort after commit does nothing
        assert await collect(s, await s.info(b, "f")) == blob(1000, seed=4)

    store(body)


def test_abort_keeps_previous_version(store: StoreRunner) -> None:
    b = store.bucket
    data = blob(2048, seed=5)

    async def failing() -> AsyncIterator[bytes]:
        yield blob(1000)
        raise RuntimeError("source failed")

    async def body(s: ObjectStore) -> None:
        await s.create_bucket(BucketConfig(b))
        old = await s.put(b, ObjectMeta("f"), data, chunk_size=512)
        bytes_before = (await s.bucket_status(b)).bytes
        up = await s.begin_put(b, ObjectMeta("f"), chunk_size=512)
        await up.write(blob(5000, seed=6))
        await up.abort()
        await up.abort()  # a finished upload ignores abort
        with pytest.raises(RuntimeError, match="source failed"):
            await s.put(b, ObjectMeta("f"), failing(), chunk_size=100)
        info = await s.info(b, "f")
        assert (info.nuid, info.revision) == (old.nuid, old.revision)
        assert await collect(s, info) == data
        assert await s.read(old, 100, 1000) == data[100:1100]
        assert (await s.bucket_status(b)).bytes == bytes_before
        with pytest.raises(NotFound):
            await s.info(b, "never")
        up2 = await s.begin_put(b, ObjectMeta("never"))
        await up2.write(b"abc")
        await up2.abort()
        with pytest.raises(NotFound):
            await s.info(b, "never")

    store(body)


def test_replaced_version(store: StoreRunner) -> None:
    b = store.bucket

    async def body(s: ObjectStore) -> None:
        await s.create_bucket(BucketConfig(b))
        v1 = await s.put(b, ObjectMeta("f"), blob(3000, seed=7), chunk_size=1000)
        v2 = await s.put(b, ObjectMeta("f"), blob(3000, seed=8), chunk_size=1000)
        assert v2.nuid != v1.nuid and v2.revision > v1.revision
        with pytest.raises(ObjectReplaced):
            await s.read(v1, 0, 10)
        assert await s.read(v2, 0, 10) == blob(3000, seed=8)[:10]
        assert len(await s.list_objects(b)) == 1

    store(body)


def test_too_large(store: StoreRunner) -> None:
    b = store.bucket

    async def body(s: ObjectStore) -> None:
        await s.create_bucket(BucketConfig(b, max_object_size=1000))
        ok = await s.put(b, ObjectMeta("f"), blob(1000), chunk_size=300)
        bytes_before = (await s.bucket_status(b)).bytes
        with pytest.raises(TooLarge):
            await s.put(b, ObjectMeta("f"), blob(1001), chunk_size=300)
        with pytest.raises(TooLarge):
            await s.put(b, ObjectMeta("g"), blob(5000), chunk_size=300)
        up = await s.begin_put(b, ObjectMeta("f"), chunk_size=300)
        await up.write(blob(600))
        with pytest.raises(TooLarge):
            await up.write(blob(600))
        await up.abort()
        assert (await s.info(b, "f")).nuid == ok.nuid
        with pytest.raises(NotFound):
            await s.info(b, "g")
        assert [i.name for i in await s.list_objects(b, show_deleted=True)] == ["f"]
        assert (await s.bucket_status(b)).bytes == bytes_before
        assert await collect(s, ok) == blob(1000)

    store(body)


def test_update_meta(store: StoreRunner) -> None:
    b = store.bucket
    data = blob(1500, seed=9)

    async def body(s: ObjectStore) -> None:
        await s.create_bucket(BucketConfig(b))
        put = await s.put(b, ObjectMeta("f", headers={"Content-Type": ("text/plain",)}), data, chunk_size=500)
        new_meta = ObjectMeta("f", description="described", headers={"A": ("1",)}, metadata={"m": "x"})
        updated = await s.update_meta(b, "f", new_meta)
        assert updated.description == "described" and updated.headers == {"A": ("1",)}
        assert updated.metadata == {"m": "x"} and updated.mime is None
        assert (updated.nuid, updated.size, updated.chunks, updated.digest) == (
            put.nuid,
            put.size,
            put.chunks,
            put.digest,
        )
        assert updated.revision > put.revision
        info = await s.info(b, "f")
        assert info.description == "described" and info.metadata == {"m": "x"}
        assert info.max_chunk_size == 500
        assert await collect(s, info) == data
        assert await s.read(put, 400, 200) == data[400:600]  # same nuid: still readable
        with pytest.raises(StoreError):
            await s.update_meta(b, "f", ObjectMeta("other"))
        with pytest.raises(NotFound):
            await s.update_meta(b, "missing", ObjectMeta("missing"))
        await s.delete(b, "f")
        with pytest.raises(NotFound):
            await s.update_meta(b, "f", ObjectMeta("f"))

    store(body)


def test_rename(store: StoreRunner) -> None:
    b = store.bucket
    a_data, c_data = blob(2000, seed=10), blob(700, seed=11)

    async def body(s: ObjectStore) -> None:
        await s.create_bucket(BucketConfig(b))
        a = await s.put(b, ObjectMeta("a", description="A"), a_data, chunk_size=512)
        c = await s.put(b, ObjectMeta("c"), c_data)
        moved = await s.rename(b, "a", "dir/b")
        assert moved.name == "dir/b" and moved.nuid == a.nuid and moved.description == "A"
        assert (moved.size, moved.digest, moved.chunks) == (a.size, a.digest, a.chunks)
        with pytest.raises(NotFound):
            await s.info(b, "a")
        with pytest.raises(NotFound):
            await s.info(b, "a", show_deleted=True)  # no delete marker is left behind
        info = await s.info(b, "dir/b")
        assert info.nuid == a.nuid
        assert await collect(s, info) == a_data
        assert await s.read(info, 1000, 100) == a_data[1000:1100]
        assert {i.name for i in await s.list_objects(b, show_deleted=True)} == {"dir/b", "c"}
        with pytest.raises(Conflict):
            await s.rename(b, "dir/b", "c")
        assert (await s.info(b, "c")).nuid == c.nuid
        assert (await s.info(b, "dir/b")).nuid == a.nuid
        replaced = await s.rename(b, "dir/b", "c", replace=True)
        assert replaced.nuid == a.nuid
        assert await collect(s, await s.info(b, "c")) == a_data
        with pytest.raises(ObjectReplaced):
            await s.read(c, 0, 10)
        assert [i.name for i in await s.list_objects(b, show_deleted=True)] == ["c"]
        with pytest.raises(NotFound):
            await s.rename(b, "missing", "x")

    store(body)


def test_delete(store: StoreRunner) -> None:
    b = store.bucket

    async def body(s: ObjectStore) -> None:
        await s.create_bucket(BucketConfig(b))
        put = await s.put(b, ObjectMeta("f", description="d"), blob(3000), chunk_size=1000)
        await s.put(b, ObjectMeta("other"), b"x")
        await s.delete(b, "f")
        with pytest.raises(NotFound):
            await s.info(b, "f")
        marker = await s.info(b, "f", show_deleted=True)
        assert marker.deleted and marker.size == 0 and marker.chunks == 0
        assert marker.revision > put.revision
        assert [i.name for i in await s.list_objects(b)] == ["other"]
        assert {i.name for i in await s.list_objects(b, show_deleted=True)} == {"f", "other"}
        with pytest.raises(ObjectReplaced):
            await s.read(put, 0, 10)
        with pytest.raises(NotFound):
            await s.delete(b, "f")
        with pytest.raises(NotFound):
            await s.delete(b, "never")
        again = await s.put(b, ObjectMeta("f"), b"back")
        assert await collect(s, await s.info(b, "f")) == b"back" and not again.deleted

    store(body)


# ----- links ------------------------------------------------------------------------------


def test_links(store: StoreRunner) -> None:
    a, other = store.bucket, store.bucket + "_o"
    data = blob(1234, seed=12)

    async def body(s: ObjectStore) -> None:
        await s.create_bucket(BucketConfig(a))
        await s.create_bucket(BucketConfig(other))
        target = await s.put(a, ObjectMeta("t.txt"), data)
        link = await s.add_link(a, "l", a, "t.txt")
        assert link.is_link and link.link == Link(a, "t.txt") and link.size == 0
        info = await s.info(a, "l")
        assert info.link == Link(a, "t.txt")
        assert (await s.resolve(a, "l")).nuid == target.nuid
        assert (await s.resolve(a, "t.txt")).nuid == target.nuid
        # across buckets
        cross = await s.add_link(other, "x/link", a, "t.txt")
        assert cross.bucket == other and cross.link == Link(a, "t.txt")
        resolved = await s.resolve(other, "x/link")
        assert resolved.bucket == a and resolved.nuid == target.nuid
        assert await collect(s, resolved) == data
        # overwriting a link is allowed
        await s.put(a, ObjectMeta("t2"), b"second")
        assert (await s.add_link(a, "l", a, "t2")).link == Link(a, "t2")
        assert await collect(s, await s.resolve(a, "l")) == b"second"
        # conflicts
        with pytest.raises(Conflict):
            await s.add_link(a, "l2", a, "l")  # link to a link
        with pytest.raises(Conflict):
            await s.add_link(a, "t2", a, "t.txt")  # name is a live object
        with pytest.raises(NotFound):
            await s.add_link(a, "l3", a, "nope")
        await s.put(a, ObjectMeta("gone"), b"bye")
        await s.delete(a, "gone")
        with pytest.raises(Conflict):
            await s.add_link(a, "l4", a, "gone")  # link to a deleted object
        # bucket links
        bl = await s.add_bucket_link(a, "to-other", other)
        assert bl.link == Link(other) and bl.link.is_bucket_link
        assert (await s.info(a, "to-other")).link == Link(other)
        with pytest.raises(Conflict):
            await s.resolve(a, "to-other")
        # dangling
        await s.delete(a, "t.txt")
        with pytest.raises(NotFound):
            await s.resolve(other, "x/link")
        names = {i.name for i in await s.list_objects(a)}
        assert names == {"l", "t2", "to-other"}

    store(body)


# ----- watch ------------------------------------------------------------------------------


async def next_event(events: AsyncIterator[ObjectInfo | None]) -> ObjectInfo | None:
    with trio.fail_after(20):
        return await events.__anext__()


def test_watch(store: StoreRunner) -> None:
    b = store.bucket

    async def body(s: ObjectStore) -> None:
        await s.create_bucket(BucketConfig(b))
        await s.put(b, ObjectMeta("a"), b"A")
        await s.put(b, ObjectMeta("b"), b"B")
        await s.put(b, ObjectMeta("b"), b"B2")
        await s.delete(b, "b")
        async with s.watch(b) as events:
            snapshot = {}
            while (ev := await next_event(events)) is not None:
                snapshot[ev.name] = ev
            assert set(snapshot) == {"a", "b"}
            assert not snapshot["a"].deleted and snapshot["b"].deleted
            c = await s.put(b, ObjectMeta("c"), b"C")
            ev = await next_event(events)
            assert ev is not None and ev.name == "c" and ev.nuid == c.nuid and not ev.deleted
            await s.delete(b, "a")
            ev = await next_event(events)
            assert ev is not None and ev.name == "a" and ev.deleted
            await s.rename(b, "c", "d")
            ev = await next_event(events)
            assert ev is not None and ev.name == "d" and ev.nuid == c.nuid
            await s.add_link(b, "ln", b, "d")
            ev = await next_event(events)
            assert ev is not None and ev.name == "ln" and ev.link == Link(b, "d")
            await s.update_meta(b, "d", ObjectMeta("d", description="new"))
            ev = await next_event(events)
            assert ev is not None and ev.name == "d" and ev.description == "new"

    store(body)


def test_watch_empty_bucket_and_updates_only(store: StoreRunner) -> None:
    b = store.bucket

    async def body(s: ObjectStore) -> None:
        await s.create_bucket(BucketConfig(b))
        async with s.watch(b) as events:
            assert await next_event(events) is None
            await s.put(b, ObjectMeta("x"), b"1")
            ev = await next_event(events)
            assert ev is not None and ev.name == "x"
        async with s.watch(b, initial=False) as events:
            await s.put(b, ObjectMeta("y"), b"2")
            ev = await next_event(events)
            assert ev is not None and ev.name == "y"

    store(body)


# ----- property: any range of any object --------------------------------------------------


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.binary(min_size=0, max_size=6000),
    chunk_size=st.integers(1, 2000),
    ranges=st.lists(st.tuples(st.integers(0, 7000), st.integers(0, 7000)), min_size=1, max_size=8),
)
def test_read_any_range(
    store: StoreRunner, data: bytes, chunk_size: int, ranges: list[tuple[int, int]]
) -> None:
    b = store.bucket

    async def body(s: ObjectStore) -> None:
        if b not in await s.bucket_names():
            await s.create_bucket(BucketConfig(b))
        info = await s.put(b, ObjectMeta("p"), data, chunk_size=chunk_size)
        assert info.size == len(data) and info.digest == digest(data)
        assert info.chunks == -(-len(data) // chunk_size)
        for offset, length in ranges:
            assert await s.read(info, offset, length) == data[offset : offset + length]
        assert await collect(s, info) == data

    store(body)


def test_bad_names_rejected_before_sending(nats_store: StoreRunner) -> None:
    """On NATS, validation happens before any request: a closed store still says BadName."""

    async def body(s: ObjectStore) -> None:
        await s.close()
        with pytest.raises(BadName):
            await s.create_bucket(BucketConfig("a.b"))
        with pytest.raises(BadName):
            await s.info("a b", "x")
        with pytest.raises(BadName):
            await s.info("ok", "")
        with pytest.raises(BadName):
            await s.begin_put("ok", ObjectMeta(""))

    nats_store(body)
