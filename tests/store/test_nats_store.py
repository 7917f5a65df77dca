"""What only the NATS store has: chunk index paths, the byte-bounded cache, read-ahead,
failure cleanup on the server, watch over a real consumer, listings, mirrors."""

from __future__ import annotations

import os
from typing import Any

import pytest
import trio

from osfs.config import ConnectOptions
from osfs.store.errors import (
    BucketNotFound,
    Corrupt,
    NoSpace,
    ObjectReplaced,
    Sealed,
    TooLarge,
)
from osfs.store.nats.store import NatsStore
from osfs.store.types import BucketConfig, ObjectInfo, ObjectMeta, StreamSource

StoreRunner = Any  # tests/store/conftest.py: the ``nats_store`` runner fixture

CS = 1024  # small chunks keep the tests fast and the chunk counts high


async def raw_api(store: NatsStore, subject: str, body: dict | None = None) -> dict:
    """A JetStream API request through the store's own connection."""
    return await store._bridge.run(store._core.conn.api, subject, body)


async def raw_publish(store: NatsStore, subject: str, data: bytes, headers: dict | None = None) -> dict:
    return await store._bridge.run(store._core.conn.publish, subject, data, headers)


async def chunk_subjects(store: NatsStore, bucket: str) -> dict[str, int]:
    reply = await raw_api(store, f"STREAM.INFO.OBJ_{bucket}", {"subjects_filter": f"$O.{bucket}.C.>"})
    return dict((reply.get("state") or {}).get("subjects") or {})


def test_contiguous_object_uses_the_fast_index(nats_store: StoreRunner) -> None:
    b = nats_store.bucket
    data = os.urandom(CS * 20 + 17)

    async def put(store: Any) -> ObjectInfo:
        await store.create_bucket(BucketConfig(b))
        return await store.put(b, ObjectMeta("obj"), data, chunk_size=CS)

    info = nats_store(put)

    async def read(store: Any) -> None:
        assert await store.read(info, 5 * CS + 3, 7 * CS) == data[5 * CS + 3 : 12 * CS + 3]
        assert await store.read(info, 20 * CS, 100) == data[20 * CS :]
        assert store.stats.index_fast == 1
        assert store.stats.index_scan == 0

    nats_store(read)


def test_interleaved_object_is_indexed_by_scan(nats_store: StoreRunner) -> None:
    b = nats_store.bucket
    a_data, b_data = os.urandom(CS * 12 + 5), os.urandom(CS * 9)

    async def put(store: Any) -> tuple[ObjectInfo, ObjectInfo]:
        await store.create_bucket(BucketConfig(b))
        ua = await store.begin_put(b, ObjectMeta("a"), chunk_size=CS)
        ub = await store.begin_put(b, ObjectMeta("b"), chunk_size=CS)
        for i in range(0, max(len(a_data), len(b_data)), CS):
            if i < len(a_data):
                await ua.write(a_data[i : i + CS])
                await ua.flush()
                await ua._bridge.run(ua._pipe._drain)  # make the interleaving certain
            if i < len(b_data):
                await ub.write(b_data[i : i + CS])
                await ub.flush()
                await ub._bridge.run(ub._pipe._drain)
        return await ua.commit(), await ub.commit()

    ia, ib = nats_store(put)

    async def read(store: Any) -> None:
        assert await store.read(ia, 0, len(a_data)) == a_data
        assert await store.read(ia, 3 * CS - 1, CS + 2) == a_data[3 * CS - 1 : 4 * CS + 1]
        assert await store.read(ib, 4 * CS, 10 * CS) == b_data[4 * CS :]
        assert store.stats.index_scan == 2
        assert store.stats.index_fast == 0
        assert b"".join([blk async for blk in store.get(ia)]) == a_data

    nats_store(read)


def test_cache_is_bounded_in_bytes(nats_url: str, bucket_name: str, nats_store: StoreRunner) -> None:
    b = bucket_name
    data = os.urandom(CS * 40)
    limit = CS * 5 + CS // 2

    async def main() -> None:
        store = await NatsStore.connect(ConnectOptions(servers=(nats_url,)), cache_size=limit)
        try:
            await store.create_bucket(BucketConfig(b))
            info = await store.put(b, ObjectMeta("big"), data, chunk_size=CS)
            for off in range(0, len(data), CS):
                assert await store.read(info, off, CS) == data[off : off + CS]
                assert store.cache_bytes <= limit
            assert store.cache_bytes == 5 * CS
            assert store.cache_limit == limit
        finally:
            await store.close()

    trio.run(main)


