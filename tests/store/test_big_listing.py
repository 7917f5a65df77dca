"""Listings of big buckets on NATS: read at the reader's pace (no slow-consumer cut), whole,
coherent with changes made while they run, and failing (not hanging) when the server does
not answer."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nats
import pytest
import trio
from storekit import open_nats_store

from osfs.config import ConnectOptions
from osfs.embedded import EmbeddedServer
from osfs.store.errors import StoreError, Unavailable
from osfs.store.nats import listing
from osfs.store.nats.bulk import BulkLane
from osfs.store.nats.bulkfill import fill_bucket, object_name
from osfs.store.nats.conn import Conn
from osfs.store.types import ObjectInfo, ObjectMeta

StoreRunner = Any  # tests/store/conftest.py: the ``nats_store`` runner fixture

BIG = 200_000


def server_log(server: EmbeddedServer) -> Path:
    return Path(server.data_dir) / "nats-server.log"


def log_size(server: EmbeddedServer) -> int:
    path = server_log(server)
    return path.stat().st_size if path.exists() else 0


def log_since(server: EmbeddedServer, offset: int) -> str:
    with open(server_log(server), "rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace")


def test_big_bucket_lists_whole_without_slow_consumer(
    nats_server: EmbeddedServer, nats_store: StoreRunner, caplog: pytest.LogCaptureFixture
) -> None:
    bucket = nats_store.bucket
    asyncio.run(fill_bucket(nats_server.url, bucket, BIG))
    offset = log_size(nats_server)
    caplog.set_level(logging.INFO)

    async def main(store: Any) -> None:
        infos = await store.list_objects(bucket)
        assert len(infos) == BIG
        assert {i.name for i in infos} == {object_name(i, 1000) for i in range(BIG)}
        assert [i.revision for i in infos] == sorted(i.revision for i in infos)  # oldest first
        seen = 0
        async with store.watch(bucket) as events:
            async for info in events:
                if info is None:
                    break
                seen += 1
        assert seen == BIG

    nats_store(main, timeout=600)
    assert "Slow Consumer" not in log_since(nats_server, offset)
    assert "disconnected" not in caplog.text
    assert "reconnected" not in caplog.text


def test_changes_during_the_initial_listing_are_reflected(nats_url: str, nats_store: StoreRunner) -> None:
    """Puts, deletes, renames and overwrites by another client, of names the listing has
    passed and of names it has not reached, while a watch reads its snapshot; and more
    once it is live: the watch's view ends equal to a fresh listing."""
    bucket = nats_store.bucket
    n = 20_000
    asyncio.run(fill_bucket(nats_url, bucket, n))
    early = [object_name(i, 1000) for i in range(6)]
    late = [object_name(n - 1 - i, 1000) for i in range(4)]

    async def main(store: Any) -> None:
        view: dict[str, ObjectInfo] = {}
        snapshot: dict[str, ObjectInfo] | None = {}
        async with open_nats_store(nats_url) as other, store.watch(bucket) as events:

            async def change(phase: str) -> ObjectInfo:
                """Another client's changes; returns the last one."""
                await other.put(bucket, ObjectMeta(f"new/{phase}"), b"new")
                await other.delete(bucket, early.pop())
                await other.delete(bucket, late.pop())
                await other.rename(bucket, early.pop(), f"moved/{phase}-early")
                await other.rename(bucket, late.pop(), f"moved/{phase}-late")
                return await other.put(bucket, ObjectMeta(early.pop()), b"again")

            def apply(info: ObjectInfo) -> None:
                """The watch contract: a known nuid under a new name ends the old name."""
                if info.deleted:
                    view.pop(info.name, None)
                    return
                for name, old in list(view.items()):
                    if old.nuid == info.nuid and name != info.name:
                        del view[name]
                view[info.name] = info

            last: ObjectInfo | None = None
            seen = 0
            async for info in events:
                if snapshot is not None:
                    if info is None:
                        view.update((k, v) for k, v in snapshot.items() if not v.deleted)
                        snapshot = None
                        last = await change("live")
                    else:
                        snapshot[info.name] = info
                        seen += 1
                        if seen == 100:
                            await change("initial")
                elif info is not None:
                    apply(info)
                if last is not None and last.name in view and view[last.name].revision == last.revision:
                    break
            expected = {i.name: i.revision for i in await store.list_objects(bucket)}
        assert {k: v.revision for k, v in view.items()} == expected
        assert (
            "new/initial" in expected and "moved/initial-early" in expected and "moved/live-late" in expected
        )
        assert len(expected) == n - 2  # each phase: one new, two deleted

    nats_store(main, timeout=240)


