"""Meta readers of the NATS store (asyncio side): the snapshot of a bucket's metas for a
listing, and the live updates of a watch.

The snapshot (``list_objects``, and the initial part of ``watch``) is read at the pace its
reader takes it: by Batch Direct Get, request by request (:mod:`.listing`), so that no
listing of however many names can fill the server's pending buffer and have the connection
cut; it is read and decoded on the bulk lane (:mod:`.bulk`: a second connection in a thread
of its own) when there is one, so that it does not hold up the store's other requests. A
server without batch support, or a stream without ``allow_direct``, is read from an ordered
consumer with flow control instead, whose deliveries wait while ``INBOX`` of them are not
taken (the server then waits for flow control). The snapshot is made coherent as
it is read (:class:`~.listing.Coherence`): a name updated during the listing ends with its
last meta; the old name of a rename done meanwhile is dropped (a watch yields a delete
marker for it).

The live part of a watch comes from an ordered consumer with flow control and heartbeats,
from the sequence after the snapshot's last (or the stream's last when that is larger), so
no change made while the snapshot was read is lost; it is recreated from the next sequence
after a reconnect, so no update is lost or repeated. Malformed metas are skipped with one
warning per bucket.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta

import nats.js.api
from nats.aio.msg import Msg

from ..errors import Corrupt, StoreError, Unavailable
from ..types import EPOCH, ObjectInfo
from . import wire
from .bulk import BulkLane
from .conn import Conn, map_error
from .listing import Coherence, NoBatchSupport, decoded_batches

log = logging.getLogger(__name__)

#: Idle heartbeat of meta consumers (a lost consumer is recreated after two missed ones).
HEARTBEAT = 2.0
#: Pause before a watch tries again to make its consumer after a reconnect (seconds).
CONSUMER_RETRY = 0.5
#: Deliveries of a consumer held here before its delivery callback waits (so that the
#: server waits for flow control instead of filling the connection).
INBOX = 4096


class MetaConsumers:
    """Listings and watches of buckets' metas over ``conn``; ``observe(info)`` is told of
    every meta read (the read path drops the versions it replaced)."""

    def __init__(
        self, conn: Conn, observe: Callable[[ObjectInfo], None], bulk: BulkLane | None = None
    ) -> None:
        self.conn = conn
        self._observe = observe
        self._bulk = bulk
        self._warned: set[str] = set()

    async def close(self) -> None:
        """Close the bulk lane, if any."""
        if self._bulk is not None:
            await self._bulk.close()

    async def snapshot(self, bucket: str) -> list[ObjectInfo]:
        """The latest meta of every name (delete markers included), oldest first."""
        si = await self.conn.api("STREAM.INFO." + wire.stream_name(bucket))
        infos: dict[str, ObjectInfo] = {}
        async for item in self._initial(bucket, si):
            if isinstance(item, str):
                infos.pop(item, None)
            else:
                infos.pop(item.name, None)  # a later meta moves the name to its place
                infos[item.name] = item
        return list(infos.values())

    async def metas(self, bucket: str, *, initial: bool, live: bool) -> AsyncIterator[ObjectInfo | None]:
        """Metas: with ``initial`` the snapshot (a name may come more than once, the last one
        counts; the old name of a rename done meanwhile comes as a delete marker) and then
        ``None``; then live updates while ``live`` (else it ends there)."""
        si = await self.conn.api("STREAM.INFO." + wire.stream_name(bucket))
        last_seq = int((si.get("state") or {}).get("last_seq", 0))
        if initial:
            async for item in self._initial(bucket, si):
                if isinstance(item, str):
                    yield _removed(bucket, item)
                else:
                    last_seq = max(last_seq, item.revision)
                    yield item
            yield None
        if live:
            async for info in self._live(bucket, last_seq):
                yield info

    # ----- the snapshot ------------------------------------------------------------------
    async def _initial(self, bucket: str, si: dict) -> AsyncIterator[ObjectInfo | str]:
        """The snapshot as read: metas in stream order, and (a str) the old name of a
        rename seen on both sides, to be dropped."""
        stream = wire.stream_name(bucket)
        if (si.get("config") or {}).get("allow_direct") and stream not in self.conn.no_direct:
            try:
                async for item in self._walk(bucket):
                    yield item
                return
            except NoBatchSupport as exc:
                log.info("%s: listing from a consumer", exc)
        async for item in self._consumed(bucket):
            yield item

    async def _walk(self, bucket: str) -> AsyncIterator[ObjectInfo | str]:
        async for batch in self._batches(bucket):
            for item in batch:
                if isinstance(item, Corrupt):
                    self._warn(bucket, item)
                    continue
                if isinstance(item, ObjectInfo):
                    self._observe(item)
                yield item

    async def _batches(self, bucket: str) -> AsyncIterator[list[ObjectInfo | str | Corrupt]]:
        """The decoded batches of a walk: read on the bulk lane when there is one and it
        opens, else on the store's own connection."""
        if self._bulk is not None:
            try:
                await self._bulk.ready()
            except StoreError as exc:
                log.debug("bucket %s: listing on the store's connection: %s", bucket, exc)
            else:
                async for batch in self._bulk.batches(decoded_batches, bucket):
                    yield batch
                return
        async for batch in decoded_batches(self.conn, bucket):
            yield batch

    async def _consumed(self, bucket: str) -> AsyncIterator[ObjectInfo | str]:
        """The snapshot from an ordered consumer (last meta per subject), paced by flow
        control; ``Unavailable`` when its deliveries stall for a timeout."""
        if await self.conn.last_msg(wire.stream_name(bucket), wire.meta_wildcard(bucket)) is None:
            return
        inbox = _Inbox(INBOX)
        coherence = Coherence(self.conn, bucket)
        sub = await self._meta_consumer(bucket, None, inbox.put)
        try:
            while True:
                msg = await inbox.get(self.conn.timeout, bucket)
                seq, pending, ts = _delivery(msg.reply or "")
                info = self._decode(bucket, msg.data, seq, ts)
                if info is not None:
                    old = coherence.moved_from(info)
                    if old is not None and await coherence.gone(old, info.nuid):
                        yield old
                    yield info
                if pending == 0:
                    return
        finally:
            await _unsubscribe(sub)

    # ----- live updates ------------------------------------------------------------------
    async def _live(self, bucket: str, last_seq: int) -> AsyncIterator[ObjectInfo]:
        """Every meta stored after ``last_seq``, as it comes, until cancelled."""
        inbox = _Inbox(INBOX)
        reconnects = self.conn.reconnects
        sub: object | None = None
        try:
            while True:
                if sub is None or self.conn.reconnects != reconnects:
                    reconnects = self.conn.reconnects
                    if sub is not None:
                        await _unsubscribe(sub)
                        sub = None
                    try:
                        sub = await self._meta_consumer(bucket, last_seq + 1, inbox.put)
                    except Unavailable as exc:  # the server is not back yet: try again
                        log.debug("bucket %s: watch consumer: %s", bucket, exc)
                        await asyncio.sleep(CONSUMER_RETRY)
                        continue
                msg = await inbox.next(1.0)
                if msg is None:
                    self.conn.check_open()
                    continue
                seq, _pending, ts = _delivery(msg.reply or "")
                if seq and seq <= last_seq:
                    continue
                last_seq = max(last_seq, seq)
                info = self._decode(bucket, msg.data, seq, ts)
                if info is not None:
                    yield info
        finally:
            if sub is not None:
                await _unsubscribe(sub)

    async def _meta_consumer(
        self, bucket: str, start_seq: int | None, deliver: Callable[[Msg], Awaitable[None]]
    ) -> object:
        """An ordered push consumer (flow control, heartbeats, recreated on gaps) on the
        bucket's metas: the last per subject when ``start_seq`` is None, else everything
        from that sequence on."""
        if start_seq is None:
            config = nats.js.api.ConsumerConfig(deliver_policy=nats.js.api.DeliverPolicy.LAST_PER_SUBJECT)
        else:
            config = nats.js.api.ConsumerConfig(
                deliver_policy=nats.js.api.DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start_seq
            )
        try:
            return await self.conn.js.subscribe(
                wire.meta_wildcard(bucket),
                stream=wire.stream_name(bucket),
                ordered_consumer=True,
                config=config,
                cb=deliver,
                idle_heartbeat=HEARTBEAT,
            )
        except BaseException as exc:
            raise map_error(exc) from exc

    def _decode(
        self, bucket: str, data: bytes | memoryview, seq: int, ts: datetime | None
    ) -> ObjectInfo | None:
        try:
            info = wire.decode_meta(bytes(data), bucket=bucket, revision=seq, timestamp=ts)
        except Corrupt as exc:
            self._warn(bucket, exc)
            return None
        self._observe(info)
        return info

    def _warn(self, bucket: str, exc: Corrupt) -> None:
        if bucket not in self._warned:
            self._warned.add(bucket)
            log.warning("skipping malformed metas in bucket %s: %s", bucket, exc)


