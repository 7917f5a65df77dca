"""The paced read of a bucket's metas for a listing: Batch Direct Get, request by request.

A listing of a big bucket must never outrun its reader: a push consumer without flow
control streams as fast as the server can send, and when the client falls behind the
server cuts the connection ("Slow Consumer Detected"), failing every other request on it.
:func:`walk_metas` instead asks for the messages on ``$O.<bucket>.M.>`` in bounded batches
(``batch`` messages and ``max_bytes`` bytes per request), and asks for the next batch (from
the last sequence + 1) only when its reader has taken the previous one, with at most one
request in flight: the server holds at most one batch for this listing, whatever the size
of the bucket. The request for batch ``n + 1`` goes out before batch ``n`` is handed to the
reader, so the server reads the next batch while the reader decodes this one.

A batch that gets no answer is asked for again (``ATTEMPTS`` times in all, a reconnect in
between is fine); then the listing fails with ``Unavailable`` and one log line: nothing
retries forever. A server without batch support answers one message without
``Nats-Num-Pending``: :class:`NoBatchSupport` then tells the caller to read another way.

The walk sees every message on the meta subjects in stream order, so a meta published
while it runs shows up too; :class:`Coherence` turns what the walk saw into the bucket's
state at its end (a name updated meanwhile is seen twice, the later wins; the old name of a
rename is purged without a message, so it is detected by its nuid reappearing).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from ..errors import Corrupt, Unavailable
from ..types import ObjectInfo
from . import wire
from .conn import Conn, RawMsg

log = logging.getLogger(__name__)

#: Messages asked for per batch request.
BATCH = 1000
#: Bytes a batch may take at most (subjects, headers and payloads; metas are a few hundred
#: bytes each, so a batch is usually cut by ``BATCH``). Far below the server's per-client
#: pending limit (64 MiB), so no listing can fill it; small enough that parsing one batch
#: holds up the loop for milliseconds only.
BATCH_BYTES = 256 * 1024
#: Metas decoded between two turns of the loop, so that a listing does not hold up the
#: other requests on it for long.
DECODE_SLICE = 32
#: Requests of one batch before the listing fails with ``Unavailable``.
ATTEMPTS = 3
#: Pause between attempts of one batch (seconds, times the attempt number).
RETRY_PAUSE = 0.5


class NoBatchSupport(Exception):
    """The server answered a batch Direct Get with a single message (before 2.11)."""


async def walk_metas(conn: Conn, bucket: str, *, start_seq: int = 1) -> AsyncIterator[list[RawMsg]]:
    """Batches of the messages on ``bucket``'s meta subjects from ``start_seq`` on, in
    stream order, until the server says none is pending (an empty bucket gives nothing).

    The next batch is requested when this one is handed over, so at most one batch waits
    on the server and one in the caller's hands. ``Unavailable`` (logged once) when a
    batch cannot be read in ``ATTEMPTS`` tries; ``NoBatchSupport`` from the first batch of
    an old server; other store errors as they come.
    """
    batches = _Batches(conn, bucket)
    seq = start_seq
    first = True
    ahead = await batches.send(seq)
    try:
        while True:
            batch = await batches.settle(seq, ahead)
            ahead = None
            if not batch:
                return
            last = batch[-1]
            pending = last.headers.get("Nats-Num-Pending")
            if pending is None and first:
                raise NoBatchSupport(f"bucket {bucket}: the server has no batch direct get")
            first = False
            seq = last.seq + 1
            done = pending in (None, "0")
            if not done:
                ahead = await batches.send(seq)
            yield batch
            if done:
                return
    finally:
        if ahead is not None:
            ahead.cancel()


class _Batches:
    """The batch requests of one walk over ``bucket``'s metas."""

    def __init__(self, conn: Conn, bucket: str) -> None:
        self.conn = conn
        self.bucket = bucket
        self.stream = wire.stream_name(bucket)
        self.subject = wire.meta_wildcard(bucket)
        self.why: BaseException | None = None

    async def send(self, seq: int) -> asyncio.Future[list[RawMsg]] | None:
        """Request the batch at ``seq``; None when it could not be sent (the reason is kept
        for :meth:`settle`)."""
        try:
            return await self.conn.batch_get(self.stream, self.subject, seq, BATCH, max_bytes=BATCH_BYTES)
        except Unavailable as exc:
            self.why = exc
            return None

    async def settle(self, seq: int, sent: asyncio.Future[list[RawMsg]] | None) -> list[RawMsg]:
        """The batch at ``seq``, from the request ``sent`` (None: not sent) or, failing that,
        from new requests, ``ATTEMPTS`` in all; then ``Unavailable``, logged once."""
        for attempt in range(1, ATTEMPTS + 1):
            if sent is None and attempt > 1:
                sent = await self.send(seq)
            if sent is not None:
                try:
                    return await asyncio.wait_for(sent, self.conn.timeout)
                except (TimeoutError, Unavailable) as exc:
                    self.why = exc
                sent = None
            if attempt < ATTEMPTS:
                await asyncio.sleep(RETRY_PAUSE * attempt)
        msg = f"bucket {self.bucket}: listing cannot go on from sequence {seq}: {self.why or 'no answer'}"
        log.warning("%s", msg)
        raise Unavailable(msg)


