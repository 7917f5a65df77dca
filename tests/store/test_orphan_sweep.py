"""``ObjectStore.sweep_orphans`` on both stores: chunks of uploads that never finished are
purged once older than the grace; chunks any meta names are never touched."""

from __future__ import annotations

import random
from typing import Any

import pytest
import trio
from storekit import StoreRunner

from osfs.store.base import ObjectStore, Upload
from osfs.store.errors import Sealed
from osfs.store.memory import MemoryStore
from osfs.store.nats.store import HAND_OFF
from osfs.store.types import BucketConfig, ObjectMeta

CS = 64 * 1024
#: Enough for a NATS upload to hand its data to the chunk pipeline (``HAND_OFF``).
ORPHAN_SIZE = HAND_OFF + 3 * CS + 5


def blob(n: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)


async def stored_nuids(s: ObjectStore, bucket: str) -> set[str]:
    """Nuids that have chunks in the bucket now (read beneath the store's interface)."""
    if isinstance(s, MemoryStore):
        return {nuid for nuid, chunks in s.stream.buckets[bucket].chunks.items() if chunks}
    reply = await s._bridge.run(  # type: ignore[attr-defined]
        s._core.conn.api,  # type: ignore[attr-defined]
        f"STREAM.INFO.OBJ_{bucket}",
        {"subjects_filter": f"$O.{bucket}.C.>"},
    )
    return {subj.rsplit(".", 1)[1] for subj in (reply.get("state") or {}).get("subjects") or {}}


async def crashed_upload(s: ObjectStore, bucket: str, name: str, seed: int) -> tuple[Upload, str]:
    """An upload whose chunks are stored and that never commits nor aborts; its nuid."""
    before = await stored_nuids(s, bucket)
    up = await s.begin_put(bucket, ObjectMeta(name), chunk_size=CS)
    await up.write(blob(ORPHAN_SIZE, seed))
    with trio.fail_after(10):
        while not (new := await stored_nuids(s, bucket) - before):
            await trio.sleep(0.02)
    (nuid,) = new
    return up, nuid


def test_sweep_purges_only_old_unreferenced_chunks(store: StoreRunner) -> None:
    b = store.bucket

    async def body(s: ObjectStore) -> None:
        await s.create_bucket(BucketConfig(b))
        live_data = blob(3 * CS + 1, 1)
        live = await s.put(b, ObjectMeta("dir/live"), live_data, chunk_size=CS)
        await s.add_link(b, "link", b, "dir/live")
        await s.put(b, ObjectMeta("gone"), blob(CS, 2), chunk_size=CS)
        await s.delete(b, "gone")
        renamed = await s.put(b, ObjectMeta("old-name"), blob(2 * CS, 3), chunk_size=CS)
        await s.rename(b, "old-name", "new-name")
        assert await s.sweep_orphans(b, 0) == 0
        referenced = await stored_nuids(s, b)
        assert referenced == {live.nuid, renamed.nuid}

        up, orphan = await crashed_upload(s, b, "crashed", 4)
        assert orphan not in referenced
        assert await s.sweep_orphans(b, 3600) == 0, "a young orphan (an upload in progress) was purged"
        assert await stored_nuids(s, b) == referenced | {orphan}

        assert await s.sweep_orphans(b, 0) == 1
        assert await stored_nuids(s, b) == referenced
        assert await s.sweep_orphans(b, 0) == 0
        assert b"".join([x async for x in s.get(await s.resolve(b, "link"))]) == live_data
        assert await s.read(await s.info(b, "new-name"), 0, 10) == blob(2 * CS, 3)[:10]
        await up.abort()
        assert await stored_nuids(s, b) == referenced

    store(body)


def test_sweep_of_sealed_bucket_and_bad_grace(store: StoreRunner) -> None:
    b = store.bucket

    async def body(s: ObjectStore) -> None:
        await s.create_bucket(BucketConfig(b))
        up, orphan = await crashed_upload(s, b, "crashed", 5)
        with pytest.raises(ValueError):
            await s.sweep_orphans(b, -1)
        await s.seal_bucket(b)
        with pytest.raises(Sealed):
            await s.sweep_orphans(b, 0)
        assert orphan in await stored_nuids(s, b)
        await up.abort()

    store(body)


def test_sweep_keeps_chunks_any_meta_names(nats_store: StoreRunner) -> None:
    """Delete markers and metas osfs cannot decode protect the chunks they name."""
    b = nats_store.bucket

    async def raw_publish(s: Any, subject: str, data: bytes) -> None:
        await s._bridge.run(s._core.conn.publish, subject, data, None)

    async def body(s: Any) -> None:
        await s.create_bucket(BucketConfig(b))
        marked, garbled, orphan = "A" * 22, "B" * 22, "C" * 22
        for nuid in (marked, garbled, orphan):
            await raw_publish(s, f"$O.{b}.C.{nuid}", b"chunk")
        marker = f'{{"name":"m","bucket":"{b}","nuid":"{marked}","size":0,"chunks":0,"deleted":true}}'
        await raw_publish(s, f"$O.{b}.M.bQ==", marker.encode())
        await raw_publish(s, f"$O.{b}.M.Zw==", f'["not an object", "{garbled}"]'.encode())
        assert await s.sweep_orphans(b, 0) == 1
        assert await stored_nuids(s, b) == {marked, garbled}

    nats_store(body)
