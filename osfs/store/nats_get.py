"""Whole-object reads of the NATS store's read path (asyncio side), mixed into
:class:`~osfs.store.nats_read.ChunkReader`.

``get`` streams a whole version in order, bypassing the cache: batch Direct Gets of about
``BATCH_BYTES`` with ``BATCHES`` requests in flight, each reply checked for subject,
sequence and size, and the SHA-256 digest verified at the end in a worker thread. Buckets
without ``allow_direct`` are read chunk by chunk (``chunk`` and a window of
``FETCH_WINDOW`` fetches).
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator, Awaitable
from typing import TYPE_CHECKING

from . import wire
from .digest import Sha256Pipe
from .errors import Corrupt, Unavailable
from .nats_index import FETCH_WINDOW, ChunkIndex, Gone, per_batch
from .types import ObjectInfo

if TYPE_CHECKING:
    from .nats_read import ChunkReader

#: Batch requests in flight for one whole-object get.
BATCHES = 4


class WholeGetMixin:
    """``get`` and the chunk-by-chunk window; mixed into ``ChunkReader``."""

    def chunk(
        self: ChunkReader, info: ObjectInfo, idx: ChunkIndex, i: int, *, cache: bool = True
    ) -> Awaitable[bytes]:
        """The bytes of chunk ``i``: from the cache, a fetch in flight, or a new fetch.

        Raises ``Gone`` (internal) when the chunk is missing.
        """
        key = (info.bucket, info.nuid, i)
        data = self._cache_get(key)
        if data is not None:
            fut: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
            fut.set_result(data)
            return fut
        pending = self._inflight.get(key)
        if pending is not None:
            return asyncio.shield(pending)
        if not cache:  # a whole-object get: nobody shares these fetches
            return asyncio.ensure_future(self._fetch(info, idx, i, cache))
        task = asyncio.ensure_future(self._fetch(info, idx, i, cache))
        self._inflight[key] = task
        task.add_done_callback(lambda _t: self._inflight.pop(key, None))
        return asyncio.shield(task)

    async def _window(
        self: ChunkReader, info: ObjectInfo, idx: ChunkIndex, numbers: range, *, cache: bool
    ) -> AsyncIterator[bytes]:
        """The chunks ``numbers`` in order, one request each, up to ``FETCH_WINDOW`` in flight."""
        window: list[Awaitable[bytes]] = []
        it = iter(numbers)
        try:
            for i in it:
                window.append(self.chunk(info, idx, i, cache=cache))
                if len(window) >= FETCH_WINDOW:
                    break
            pos = 0
            while pos < len(window):
                data = await window[pos]
                window[pos] = None  # type: ignore[call-overload]
                pos += 1
                nxt = next(it, None)
                if nxt is not None:
                    window.append(self.chunk(info, idx, nxt, cache=cache))
                yield data
        finally:
            for w in window:
                if isinstance(w, asyncio.Future) and not w.done():
                    w.cancel()

    async def get(self: ChunkReader, info: ObjectInfo) -> AsyncIterator[list[bytes]]:
        """The whole version in order, as lists of chunks; digest verified at the end
        (``Corrupt``).

        Chunks come by batch Direct Get (about ``BATCH_BYTES`` per request, ``BATCHES``
        requests in flight), checked for subject, sequence and size; the cache is bypassed.
        Each list holds one batch's chunks, so a consumer on another thread is woken once
        per batch, not once per chunk. Buckets without ``allow_direct`` are read chunk by
        chunk with ``STREAM.MSG.GET``. The digest is computed in a worker thread
        (:class:`~osfs.store.digest.Sha256Pipe`).
        """
        if info.size == 0:
            return
        self._check_good(info)
        idx = await self.index(info)
        sha = Sha256Pipe()
        if wire.stream_name(info.bucket) in self.conn.no_direct:  # found out while indexing
            groups = _singles(self._window(info, idx, range(idx.chunks), cache=False))
        else:
            groups = self._batches(info, idx)
        try:
            async for group in groups:
                await sha.update_all(group)
                yield group
        except Gone:
            raise await self._gone(info) from None
        expected = wire.decode_digest(info.digest) if info.digest else None
        if info.digest and expected is None:
            raise Corrupt(f"{info.bucket}/{info.name}: unreadable digest {info.digest!r}")
        if expected is not None and await sha.digest() != expected:
            self._mark_bad(info)
            raise Corrupt(f"{info.bucket}/{info.name}: digest mismatch of version {info.nuid}")

    async def _batches(self: ChunkReader, info: ObjectInfo, idx: ChunkIndex) -> AsyncIterator[list[bytes]]:
        stream = wire.stream_name(info.bucket)
        subject = wire.chunk_subject(info.bucket, info.nuid)
        per = per_batch(info, idx)
        starts = iter(range(0, idx.chunks, per))
        window: collections.deque[tuple[int, asyncio.Future]] = collections.deque()

        async def send() -> None:
            i0 = next(starts, None)
            if i0 is not None:
                n = min(per, idx.chunks - i0)
                self.stats.chunk_fetches += n
                self.stats.batch_gets += 1
                window.append((i0, await self.conn.batch_get(stream, subject, idx.seq(i0), n)))

        try:
            for _ in range(BATCHES):
                await send()
            while window:
                i0, fut = window.popleft()
                done, _ = await asyncio.wait([fut], timeout=self.conn.timeout)
                if not done:
                    raise Unavailable(f"{info.bucket}/{info.name}: no answer to a batch get")
                msgs = fut.result()
                await send()
                n = min(per, idx.chunks - i0)
                if len(msgs) < n:
                    if not msgs:
                        raise Gone()
                    window.appendleft(
                        (
                            i0 + len(msgs),
                            await self.conn.batch_get(
                                stream, subject, idx.seq(i0 + len(msgs)), n - len(msgs)
                            ),
                        )
                    )
                yield [self._checked(info, idx, subject, i0 + k, msg) for k, msg in enumerate(msgs[:n])]
        finally:
            for _, fut in window:
                fut.cancel()


async def _singles(blocks: AsyncIterator[bytes]) -> AsyncIterator[list[bytes]]:
    async for data in blocks:
        yield [data]