def test_readahead_fills_the_cache(nats_store: StoreRunner) -> None:
    b = nats_store.bucket
    data = os.urandom(CS * 30)

    async def main(store: Any) -> None:
        await store.create_bucket(BucketConfig(b))
        info = await store.put(b, ObjectMeta("seq"), data, chunk_size=CS)
        assert await store.read(info, 0, CS, readahead=8 * CS) == data[:CS]
        with trio.fail_after(10):
            while store.cache_bytes < 9 * CS:  # the chunk read plus 8 read ahead
                await trio.sleep(0.01)
        assert store.stats.readahead_fetches == 8
        fetched = store.stats.chunk_fetches
        hits = store.stats.cache_hits
        assert await store.read(info, CS, 8 * CS) == data[CS : 9 * CS]
        assert store.stats.chunk_fetches == fetched, "read-ahead chunks were fetched again"
        assert store.stats.cache_hits >= hits + 8
        # nothing past the read-ahead window was fetched
        assert store.stats.readahead_fetches == 8

    nats_store(main)


def test_failed_put_keeps_old_version_and_leaves_no_orphans(nats_store: StoreRunner) -> None:
    b = nats_store.bucket
    old = os.urandom(64 * 1024)

    async def main(store: Any) -> None:
        await store.create_bucket(BucketConfig(b, max_bytes=256 * 1024))
        v1 = await store.put(b, ObjectMeta("f"), old, chunk_size=8192)
        with pytest.raises(NoSpace):
            await store.put(b, ObjectMeta("f"), os.urandom(1024 * 1024), chunk_size=8192)
        assert await store.info(b, "f") == v1
        assert await store.read(v1, 0, len(old)) == old
        assert await chunk_subjects(store, b) == {f"$O.{b}.C.{v1.nuid}": v1.chunks}

    nats_store(main)


def test_abort_purges_new_chunks_and_replacing_purges_old(nats_store: StoreRunner) -> None:
    b = nats_store.bucket

    async def main(store: Any) -> None:
        await store.create_bucket(BucketConfig(b))
        up = await store.begin_put(b, ObjectMeta("f"), chunk_size=CS)
        await up.write(os.urandom(CS * 10))
        await up.abort()
        assert await chunk_subjects(store, b) == {}
        v1 = await store.put(b, ObjectMeta("f"), b"one" * 1000, chunk_size=CS)
        v2 = await store.put(b, ObjectMeta("f"), b"two" * 1000, chunk_size=CS)
        assert await chunk_subjects(store, b) == {f"$O.{b}.C.{v2.nuid}": v2.chunks}
        with pytest.raises(ObjectReplaced) as exc:
            await store.read(v1, 0, 10)
        assert exc.value.current is not None and exc.value.current.nuid == v2.nuid

    nats_store(main)


def test_missing_chunks_are_corrupt_and_bad_digest_fails_get(nats_store: StoreRunner) -> None:
    b = nats_store.bucket
    data = os.urandom(CS * 4)

    async def main(store: Any) -> None:
        await store.create_bucket(BucketConfig(b))
        info = await store.put(b, ObjectMeta("f"), data, chunk_size=CS)
        await raw_api(store, f"STREAM.PURGE.OBJ_{b}", {"filter": f"$O.{b}.C.{info.nuid}"})
        with pytest.raises(Corrupt):
            await store.read(info, 0, 10)
        with pytest.raises(Corrupt):
            async for _ in store.get(info):
                pass
        good = await store.put(b, ObjectMeta("g"), data, chunk_size=CS)
        from dataclasses import replace

        from osfs.store.nats import wire

        bad = replace(good, digest=wire.encode_digest(b"\0" * 32))
        await raw_publish(store, wire.meta_subject(b, "g"), wire.encode_meta(bad), {"Nats-Rollup": "sub"})
        bad = await store.info(b, "g")
        with pytest.raises(Corrupt, match="digest"):
            async for _ in store.get(bad):
                pass

    nats_store(main)


