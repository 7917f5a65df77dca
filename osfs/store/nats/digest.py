"""SHA-256 of a stream of blocks, computed off the asyncio thread (asyncio side).

The NATS loop thread parses every byte that comes in or goes out; hashing 256 MiB on it
costs about as much again (hashlib reaches 300-600 MB/s on the machines we measured).
``hashlib`` releases the GIL while it hashes a block of 2 KiB or more, so hashing in a
worker thread runs on the other core in parallel with the loop.

:class:`Sha256Pipe` hands each block to one shared single-worker executor, which keeps the
blocks of every digest in order (one worker: first in, first out). ``update`` does not wait
unless more than ``backlog`` bytes are queued, so the memory held for hashing stays bounded;
``digest`` waits for the queue to drain. Small blocks with nothing queued are hashed at
once, without a thread hop.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import hashlib
from collections.abc import Callable
from typing import Any

#: Blocks smaller than this are hashed on the calling thread when nothing is queued.
INLINE_BELOW = 64 * 1024
#: Bytes queued for hashing before ``update`` waits.
DEFAULT_BACKLOG = 8 * 1024 * 1024

_POOL = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="osfs-sha256")


class Sha256Pipe:
    """An in-order SHA-256 whose large blocks are hashed in a worker thread."""

    def __init__(self, backlog: int = DEFAULT_BACKLOG) -> None:
        self._sha = hashlib.sha256()
        self._backlog = backlog
        self._queued: collections.deque[tuple[concurrent.futures.Future[None], int]] = collections.deque()
        self._queued_bytes = 0

    def _reap(self) -> None:
        """Drop finished blocks from the queue (raising a hashing error, if any)."""
        while self._queued and self._queued[0][0].done():
            fut, n = self._queued.popleft()
            self._queued_bytes -= n
            fut.result()

    async def update(self, data: bytes | memoryview) -> None:
        """Add ``data`` (which must not change afterwards); waits only past the backlog."""
        n = len(data)
        if not self._queued and n < INLINE_BELOW:
            self._sha.update(data)
            return
        await self._queue(self._sha.update, n, data)

    async def _queue(self, fn: Callable[..., None], n: int, *args: object) -> None:
        self._reap()
        self._queued.append((_POOL.submit(fn, *args), n))
        self._queued_bytes += n
        while self._queued_bytes > self._backlog:
            await asyncio.wrap_future(self._queued[0][0])
            self._reap()

    async def update_all(self, blocks: list[bytes]) -> None:
        """``update`` with each of ``blocks`` in order, in one hand-off to the worker."""
        n = sum(len(b) for b in blocks)
        if not self._queued and n < INLINE_BELOW:
            for b in blocks:
                self._sha.update(b)
            return
        await self._queue(_update_all, n, self._sha, blocks)

    async def digest(self) -> bytes:
        """The digest of everything added so far (waits for queued blocks)."""
        while self._queued:
            await asyncio.wrap_future(self._queued[0][0])
            self._reap()
        return self._sha.digest()


def _update_all(sha: Any, blocks: list[bytes]) -> None:
    for b in blocks:
        sha.update(b)
