"""Small objects on the NATS store: what a put of one chunk and a delete cost in messages to
the server, and that publishing the chunk and the meta back to back never shows an object
whose chunk was refused."""

from __future__ import annotations

import collections
import os
from collections.abc import Iterator
from typing import Any

import pytest

from osfs.store.errors import NotFound, StoreError
from osfs.store.nats.conn import Conn
from osfs.store.types import NOTHING, BucketConfig, ObjectMeta, Replacing

StoreRunner = Any  # tests/store/conftest.py: the ``nats_store`` runner fixture

#: The connection's calls that send a message to the server.
SENDS = ("api", "publish", "publish_pipelined", "direct_get", "last_msg", "msg_get", "batch_get")


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> Iterator[collections.Counter[str]]:
    """Counts of the messages every store connection sends, by kind."""
    counts: collections.Counter[str] = collections.Counter()
    for name in SENDS:
        original = getattr(Conn, name)

        def counted(self: Conn, *args: Any, _fn: Any = original, _name: str = name, **kw: Any) -> Any:
            counts[_name] += 1
            return _fn(self, *args, **kw)

        monkeypatch.setattr(Conn, name, counted)
    yield counts


async def chunk_subjects(store: Any, bucket: str) -> dict[str, int]:
    reply = await store._bridge.run(
        store._core.conn.api, f"STREAM.INFO.OBJ_{bucket}", {"subjects_filter": f"$O.{bucket}.C.>"}
    )
    return dict((reply.get("state") or {}).get("subjects") or {})


async def small_put(
    store: Any, bucket: str, name: str, data: bytes, replacing: Replacing | None = NOTHING
) -> Any:
    """A put as the mount's writer makes it (its belief, no server time read back)."""
    up = await store.begin_put(bucket, ObjectMeta(name), replacing=replacing, server_time=False)
    await up.write(data)
    return await up.commit()


def test_new_small_file_costs_two_publishes(nats_store: StoreRunner, sent: collections.Counter[str]) -> None:
    b = nats_store.bucket

    async def main(store: Any) -> None:
        await store.create_bucket(BucketConfig(b))
        await small_put(store, b, "warm", b"w")  # reads the bucket's status once
        sent.clear()
        info = await small_put(store, b, "f", os.urandom(4096))
        # the chunk and the meta, back to back: no status, no read of a previous meta
        assert dict(sent) == {"publish_pipelined": 1, "publish": 1}
        stored = await store.info(b, "f")
        assert (stored.nuid, stored.revision, stored.size, stored.digest) == (
            info.nuid,
            info.revision,
            info.size,
            info.digest,
        )
        sent.clear()
        gone = await store.delete(b, "f")
        # the meta read (returned for the caller's use), the marker, the purge
        assert dict(sent) == {"last_msg": 1, "publish": 1, "api": 1}
        assert gone.nuid == info.nuid and not gone.deleted
        warm = await store.info(b, "warm")
        assert await chunk_subjects(store, b) == {f"$O.{b}.C.{warm.nuid}": 1}

    nats_store(main)


def test_refused_chunk_leaves_nothing_visible(nats_store: StoreRunner) -> None:
    b = nats_store.bucket

    async def main(store: Any) -> None:
        # room for a meta, not for a 4 KiB chunk: the server refuses the chunk and would
        # take the meta sent right behind it but for its condition
        await store.create_bucket(BucketConfig(b, max_bytes=2048))
        with pytest.raises(StoreError):
            await small_put(store, b, "f", os.urandom(4096))
        with pytest.raises(NotFound):
            await store.info(b, "f", show_deleted=True)
        assert await store.list_objects(b, show_deleted=True) == []
        assert await chunk_subjects(store, b) == {}
        ok = await small_put(store, b, "g", b"fits")
        assert (await store.info(b, "g")).nuid == ok.nuid

    nats_store(main)


def test_wrong_belief_costs_a_retry_only(nats_store: StoreRunner) -> None:
    b = nats_store.bucket

    async def main(store: Any) -> None:
        await store.create_bucket(BucketConfig(b))
        first = await store.put(b, ObjectMeta("f"), b"one")
        # believed new, but the name holds a version: the commit reads it and replaces it
        second = await small_put(store, b, "f", b"two")
        assert (await store.info(b, "f")).nuid == second.nuid
        assert f"$O.{b}.C.{first.nuid}" not in await chunk_subjects(store, b)
        # a belief that is right replaces and purges without reading
        third = await small_put(store, b, "f", b"three", Replacing.of(await store.info(b, "f")))
        assert (await store.info(b, "f")).nuid == third.nuid
        assert list(await chunk_subjects(store, b)) == [f"$O.{b}.C.{third.nuid}"]
        # after a delete the marker holds the name: believed new, committed all the same
        await store.delete(b, "f")
        fourth = await small_put(store, b, "f", b"four")
        info = await store.info(b, "f")
        assert info.nuid == fourth.nuid and not info.deleted
        assert await store.read(info, 0, 10) == b"four"

    nats_store(main)