def test_limits_and_seal(nats_store: StoreRunner) -> None:
    b = nats_store.bucket

    async def main(store: Any) -> None:
        await store.create_bucket(BucketConfig(b, max_object_size=10 * CS))
        with pytest.raises(TooLarge):
            await store.put(b, ObjectMeta("big"), os.urandom(11 * CS), chunk_size=CS)
        assert await chunk_subjects(store, b) == {}
        await store.put(b, ObjectMeta("ok"), b"x")
        status = await store.seal_bucket(b)
        assert status.sealed and status.size == 1
        with pytest.raises(Sealed):
            await store.put(b, ObjectMeta("more"), b"y")
        with pytest.raises(Sealed):
            await store.delete(b, "ok")

    nats_store(main)


def test_watch_snapshot_marker_and_live_events(nats_store: StoreRunner) -> None:
    b = nats_store.bucket

    async def main(store: Any) -> None:
        await store.create_bucket(BucketConfig(b))
        async with store.watch(b) as events:
            assert await events.__anext__() is None  # empty bucket: marker at once
            await store.put(b, ObjectMeta("x"), b"1")
            ev = await events.__anext__()
            assert ev.name == "x" and ev.size == 1 and not ev.deleted
            assert ev == await store.info(b, "x")  # same revision and server mtime
        await store.put(b, ObjectMeta("y"), b"22")
        await store.delete(b, "x")
        async with store.watch(b) as events:
            first = [await events.__anext__(), await events.__anext__(), await events.__anext__()]
            assert first[2] is None
            assert {(e.name, e.deleted) for e in first[:2]} == {("x", True), ("y", False)}
            await store.rename(b, "y", "z")
            ev = await events.__anext__()
            assert ev.name == "z" and ev.size == 2
        async with store.watch(b, initial=False) as events:
            await store.put(b, ObjectMeta("w"), b"")
            ev = await events.__anext__()
            assert ev is not None and ev.name == "w"
        with pytest.raises(BucketNotFound):
            async with store.watch(b + "_missing"):
                pass

    nats_store(main)


def test_list_many_objects_and_skip_malformed(nats_store: StoreRunner) -> None:
    b = nats_store.bucket
    n = 1500

    async def main(store: Any) -> None:
        await store.create_bucket(BucketConfig(b))
        assert await store.list_objects(b) == []
        from osfs.store.nats import wire

        async def one(i: int) -> None:
            await store.put(b, ObjectMeta(f"d/{i:05}"), b"")

        async with trio.open_nursery() as nursery:
            for i in range(n):
                nursery.start_soon(one, i)
        await raw_publish(store, wire.meta_subject(b, "broken"), b"{not json", {"Nats-Rollup": "sub"})
        infos = await store.list_objects(b)
        assert sorted(i.name for i in infos) == [f"d/{i:05}" for i in range(n)]
        assert store.stats.chunk_fetches == 0

    nats_store(main, timeout=120)


def test_bucket_names_find_mirrors(nats_store: StoreRunner) -> None:
    b = nats_store.bucket

    async def main(store: Any) -> None:
        await store.create_bucket(BucketConfig(b))
        await store.put(b, ObjectMeta("m"), b"mirrored")
        status = await store.create_bucket(BucketConfig(b + "_m", mirror=StreamSource(b)))
        assert status.mirror and status.read_only
        assert {b, b + "_m"} <= set(await store.bucket_names())
        with pytest.raises(Sealed):
            await store.put(b + "_m", ObjectMeta("x"), b"")
        # the mirror's copy becomes readable through the mirror bucket
        with trio.fail_after(20):
            while True:
                try:
                    info = await store.info(b + "_m", "m")
                    break
                except Exception:
                    await trio.sleep(0.1)
        assert await store.read(info, 0, 100) == b"mirrored"

    nats_store(main)


def test_create_is_idempotent_and_detects_conflicts(nats_store: StoreRunner) -> None:
    b = nats_store.bucket

    async def main(store: Any) -> None:
        from osfs.store.errors import Conflict

        cfg = BucketConfig(b, description="d", max_object_size=1000)
        await store.create_bucket(cfg)
        again = await store.create_bucket(cfg)
        assert again.max_object_size == 1000
        with pytest.raises(Conflict):
            await store.create_bucket(BucketConfig(b, description="other"))

    nats_store(main)


