"""Calls started on the bridge without waiting (``Bridge.start_call``) or in a worker thread
(``call_in_thread``), the crossing counter, and a stream's hand-overs of items that arrive
together."""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import threading
import weakref
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio

from osfs.store.bridge import BridgeClosed, Call, call_in_thread
from osfs.store.nats.loop import Bridge


def test_a_started_call_runs_while_trio_goes_on_and_gives_its_result_later(bridge: Bridge) -> None:
    gate = threading.Event()

    async def work(x: int) -> int:
        while not gate.is_set():
            await asyncio.sleep(0.002)
        return x + 1

    async def main() -> None:
        call = bridge.start_call(work, 41)
        await trio.sleep(0.01)
        assert not call.done()  # trio got on with other work meanwhile
        gate.set()
        assert await call.result() == 42
        assert call.done()

    trio.run(main)


class _CountingToken:
    """A trio token that counts the wake-ups sent through it."""

    def __init__(self) -> None:
        self.token = trio.lowlevel.current_trio_token()
        self.wakeups = 0

    def run_sync_soon(self, fn: Any, *args: Any) -> None:
        self.wakeups += 1
        self.token.run_sync_soon(fn, *args)


def test_only_a_call_somebody_waits_for_wakes_trio() -> None:
    async def main() -> None:
        token = _CountingToken()
        finished: concurrent.futures.Future[int] = concurrent.futures.Future()
        finished.set_result(1)
        assert await Call(finished, token).result() == 1  # type: ignore[arg-type]
        assert token.wakeups == 0
        pending: concurrent.futures.Future[int] = concurrent.futures.Future()
        call = Call(pending, token)  # type: ignore[arg-type]
        threading.Timer(0.05, pending.set_result, (2,)).start()
        assert await call.result() == 2
        assert token.wakeups == 1

    trio.run(main)


def test_a_started_calls_error_is_raised_by_result(bridge: Bridge) -> None:
    async def fail() -> None:
        raise KeyError("boom")

    async def main() -> None:
        call = bridge.start_call(fail)
        with pytest.raises(KeyError, match="boom"):
            await call.result()

    trio.run(main)


def test_cancelling_the_waiter_leaves_a_started_call_running(bridge: Bridge) -> None:
    gate = threading.Event()
    finished = threading.Event()

    async def work() -> str:
        while not gate.is_set():
            await asyncio.sleep(0.002)
        finished.set()
        return "done"

    async def main() -> None:
        call = bridge.start_call(work)
        with trio.move_on_after(0.02):
            await call.result()
        gate.set()
        assert await call.result() == "done"
        assert finished.is_set()

    trio.run(main)


def test_a_call_cut_off_by_closing_the_bridge_is_bridge_closed() -> None:
    b = Bridge().start()

    async def forever() -> None:
        await asyncio.Event().wait()

    async def main() -> None:
        call = b.start_call(forever)
        await trio.to_thread.run_sync(b.close)
        with pytest.raises(BridgeClosed):
            await call.result()

    trio.run(main)


def test_every_coroutine_sent_to_the_loop_counts_as_one_crossing(bridge: Bridge) -> None:
    async def nothing() -> None:
        return None

    async def items() -> AsyncIterator[int]:
        for i in range(100):
            yield i

    async def main() -> None:
        before = bridge.crossings
        await bridge.run(nothing)
        await bridge.start_call(nothing).result()
        async with bridge.stream(items, buffer=7) as got:
            assert [i async for i in got] == list(range(100))
        assert bridge.crossings - before == 3

    trio.run(main)


@pytest.mark.parametrize("buffer", [1, 3, 1000])
def test_items_produced_in_bursts_arrive_complete_and_in_order(bridge: Bridge, buffer: int) -> None:
    async def bursts() -> AsyncIterator[int]:
        n = 0
        for burst in range(50):
            for _ in range(burst % 7 + 1):  # produced within one loop iteration
                yield n
                n += 1
            await asyncio.sleep(0)

    async def main() -> list[int]:
        async with bridge.stream(bursts, buffer=buffer) as got:
            out = []
            async for i in got:
                out.append(i)
                if i % 11 == 0:
                    await trio.sleep(0.001)  # a slow consumer makes the producer wait for space
            return out

    out = trio.run(main)
    assert out == list(range(len(out))) and len(out) == sum(b % 7 + 1 for b in range(50))


def test_a_calls_result_is_freed_without_waiting_for_a_gc_pass(bridge: Bridge) -> None:
    """Results are MiBs of data: no reference cycle may keep them alive after use."""

    class Result:
        pass

    async def make() -> Result:
        return Result()

    async def freed(ref: weakref.ref) -> bool:
        with trio.move_on_after(5):
            while ref() is not None:  # the loop thread drops its own references soon
                await trio.sleep(0.01)
        return ref() is None

    async def main() -> None:
        gc.disable()
        try:
            assert await freed(weakref.ref(await bridge.run(make)))
            assert await freed(weakref.ref(await bridge.start_call(make).result()))
        finally:
            gc.enable()

    trio.run(main)


def test_call_in_thread_runs_while_trio_goes_on_and_raises_its_error_later() -> None:
    gate = threading.Event()
    threads: list[str] = []

    def work(x: int) -> int:
        threads.append(threading.current_thread().name)
        gate.wait(10)
        return x + 1

    def broken() -> None:
        raise OSError("simulated disk failure")

    async def main() -> None:
        call = call_in_thread(lambda: work(41))
        await trio.sleep(0.01)
        assert not call.done()  # trio got on with other work meanwhile
        gate.set()
        assert await call.result() == 42
        assert await call.result() == 42  # taken again: the same outcome, no waiting
        assert threads and threads[0] != threading.current_thread().name
        failing = call_in_thread(broken)
        with pytest.raises(OSError, match="simulated"):
            await failing.result()

    trio.run(main)
