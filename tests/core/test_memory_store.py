"""The in-memory store keeps the store contract the layers above rely on."""

from __future__ import annotations

import base64
import hashlib

import pytest
import trio

from osfs.store import errors as se
from osfs.store.memory import MemoryStore
from osfs.store.types import BucketConfig, ObjectMeta


def run(body):
    async def main():
        store = MemoryStore()
        await store.create_bucket(BucketConfig("b"))
        await body(store)

    trio.run(main)


def test_chunking_digest_and_ranges() -> None:
    data = bytes(range(256)) * 40

    async def body(store: MemoryStore) -> None:
        info = await store.put("b", ObjectMeta("x"), data, chunk_size=1000)
        assert (info.size, info.chunks, info.max_chunk_size) == (len(data), 11, 1000)
        expected = "SHA-256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).decode()
        assert info.digest == expected
        store.chunk_fetches = 0
        assert await store.read(info, 1990, 20) == data[1990:2010]
        assert store.chunk_fetches == 2
        assert await store.read(info, len(data) - 5, 100) == data[-5:]
        assert await store.read(info, len(data), 10) == b""
        got = b"".join([block async for block in store.get(info)])
        assert got == data

    run(body)


def test_put_visible_only_on_commit_and_failure_keeps_old() -> None:
    async def body(store: MemoryStore) -> None:
        old = await store.put("b", ObjectMeta("x"), b"old")
        up = await store.begin_put("b", ObjectMeta("x"))
        await up.write(b"new data")
        assert (await store.info("b", "x")).nuid == old.nuid
        store.fail_next_put = se.NoSpace("full")
        with pytest.raises(se.NoSpace):
            await up.commit()
        assert await store.read(await store.info("b", "x"), 0, 10) == b"old"
        new = await store.put("b", ObjectMeta("x"), b"new")
        assert new.revision > old.revision
        with pytest.raises(se.ObjectReplaced):
            await store.read(old, 0, 3)

    run(body)


def test_names_limits_and_seal() -> None:
    async def body(store: MemoryStore) -> None:
        with pytest.raises(se.BadName):
            await store.create_bucket(BucketConfig("bad name"))
        with pytest.raises(se.BadName):
            await store.info("b", "")
        with pytest.raises(se.BucketNotFound):
            await store.info("nope", "x")
        await store.create_bucket(BucketConfig("small", max_object_size=4))
        with pytest.raises(se.TooLarge):
            await store.put("small", ObjectMeta("x"), b"12345")
        with pytest.raises(se.NotFound):
            await store.info("small", "x")
        await store.seal_bucket("b")
        with pytest.raises(se.Sealed):
            await store.put("b", ObjectMeta("y"), b"1")

    run(body)


def test_rename_delete_links_resolve() -> None:
    async def body(store: MemoryStore) -> None:
        a = await store.put("b", ObjectMeta("a"), b"aaa")
        await store.put("b", ObjectMeta("c"), b"ccc")
        with pytest.raises(se.Conflict):
            await store.rename("b", "a", "c")
        moved = await store.rename("b", "a", "c", replace=True)
        assert moved.nuid == a.nuid and moved.name == "c"
        assert await store.read(moved, 0, 3) == b"aaa"
        with pytest.raises(se.NotFound):
            await store.info("b", "a")
        link = await store.add_link("b", "l", "b", "c")
        assert link.link is not None and link.link.name == "c"
        assert (await store.resolve("b", "l")).nuid == a.nuid
        with pytest.raises(se.Conflict):
            await store.add_link("b", "l2", "b", "l")
        with pytest.raises(se.Conflict):
            await store.add_link("b", "c", "b", "c")
        await store.add_bucket_link("b", "bl", "b")
        with pytest.raises(se.Conflict):
            await store.resolve("b", "bl")
        await store.delete("b", "c")
        marker = await store.info("b", "c", show_deleted=True)
        assert marker.deleted and marker.nuid == a.nuid
        with pytest.raises(se.NotFound):
            await store.resolve("b", "l")
        with pytest.raises(se.NotFound):
            await store.delete("b", "c")

    run(body)


def test_corrupt_when_chunks_missing() -> None:
    async def body(store: MemoryStore) -> None:
        info = await store.put("b", ObjectMeta("x"), b"data")
        store.drop_chunks("b", "x")
        with pytest.raises(se.Corrupt):
            await store.read(info, 0, 4)

    run(body)


def test_watch_snapshot_then_live_events() -> None:
    async def body(store: MemoryStore) -> None:
        await store.put("b", ObjectMeta("one"), b"1")
        async with store.watch("b") as events:
            first = await events.__anext__()
            assert first is not None and first.name == "one"
            assert await events.__anext__() is None
            await store.put("b", ObjectMeta("two"), b"2")
            await store.delete("b", "one")
            two = await events.__anext__()
            gone = await events.__anext__()
            assert two is not None and two.name == "two"
            assert gone is not None and gone.deleted and gone.name == "one"

    run(body)