def test_store_and_watch_survive_a_server_restart(tmp_path: Any) -> None:
    from osfs.embedded import EmbeddedServer
    from osfs.store.errors import Unavailable

    server = EmbeddedServer(tmp_path / "nats", token="").start()
    port = server.client_port
    b = "restart"

    async def retry(fn: Any, *args: Any) -> Any:
        with trio.fail_after(30):
            while True:
                try:
                    return await fn(*args)
                except Unavailable:
                    await trio.sleep(0.2)

    async def main() -> None:
        store = await NatsStore.connect(ConnectOptions(servers=(server.url,), request_timeout=2.0))
        try:
            await store.create_bucket(BucketConfig(b))
            v1 = await store.put(b, ObjectMeta("before"), b"1" * 5000, chunk_size=CS)
            async with store.watch(b) as events:
                assert (await events.__anext__()).name == "before"
                assert await events.__anext__() is None
                await trio.to_thread.run_sync(server.stop)
                server.port = port
                await trio.to_thread.run_sync(server.start)
                await retry(store.put, b, ObjectMeta("after"), b"2" * 3000)
                with trio.fail_after(30):
                    ev = await events.__anext__()
                assert ev is not None and ev.name == "after"
            assert await retry(store.read, v1, 0, 5000) == b"1" * 5000
            assert (await store.info(b, "after")).size == 3000
            # the new connection is read through the receive blocks again (nats_client)
            nc = store._core.conn.nc
            with trio.fail_after(10):
                while type(nc._transport._io_writer.transport.get_protocol()).__name__ != "_Receiver":
                    await trio.sleep(0.05)
            big = os.urandom(3 * 1024 * 1024 + 5)
            v2 = await store.put(b, ObjectMeta("big"), big, chunk_size=CS)
            assert await store.read(v2, 0, len(big)) == big
        finally:
            await store.close()

    try:
        trio.run(main)
    finally:
        server.stop()


def test_connect_failure_and_token_auth(tmp_path: Any) -> None:
    from osfs.embedded import EmbeddedServer
    from osfs.store.errors import Unavailable

    async def connect(url: str, token: str | None) -> None:
        store = await NatsStore.connect(ConnectOptions(servers=(url,), token=token, connect_timeout=2.0))
        try:
            assert isinstance(await store.bucket_names(), list)
        finally:
            await store.close()

    with EmbeddedServer(tmp_path / "auth") as server:
        trio.run(connect, server.url, server.token)
        with pytest.raises(Unavailable):
            trio.run(connect, server.url, "wrong")
        port = server.client_port
    with pytest.raises(Unavailable):
        trio.run(connect, f"nats://127.0.0.1:{port}", None)


def test_short_chunks_from_nats_py_are_read_by_scan(nats_url: str, bucket_name: str, nats_store: Any) -> None:
    """nats-py publishes whatever each ``readinto`` returns: non-uniform chunks."""
    import asyncio

    import nats

    data = os.urandom(50_000)

    class Trickle:
        def __init__(self) -> None:
            self.pos = 0

        def readinto(self, buf: Any) -> int:
            n = min(len(buf), 3000 + self.pos % 1777, len(data) - self.pos)
            buf[:n] = data[self.pos : self.pos + n]
            self.pos += n
            return n

    async def peer_put() -> None:
        nc = await nats.connect(nats_url)
        try:
            obs = await nc.jetstream().create_object_store(bucket_name)
            await obs.put("trickle", Trickle())
        finally:
            await nc.close()

    asyncio.run(peer_put())

    async def read(store: Any) -> None:
        info = await store.info(bucket_name, "trickle")
        assert info.size == len(data) and info.chunks > 10
        assert await store.read(info, 12_345, 20_000) == data[12_345:32_345]
        assert await store.read(info, 0, len(data) + 10) == data
        assert store.stats.index_scan == 1 and store.stats.index_fast == 0
        assert b"".join([blk async for blk in store.get(info)]) == data

    nats_store(read)


