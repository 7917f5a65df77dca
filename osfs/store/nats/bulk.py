"""A second connection for reading many metas, on an asyncio loop in a thread of its own.

A listing of a big bucket is work for the CPU (every meta is parsed and decoded), and on
the store's own loop it would hold up every other request while it runs: measured with a
100k-object listing, a small ``info`` + ``put`` on another bucket took 100-250 ms instead
of 3 ms on the shared loop, and about a third of that on a loop and connection of their
own (the rest is the interpreter's lock shared by the threads). So :class:`BulkLane` opens,
on first use, a second :class:`~osfs.store.nats.conn.Conn` to the same servers on its own
:class:`~osfs.store.nats.loop.Bridge` thread, runs a producer of batches there (a
listing's walk and decoding, :func:`~osfs.store.nats.listing.decoded_batches`), and hands
each batch over to the caller's loop with one crossing per batch; the next batch is made
while the caller takes this one. The lane's thread touches only its own connection and the
batches it makes (handed over whole, never touched again).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any, TypeVar

from ..errors import StoreError
from .conn import Conn
from .loop import Bridge
from .options import ConnectOptions

T = TypeVar("T")


class BulkLane:
    """The lazily opened second connection; see the module docstring. ``close`` ends it."""

    def __init__(self, options: ConnectOptions) -> None:
        self._options = replace(options, name=options.name + "-bulk")  # told apart in connz
        self._bridge: Bridge | None = None
        self._conn: Conn | None = None
        self._opening = asyncio.Lock()
        self._closed = False

    async def ready(self) -> tuple[Bridge, Conn]:
        """The lane's thread and connection, opened on first use (``Unavailable`` when the
        connection cannot be made, ``StoreError`` once closed)."""
        async with self._opening:
            if self._closed:
                raise StoreError("store is closed")
            if self._bridge is None or self._conn is None:
                bridge = await asyncio.to_thread(Bridge("osfs-bulk").start)
                try:
                    conn = await asyncio.wrap_future(bridge.submit(Conn.open, self._options))
                except BaseException:
                    await asyncio.to_thread(bridge.close)
                    raise
                self._bridge, self._conn = bridge, conn
            return self._bridge, self._conn

    async def batches(self, produce: Callable[..., AsyncIterator[T]], *args: Any) -> AsyncIterator[T]:
        """The items of ``produce(conn, *args)`` run on the lane (``conn`` is the lane's
        connection), the next made while this one is taken. Errors of opening the lane
        and of the producer are raised here."""
        bridge, conn = await self.ready()
        source = produce(conn, *args)

        async def step() -> tuple[bool, T | None]:
            try:
                return False, await source.__anext__()
            except StopAsyncIteration:
                return True, None

        ahead = asyncio.wrap_future(bridge.submit(step))
        try:
            while True:
                done, item = await ahead
                if done:
                    return
                ahead = asyncio.wrap_future(bridge.submit(step))
                yield item  # type: ignore[misc]
        finally:
            ahead.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.wrap_future(bridge.submit(_close_source, source))

    async def close(self) -> None:
        """Close the lane's connection and stop its thread (nothing if it never opened)."""
        async with self._opening:
            self._closed = True
            bridge, conn, self._bridge, self._conn = self._bridge, self._conn, None, None
        if bridge is None:
            return
        if conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wrap_future(bridge.submit(conn.close))
        await asyncio.to_thread(bridge.close)


async def _close_source(source: AsyncIterator[Any]) -> None:
    aclose = getattr(source, "aclose", None)
    if aclose is not None:
        await aclose()
