"""The stream primitives of :class:`~osfs.store.semantics.Semantics` over a NATS connection
(asyncio side).

:class:`NatsMetaStream` implements :class:`~osfs.store.semantics.MetaStream`: a meta is read
by Direct Get ``last_by_subj`` (``STREAM.MSG.GET`` from the leader when asked, and for
streams created without ``allow_direct``) and decoded by :func:`wire.decode_meta` with the
message's server timestamp; a meta is published with ``Nats-Rollup: sub`` and, when
conditional, ``Nats-Expected-Last-Subject-Sequence`` (the server refuses it with
``StaleRevision`` when another writer published first); purges are ``STREAM.PURGE`` with a
subject filter. Every meta read or written is passed to ``observe`` (the read path drops
the cached versions it replaced).

``writable`` (asked before every put, delete, rename and meta update) answers from the
status it read less than ``WRITABLE_TTL`` seconds ago, so a burst of small writes costs no
``STREAM.INFO`` each. A bucket sealed by another client within that time still refuses the
publishes themselves (the server answers ``Sealed``); one sealed, deleted or created through
this store is read again at once (:meth:`NatsMetaStream.forget_status`).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

from nats.nuid import NUID

from ..errors import Sealed
from ..types import BucketStatus, ObjectInfo
from . import wire
from .conn import Conn, RawMsg
from .consumers import MetaConsumers

ROLLUP = {"Nats-Rollup": "sub"}
#: The header naming a message (its id for the stream's de-duplication).
MSG_ID = "Nats-Msg-Id"
#: The header that makes a publish conditional on the stream's last message's id.
LAST_MSG_ID = "Nats-Expected-Last-Msg-Id"

_nuid = NUID()
#: Guards ``_nuid``: upload pipes are also made on the trio thread (``Core.new_pipe``).
_nuid_lock = threading.Lock()

#: Seconds a bucket's writable status is reused by :meth:`NatsMetaStream.writable`.
WRITABLE_TTL = 1.0


def new_nuid() -> str:
    """A fresh 22-character NUID (a new chunk subject per version); from any thread."""
    with _nuid_lock:
        return _nuid.next().decode()


def meta_headers(expected: int | None) -> dict[str, str]:
    """Headers of a meta publish: a rollup of its subject, stored only while the subject's
    last message is at sequence ``expected`` (0: the subject has no message) when given."""
    if expected is None:
        return ROLLUP
    return {**ROLLUP, "Nats-Expected-Last-Subject-Sequence": str(expected)}


async def purge_subject(conn: Conn, stream: str, subject: str, *, before: int | None = None) -> int:
    """Purge every message on ``subject`` (only those with a sequence below ``before`` when
    given, so messages stored since the caller looked are kept); returns how many were purged."""
    body: dict[str, object] = {"filter": subject}
    if before is not None:
        body["seq"] = before
    reply = await conn.api("STREAM.PURGE." + stream, body)
    return int(reply.get("purged", 0))


class NatsMetaStream:
    """:class:`~osfs.store.semantics.MetaStream` over ``conn``; see the module docstring."""

    def __init__(self, conn: Conn, consumers: MetaConsumers, observe: Callable[[ObjectInfo], None]) -> None:
        self.conn = conn
        self._consumers = consumers
        self._observe = observe
        #: Writable buckets' statuses and when they were read (``time.monotonic``).
        self._writable: dict[str, tuple[float, BucketStatus]] = {}

    async def _last(self, bucket: str, name: str, leader: bool) -> RawMsg | None:
        stream, subject = wire.stream_name(bucket), wire.meta_subject(bucket, name)
        if leader:
            return await self.conn.msg_get(stream, {"last_by_subj": subject})
        return await self.conn.last_msg(stream, subject)

    async def last_meta(self, bucket: str, name: str, *, leader: bool = False) -> ObjectInfo | None:
        # A missing bucket never answers 404 (Direct Get: no responders; MSG.GET: stream not
        # found), so None here means the bucket exists and the name does not.
        msg = await self._last(bucket, name, leader)
        if msg is None:
            return None
        info = wire.decode_meta(
            msg.data, bucket=bucket, revision=msg.seq, timestamp=wire.parse_timestamp(msg.time)
        )
        self._observe(info)
        return info

    async def subject_revision(self, bucket: str, name: str, *, leader: bool = False) -> int:
        msg = await self._last(bucket, name, leader)
        return msg.seq if msg is not None else 0

    async def publish_meta(
        self, info: ObjectInfo, *, expected: int | None, stamp: bool = True, after: str | None = None
    ) -> ObjectInfo:
        """See :class:`~osfs.store.semantics.MetaStream`; with ``after``, the meta is also
        stored only right after the message whose ``Nats-Msg-Id`` is ``after`` (the stream's
        last message must be that one), else the server refuses it."""
        subject, payload = wire.meta_subject(info.bucket, info.name), wire.encode_meta(info)
        headers = meta_headers(expected)
        if after is not None:
            headers = {**headers, LAST_MSG_ID: after}
        if stamp:
            seq, when = await self.conn.publish_stored(
                wire.stream_name(info.bucket), subject, payload, headers
            )
        else:  # the server's timestamp would take a Direct Get more
            ack = await self.conn.publish(subject, payload, headers)
            seq, when = int(ack.get("seq", 0)), None
        info = replace(info, revision=seq, mtime=when or datetime.now(UTC))
        self._observe(info)
        return info

    async def purge_meta(self, bucket: str, name: str, *, before: int) -> None:
        await purge_subject(
            self.conn, wire.stream_name(bucket), wire.meta_subject(bucket, name), before=before
        )

    async def purge_chunks(self, bucket: str, nuid: str) -> None:
        await purge_subject(self.conn, wire.stream_name(bucket), wire.chunk_subject(bucket, nuid))

    async def all_metas(self, bucket: str) -> list[ObjectInfo]:
        return await self._consumers.snapshot(bucket)

    async def check_bucket(self, bucket: str) -> None:
        # Direct Get alone cannot tell a missing bucket: ask for its stream
        await self.conn.api("STREAM.INFO." + wire.stream_name(bucket))

    async def writable(self, bucket: str) -> BucketStatus:
        now = time.monotonic()
        kept = self._writable.get(bucket)
        if kept is not None and now - kept[0] < WRITABLE_TTL:
            return kept[1]
        self._writable.pop(bucket, None)
        status = wire.bucket_status(await self.conn.api("STREAM.INFO." + wire.stream_name(bucket)))
        if status.read_only:
            raise Sealed(f"bucket {bucket} is {'sealed' if status.sealed else 'a mirror'}")
        self._writable[bucket] = (now, status)
        return status

    def forget_status(self, bucket: str) -> None:
        """Read ``bucket``'s status again at the next :meth:`writable` (it was sealed,
        deleted or created)."""
        self._writable.pop(bucket, None)

    async def pause(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def new_nuid(self) -> str:
        return new_nuid()