async def decoded_batches(conn: Conn, bucket: str) -> AsyncIterator[list[ObjectInfo | str | Corrupt]]:
    """The walk's batches decoded: metas in stream order, made coherent
    (:class:`Coherence`: the old name of a rename seen on both sides comes as a str, to be
    dropped), and a ``Corrupt`` for each meta that cannot be decoded (to be skipped)."""
    coherence = Coherence(conn, bucket)
    async for batch in walk_metas(conn, bucket):
        out: list[ObjectInfo | str | Corrupt] = []
        for i, msg in enumerate(batch, 1):
            try:
                info = wire.decode_meta(bytes(msg.data), bucket=bucket, revision=msg.seq, timestamp=msg.time)
            except Corrupt as exc:
                out.append(exc)
                continue
            old = coherence.moved_from(info)
            if old is not None and await coherence.gone(old, info.nuid):
                out.append(old)
            out.append(info)
            if i % DECODE_SLICE == 0:
                await asyncio.sleep(0)
        yield out


class Coherence:
    """What a walk saw, made the bucket's state at its end: the old name of a rename.

    A rename publishes the meta under the new name, then purges the old name's subject
    without a message. When the walk passed the old name before that purge, it saw both;
    :meth:`moved_from` notices the nuid seen again under another name, and
    :meth:`gone` asks the server whether the old name still holds that version.
    Keeps the nuid and name of every live meta seen (shared strings: a dict entry each).
    """

    def __init__(self, conn: Conn, bucket: str) -> None:
        self.conn = conn
        self.bucket = bucket
        self._names: dict[str, str] = {}

    def moved_from(self, info: ObjectInfo) -> str | None:
        """The other name seen earlier with ``info``'s version (a live one), else None;
        records ``info``."""
        if info.deleted or not info.nuid:
            return None
        old = self._names.get(info.nuid)
        self._names[info.nuid] = info.name
        return old if old is not None and old != info.name else None

    async def gone(self, old: str, nuid: str) -> bool:
        """True when ``old`` no longer holds a version other than ``nuid`` (it was renamed
        away, or its purge is still to come): the old name is to be dropped. False when
        it holds another version now (the walk reaches that meta later)."""
        msg = await self.conn.last_msg(self.stream, wire.meta_subject(self.bucket, old))
        if msg is None:
            return True
        try:
            now = wire.decode_meta(msg.data, bucket=self.bucket, revision=msg.seq, timestamp=None)
        except Corrupt:
            return False
        return now.deleted or now.nuid == nuid

    @property
    def stream(self) -> str:
        return wire.stream_name(self.bucket)