class _Inbox:
    """Deliveries of one consumer, at most ``size`` held: :meth:`put` (the delivery
    callback) waits for room, which holds up nats-py's flow-control answers and so the
    server."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._msgs: collections.deque[Msg] = collections.deque()
        self._arrived = asyncio.Event()
        self._room = asyncio.Event()

    async def put(self, msg: Msg) -> None:
        while len(self._msgs) >= self._size:
            self._room.clear()
            await self._room.wait()
        self._msgs.append(msg)
        self._arrived.set()

    async def next(self, timeout: float) -> Msg | None:
        """The next delivery, or None when none came within ``timeout`` seconds."""
        if not self._msgs:
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), timeout)
            except TimeoutError:
                return None
        msg = self._msgs.popleft()
        self._room.set()
        return msg

    async def get(self, timeout: float, bucket: str) -> Msg:
        """The next delivery; ``Unavailable`` when none came within ``timeout`` seconds."""
        msg = await self.next(timeout)
        if msg is None:
            raise Unavailable(f"bucket {bucket}: listing stalled")
        return msg


def _removed(bucket: str, name: str) -> ObjectInfo:
    """A delete marker for ``name`` (dropped from a snapshot: renamed away)."""
    return ObjectInfo(
        bucket=bucket, name=name, nuid="", size=0, chunks=0, digest="", mtime=EPOCH, deleted=True
    )


def _delivery(reply: str) -> tuple[int, int, datetime | None]:
    """Stream sequence, pending count and server time of a JetStream delivery."""
    parsed = wire.parse_ack_reply(reply)
    if parsed is None:
        return 0, 0, None
    tokens = reply.split(".")
    ts_token = tokens[7] if len(tokens) == 9 else tokens[9]
    ts = EPOCH + timedelta(microseconds=int(ts_token) // 1000) if ts_token.isdigit() else None
    return parsed[0], parsed[1], ts


async def _unsubscribe(sub: object) -> None:
    try:
        await sub.unsubscribe()  # type: ignore[attr-defined]
    except Exception as exc:  # the consumer is ephemeral and goes away anyway
        log.debug("unsubscribe of meta consumer: %r", exc)
