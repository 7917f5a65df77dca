"""The NATS store against nats-py's own object store and raw messages on the wire.

The peer runs on asyncio with its own connection (``peer``); osfs runs on trio through the
``nats_store`` runner. Phases alternate, so every hand-over goes through the server.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import random
import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import nats
import nats.js.api
import pytest
import trio
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError
from storekit import StoreRunner

from osfs.store.base import ObjectStore
from osfs.store.errors import BadName, Corrupt, NotFound, Sealed
from osfs.store.nats import wire
from osfs.store.types import BucketConfig, Link, ObjectInfo, ObjectMeta, StreamSource

T = TypeVar("T")
DIGEST_RE = re.compile(r"SHA-256=[A-Za-z0-9_-]{43}=")


def peer(url: str, fn: Callable[[nats.NATS, JetStreamContext], Awaitable[T]]) -> T:
    """Run ``fn`` with a plain nats-py connection (no osfs code involved)."""

    async def main() -> T:
        nc = await nats.connect(url)
        try:
            return await fn(nc, nc.jetstream())
        finally:
            await nc.close()

    return asyncio.run(main())


def blob(n: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)


def digest(data: bytes) -> str:
    return "SHA-256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).decode()


def enc(name: str) -> str:
    return base64.urlsafe_b64encode(name.encode()).decode()


async def collect(store: ObjectStore, info: ObjectInfo) -> bytes:
    return b"".join([block async for block in store.get(info)])


async def api(nc: nats.NATS, subject: str, body: dict | None = None) -> dict:
    msg = await nc.request(subject, json.dumps(body).encode() if body is not None else b"", timeout=5)
    return json.loads(msg.data)


async def last_msg(js: JetStreamContext, bucket: str, subject: str) -> Any:
    return await js.get_last_msg(f"OBJ_{bucket}", subject)


# ----- nats-py writes, osfs reads ---------------------------------------------------------


def test_we_read_what_nats_py_puts(nats_store: StoreRunner) -> None:
    b, url = nats_store.bucket, nats_store.url
    assert url is not None
    data = blob(300_000, seed=1)

    async def put(nc: nats.NATS, js: JetStreamContext) -> None:
        obs = await js.create_object_store(b)
        meta = nats.js.api.ObjectMeta(
            name="dir/ü.bin", description="from nats-py", headers={"Content-Type": "text/plain"}
        )
        await obs.put("dir/ü.bin", data, meta=meta)
        await obs.put("empty", b"")

    peer(url, put)

    async def read(s: ObjectStore) -> None:
        assert b in await s.bucket_names()
        status = await s.bucket_status(b)
        assert status.bucket == b and not status.read_only
        info = await s.info(b, "dir/ü.bin")
        assert (info.size, info.chunks, info.max_chunk_size) == (300_000, 3, 128 * 1024)
        assert info.digest == digest(data) and info.description == "from nats-py"
        assert info.headers == {"Content-Type": ("text/plain",)} and info.mime == "text/plain"
        assert info.mtime.year >= 2024 and info.mtime.tzinfo is not None
        assert {i.name for i in await s.list_objects(b)} == {"dir/ü.bin", "empty"}
        assert await collect(s, info) == data
        for offset, length in [(0, 10), (131_000, 1000), (262_100, 40_000), (299_999, 5)]:
            assert await s.read(info, offset, length) == data[offset : offset + length]
        empty = await s.info(b, "empty")
        assert empty.size == 0 and await collect(s, empty) == b""

    nats_store(read)


def test_nats_py_reads_what_we_put(nats_store: StoreRunner) -> None:
    b, url = nats_store.bucket, nats_store.url
    assert url is not None
    big, small = blob(300_001, seed=2), blob(5_555, seed=3)

    async def put(s: ObjectStore) -> dict[str, ObjectInfo]:
        await s.create_bucket(BucketConfig(b))
        return {
            "big": await s.put(b, ObjectMeta("big", description="d"), big),
            "small/ß": await s.put(b, ObjectMeta("small/ß"), small, chunk_size=1000),
            "empty": await s.put(b, ObjectMeta("empty"), b""),
        }

    ours = nats_store(put)

    async def get(nc: nats.NATS, js: JetStreamContext) -> None:
        obs = await js.object_store(b)
        for name, expected in (("big", big), ("small/ß", small), ("empty", b"")):
            result = await obs.get(name)  # nats-py checks the digest itself
            assert result.data == expected
            info = await obs.get_info(name)
            assert (info.size, info.chunks, info.digest, info.nuid) == (
                ours[name].size,
                ours[name].chunks,
                ours[name].digest,
                ours[name].nuid,
            )
        sink = io.BytesIO()
        await obs.get("big", writeinto=sink)
        assert sink.getvalue() == big
        assert (await obs.get_info("big")).description == "d"
        status = await obs.status()
        assert status.bucket == b and not status.sealed

    peer(url, get)


def test_nats_py_delete_and_string_headers(nats_store: StoreRunner) -> None:
    b, url = nats_store.bucket, nats_store.url
    assert url is not None

    async def setup(s: ObjectStore) -> None:
        await s.create_bucket(BucketConfig(b))
        await s.put(b, ObjectMeta("x", metadata={"k": "v"}), b"data")
        await s.put(b, ObjectMeta("keep"), b"kept")

    nats_store(setup)

    async def delete(nc: nats.NATS, js: JetStreamContext) -> dict:
        obs = await js.object_store(b)
        await obs.delete("x")
        raw = json.loads((await last_msg(js, b, f"$O.{b}.M.{enc('x')}")).data)
        # a raw meta as nats-py writes it when given {str: str} headers, with an empty mtime
        doc = {
            "name": "raw",
            "bucket": b,
            "nuid": "RAWNUID0000000000000000",
            "size": 0,
            "mtime": "",
            "chunks": 0,
            "digest": digest(b""),
            "deleted": False,
            "headers": {"k": "v", "Content-Type": "image/png"},
            "options": {"max_chunk_size": 131072},
        }
        await js.publish(f"$O.{b}.M.{enc('raw')}", json.dumps(doc).encode(), headers={"Nats-Rollup": "sub"})
        return raw

    marker = peer(url, delete)
    assert marker["deleted"] is True and marker["mtime"] == ""

    async def check(s: ObjectStore) -> None:
        with pytest.raises(NotFound):
            await s.info(b, "x")
        info = await s.info(b, "x", show_deleted=True)
        assert info.deleted and info.size == 0 and info.mtime.year >= 2024
        assert {i.name for i in await s.list_objects(b)} == {"keep", "raw"}
        raw = await s.info(b, "raw")
        assert raw.headers == {"k": ("v",), "Content-Type": ("image/png",)} and raw.mime == "image/png"
        assert raw.mtime.year >= 2024
        assert await collect(s, raw) == b""
        again = await s.put(b, ObjectMeta("x"), b"again")
        assert await collect(s, again) == b"again"

    nats_store(check)


def test_js_bare_link_meta(nats_store: StoreRunner) -> None:
    b, url = nats_store.bucket, nats_store.url
    assert url is not None

    async def setup(s: ObjectStore) -> None:
        await s.create_bucket(BucketConfig(b))
        await s.put(b, ObjectMeta("target"), b"T")

    nats_store(setup)

    async def link(nc: nats.NATS, js: JetStreamContext) -> None:
        doc = {"name": "ln", "bucket": "SOMEWHERE", "options": {"link": {"bucket": b, "name": "target"}}}
        await js.publish(f"$O.{b}.M.{enc('ln')}", json.dumps(doc).encode())

    peer(url, link)

    async def check(s: ObjectStore) -> None:
        info = await s.info(b, "ln")
        assert info.bucket == b and info.link == Link(b, "target") and info.nuid == ""
        resolved = await s.resolve(b, "ln")
        assert resolved.name == "target" and await collect(s, resolved) == b"T"
        assert {i.name for i in await s.list_objects(b)} == {"ln", "target"}

    nats_store(check)


# ----- what osfs writes on the wire -------------------------------------------------------


def test_raw_messages_we_write(nats_store: StoreRunner) -> None:
    b, url = nats_store.bucket, nats_store.url
    assert url is not None
    name = "Grüße/日本 語.txt"
    data = blob(2500, seed=4)

    async def write(s: ObjectStore) -> dict[str, ObjectInfo]:
        await s.create_bucket(BucketConfig(b))
        put = await s.put(
            b,
            ObjectMeta(
                name, description="desc", headers={"Content-Type": ("text/plain",)}, metadata={"m": "1"}
            ),
            data,
            chunk_size=1000,
        )
        await s.put(b, ObjectMeta("gone"), b"bye")
        gone = await s.info(b, "gone")
        await s.delete(b, "gone")
        await s.put(b, ObjectMeta("old"), b"moved")
        moved = await s.rename(b, "old", "new")
        link = await s.add_link(b, "ln", b, name)
        blink = await s.add_bucket_link(b, "bl", b)
        return {"put": put, "gone": gone, "moved": moved, "link": link, "blink": blink}

    ours = nats_store(write)

    async def inspect(nc: nats.NATS, js: JetStreamContext) -> None:
        subject = f"$O.{b}.M.{enc(name)}"
        assert subject == wire.meta_subject(b, name) and "=" in subject
        msg = await last_msg(js, b, subject)
        assert msg.headers is not None and msg.headers.get("Nats-Rollup") == "sub"
        assert b", " not in msg.data and b": " not in msg.data  # compact, as nats.go
        doc = json.loads(msg.data)
        assert list(doc) == [
            "name",
            "description",
            "headers",
            "metadata",
            "options",
            "bucket",
            "nuid",
            "size",
            "mtime",
            "chunks",
            "digest",
        ]
        assert doc["name"] == name and doc["bucket"] == b and doc["nuid"] == ours["put"].nuid
        assert doc["headers"] == {"Content-Type": ["text/plain"]} and doc["metadata"] == {"m": "1"}
        assert doc["options"] == {"max_chunk_size": 1000}
        assert doc["size"] == 2500 and doc["chunks"] == 3 and type(doc["size"]) is int
        assert doc["mtime"] == "0001-01-01T00:00:00Z"
        assert DIGEST_RE.fullmatch(doc["digest"]) and doc["digest"] == digest(data)
        # chunks: no headers of ours, payloads in order
        chunk_subject = f"$O.{b}.C.{ours['put'].nuid}"
        seq, payloads = 0, []
        for _ in range(3):
            raw = await nc.request(
                f"$JS.API.DIRECT.GET.OBJ_{b}",
                json.dumps({"seq": seq + 1, "next_by_subj": chunk_subject}).encode(),
            )
            assert raw.headers is not None
            assert {k for k in raw.headers if not k.startswith("Nats-")} == set()
            assert "Nats-Rollup" not in raw.headers
            seq = int(raw.headers["Nats-Sequence"])
            payloads.append(raw.data)
        assert [len(p) for p in payloads] == [1000, 1000, 500] and b"".join(payloads) == data
        # delete marker: RFC 3339 mtime and the nuid kept, as nats.go writes it
        marker = json.loads((await last_msg(js, b, f"$O.{b}.M.{enc('gone')}")).data)
        assert marker["deleted"] is True and marker["mtime"] == "0001-01-01T00:00:00Z"
        assert marker["nuid"] == ours["gone"].nuid and marker["size"] == 0 and marker["chunks"] == 0
        assert "digest" not in marker
        info = await api(
            nc, f"$JS.API.STREAM.INFO.OBJ_{b}", {"subjects_filter": f"$O.{b}.C.{ours['gone'].nuid}"}
        )
        assert not (info["state"].get("subjects") or {})  # its chunks are purged
        # rename: the old name's subject is purged, no delete marker left there
        with pytest.raises(NotFoundError):
            await last_msg(js, b, f"$O.{b}.M.{enc('old')}")
        moved = json.loads((await last_msg(js, b, f"$O.{b}.M.{enc('new')}")).data)
        assert moved["nuid"] == ours["moved"].nuid and moved["name"] == "new"
        # links
        link = json.loads((await last_msg(js, b, f"$O.{b}.M.{enc('ln')}")).data)
        assert link["options"]["link"] == {"bucket": b, "name": name}
        assert link["size"] == 0 and link["chunks"] == 0 and link["nuid"] and link["bucket"] == b
        blink = json.loads((await last_msg(js, b, f"$O.{b}.M.{enc('bl')}")).data)
        assert blink["options"]["link"] == {"bucket": b}
        # nats-py follows our object link
        obs = await js.object_store(b)
        assert (await obs.get("ln")).data == data

    peer(url, inspect)


def test_stream_config_like_go(nats_store: StoreRunner) -> None:
    b, url = nats_store.bucket, nats_store.url
    assert url is not None
    cfg = BucketConfig(
        b, description="cfg", ttl=7200, compression="s2", max_object_size=4096, max_bytes=1 << 30
    )

    async def create(s: ObjectStore) -> None:
        await s.create_bucket(cfg)
        await s.create_bucket(BucketConfig(b + "_plain"))

    nats_store(create)

    async def inspect(nc: nats.NATS, js: JetStreamContext) -> tuple[dict, dict]:
        info = await api(nc, f"$JS.API.STREAM.INFO.OBJ_{b}")
        plain = await api(nc, f"$JS.API.STREAM.INFO.OBJ_{b}_plain")
        obs = await js.object_store(b)  # nats-py can bind to it
        status = await obs.status()
        assert status.description == "cfg" and status.ttl == 7200
        return info["config"], plain["config"]

    got, plain = peer(url, inspect)
    expected = wire.stream_config(cfg)
    for key, value in expected.items():
        if key == "metadata":
            assert {k: got[key][k] for k in value} == value
        else:
            assert got[key] == value, key
    assert got["subjects"] == [f"$O.{b}.C.>", f"$O.{b}.M.>"]
    assert got["discard"] == "new" and got["allow_rollup_hdrs"] and got["allow_direct"]
    assert got["max_age"] == 7200 * 10**9 and got["compression"] == "s2" and got["max_bytes"] == 1 << 30
    assert got["metadata"]["osfs.max_object_size"] == "4096"
    assert plain["max_bytes"] == -1 and plain["num_replicas"] == 1 and plain["storage"] == "file"
    assert plain["compression"] == "none" and plain["max_age"] == 0 and not plain.get("sealed")
    assert plain["retention"] == "limits" and plain["max_msgs_per_subject"] == -1


# ----- chunk layouts other writers can produce ------------------------------------------


def _meta(b: str, name: str, nuid: str, data: bytes, chunks: int, max_chunk_size: int) -> bytes:
    """A meta exactly as nats.go would write it."""
    doc = {
        "name": name,
        "options": {"max_chunk_size": max_chunk_size},
        "bucket": b,
        "nuid": nuid,
        "size": len(data),
        "mtime": "0001-01-01T00:00:00Z",
        "chunks": chunks,
        "digest": digest(data),
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def _all_ranges(size: int, step: int) -> list[tuple[int, int]]:
    return [(o, n) for o in range(0, size + 1, step) for n in (1, step, 3 * step, size)]


def test_non_contiguous_chunks(nats_store: StoreRunner) -> None:
    b, url = nats_store.bucket, nats_store.url
    assert url is not None
    a_data, b_data = blob(4500, seed=5), blob(5000, seed=6)
    a_nuid, b_nuid = "AAAAAAAAAAAAAAAAAAAAA1", "BBBBBBBBBBBBBBBBBBBBB2"

    nats_store(lambda s: s.create_bucket(BucketConfig(b)))

    async def publish(nc: nats.NATS, js: JetStreamContext) -> None:
        for i in range(5):
            if i * 1000 < len(a_data):
                await js.publish(f"$O.{b}.C.{a_nuid}", a_data[i * 1000 : (i + 1) * 1000])
            await js.publish(f"$O.{b}.C.{b_nuid}", b_data[i * 1000 : (i + 1) * 1000])
            await js.publish(f"$O.{b}.M.{enc('noise')}", b'{"name":"noise","nuid":"N","deleted":true}')
        await js.publish(
            f"$O.{b}.M.{enc('a')}", _meta(b, "a", a_nuid, a_data, 5, 1000), headers={"Nats-Rollup": "sub"}
        )
        await js.publish(
            f"$O.{b}.M.{enc('b')}", _meta(b, "b", b_nuid, b_data, 5, 1000), headers={"Nats-Rollup": "sub"}
        )
        obs = await js.object_store(b)
        assert (await obs.get("a")).data == a_data  # a valid object for nats-py too

    peer(url, publish)

    async def read(s: ObjectStore) -> None:
        for name, data in (("a", a_data), ("b", b_data)):
            info = await s.info(b, name)
            assert info.size == len(data) and info.chunks == 5
            for offset, length in _all_ranges(len(data), 700):
                assert await s.read(info, offset, length) == data[offset : offset + length], (name, offset)
            assert await collect(s, info) == data

    nats_store(read)


def test_non_uniform_chunk_sizes(nats_store: StoreRunner) -> None:
    b, url = nats_store.bucket, nats_store.url
    assert url is not None
    sizes = [100, 7, 300, 1, 50, 300, 2]
    data = blob(sum(sizes), seed=7)
    nuid = "CCCCCCCCCCCCCCCCCCCCC3"

    nats_store(lambda s: s.create_bucket(BucketConfig(b)))

    async def publish(nc: nats.NATS, js: JetStreamContext) -> None:
        pos = 0
        for n in sizes:
            await js.publish(f"$O.{b}.C.{nuid}", data[pos : pos + n])
            pos += n
        await js.publish(
            f"$O.{b}.M.{enc('u')}", _meta(b, "u", nuid, data, len(sizes), 300), headers={"Nats-Rollup": "sub"}
        )

    peer(url, publish)

    async def read(s: ObjectStore) -> None:
        info = await s.info(b, "u")
        for offset, length in _all_ranges(len(data), 37):
            assert await s.read(info, offset, length) == data[offset : offset + length], offset
        assert await s.read(info, 100, 7) == data[100:107]
        assert await collect(s, info) == data

    nats_store(read)


def test_rewritten_chunks_are_corrupt(nats_store: StoreRunner) -> None:
    b, url = nats_store.bucket, nats_store.url
    assert url is not None
    data = blob(3000, seed=8)

    async def put(s: ObjectStore) -> ObjectInfo:
        await s.create_bucket(BucketConfig(b))
        return await s.put(b, ObjectMeta("f"), data, chunk_size=1000)

    info = nats_store(put)

    async def rewrite(nc: nats.NATS, js: JetStreamContext) -> None:
        subject = f"$O.{b}.C.{info.nuid}"
        await js.purge_stream(f"OBJ_{b}", subject=subject)
        for i in range(3):
            await js.publish(subject, blob(1000, seed=100 + i))

    peer(url, rewrite)

    async def check(s: ObjectStore) -> None:
        current = await s.info(b, "f")
        assert current.nuid == info.nuid
        with pytest.raises(Corrupt):
            await collect(s, current)

    nats_store(check)


def test_missing_chunks_are_corrupt(nats_store: StoreRunner) -> None:
    b, url = nats_store.bucket, nats_store.url
    assert url is not None

    async def put(s: ObjectStore) -> tuple[ObjectInfo, ObjectInfo]:
        await s.create_bucket(BucketConfig(b))
        whole = await s.put(b, ObjectMeta("all-gone"), blob(3000, seed=9), chunk_size=1000)
        part = await s.put(b, ObjectMeta("one-gone"), blob(3000, seed=10), chunk_size=1000)
        return whole, part

    whole, part = nats_store(put)

    async def damage(nc: nats.NATS, js: JetStreamContext) -> None:
        await js.purge_stream(f"OBJ_{b}", subject=f"$O.{b}.C.{whole.nuid}")
        raw = await nc.request(
            f"$JS.API.DIRECT.GET.OBJ_{b}",
            json.dumps({"seq": 0, "next_by_subj": f"$O.{b}.C.{part.nuid}"}).encode(),
        )
        assert raw.headers is not None
        first = int(raw.headers["Nats-Sequence"])
        res = await api(nc, f"$JS.API.STREAM.MSG.DELETE.OBJ_{b}", {"seq": first + 1})
        assert res.get("success"), res

    peer(url, damage)

    async def check(s: ObjectStore) -> None:
        for name in ("all-gone", "one-gone"):
            info = await s.info(b, name)
            with pytest.raises(Corrupt):
                await collect(s, info)
        with pytest.raises(Corrupt):
            await s.read(await s.info(b, "all-gone"), 0, 10)
        with pytest.raises(Corrupt):
            await s.read(await s.info(b, "one-gone"), 0, 3000)

    nats_store(check)


def test_abort_leaves_no_chunks(nats_store: StoreRunner) -> None:
    """Chunks still in flight when an upload is aborted must not survive its purge."""
    b, url = nats_store.bucket, nats_store.url
    assert url is not None

    async def abort_many(s: ObjectStore) -> None:
        await s.create_bucket(BucketConfig(b))
        for i in range(300):  # the race is narrow: many small uploads, every chunk still in flight
            up = await s.begin_put(b, ObjectMeta(f"f{i}"), chunk_size=512)
            await up.write(blob(5000, seed=i))
            await up.abort()
        up = await s.begin_put(b, ObjectMeta("big"), chunk_size=1000)
        await up.write(blob(64_000))
        await up.abort()
        with pytest.raises(RuntimeError):
            await s.put(b, ObjectMeta("g"), _failing_source(), chunk_size=100)

    nats_store(abort_many)

    async def count(nc: nats.NATS, js: JetStreamContext) -> int:
        await asyncio.sleep(0.5)  # let any straggling publish land before looking
        info = await api(nc, f"$JS.API.STREAM.INFO.OBJ_{b}")
        return info["state"]["messages"]

    assert peer(url, count) == 0


async def _failing_source() -> Any:
    for i in range(30):
        yield blob(100, seed=i)
    raise RuntimeError("source failed")


def test_watch_sees_other_clients(nats_store: StoreRunner) -> None:
    """Puts, deletes and raw metas by nats-py reach an osfs watch as they happen."""
    b, url = nats_store.bucket, nats_store.url
    assert url is not None

    async def put_then_delete(nc: nats.NATS, js: JetStreamContext) -> None:
        obs = await js.object_store(b)
        await obs.put("from-py", b"hello", meta=nats.js.api.ObjectMeta(name="from-py", headers={"k": "v"}))
        await obs.delete("from-py")

    async def body(s: ObjectStore) -> None:
        await s.create_bucket(BucketConfig(b))
        async with s.watch(b) as events:
            with trio.fail_after(20):
                assert await events.__anext__() is None
                await trio.to_thread.run_sync(peer, url, put_then_delete)
                put = await events.__anext__()
                assert put is not None and put.name == "from-py" and not put.deleted
                assert put.headers == {"k": ("v",)} and put.size == 5
                gone = await events.__anext__()
                assert gone is not None and gone.name == "from-py" and gone.deleted
                assert gone.nuid == put.nuid and gone.mtime.year >= 2024

    nats_store(body)


def test_longest_names(nats_store: StoreRunner) -> None:
    """Names up to ``wire.max_name_bytes`` work end to end; longer ones are BadName, and the
    connection survives (an oversized subject would make the server drop it)."""
    b = nats_store.bucket
    longest = "é" * (wire.max_name_bytes(b) // 2)

    async def body(s: ObjectStore) -> None:
        await s.create_bucket(BucketConfig(b))
        put = await s.put(b, ObjectMeta(longest), b"data")
        assert (await s.info(b, longest)).nuid == put.nuid
        assert [i.name for i in await s.list_objects(b)] == [longest]
        assert await collect(s, await s.resolve(b, longest)) == b"data"
        too_long = longest + "éé"
        assert len(too_long.encode()) > wire.max_name_bytes(b)
        for call in (
            lambda: s.put(b, ObjectMeta(too_long), b"data"),
            lambda: s.info(b, too_long),
            lambda: s.rename(b, longest, too_long),
            lambda: s.add_link(b, too_long, b, longest),
        ):
            with pytest.raises(BadName):
                await call()
        await s.delete(b, longest)
        assert await s.list_objects(b) == []

    nats_store(body)


def test_mirror_bucket_reads_like_its_source(nats_store: StoreRunner) -> None:
    """A mirror bucket (subject transform ``$O.<src>.>`` → ``$O.<mirror>.>``) serves the
    source's objects under its own name and refuses writes."""
    src, mirror = nats_store.bucket, nats_store.bucket + "_m"
    data = blob(300_000, seed=11)

    async def body(s: ObjectStore) -> None:
        await s.create_bucket(BucketConfig(src))
        put = await s.put(src, ObjectMeta("dir/f.bin"), data)
        status = await s.create_bucket(BucketConfig(mirror, mirror=StreamSource(src)))
        assert status.mirror and status.read_only
        with trio.fail_after(20):
            while True:
                try:
                    info = await s.info(mirror, "dir/f.bin")
                    break
                except NotFound:
                    await trio.sleep(0.05)
        assert info.bucket == mirror and info.nuid == put.nuid and info.digest == put.digest
        assert await collect(s, info) == data
        assert await s.read(info, 131_000, 2000) == data[131_000:133_000]
        assert [i.name for i in await s.list_objects(mirror)] == ["dir/f.bin"]
        with pytest.raises(Sealed):
            await s.put(mirror, ObjectMeta("x"), b"no")

    nats_store(body)
