"""Buckets and metas of the NATS store (asyncio side).

:class:`Core` holds the connection, the chunk reader and every operation of
:class:`~osfs.store.nats.store.NatsStore` as asyncio coroutines; the store only validates
arguments and crosses the bridge once per call into one of these.

* Metas are read by Direct Get ``last_by_subj`` (``STREAM.MSG.GET`` for streams created
  without ``allow_direct``, remembered per bucket once seen); decoded by ``wire.decode_meta``
  with the message's server timestamp.
* ``list_objects`` and ``watch`` use a push consumer on ``$O.<b>.M.>`` delivering the last
  message per subject (metas only, never chunk data): a plain one without flow control for
  a listing (100k names in seconds), an ordered one with heartbeats for a watch, recreated
  from the next sequence after a reconnect. The snapshot ends at the delivery whose ack
  subject says 0 pending; an empty bucket is detected first with one last-by-subject lookup
  on the wildcard, so nothing ever waits for a message that will not come. Malformed metas
  are skipped with one warning per bucket.
* Bucket status ``size`` counts the meta subjects whose last message is not a delete
  marker when the bucket has at most ``COUNT_LIMIT`` names (one STREAM.INFO with
  ``subjects_filter`` gives the per-subject counts, but not whether each is a marker, so the
  number of delete markers is subtracted by a list); beyond that it is -1.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import nats.js.api
from nats.aio.msg import Msg

from ..disk_cache import DiskCache
from ..errors import (
    BadName,
    BucketNotFound,
    Conflict,
    Corrupt,
    NotFound,
    Sealed,
    StoreError,
    Unavailable,
)
from ..types import EPOCH, AccountUsage, BucketConfig, BucketStatus, Link, ObjectInfo, ObjectMeta
from . import wire
from .conn import Conn, RawMsg, map_error
from .read.fetch import ChunkReader
from .upload import ROLLUP, UploadPipe, meta_headers, new_nuid, purge_subject, retry_stale

log = logging.getLogger(__name__)

#: Links followed by ``resolve`` before giving up.
MAX_LINK_DEPTH = 8
#: Buckets with more names than this report ``size`` -1 in their status.
COUNT_LIMIT = 10_000
#: Idle heartbeat of meta consumers (a lost consumer is recreated after two missed ones).
HEARTBEAT = 2.0
#: Pause before a watch tries again to make its consumer after a reconnect (seconds).
CONSUMER_RETRY = 0.5


class Core:
    """Every store operation as an asyncio coroutine; see the module docstring."""

    def __init__(self, conn: Conn, cache_size: int, disk: DiskCache | None = None) -> None:
        self.conn = conn
        self.reader = ChunkReader(conn, cache_size, self.last_info, disk)
        self._warned: set[str] = set()
        self.closed = False

    async def close(self) -> None:
        self.closed = True
        await self.reader.close()
        await self.conn.close()

    # ----- helpers ---------------------------------------------------------------------
    async def _last(self, bucket: str, subject: str) -> RawMsg | None:
        return await self.conn.last_msg(wire.stream_name(bucket), subject)

    def _decode(self, bucket: str, msg: RawMsg) -> ObjectInfo:
        return wire.decode_meta(
            msg.data, bucket=bucket, revision=msg.seq, timestamp=wire.parse_timestamp(msg.time)
        )

    async def last_info(self, bucket: str, name: str, leader: bool = False) -> ObjectInfo | None:
        """The latest meta of ``name`` (delete markers included), None if there is none;
        ``leader``: read by STREAM.MSG.GET from the stream leader (a Direct Get may be
        answered by a replica that lags, which a conditional publish would refuse)."""
        subject = wire.meta_subject(bucket, name)
        if leader:
            msg = await self.conn.msg_get(wire.stream_name(bucket), {"last_by_subj": subject})
        else:
            msg = await self._last(bucket, subject)
        if msg is None:
            return None
        info = self._decode(bucket, msg)
        self.reader.observe(info)
        return info

    async def _stream_info(self, bucket: str, body: dict | None = None) -> dict:
        return await self.conn.api("STREAM.INFO." + wire.stream_name(bucket), body)

    async def _publish_meta(self, info: ObjectInfo, expected: int | None = None) -> ObjectInfo:
        """Publish ``info`` as the latest meta of its name; with ``expected``, only while the
        name's meta subject is at that sequence (0: no meta), else ``StaleRevision``."""
        seq, when = await self.conn.publish_stored(
            wire.stream_name(info.bucket),
            wire.meta_subject(info.bucket, info.name),
            wire.encode_meta(info),
            ROLLUP if expected is None else meta_headers(expected),
        )
        info = replace(info, revision=seq, mtime=when or datetime.now(UTC))
        self.reader.observe(info)
        return info

    async def _writable(self, bucket: str) -> BucketStatus:
        status = wire.bucket_status(await self._stream_info(bucket))
        if status.read_only:
            raise Sealed(f"bucket {bucket} is {'sealed' if status.sealed else 'a mirror'}")
        return status

    # ----- buckets ---------------------------------------------------------------------
    async def bucket_names(self) -> list[str]:
        names: set[str] = set()
        offset = 0
        while True:
            reply = await self.conn.api("STREAM.NAMES", {"offset": offset})
            streams = reply.get("streams") or []
            for s in streams:
                b = wire.bucket_of_stream(s)
                if b is not None:
                    names.add(b)
            offset += len(streams)
            if not streams or offset >= int(reply.get("total", 0)):
                break
        return sorted(names)

    async def bucket_status(self, bucket: str) -> BucketStatus:
        si = await self._stream_info(bucket)
        return wire.bucket_status(si, objects=await self._count_live(bucket, si))

    async def _count_live(self, bucket: str, si: dict) -> int:
        state = si.get("state") or {}
        if int(state.get("messages", 0)) == 0:
            return 0
        try:
            reply = await self._stream_info(bucket, {"subjects_filter": wire.meta_wildcard(bucket)})
        except StoreError:
            return -1
        subjects = (reply.get("state") or {}).get("subjects") or {}
        if len(subjects) > COUNT_LIMIT:
            return -1
        if not subjects:
            return 0
        infos = await self.list_objects(bucket, show_deleted=True)
        return sum(1 for i in infos if not i.deleted)

    async def create_bucket(self, config: BucketConfig) -> BucketStatus:
        try:
            cfg = wire.stream_config(config)
        except ValueError as exc:
            raise BadName(str(exc)) from exc
        try:
            si = await self.conn.api("STREAM.CREATE." + cfg["name"], cfg)
        except Conflict:
            raise Conflict(f"bucket {config.bucket} exists with a different config") from None
        return wire.bucket_status(si, objects=0 if not (si.get("state") or {}).get("messages") else -1)

    async def delete_bucket(self, bucket: str) -> None:
        await self.conn.api("STREAM.DELETE." + wire.stream_name(bucket))
        self.conn.no_direct.discard(wire.stream_name(bucket))

    async def seal_bucket(self, bucket: str) -> BucketStatus:
        si = await self._stream_info(bucket)
        cfg = dict(si["config"])
        if not cfg.get("sealed"):
            cfg["sealed"] = True
            si = await self.conn.api("STREAM.UPDATE." + cfg["name"], cfg)
        return wire.bucket_status(si, objects=await self._count_live(bucket, si))

    async def account_usage(self) -> AccountUsage:
        info = await self.conn.api("INFO")
        limits = info.get("limits") or {}
        max_storage = int(limits.get("max_storage", -1))
        max_memory = int(limits.get("max_memory", -1))
        if max_storage < 0 or max_memory < 0:
            server = await self._server_limits()
            if max_storage < 0:
                max_storage = server.get("max_storage", -1)
            if max_memory < 0:
                max_memory = server.get("max_memory", -1)
        return AccountUsage(
            storage_used=int(info.get("storage", 0)),
            memory_used=int(info.get("memory", 0)),
            max_storage=max_storage,
            max_memory=max_memory,
            streams=int(info.get("streams", 0)),
            max_streams=int(limits.get("max_streams", -1)),
        )

    async def _server_limits(self) -> dict[str, int]:
        """The server's JetStream ``max_storage``/``max_memory`` ($SYS.REQ.SERVER.PING.JSZ).

        Needs system-account rights; without them (the usual case) this is ``{}``.
        """
        try:
            msg = await asyncio.wait_for(
                self.conn.nc.request("$SYS.REQ.SERVER.PING.JSZ", b"", timeout=0.5), 1.0
            )
            data = (json.loads(msg.data).get("data") or {}).get("config") or {}
            return {k: int(data[k]) for k in ("max_storage", "max_memory") if k in data}
        except Exception:
            return {}

    # ----- metas -----------------------------------------------------------------------
    async def info(self, bucket: str, name: str, show_deleted: bool, leader: bool = False) -> ObjectInfo:
        # A missing bucket never answers 404 (Direct Get: no responders; MSG.GET: stream not
        # found), so None here means the bucket exists and the name does not.
        info = await self.last_info(bucket, name, leader)
        if info is None or (info.deleted and not show_deleted):
            raise NotFound(f"{bucket}/{name}")
        return info

    async def check_bucket(self, bucket: str) -> None:
        """Raise ``BucketNotFound`` if the bucket does not exist."""
        await self._stream_exists(bucket)

    async def _stream_exists(self, bucket: str) -> None:
        """Raise ``BucketNotFound`` if the bucket is missing (Direct Get alone cannot tell)."""
        await self.conn.api("STREAM.INFO." + wire.stream_name(bucket))

    async def list_objects(self, bucket: str, show_deleted: bool) -> list[ObjectInfo]:
        out: list[ObjectInfo] = []
        async for info in self.metas(bucket, initial=True, live=False):
            if info is not None and (show_deleted or not info.deleted):
                out.append(info)
        return out

    async def metas(self, bucket: str, *, initial: bool, live: bool) -> AsyncIterator[ObjectInfo | None]:
        """Metas from a consumer: the snapshot (``initial``, from a plain consumer), ``None``,
        then live updates while ``live`` (from an ordered consumer; ends after the snapshot
        otherwise).

        After a reconnect the consumer is recreated from the sequence after the last one
        delivered, so no update is lost or repeated.
        """
        await self._stream_exists(bucket)
        if initial and await self._last(bucket, wire.meta_wildcard(bucket)) is None:
            yield None
            if not live:
                return
            initial = False
        snapshot = initial
        last_seq = 0
        if not initial:
            si = await self._stream_info(bucket)
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
            self.reader.observe(info)
            return info
        except Corrupt as exc:
            if bucket not in self._warned:
                self._warned.add(bucket)
                log.warning("skipping malformed metas in bucket %s: %s", bucket, exc)
            return None

    async def update_meta(self, bucket: str, name: str, meta: ObjectMeta) -> ObjectInfo:
        await self._writable(bucket)

        async def update(retry: bool) -> ObjectInfo:
            info = await self.info(bucket, name, False, retry)
            new = replace(info, description=meta.description, headers=meta.headers, metadata=meta.metadata)
            return await self._publish_meta(new, info.revision)

        return await retry_stale(update)

    async def rename(self, bucket: str, old: str, new: str, replace_existing: bool) -> ObjectInfo:
        await self._writable(bucket)
        info = await self.info(bucket, old, False)
        if old == new:
            return info
        target: ObjectInfo | None = None

        async def move(retry: bool) -> ObjectInfo:
            nonlocal target
            target = await self.last_info(bucket, new, retry)
            if target is not None and not target.deleted and not replace_existing:
                raise Conflict(f"{bucket}/{new} exists")
            return await self._publish_meta(replace(info, name=new), target.revision if target else 0)

        moved = await retry_stale(move)
        live_target = target is not None and not target.deleted
        stream = wire.stream_name(bucket)
        # only up to the version moved: one committed under ``old`` meanwhile stays
        await purge_subject(self.conn, stream, wire.meta_subject(bucket, old), before=info.revision + 1)
        if (
            live_target
            and target is not None
            and not target.is_link
            and target.nuid
            and target.nuid != info.nuid
        ):
            await purge_subject(self.conn, stream, wire.chunk_subject(bucket, target.nuid))
        return moved

    async def delete(self, bucket: str, name: str) -> None:
        await self._writable(bucket)

        async def mark(retry: bool) -> ObjectInfo:
            info = await self.info(bucket, name, False, retry)
            await self._publish_meta(replace(info, deleted=True, size=0, chunks=0, digest=""), info.revision)
            return info

        info = await retry_stale(mark)
        if info.nuid:
            await purge_subject(self.conn, wire.stream_name(bucket), wire.chunk_subject(bucket, info.nuid))

    async def _check_link_name(self, bucket: str, name: str) -> None:
        existing = await self.last_info(bucket, name)
        if existing is not None and not existing.deleted and not existing.is_link:
            raise Conflict(f"{bucket}/{name} exists and is not a link")

    async def add_link(
        self,
        bucket: str,
        name: str,
        target_bucket: str,
        target_name: str,
        metadata: dict[str, str] | None = None,
    ) -> ObjectInfo:
        await self._writable(bucket)
        target = await self.last_info(target_bucket, target_name)
        if target is None:
            await self._stream_exists(target_bucket)
            raise NotFound(f"{target_bucket}/{target_name}")
        if target.deleted or target.is_link:
            raise Conflict(f"cannot link to {'a deleted object' if target.deleted else 'a link'}")
        await self._check_link_name(bucket, name)
        return await self._publish_link(bucket, name, Link(target_bucket, target_name), metadata)

    async def add_bucket_link(
        self, bucket: str, name: str, target_bucket: str, metadata: dict[str, str] | None = None
    ) -> ObjectInfo:
        await self._writable(bucket)
        await self._stream_exists(target_bucket)
        await self._check_link_name(bucket, name)
        return await self._publish_link(bucket, name, Link(target_bucket), metadata)

    async def _publish_link(
        self, bucket: str, name: str, link: Link, metadata: dict[str, str] | None = None
    ) -> ObjectInfo:
        info = ObjectInfo(
            bucket=bucket,
            name=name,
            nuid=new_nuid(),
            size=0,
            chunks=0,
            digest="",
            mtime=datetime.now(UTC),
            link=link,
            metadata=dict(metadata or {}),
        )
        return await self._publish_meta(info)

    async def resolve(self, bucket: str, name: str) -> ObjectInfo:
        info = await self.info(bucket, name, False)
        for _ in range(MAX_LINK_DEPTH):
            if info.link is None:
                return info
            if info.link.name is None:
                raise Conflict(f"{bucket}/{name} is a bucket link")
            try:
                info = await self.info(info.link.bucket, info.link.name, False)
            except (BucketNotFound, BadName) as exc:
                raise NotFound(f"{bucket}/{name}: dangling link") from exc
        if info.link is None:
            return info
        raise NotFound(f"{bucket}/{name}: too many levels of links")

    # ----- data ------------------------------------------------------------------------
    async def begin_put(self, bucket: str, meta: ObjectMeta, chunk_size: int) -> UploadPipe:
        limit = self.conn.nc.max_payload
        if limit and chunk_size > limit:
            raise BadName(f"chunk size {chunk_size} exceeds the server's max_payload {limit}")
        status = await self._writable(bucket)
        return UploadPipe(
            self.conn, bucket, meta, chunk_size, status.max_object_size, self.last_info, self.reader.observe
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
