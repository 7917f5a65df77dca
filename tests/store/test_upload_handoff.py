"""A streaming upload hands its data to the asyncio side a MiB at a time without waiting for
it: few bridge crossings, a bounded amount held, hand-off errors raised by a later call."""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any

import pytest
import trio

from osfs.store.errors import StoreError, Unavailable
from osfs.store.nats.store import HAND_OFF
from osfs.store.types import BucketConfig, ObjectMeta

StoreRunner = Any  # tests/store/conftest.py: the ``nats_store`` runner fixture

KiB = 1024
MiB = 1024 * KiB


def test_four_mib_of_small_writes_cross_once_per_mib(nats_store: StoreRunner) -> None:
    b = nats_store.bucket
    data = os.urandom(4 * MiB)
    piece = 64 * KiB

    async def main(store: Any) -> None:
        await store.create_bucket(BucketConfig(b))
        up = await store.begin_put(b, ObjectMeta("four"), chunk_size=128 * KiB)
        before = store._bridge.crossings
        for pos in range(0, len(data), piece):
            await up.write(data[pos : pos + piece])
            # never more than a hand-off's worth held here, and at most one in flight
            assert up._held_bytes < HAND_OFF
        assert store._bridge.crossings - before == len(data) // HAND_OFF
        info = await up.commit()
        assert store._bridge.crossings - before == len(data) // HAND_OFF + 1
        assert info.size == len(data)
        assert b"".join([blk async for blk in store.get(info)]) == data

    nats_store(main)


def test_one_mib_writes_return_before_the_asyncio_side_has_the_data(nats_store: StoreRunner) -> None:
    """A write returns while its hand-off is still held on the asyncio side, and at most
    one hand-off is in flight: the next write waits until the previous one has finished."""
    b = nats_store.bucket
    data = os.urandom(3 * MiB)

    async def main(store: Any) -> None:
        await store.create_bucket(BucketConfig(b))
        up = await store.begin_put(b, ObjectMeta("gated"), chunk_size=128 * KiB)
        pipe = up._pipe
        gate = threading.Event()  # set on the trio side, waited for on the asyncio side
        first_done = threading.Event()  # the first hand-off has finished on the asyncio side
        write_blocks = pipe.write_blocks
        entered: list[int] = []
        in_flight = [0, 0]  # hand-offs running now, the most ever running at once

        async def gated(blocks: list[bytes]) -> None:
            in_flight[0] += 1
            in_flight[1] = max(in_flight[1], in_flight[0])
            try:
                entered.append(sum(len(x) for x in blocks))
                first = len(entered) == 1
                if first:  # hold the first hand-off on the asyncio side
                    while not gate.is_set():
                        await asyncio.sleep(0.005)
                await write_blocks(blocks)
                if first:
                    first_done.set()
            finally:
                in_flight[0] -= 1

        pipe.write_blocks = gated
        # the first MiB is handed over and the write returns while the asyncio side holds it
        await up.write(data[:MiB])
        assert up.size == MiB
        with trio.fail_after(10):
            while not entered:
                await trio.sleep(0.005)
        assert entered == [MiB] and not gate.is_set()
        # the second MiB waits for the first hand-off: the gate opens from another task
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_open_soon, gate)
            await up.write(data[MiB : 2 * MiB])
            # checked when the write returns, not after the nursery (which waits for the gate)
            assert first_done.is_set(), "the second hand-off started while the first was in flight"
        with trio.fail_after(10):
            while len(entered) < 2:
                await trio.sleep(0.005)
        assert entered == [MiB, MiB]
        await up.write(data[2 * MiB :])
        info = await up.commit()
        assert in_flight[1] == 1, f"{in_flight[1]} hand-offs were in flight at once"
        assert info.size == len(data)
        assert await store.read(info, MiB - 5, 10) == data[MiB - 5 : MiB + 5]

    nats_store(main)


def test_a_failed_hand_off_is_raised_by_the_next_write_and_the_upload_aborts(
    nats_store: StoreRunner,
) -> None:
    b = nats_store.bucket

    async def main(store: Any) -> None:
        await store.create_bucket(BucketConfig(b))
        old = await store.put(b, ObjectMeta("f"), b"old")
        up = await store.begin_put(b, ObjectMeta("f"), chunk_size=128 * KiB)

        async def broken(blocks: list[bytes]) -> None:
            raise Unavailable("simulated loss of the connection")

        up._pipe.write_blocks = broken
        await up.write(os.urandom(MiB))  # handed over; its failure is not known yet
        with pytest.raises(Unavailable):
            await up.write(os.urandom(MiB))
        await up.abort()
        assert (await store.info(b, "f")).nuid == old.nuid

    nats_store(main)


def test_a_failed_hand_off_is_raised_by_commit(nats_store: StoreRunner) -> None:
    b = nats_store.bucket

    async def main(store: Any) -> None:
        await store.create_bucket(BucketConfig(b))
        up = await store.begin_put(b, ObjectMeta("g"), chunk_size=128 * KiB)

        async def broken(blocks: list[bytes]) -> None:
            raise StoreError("simulated")

        up._pipe.write_blocks = broken
        await up.write(os.urandom(MiB))
        with pytest.raises(StoreError, match="simulated"):
            await up.commit()
        await up.abort()
        assert [i.name for i in await store.list_objects(b)] == []

    nats_store(main)


async def _open_soon(gate: threading.Event) -> None:
    await trio.sleep(0.05)
    gate.set()
