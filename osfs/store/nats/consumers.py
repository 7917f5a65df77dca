"""Meta consumers of the NATS store (asyncio side): the snapshot of a bucket's metas for a
listing, and the live updates of a watch.

``list_objects`` and ``watch`` use a push consumer on ``$O.<b>.M.>`` delivering the last
message per subject (metas only, never chunk data): a plain one without flow control for
a listing (100k names in seconds), an ordered one with heartbeats for a watch, recreated
from the next sequence after a reconnect. The snapshot ends at the delivery whose ack
subject says 0 pending; an empty bucket is detected first with one last-by-subject lookup
on the wildcard, so nothing ever waits for a message that will not come. Malformed metas
are skipped with one warning per bucket.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta

import nats.js.api
from nats.aio.msg import Msg

from ..errors import Corrupt, Unavailable
from ..types import EPOCH, ObjectInfo
from . import wire
from .conn import Conn, map_error

log = logging.getLogger(__name__)

#: Idle heartbeat of meta consumers (a lost consumer is recreated after two missed ones).
HEARTBEAT = 2.0
#: Pause before a watch tries again to make its consumer after a reconnect (seconds).
CONSUMER_RETRY = 0.5


class MetaConsumers:
    """Listings and watches of buckets' metas over ``conn``; ``observe(info)`` is told of
    every meta delivered (the read path drops the versions it replaced)."""

    def __init__(self, conn: Conn, observe: Callable[[ObjectInfo], None]) -> None:
        self.conn = conn
        self._observe = observe
        self._warned: set[str] = set()

    async def snapshot(self, bucket: str) -> list[ObjectInfo]:
        """The latest meta of every name (delete markers included), in stream order."""
        return [i async for i in self.metas(bucket, initial=True, live=False) if i is not None]

    async def metas(self, bucket: str, *, initial: bool, live: bool) -> AsyncIterator[ObjectInfo | None]:
        """Metas from a consumer: the snapshot (``initial``, from a plain consumer), ``None``,
        then live updates while ``live`` (from an ordered consumer; ends after the snapshot
        otherwise).

        After a reconnect the consumer is recreated from the sequence after the last one
        delivered, so no update is lost or repeated.
        """
        await self.conn.api("STREAM.INFO." + wire.stream_name(bucket))
        if initial and await self.conn.last_msg(wire.stream_name(bucket), wire.meta_wildcard(bucket)) is None:
            yield None
            if not live:
                return
            initial = False
        snapshot = initial
        last_seq = 0
        if not initial:
            si = await self.conn.api("STREAM.INFO." + wire.stream_name(bucket))
            last_seq = int((si.get("state") or {}).get("last_seq", 0))
        inbox: collections.deque[Msg] = collections.deque()
        arrived = asyncio.Event()

        async def deliver(msg: Msg) -> None:
            inbox.append(msg)
            arrived.set()

        reconnects = self.conn.reconnects
        # the snapshot streams from a plain consumer (no flow control to wait on); live
        # updates then come from an ordered one, from the sequence after the snapshot's last
        sub: object | None = await self._meta_consumer(
            bucket, None if initial else last_seq + 1, deliver, ordered=live and not snapshot
        )
        try:
            while True:
                if not snapshot and (sub is None or self.conn.reconnects != reconnects):
                    reconnects = self.conn.reconnects
                    if sub is not None:
                        await _unsubscribe(sub)
                        sub = None
                    try:
                        sub = await self._meta_consumer(bucket, last_seq + 1, deliver, ordered=True)
                    except Unavailable as exc:  # the server is not back yet: try again
                        log.debug("bucket %s: watch consumer: %s", bucket, exc)
                        await asyncio.sleep(CONSUMER_RETRY)
                        continue
                if not inbox:
                    arrived.clear()
                    try:
                        await asyncio.wait_for(arrived.wait(), self.conn.timeout if snapshot else 1.0)
                    except TimeoutError:
                        if snapshot:
                            raise Unavailable(f"bucket {bucket}: listing stalled") from None
                        self.conn.check_open()
                    continue
                msg = inbox.popleft()
                seq, pending, ts = _delivery(msg.reply or "")
                if seq and seq <= last_seq and not snapshot:
                    continue
                last_seq = max(last_seq, seq)
                info = self._decode_delivery(bucket, msg, seq, ts)
                if info is not None:
                    yield info
                if snapshot and pending == 0:
                    snapshot = False
                    yield None
                    if not live:
                        return
                    await _unsubscribe(sub)
                    sub = None  # the live consumer is made at the top of the loop
        finally:
            if sub is not None:
                await _unsubscribe(sub)

    async def _meta_consumer(
        self, bucket: str, start_seq: int | None, deliver: Callable[[Msg], Awaitable[None]], *, ordered: bool
    ) -> object:
        """A push consumer on the bucket's metas: last per subject when ``start_seq`` is
        None, else everything from that sequence on.

        ``ordered`` (for watches): an ordered consumer with flow control and heartbeats,
        recreated on gaps. Otherwise (one-shot listings) a plain ephemeral consumer with no
        acks and no flow control, so a large snapshot streams at full speed (nats-py answers
        flow-control requests only every 250 ms); a gap there shows as a missing
        ``pending == 0`` delivery, which the listing's timeout turns into ``Unavailable``.
        """
        if start_seq is None:
            config = nats.js.api.ConsumerConfig(deliver_policy=nats.js.api.DeliverPolicy.LAST_PER_SUBJECT)
        else:
            config = nats.js.api.ConsumerConfig(
                deliver_policy=nats.js.api.DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start_seq
            )
        try:
            if not ordered:
                config.ack_policy = nats.js.api.AckPolicy.NONE
                config.mem_storage = True
                config.num_replicas = 1
                config.inactive_threshold = 30.0
                return await self.conn.js.subscribe(
                    wire.meta_wildcard(bucket),
                    stream=wire.stream_name(bucket),
                    config=config,
                    cb=deliver,
                    pending_msgs_limit=-1,
                    pending_bytes_limit=-1,
                )
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

    def _decode_delivery(self, bucket: str, msg: Msg, seq: int, ts: datetime | None) -> ObjectInfo | None:
        try:
            info = wire.decode_meta(msg.data, bucket=bucket, revision=seq, timestamp=ts)
            self._observe(info)
            return info
        except Corrupt as exc:
            if bucket not in self._warned:
                self._warned.add(bucket)
                log.warning("skipping malformed metas in bucket %s: %s", bucket, exc)
            return None


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
