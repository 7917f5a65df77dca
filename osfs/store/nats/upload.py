"""The write path of the NATS store: one streaming put (asyncio side).

Data is re-chunked to the chunk size and hashed (SHA-256, in a worker thread:
:mod:`osfs.store.nats.digest`) as it passes; each full chunk is
published at once with its ack awaited in the background, at most ``ACK_WINDOW`` chunks
unacknowledged, so ``write`` returns as soon as the data is buffered or handed to the
connection and waits only when the window is full. ``commit`` sends the short last chunk,
waits for every ack, publishes the meta (``Nats-Rollup: sub``) and then purges the chunks of
the version it replaced (unless that was deleted or a link). Any failure before the meta is
stored, and ``abort``, purge the new chunk subject, so the previous version stays intact and
no orphan chunks remain.

The meta is published on condition (``Nats-Expected-Last-Subject-Sequence``) that its subject
is still at the revision of the meta read just before, so the version whose chunks are purged
is exactly the one the meta replaced. When another writer published in between, the server
refuses (``StaleRevision``), the previous meta is read again and the publish retried (at most
``PUBLISH_ATTEMPTS`` times, with a short random pause): of concurrent commits of one name the
last one wins, and every replaced version's chunks are purged. ``core`` publishes its
metas (renames, deletes, metadata updates) on the same condition with :func:`retry_stale`.

If the meta publish itself fails without an answer (timeout, lost connection), the meta is
re-read: a meta with our nuid means the put did commit; an unreadable state leaves the new
chunks alone rather than risk purging data a committed meta points at.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import TypeVar

from nats.nuid import NUID

from ..errors import StaleRevision, StoreError, TooLarge, Unavailable
from ..types import ObjectInfo, ObjectMeta
from . import wire
from .conn import Conn
from .digest import Sha256Pipe

log = logging.getLogger(__name__)

#: Chunks published and not yet acknowledged, per upload.
ACK_WINDOW = 16

ROLLUP = {"Nats-Rollup": "sub"}

#: Tries of a conditional meta publish before ``StaleRevision`` is raised.
PUBLISH_ATTEMPTS = 10
#: Upper bound of the random pause before retry ``n`` (seconds, times ``n``).
RETRY_PAUSE = 0.02

T = TypeVar("T")

_nuid = NUID()


def meta_headers(expected: int) -> dict[str, str]:
    """Headers of a meta publish that the server stores only while the meta subject's last
    message is at sequence ``expected`` (0: the subject has no message)."""
    return {**ROLLUP, "Nats-Expected-Last-Subject-Sequence": str(expected)}


async def retry_stale(attempt: Callable[[bool], Awaitable[T]]) -> T:
    """Run ``attempt(retry)`` (which reads the current meta and publishes conditionally)
    until it does not raise ``StaleRevision``: at most ``PUBLISH_ATTEMPTS`` runs, with a short
    random pause between them; the last run's ``StaleRevision`` propagates. ``retry`` is True
    after a refusal: the attempt then reads the meta from the stream leader."""
    for n in range(1, PUBLISH_ATTEMPTS):
        try:
            return await attempt(n > 1)
        except StaleRevision:
            await asyncio.sleep(random.uniform(0, RETRY_PAUSE * n))
    return await attempt(True)


def new_nuid() -> str:
    """A fresh 22-character NUID (a new chunk subject per version)."""
    return _nuid.next().decode()


class UploadPipe:
    """One put in progress; every method runs on the asyncio loop.

    ``last_info(bucket, name, leader)`` returns the current meta (delete markers included) or
    None, read from the stream leader when ``leader``;
    ``observe(info)`` is told of the committed meta (the read path drops what it replaced).
    """

    def __init__(
        self,
        conn: Conn,
        bucket: str,
        meta: ObjectMeta,
        chunk_size: int,
        max_object_size: int,
        last_info: Callable[[str, str, bool], Awaitable[ObjectInfo | None]],
        observe: Callable[[ObjectInfo], None],
    ) -> None:
        self._conn = conn
        self._bucket = bucket
        self._meta = meta
        self._chunk_size = chunk_size
        self._max = max_object_size
        self._last_info = last_info
        self._observe = observe
        self._stream = wire.stream_name(bucket)
        self._meta_subject = wire.meta_subject(bucket, meta.name)
        self.nuid = new_nuid()
        self._subject = wire.chunk_subject(bucket, self.nuid)
        self._buf = bytearray()
        self._sha = Sha256Pipe()
        self.size = 0
        self.chunks = 0
        self._window: collections.deque[asyncio.Future[dict]] = collections.deque()
        self._error: BaseException | None = None
        self._finished = False

    # ----- chunks ------------------------------------------------------------------------
    def _harvest(self) -> None:
        while self._window and self._window[0].done():
            fut = self._window.popleft()
            if fut.cancelled():
                self._error = self._error or Unavailable("chunk publish cancelled")
            elif fut.exception() is not None and self._error is None:
                self._error = fut.exception()

    async def _wait_oldest(self) -> None:
        """Wait for the oldest ack in flight; ``Unavailable`` if none came in time."""
        done, _ = await asyncio.wait([self._window[0]], timeout=self._conn.timeout)
        if not done:
            self._error = self._error or Unavailable(
                f"{self._bucket}/{self._meta.name}: no ack for a chunk in {self._conn.timeout:g}s"
            )
        self._harvest()

    async def _publish(self, chunk: bytes | memoryview) -> None:
        self._harvest()
        while len(self._window) >= ACK_WINDOW and self._error is None:
            await self._wait_oldest()
        if self._error is not None:
            raise self._error
        self._window.append(await self._conn.publish_pipelined(self._subject, chunk))
        self.chunks += 1

    @property
    def bucket(self) -> str:
        return self._bucket

    @property
    def name(self) -> str:
        return self._meta.name

    @property
    def max_size(self) -> int:
        """The bucket's max object size (-1: unlimited)."""
        return self._max

    async def write(self, data: bytes) -> None:
        await self.write_blocks([data])

    async def write_blocks(self, blocks: list[bytes]) -> None:
        """Append each of ``blocks`` in order (one bridge crossing for many writes)."""
        if self._finished:
            raise StoreError("upload already finished")
        if self._error is not None:
            raise self._error
        n = sum(len(b) for b in blocks)
        if self._max >= 0 and self.size + n > self._max:
            raise TooLarge(f"{self._bucket}/{self._meta.name}: exceeds max object size {self._max}")
        try:
            await self._sha.update_all(blocks)
            self.size += n
            for data in blocks:
                await self._take(data)
        except asyncio.CancelledError:
            # Part of the data may be hashed but not published: this upload cannot commit.
            self._error = self._error or Unavailable("upload interrupted in the middle of a write")
            raise

    async def _take(self, data: bytes) -> None:
        n = len(data)
        cs = self._chunk_size
        view = memoryview(data)
        pos = 0
        if self._buf:
            take = min(cs - len(self._buf), n)
            self._buf += view[:take]
            pos = take
            if len(self._buf) < cs:
                return
            chunk = bytes(self._buf)
            self._buf.clear()
            await self._publish(chunk)
        while n - pos >= cs:  # whole chunks go out as views of ``data`` (nats-py copies them)
            await self._publish(view[pos : pos + cs] if pos or n != cs else data)
            pos += cs
        if pos < n:
            self._buf += view[pos:]

    async def _drain(self) -> None:
        while self._window and self._error is None:
            await self._wait_oldest()
        if self._error is not None:
            raise self._error

    # ----- commit and abort -------------------------------------------------------------------
    async def finish(self, blocks: list[bytes]) -> ObjectInfo:
        """``write_blocks(blocks)`` then ``commit()``, in one bridge crossing; a failed
        write aborts the upload."""
        if blocks:
            try:
                await self.write_blocks(blocks)
            except BaseException:
                await self.abort()
                raise
        return await self.commit()

    async def commit(self) -> ObjectInfo:
        if self._finished:
            raise StoreError("upload already finished")
        try:
            if self._buf:
                chunk = bytes(self._buf)
                self._buf.clear()
                await self._publish(chunk)
            await self._drain()
            digest = await self._sha.digest()
        except BaseException:
            await self.abort()
            raise
        self._finished = True
        info = ObjectInfo(
            bucket=self._bucket,
            name=self._meta.name,
            nuid=self.nuid,
            size=self.size,
            chunks=self.chunks,
            digest=wire.encode_digest(digest),
            mtime=datetime.now(UTC),
            description=self._meta.description,
            headers=self._meta.headers,
            metadata=self._meta.metadata,
            max_chunk_size=self._chunk_size,
        )
        old: ObjectInfo | None = None
        sent = False  # a publish is out whose answer may have been lost

        async def attempt(retry: bool) -> ObjectInfo:
            nonlocal old, sent
            sent = False
            old, expected = await self._previous(retry)
            sent = True
            seq, when = await self._conn.publish_stored(
                self._stream, self._meta_subject, wire.encode_meta(info), meta_headers(expected)
            )
            return replace(info, revision=seq, mtime=when or info.mtime)

        try:
            info = await retry_stale(attempt)
        except Unavailable as exc:
            if not sent:
                await self._purge_new()
                raise
            info = await self._settle_unanswered(info, exc)
        except BaseException:
            await self._purge_new()
            raise
        self._observe(info)
        if old is not None and not old.deleted and not old.is_link and old.nuid and old.nuid != self.nuid:
            try:
                await purge_subject(self._conn, self._stream, wire.chunk_subject(self._bucket, old.nuid))
            except StoreError as exc:
                log.warning(
                    "%s/%s: purging the replaced version's chunks failed: %s",
                    self._bucket,
                    self._meta.name,
                    exc,
                )
        return info

    async def _settle_unanswered(self, info: ObjectInfo, exc: Unavailable) -> ObjectInfo:
        """The meta publish got no answer: re-read the meta. Ours means the put committed;
        another one means it did not (the new chunks are purged); an unreadable state leaves
        the new chunks alone. Raises ``exc`` unless the put committed."""
        current = await self._reread()
        if current is not None and current.nuid == self.nuid:
            return replace(info, revision=current.revision, mtime=current.mtime)
        if current is not None:
            await self._purge_new()
        raise exc

    async def _previous(self, leader: bool) -> tuple[ObjectInfo | None, int]:
        """The meta this put replaces (None when there is none or it is unreadable) and the
        sequence its subject must still be at when the new meta is published."""
        try:
            old = await self._last_info(self._bucket, self._meta.name, leader)
        except StoreError as exc:
            if isinstance(exc, Unavailable):
                raise
            log.warning("%s/%s: unreadable previous meta is replaced: %s", self._bucket, self._meta.name, exc)
            if leader:
                raw = await self._conn.msg_get(self._stream, {"last_by_subj": self._meta_subject})
            else:
                raw = await self._conn.last_msg(self._stream, self._meta_subject)
            return None, raw.seq if raw is not None else 0
        return old, old.revision if old is not None else 0

    async def _reread(self) -> ObjectInfo | None:
        try:
            return await self._last_info(self._bucket, self._meta.name, False)
        except Unavailable:
            raise Unavailable(f"{self._bucket}/{self._meta.name}: commit state unknown") from None
        except StoreError:
            return None

    async def abort(self) -> None:
        """Purge the new chunks once the publishes in flight are answered; idempotent.

        Publishes already handed to the connection cannot be recalled, so the purge waits for
        their acks (at most the request timeout): a purge that overtook them would leave
        orphan chunks behind.
        """
        if self._finished:
            return
        self._finished = True
        self._buf.clear()
        if self._window:
            await asyncio.wait(list(self._window), timeout=self._conn.timeout)
            for fut in self._window:
                if not fut.done():
                    fut.cancel()
                elif not fut.cancelled():
                    fut.exception()  # retrieved: an aborted upload's errors are expected
        self._window.clear()
        if self.chunks:
            await self._purge_new()

    async def _purge_new(self) -> None:
        try:
            await purge_subject(self._conn, self._stream, self._subject)
        except StoreError as exc:
            log.warning(
                "%s/%s: purging the chunks of an unfinished upload failed: %s",
                self._bucket,
                self._meta.name,
                exc,
            )


async def purge_subject(conn: Conn, stream: str, subject: str, *, before: int | None = None) -> int:
    """Purge every message on ``subject`` (only those with a sequence below ``before`` when
    given, so messages stored since the caller looked are kept); returns how many were purged."""
    body: dict[str, object] = {"filter": subject}
    if before is not None:
        body["seq"] = before
    reply = await conn.api("STREAM.PURGE." + stream, body)
    return int(reply.get("purged", 0))
