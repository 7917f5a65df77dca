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
last one wins, and every replaced version's chunks are purged. That commit is
:meth:`osfs.store.semantics.Semantics.commit`, the same conditional publish as renames,
deletes and metadata updates.

If the meta publish itself fails without an answer (timeout, lost connection), the meta is
re-read: a meta with our nuid means the put did commit; an unreadable state leaves the new
chunks alone rather than risk purging data a committed meta points at.

**One round trip for a small object.** When the whole object is one chunk still held at
``commit`` and the writer said what the name holds (``replacing``), the chunk (with its
nuid as ``Nats-Msg-Id``) and the meta are published back to back and their acks awaited
together. The meta carries ``Nats-Expected-Last-Msg-Id`` = that nuid besides its usual
condition, so the server stores it only if the stream's last message is our chunk: a
refused or lost chunk can never be followed by a visible meta. When the meta is refused
(the chunk failed, another message came in between, the name changed), the chunk's own
answer decides: its error is raised, or the meta is committed the usual way.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from dataclasses import replace
from datetime import UTC, datetime

from ..errors import StoreError, TooLarge, Unavailable
from ..semantics import Semantics
from ..types import ObjectInfo, ObjectMeta, Replacing
from . import wire
from .conn import Conn
from .digest import Sha256Pipe
from .meta import MSG_ID, NatsMetaStream, new_nuid, purge_subject

log = logging.getLogger(__name__)

#: Chunks published and not yet acknowledged, per upload.
ACK_WINDOW = 16


class UploadPipe:
    """One put in progress; every method runs on the asyncio loop. The meta is committed
    through ``semantics`` (:meth:`~osfs.store.semantics.Semantics.commit`)."""

    def __init__(
        self,
        conn: Conn,
        semantics: Semantics,
        metas: NatsMetaStream,
        bucket: str,
        meta: ObjectMeta,
        chunk_size: int,
        max_object_size: int,
        replacing: Replacing | None = None,
        server_time: bool = True,
    ) -> None:
        self._conn = conn
        self._metas = metas
        self._replacing = replacing
        self._server_time = server_time
        self._semantics = semantics
        self._bucket = bucket
        self._meta = meta
        self._chunk_size = chunk_size
        self._max = max_object_size
        self._stream = wire.stream_name(bucket)
        wire.meta_subject(bucket, meta.name)  # ``BadName`` now for a name too long to commit
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
        together = self.chunks == 0 and bool(self._buf) and self._replacing is not None
        try:
            digest = await self._sha.digest()
            if together:
                self._harvest()
                if self._error is not None:
                    raise self._error
                chunk = bytes(self._buf)
                self._buf.clear()
                self._window.append(
                    await self._conn.publish_pipelined(self._subject, chunk, {MSG_ID: self.nuid})
                )
                self.chunks = 1
            else:
                if self._buf:
                    chunk = bytes(self._buf)
                    self._buf.clear()
                    await self._publish(chunk)
                await self._drain()
        except BaseException:
            await self.abort()
            raise
        info = self._info(digest)
        if together:
            try:
                return await self._commit_together(info)
            except BaseException:
                await self.abort()
                raise
        self._finished = True
        return await self._commit(info, self._replacing)

    async def _commit_together(self, info: ObjectInfo) -> ObjectInfo:
        """Publish the meta of the one chunk in flight right behind it (see the module
        docstring); the usual commit if the server refuses the meta and stored the chunk.
        The caller aborts the upload if this raises before it is finished."""
        assert self._replacing is not None
        try:
            committed = await self._metas.publish_meta(
                info, expected=self._replacing.revision, stamp=self._server_time, after=self.nuid
            )
        except Unavailable as exc:
            # the meta may be stored: the re-read decides, and purges only if it is not
            self._finished = True
            for fut in self._window:
                if fut.done() and not fut.cancelled():
                    fut.exception()  # retrieved: the re-read decides
            self._window.clear()
            return await self._settle_unanswered(info, exc)
        except StoreError:
            await self._drain()  # the chunk's error, if it was refused
            self._finished = True
            return await self._commit(info, None)
        self._finished = True
        # the meta's condition proves the chunk is stored: its ack is only collected
        if self._window:
            await asyncio.wait(list(self._window), timeout=self._conn.timeout)
            for fut in self._window:
                if fut.done() and not fut.cancelled():
                    fut.exception()
        self._window.clear()
        old = self._replacing.nuid
        if old and old != info.nuid:
            try:
                await self._metas.purge_chunks(info.bucket, old)
            except StoreError as exc:
                log.warning(
                    "%s/%s: purging the replaced version's chunks failed: %s", info.bucket, info.name, exc
                )
        return committed

    def _info(self, digest: bytes) -> ObjectInfo:
        """The meta of this upload, all of whose chunks are sent, with ``digest``."""
        return ObjectInfo(
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

    async def _commit(self, info: ObjectInfo, belief: Replacing | None) -> ObjectInfo:
        """Commit ``info`` through the semantics (``belief``: what the name holds, or None
        to read the previous meta first); purge the new chunks if that fails."""
        settled = False  # the publish got no answer and ``_settle_unanswered`` decided

        async def unanswered(info: ObjectInfo, exc: Unavailable) -> ObjectInfo:
            nonlocal settled
            settled = True
            return await self._settle_unanswered(info, exc)

        try:
            return await self._semantics.commit(
                info, unanswered=unanswered, replacing=belief, stamp=self._server_time
            )
        except BaseException:
            if not settled:
                await self._purge_new()
            raise

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

    async def _reread(self) -> ObjectInfo | None:
        try:
            return await self._semantics.stream.last_meta(self._bucket, self._meta.name)
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
