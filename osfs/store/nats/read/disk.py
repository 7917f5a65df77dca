"""The disk cache driven from the store's asyncio loop (see :mod:`osfs.store.disk_cache`).

:class:`DiskTier` runs the blocking :class:`~osfs.store.disk_cache.DiskCache` on a pool of
two ``osfs-disk`` threads: ``get`` is awaited (only when the chunk is indexed, so a miss
costs no thread hop), while ``put`` and ``discard`` run in the background. At most
``DISK_WRITES_PENDING`` writes wait at a time; more are skipped (it is a cache), so the
bytes held for the disk stay bounded. Without a cache every method is a no-op
(``enabled`` is False).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib

from ...disk_cache import ChunkKey, DiskCache

#: Chunk writes to the disk cache that may wait for its worker threads.
DISK_WRITES_PENDING = 32


class DiskTier:
    """See the module docstring. The store closes ``cache`` itself; :meth:`close` only
    stops the threads."""

    def __init__(self, cache: DiskCache | None, loop: asyncio.AbstractEventLoop) -> None:
        self.cache = cache
        self._loop = loop
        self._pool = (
            concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="osfs-disk")
            if cache is not None
            else None
        )
        self._writes = 0

    @property
    def enabled(self) -> bool:
        return self.cache is not None

    async def get(self, key: ChunkKey, size: int) -> bytes | None:
        """The chunk (of ``size`` bytes) from disk, or None."""
        if self.cache is None or key not in self.cache:
            return None
        return await self._loop.run_in_executor(self._pool, self.cache.get, key, size)

    def put(self, key: ChunkKey, data: bytes | memoryview) -> None:
        """Write a chunk fetched from the server, in the background."""
        if self.cache is None or self._writes >= DISK_WRITES_PENDING:
            return
        self._writes += 1
        fut = self._loop.run_in_executor(self._pool, self.cache.put, key, data)
        fut.add_done_callback(self._written)

    def _written(self, fut: asyncio.Future[None]) -> None:
        self._writes -= 1
        if not fut.cancelled():
            fut.exception()  # DiskCache logs its own failures

    def discard(self, bucket: str, nuid: str) -> None:
        """Delete one version's chunks, in the background."""
        if self.cache is not None:
            with contextlib.suppress(RuntimeError):  # the loop or pool is shut down
                self._loop.run_in_executor(self._pool, self.cache.discard_version, bucket, nuid)

    async def close(self) -> None:
        if self._pool is not None:
            await self._loop.run_in_executor(None, self._pool.shutdown)