def test_nats_py_reads_what_we_write(nats_url: str, nats_store: Any) -> None:
    import asyncio

    import nats

    b = nats_store.bucket
    data = os.urandom(300_000)

    async def put(store: Any) -> None:
        await store.create_bucket(BucketConfig(b))
        await store.put(b, ObjectMeta("ours", description="d"), data)

    nats_store(put)

    async def peer_get() -> bytes:
        nc = await nats.connect(nats_url)
        try:
            obs = await nc.jetstream().object_store(b)
            return (await obs.get("ours")).data
        finally:
            await nc.close()

    assert asyncio.run(peer_get()) == data


def test_bucket_without_allow_direct_is_read_by_msg_get(nats_store: Any) -> None:
    """Old JS-created buckets lack ``allow_direct``: nobody answers Direct Get there."""
    b = nats_store.bucket
    data = os.urandom(CS * 6 + 1)

    async def main(store: Any) -> None:
        await raw_api(
            store,
            f"STREAM.CREATE.OBJ_{b}",
            {
                "name": f"OBJ_{b}",
                "subjects": [f"$O.{b}.C.>", f"$O.{b}.M.>"],
                "allow_rollup_hdrs": True,
                "discard": "new",
                "allow_direct": False,
            },
        )
        info = await store.put(b, ObjectMeta("old"), data, chunk_size=CS)
        assert await store.info(b, "old") == info
        assert await store.read(info, CS - 1, 3 * CS) == data[CS - 1 : 4 * CS - 1]
        assert b"".join([blk async for blk in store.get(info)]) == data
        assert [i.name for i in await store.list_objects(b)] == ["old"]

    nats_store(main)


def test_closing_the_store_ends_an_open_watch(nats_url: str, bucket_name: str, nats_store: Any) -> None:
    from osfs.store.errors import Unavailable

    async def main() -> None:
        store = await NatsStore.connect(ConnectOptions(servers=(nats_url,)))
        await store.create_bucket(BucketConfig(bucket_name))
        with trio.fail_after(30):
            async with store.watch(bucket_name) as events:
                assert await events.__anext__() is None
                await store.close()
                with pytest.raises(Unavailable):
                    await events.__anext__()
        with pytest.raises(Unavailable):
            await store.info(bucket_name, "x")

    trio.run(main)


def test_returned_infos_match_what_is_stored(nats_store: Any) -> None:
    """Revision and mtime of every write's result are the stored meta's (server time)."""
    b = nats_store.bucket

    async def main(store: Any) -> None:
        await store.create_bucket(BucketConfig(b))
        put = await store.put(b, ObjectMeta("a"), b"data")
        assert put == await store.info(b, "a")
        upd = await store.update_meta(b, "a", ObjectMeta("a", description="new"))
        assert upd == await store.info(b, "a") and upd.revision > put.revision
        moved = await store.rename(b, "a", "c")
        assert moved == await store.info(b, "c") and moved.nuid == put.nuid
        link = await store.add_link(b, "l", b, "c")
        assert link == await store.info(b, "l")
        assert (await store.resolve(b, "l")).nuid == put.nuid
        await store.delete(b, "c")
        marker = await store.info(b, "c", show_deleted=True)
        assert marker.deleted and marker.nuid == put.nuid and marker.size == 0

    nats_store(main)


def test_cached_version_is_dropped_once_a_replacement_is_seen(nats_url: str, nats_store: Any) -> None:
    b = nats_store.bucket
    data = os.urandom(CS * 5)

    async def main(store: Any) -> None:
        await store.create_bucket(BucketConfig(b))
        v1 = await store.put(b, ObjectMeta("f"), data, chunk_size=CS)
        assert await store.read(v1, 0, 5 * CS) == data  # v1 indexed and cached
        # replaced by our own put: the cache is dropped at once
        v2 = await store.put(b, ObjectMeta("f"), data[::-1], chunk_size=CS)
        with pytest.raises(ObjectReplaced):
            await store.read(v1, 0, 10)
        assert await store.read(v2, 0, 5 * CS) == data[::-1]
        # replaced by another client: dropped when this store sees the new meta
        other = await NatsStore.connect(ConnectOptions(servers=(nats_url,)))
        try:
            await other.put(b, ObjectMeta("f"), b"third")
        finally:
            await other.close()
        assert await store.read(v2, 0, 10) == data[::-1][:10]  # not seen yet: cached bytes
        await store.info(b, "f")
        with pytest.raises(ObjectReplaced) as exc:
            await store.read(v2, 0, 10)
        assert exc.value.current.size == 5

    nats_store(main)
