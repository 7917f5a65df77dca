"""Chunk indexes of the NATS store's read path (asyncio side).

To read bytes ``[a, b)`` of a version we need, for each chunk number, its stream sequence
and byte span: a :class:`ChunkIndex`. :func:`build_index` makes one in one of two ways:

* *fast path*, three requests in parallel, O(1) whatever the size: the first chunk (Direct
  Get ``next_by_subj``), the last chunk (``last_by_subj``) and the message count on the chunk
  subject (STREAM.INFO ``subjects_filter``). If ``last.seq - first.seq + 1 == chunks ==
  count`` the chunks are contiguous (chunk *i* is at ``first.seq + i``); if ``size -
  len(last) == (chunks - 1) * max_chunk_size`` they are uniform (every chunk but the last is
  full, since no writer exceeds ``max_chunk_size``). The first and last chunk's bytes are
  handed back so the caller can cache them.
* otherwise a *headers-only scan*: an ordered consumer on the chunk subject with
  ``headers_only``, which yields each chunk's stream sequence (ack subject) and size
  (``Nats-Msg-Size``) without any payload.

A version whose chunks do not add up to its meta raises :class:`Gone`.
"""

from __future__ import annotations

import asyncio
import bisect
from dataclasses import dataclass, field

from ...errors import Corrupt
from ...types import ObjectInfo
from .. import wire
from ..conn import Conn, RawMsg

#: Chunk fetches in flight for one read or get.
FETCH_WINDOW = 32
#: Bytes asked for by one batch Direct Get of a whole-object get, and at most this many chunks.
BATCH_BYTES = 1024 * 1024
BATCH_MAX = 256


class Gone(Exception):
    """A chunk of the version is missing (purged, replaced or lost)."""


@dataclass(frozen=True)
class ChunkIndex:
    """Where each chunk of one version is: stream sequence and byte offset.

    Contiguous objects have ``seqs`` None (chunk *i* at ``first_seq + i``); uniform ones have
    ``offsets`` None (chunk *i* starts at ``i * chunk_size``).
    """

    chunks: int
    size: int
    first_seq: int = 0
    chunk_size: int = 0
    seqs: tuple[int, ...] | None = None
    offsets: tuple[int, ...] | None = field(default=None, repr=False)

    def seq(self, i: int) -> int:
        return self.first_seq + i if self.seqs is None else self.seqs[i]

    def start(self, i: int) -> int:
        if self.offsets is None:
            return i * self.chunk_size
        return self.offsets[i]

    def end(self, i: int) -> int:
        return self.size if i + 1 >= self.chunks else self.start(i + 1)

    def chunk_at(self, offset: int) -> int:
        """The chunk holding byte ``offset`` (0 <= offset < size)."""
        if self.offsets is None:
            return offset // self.chunk_size
        return bisect.bisect_right(self.offsets, offset) - 1


@dataclass(frozen=True)
class BuiltIndex:
    """An index and, from the fast path, the bytes of the first and last chunk."""

    index: ChunkIndex
    first: bytes | None = None
    last: bytes | None = None


async def build_index(conn: Conn, info: ObjectInfo) -> BuiltIndex:
    """The index of ``info``'s version; ``Gone`` if its chunks do not match the meta."""
    if not info.nuid:
        raise Corrupt(f"{info.bucket}/{info.name}: meta has no nuid")
    stream = wire.stream_name(info.bucket)
    subject = wire.chunk_subject(info.bucket, info.nuid)
    first, last, count = await asyncio.gather(
        conn.direct_get(stream, {"next_by_subj": subject}),
        conn.last_msg(stream, subject),
        _count(conn, stream, subject),
    )
    if first is None or last is None or count != info.chunks:
        raise Gone()
    mcs = info.max_chunk_size or 0
    contiguous = last.seq - first.seq + 1 == info.chunks
    uniform = mcs > 0 and info.size - len(last.data) == (info.chunks - 1) * mcs
    if contiguous and uniform and len(first.data) == min(mcs, info.size):
        index = ChunkIndex(info.chunks, info.size, first_seq=first.seq, chunk_size=mcs)
        return BuiltIndex(index, first.data, last.data)
    return BuiltIndex(await _scan(conn, info, stream, subject))


async def _count(conn: Conn, stream: str, subject: str) -> int:
    reply = await conn.api("STREAM.INFO." + stream, {"subjects_filter": subject})
    return int(((reply.get("state") or {}).get("subjects") or {}).get(subject, 0))


async def _scan(conn: Conn, info: ObjectInfo, stream: str, subject: str) -> ChunkIndex:
    """Index by a headers-only consumer: stream sequences and sizes, no payload."""
    seqs: list[int] = []
    offsets: list[int] = []
    total = 0
    async for msg in conn.snapshot(stream, subject, headers_only=True):
        parsed = wire.parse_ack_reply(msg.reply or "")
        if parsed is None:
            raise Corrupt(f"{info.bucket}/{info.name}: unexpected delivery {msg.reply!r}")
        seqs.append(parsed[0])
        offsets.append(total)
        total += int((msg.headers or {}).get("Nats-Msg-Size", "0") or 0)
        if len(seqs) > info.chunks:
            break
    if len(seqs) != info.chunks or total != info.size:
        raise Gone()
    return ChunkIndex(info.chunks, info.size, seqs=tuple(seqs), offsets=tuple(offsets))


def per_batch(info: ObjectInfo, idx: ChunkIndex) -> int:
    """Chunks asked for by one batch Direct Get: about ``BATCH_BYTES`` of them."""
    return max(1, min(BATCH_MAX, BATCH_BYTES // max(1, info.size // max(1, idx.chunks))))


def checked_chunk(info: ObjectInfo, idx: ChunkIndex, subject: str, i: int, msg: RawMsg) -> bytes | memoryview:
    """The data of chunk ``i`` from a batch reply; ``Gone`` or ``Corrupt`` if wrong."""
    if msg.subject != subject or msg.seq != idx.seq(i):
        raise Gone()
    if len(msg.data) != idx.end(i) - idx.start(i):
        raise Corrupt(f"{info.bucket}/{info.name}: chunk {i} has {len(msg.data)} bytes")
    return msg.data
