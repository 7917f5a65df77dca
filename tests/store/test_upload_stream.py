"""A streaming upload reads back what it was written so far, keeps its chunks in order
with one message id each, and commits the meta it is given at the end (both stores)."""

from __future__ import annotations

import asyncio
import hashlib
import random

import nats
import nats.js.errors
import pytest
from storekit import StoreRunner

from osfs.store.base import ObjectStore
from osfs.store.errors import BadName, NotFound
from osfs.store.types import BucketConfig, ObjectMeta

CS = 4096


def _blob(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


def test_read_back_while_streaming(store: StoreRunner) -> None:
    b = store.bucket
    data = _blob(40 * CS + 123, 1)

    async def body(s: ObjectStore) -> None:
        await s.create_bucket(BucketConfig(b))
        up = await s.begin_put(b, ObjectMeta("f"), chunk_size=CS)
        rng = random.Random(2)
        written = 0
        while written < len(data):
            n = rng.randint(1, 3 * CS)
            await up.write(data[written : written + n])
            written = min(len(data), written + n)
            for _ in range(3):
                off = rng.randrange(0, written)
                length = rng.randint(0, 5 * CS)
                assert await up.read(off, length) == data[off : min(written, off + length)]
        assert await up.read(0, len(data) + 10) == data
        assert await up.read(len(data), 10) == b""
        info = await up.commit()
        assert (info.size, info.chunks) == (len(data), 41)
        assert await s.read(await s.info(b, "f"), 0, len(data)) == data

    store(body)


def test_commit_publishes_the_meta_given_at_the_end(store: StoreRunner) -> None:
    b = store.bucket
    data = _blob(10 * CS, 3)

    async def body(s: ObjectStore) -> None:
        await s.create_bucket(BucketConfig(b))
        up = await s.begin_put(b, ObjectMeta("first"), chunk_size=CS)
        await up.write(data)
        info = await up.commit(ObjectMeta("moved", metadata={"k": "v"}))
        assert info.name == "moved"
        got = await s.info(b, "moved")
        assert got.metadata.get("k") == "v" and got.size == len(data)
        with pytest.raises(NotFound):
            await s.info(b, "first")
        assert hashlib.sha256(await s.read(got, 0, len(data))).digest() == hashlib.sha256(data).digest()
        up = await s.begin_put(b, ObjectMeta("second"), chunk_size=CS)
        await up.write(data)
        with pytest.raises(BadName):
            await up.commit(ObjectMeta(""))
        with pytest.raises(NotFound):
            await s.info(b, "second")

    store(body)


def test_nats_chunks_carry_their_index_as_message_id(nats_store: StoreRunner) -> None:
    b = nats_store.bucket
    infos = []

    async def body(s: ObjectStore) -> None:
        await s.create_bucket(BucketConfig(b))
        up = await s.begin_put(b, ObjectMeta("f"), chunk_size=CS)
        await up.write(_blob(3 * CS + 5, 4))
        infos.append(await up.commit())

    nats_store(body)
    nuid = infos[0].nuid

    async def ids() -> list[str]:
        nc = await nats.connect(nats_store.url)
        try:
            js = nc.jetstream()
            out, seq = [], 1
            while True:
                try:
                    msg = await js.get_msg(f"OBJ_{b}", seq=seq, next=True, subject=f"$O.{b}.C.{nuid}")
                except nats.js.errors.NotFoundError:
                    return out
                out.append((msg.headers or {}).get("Nats-Msg-Id"))
                seq = msg.seq + 1
        finally:
            await nc.close()

    assert asyncio.run(ids()) == [f"{nuid}.{i}" for i in range(4)]
