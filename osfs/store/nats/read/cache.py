"""Batch buffers for chunks, and the chunk cache that frees them whole (asyncio side).

A batch Direct Get answers several chunks in a row. Their payloads are copied, as they
arrive, back to back into one :class:`Landing` (by ``Conn._on_batch``), and each chunk is
a read-only view of its place there: a read within one batch is answered with one view of
it, without joining chunks. A landing is freed when no view of it is left, so the
:class:`ChunkCache` evicts the chunks of one batch together.
"""

from __future__ import annotations

from typing import Protocol

import cachetools

from ...disk_cache import ChunkKey

#: A chunk's bytes: a read-only view of its :class:`Landing` when it came in a batch.
Chunk = bytes | memoryview


class ChunkSpans(Protocol):
    """Where each chunk of a version starts (a chunk index, as :func:`assemble` needs it)."""

    def start(self, i: int) -> int:
        """Byte offset of chunk ``i`` in the version."""
        ...


class Landing(bytearray):
    """A buffer that the messages of one batch Direct Get are copied into, in order.

    Each message's ``RawMsg.data`` is then a read-only view of its place here, so the
    chunks of one batch lie back to back: a read spanning several of them can be served as
    one view, without joining them. ``base``, ``first`` and ``count`` are the caller's
    (for chunks: the byte offset of the buffer's start in the object, the first chunk
    number and the number of chunks asked for); ``filled`` is how far messages reach.
    A message that does not fit is delivered as bytes of its own.
    """

    __slots__ = ("base", "count", "filled", "first")

    def __init__(self, size: int, base: int = 0, first: int = 0, count: int = 0) -> None:
        super().__init__(size)
        self.base, self.first, self.count, self.filled = base, first, count, 0

    def place(self, pieces: list[memoryview]) -> memoryview | None:
        """Copy ``pieces`` (one payload) after what is here; a read-only view of them, or
        None when they do not fit."""
        start = self.filled
        end = start + sum(len(p) for p in pieces)
        if end > len(self):
            return None
        view = memoryview(self)
        pos = start
        for p in pieces:
            view[pos : pos + len(p)] = p
            pos += len(p)
        self.filled = end
        return view[start:end].toreadonly()


class ChunkCache(cachetools.LRUCache):
    """The chunk LRU, bounded in bytes. Chunks that came in one batch are views of one
    :class:`Landing`, freed only when all of them are gone: when the LRU evicts one of
    them, it evicts the others of its batch too, so the memory held never exceeds the
    bytes counted (dropping single chunks by key, as a sequential reader's drop-behind
    does, can leave the rest of one batch counted as less than it holds)."""

    def peek(self, key: ChunkKey) -> Chunk | None:
        """The cached chunk ``key`` or None, leaving the LRU order alone (caller holds the
        reader's lock)."""
        try:
            return cachetools.Cache.__getitem__(self, key)
        except KeyError:
            return None

    def popitem(self) -> tuple[ChunkKey, Chunk]:
        key, value = super().popitem()
        land = landing_of(value)
        if land is not None:
            for j in range(land.first, land.first + land.count):
                sibling = (key[0], key[1], j)
                if sibling in self and landing_of(cachetools.Cache.__getitem__(self, sibling)) is land:
                    del self[sibling]
        return key, value


def landing_of(chunk: Chunk) -> Landing | None:
    """The :class:`Landing` a chunk is a view of, if any."""
    land = chunk.obj if isinstance(chunk, memoryview) else None
    return land if isinstance(land, Landing) else None


def assemble(
    idx: ChunkSpans, parts: list[Chunk], first: int, last: int, offset: int, end: int
) -> bytes | memoryview:
    """Bytes ``[offset, end)`` from the chunks ``first..last``: a view when they lie back to
    back in one :class:`Landing` (no copy), else one copy at most."""
    land = landing_of(parts[0])
    if land is not None and all(landing_of(p) is land for p in parts):
        # consecutive chunks of one batch: placed in order, so the range lies in it whole
        return memoryview(land)[offset - land.base : end - land.base].toreadonly()
    base = idx.start(first)
    if len(parts) == 1:
        data = parts[0]
        if offset == base and end - base == len(data):
            return data
        return data[offset - base : end - base]
    head = memoryview(parts[0])[offset - base :]
    tail = memoryview(parts[-1])[: end - idx.start(last)]
    return b"".join([head, *parts[1:-1], tail])