def test_stream_without_direct_get_lists_from_a_paced_consumer(
    nats_url: str, nats_store: StoreRunner
) -> None:
    bucket = nats_store.bucket
    n = 6_000
    asyncio.run(fill_bucket(nats_url, bucket, n, allow_direct=False))

    async def main(store: Any) -> None:
        infos = await store.list_objects(bucket)
        assert {i.name for i in infos} == {object_name(i, 1000) for i in range(n)}
        async with store.watch(bucket) as events:
            seen = 0
            async for info in events:
                if info is None:
                    break
                seen += 1
            assert seen == n
            await store.put(bucket, ObjectMeta("after"), b"x")
            async for info in events:
                assert info is not None
                if info.name == "after":
                    break

    nats_store(main, timeout=240)


class SilentConn:
    """A connection whose batch requests are sent but never answered."""

    timeout = 0.05

    def __init__(self) -> None:
        self.sent = 0

    async def batch_get(self, *args: Any, **kwargs: Any) -> asyncio.Future:
        self.sent += 1
        return asyncio.get_running_loop().create_future()


def test_a_listing_without_answers_fails_once_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(listing, "RETRY_PAUSE", 0.0)
    conn = SilentConn()

    async def walk() -> None:
        async for _batch in listing.walk_metas(conn, "b"):  # type: ignore[arg-type]
            raise AssertionError("no batch can come")

    with pytest.raises(Unavailable, match="listing cannot go on"):
        asyncio.run(walk())
    assert conn.sent == listing.ATTEMPTS
    assert len([r for r in caplog.records if "listing cannot go on" in r.getMessage()]) == 1


def test_listing_of_an_empty_bucket_ends(nats_store: StoreRunner) -> None:
    async def main(store: Any) -> None:
        from osfs.store.types import BucketConfig

        await store.create_bucket(BucketConfig(nats_store.bucket))
        assert await store.list_objects(nats_store.bucket) == []
        with trio.fail_after(30):
            async with store.watch(nats_store.bucket) as events:
                assert await events.__anext__() is None

    nats_store(main)


@pytest.mark.parametrize("direct", [True, False])
def test_orphan_sweep_reads_the_metas_of_a_filled_bucket(
    nats_url: str, nats_store: StoreRunner, direct: bool
) -> None:
    """The sweep reads every meta (batch direct gets, or a consumer without direct get):
    the chunks of the 3,000 objects stay, the one orphan goes."""
    bucket = nats_store.bucket
    asyncio.run(fill_bucket(nats_url, bucket, 3_000, data=b"x", allow_direct=direct))

    async def orphan() -> None:
        nc = await nats.connect(nats_url)
        try:
            await nc.jetstream().publish(f"$O.{bucket}.C.orphanNUID", b"lost")
        finally:
            await nc.close()

    asyncio.run(orphan())

    async def main(store: Any) -> None:
        assert await store.sweep_orphans(bucket, 0) == 1
        assert len(await store.list_objects(bucket)) == 3_000
        assert await store.sweep_orphans(bucket, 0) == 0

    nats_store(main, timeout=240)


def test_bulk_lane_runs_producers_on_its_own_thread_and_closes_them(nats_url: str) -> None:
    closed: list[int] = []

    async def produce(conn: Conn, n: int) -> AsyncIterator[tuple[int, int]]:
        try:
            for i in range(n):
                yield i, threading.get_ident()
        finally:
            closed.append(n)

    async def main() -> None:
        lane = BulkLane(ConnectOptions(servers=(nats_url,)))
        try:
            got = [item async for item in lane.batches(produce, 5)]
            assert [i for i, _ in got] == list(range(5))
            assert {t for _, t in got} != {threading.get_ident()}
            async for i, _ in lane.batches(produce, 1000):
                if i == 2:
                    break
        finally:
            await lane.close()
        assert closed == [5, 1000]
        with pytest.raises(StoreError):
            await lane.ready()

    asyncio.run(main())
