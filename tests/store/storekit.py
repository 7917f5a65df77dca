"""Helpers of the store tests: run trio test bodies against the memory store or NATS.

Store calls are trio-async. A test gets a :class:`StoreRunner` and hands it an async
function; the runner opens a fresh store inside ``trio.run``, calls the function with it
under a timeout, and closes the store. Buckets a test creates on NATS (every name starting
with the test's ``bucket_name``) are deleted when the test ends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import trio

from osfs.config import ConnectOptions
from osfs.store.base import ObjectStore
from osfs.store.memory import MemoryStore

T = TypeVar("T")

#: Upper bound of one runner call; a hanging watch or read fails the test instead.
RUN_TIMEOUT = 60.0


@asynccontextmanager
async def open_nats_store(url: str, **kwargs: Any) -> AsyncIterator[ObjectStore]:
    """A :class:`NatsStore` connected to ``url``, closed on exit."""
    from osfs.store.nats.store import NatsStore

    store = await NatsStore.connect(ConnectOptions(servers=(url,)), **kwargs)
    try:
        yield store
    finally:
        await store.close()


@dataclass
class StoreRunner:
    """Runs async test bodies against one kind of store (``memory`` or ``nats``).

    The memory store lives as long as the runner (state carries over between calls, like a
    server would); a NATS store is connected per call.
    """

    kind: str
    url: str | None
    bucket: str
    _memory: MemoryStore | None = field(default=None, repr=False)

    @property
    def is_nats(self) -> bool:
        return self.kind == "nats"

    @asynccontextmanager
    async def open(self) -> AsyncIterator[ObjectStore]:
        if self.kind == "memory":
            if self._memory is None or self._memory.closed:
                self._memory = MemoryStore()
            yield self._memory
            return
        assert self.url is not None
        async with open_nats_store(self.url) as store:
            yield store

    def __call__(self, fn: Callable[[ObjectStore], Awaitable[T]], *, timeout: float = RUN_TIMEOUT) -> T:
        async def main() -> T:
            with trio.fail_after(timeout):
                async with self.open() as store:
                    return await fn(store)

        return trio.run(main)

    def cleanup(self) -> None:
        """Delete every bucket of this test (NATS only; the memory store just goes away)."""
        if not self.is_nats:
            return

        async def drop(store: ObjectStore) -> None:
            for name in await store.bucket_names():
                if name.startswith(self.bucket):
                    await store.delete_bucket(name)

        self(drop)
