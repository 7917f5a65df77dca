"""Whole-object reads of the NATS store (asyncio side), over a
:class:`~osfs.store.nats.read.fetch.ChunkReader`'s public API.

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

from ...errors import Corrupt, Unavailable
from ...types import ObjectInfo
from .. import wire
from ..digest import Sha256Pipe
from .fetch import ChunkReader
from .index import FETCH_WINDOW, ChunkIndex, Gone, checked_chunk, per_batch

#: Batch requests in flight for one whole-object get.
BATCHES = 4


async def _window(
    reader: ChunkReader, info: ObjectInfo, idx: ChunkIndex, numbers: range, *, cache: bool
) -> AsyncIterator[bytes]:
    """The chunks ``numbers`` in order, one request each, up to ``FETCH_WINDOW`` in flight."""
    window: list[Awaitable[bytes]] = []
    it = iter(numbers)
    try:
        for i in it:
            window.append(reader.chunk(info, idx, i, cache=cache))
            if len(window) >= FETCH_WINDOW:
                break
        pos = 0
        while pos < len(window):
            data = await window[pos]
            window[pos] = None  # type: ignore[call-overload]
            pos += 1
            nxt = next(it, None)
            if nxt is not None:
                window.append(reader.chunk(info, idx, nxt, cache=cache))
            yield data
    finally:
        for w in window:
            if isinstance(w, asyncio.Future) and not w.done():
                w.cancel()


async def get_whole(reader: ChunkReader, info: ObjectInfo) -> AsyncIterator[list[bytes]]:
    """The whole version in order, as lists of chunks; digest verified at the end
    (``Corrupt``).

    Chunks come by batch Direct Get (about ``BATCH_BYTES`` per request, ``BATCHES``
    requests in flight), checked for subject, sequence and size; the cache is bypassed.
    Each list holds one batch's chunks, so a consumer on another thread is woken once
    per batch, not once per chunk. Buckets without ``allow_direct`` are read chunk by
    chunk with ``STREAM.MSG.GET``. The digest is computed in a worker thread
    (:class:`~osfs.store.nats.digest.Sha256Pipe`).
    """
    if info.size == 0:
        return
    reader.check_good(info)
    idx = await reader.index(info)
    sha = Sha256Pipe()
    if wire.stream_name(info.bucket) in reader.conn.no_direct:  # found out while indexing
        groups = _singles(_window(reader, info, idx, range(idx.chunks), cache=False))
    else:
        groups = _batches(reader, info, idx)
    try:
        async for group in groups:
            await sha.update_all(group)
            yield group
    except Gone:
        raise await reader.gone(info) from None
    expected = wire.decode_digest(info.digest) if info.digest else None
    if info.digest and expected is None:
        raise Corrupt(f"{info.bucket}/{info.name}: unreadable digest {info.digest!r}")
    if expected is not None and await sha.digest() != expected:
        reader.mark_bad(info)
        raise Corrupt(f"{info.bucket}/{info.name}: digest mismatch of version {info.nuid}")


async def _batches(reader: ChunkReader, info: ObjectInfo, idx: ChunkIndex) -> AsyncIterator[list[bytes]]:
    stream = wire.stream_name(info.bucket)
    subject = wire.chunk_subject(info.bucket, info.nuid)
    per = per_batch(info, idx)
    starts = iter(range(0, idx.chunks, per))
    window: collections.deque[tuple[int, asyncio.Future]] = collections.deque()

    async def send() -> None:
        i0 = next(starts, None)
        if i0 is not None:
            n = min(per, idx.chunks - i0)
            reader.stats.chunk_fetches += n
            reader.stats.batch_gets += 1
            window.append((i0, await reader.conn.batch_get(stream, subject, idx.seq(i0), n)))

    try:
        for _ in range(BATCHES):
            await send()
        while window:
            i0, fut = window.popleft()
            done, _ = await asyncio.wait([fut], timeout=reader.conn.timeout)
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
                        await reader.conn.batch_get(stream, subject, idx.seq(i0 + len(msgs)), n - len(msgs)),
                    )
                )
            yield [checked_chunk(info, idx, subject, i0 + k, msg) for k, msg in enumerate(msgs[:n])]
    finally:
        for _, fut in window:
            fut.cancel()


async def _singles(blocks: AsyncIterator[bytes]) -> AsyncIterator[list[bytes]]:
    async for data in blocks:
        yield [data]
