"""The trio ↔ asyncio bridge: results, errors, cancellation, bounded streaming."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator

import pytest
import trio

from osfs.store.bridge import BridgeClosed
from osfs.store.nats.loop import Bridge


def test_run_returns_result_from_loop_thread(bridge: Bridge) -> None:
    async def work(x: int) -> tuple[int, str]:
        await asyncio.sleep(0)
        return x * 2, threading.current_thread().name

    async def main() -> tuple[int, str]:
        return await bridge.run(work, 21)

    value, thread = trio.run(main)
    assert value == 42
    assert thread != threading.current_thread().name


def test_run_raises_the_coroutines_exception(bridge: Bridge) -> None:
    async def fail() -> None:
        raise KeyError("boom")

    async def main() -> None:
        await bridge.run(fail)

    with pytest.raises(KeyError, match="boom"):
        trio.run(main)


def test_trio_cancellation_cancels_the_asyncio_task(bridge: Bridge) -> None:
    seen = threading.Event()
    started = threading.Event()

    async def slow() -> None:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            seen.set()
            raise

    async def main() -> None:
        with trio.move_on_after(0.2):
            await bridge.run(slow)

    trio.run(main)
    assert started.is_set()
    assert seen.wait(5), "the asyncio task was not cancelled"


def test_stream_delivers_all_items_in_order_then_the_error(bridge: Bridge) -> None:
    async def produce(n: int) -> AsyncIterator[int]:
        for i in range(n):
            yield i
        raise ValueError("after the items")

    async def main() -> list[int]:
        got: list[int] = []
        async with bridge.stream(produce, 500, buffer=7) as items:
            with pytest.raises(ValueError, match="after the items"):
                async for item in items:
                    got.append(item)
        return got

    assert trio.run(main) == list(range(500))


def test_stream_buffer_bounds_the_producer(bridge: Bridge) -> None:
    produced: list[int] = []

    async def produce() -> AsyncIterator[int]:
        for i in range(1000):
            produced.append(i)
            yield i

    async def main() -> int:
        async with bridge.stream(produce, buffer=5) as items:
            it = items.__aiter__()
            await it.__anext__()
            await trio.sleep(0.3)  # let the producer run as far as it can
            return len(produced)

    ahead = trio.run(main)
    # ``buffer`` waiting in the channel, plus one drained batch being consumed, plus the one
    # the producer holds while it waits for space.
    assert ahead <= 2 * 5 + 2, f"producer ran {ahead} items ahead with a buffer of 5"


def test_leaving_stream_cancels_producer(bridge: Bridge) -> None:
    cancelled = threading.Event()

    async def produce() -> AsyncIterator[int]:
        try:
            i = 0
            while True:
                yield i
                i += 1
                await asyncio.sleep(0.001)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def main() -> None:
        async with bridge.stream(produce, buffer=2) as items:
            async for i in items:
                if i == 3:
                    break

    trio.run(main)
    assert cancelled.wait(5)


def test_closed_bridge_refuses_work() -> None:
    b = Bridge().start()
    b.close()

    async def noop() -> None:
        return None

    async def main() -> None:
        await b.run(noop)

    with pytest.raises(BridgeClosed):
        trio.run(main)
