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

Resume. An acknowledged chunk is stored on the server; the upload keeps only the bytes of
the unacknowledged ones (the window: at most ``ACK_WINDOW`` chunks, plus the partial last
chunk), and the stream sequence of each stored chunk. When a publish fails for want of the
server (no ack within the request timeout, a lost connection, no stream answering during a
restart), the upload resumes on the same nuid: it walks the messages of its chunk subject
past the last acknowledged one (Direct Get ``next_by_subj``); the ``Nats-Msg-Id`` header of
each (``<nuid>.<chunk index>``, set on every chunk) says which chunk it is. Those that
continue the object in order are kept and dropped from the window; any stored out of order
(after a chunk the server refused, e.g. while the stream was still loading after a restart)
are deleted, and the message ids move to a new generation (``<nuid>.<index>.<generation>``)
so that their republish is not taken for a duplicate. The rest of the window is then
published again, in order. A chunk that lands twice anyway (a publish buffered by the client
across the reconnect, sent before the republish) is dropped by the server's duplicate
detection on the same ``Nats-Msg-Id`` (the stream's duplicate window, two minutes by
default); and after any resume ``commit`` checks that the subject holds exactly ``chunks``
messages before the meta goes out, so the object's size, chunk count and digest always
describe what a reader finds. Resuming gives up after ``RESUME_ATTEMPTS`` tries in a row
with no chunk acknowledged in between (pauses doubling from ``RESUME_PAUSE``, each try and
each wait for an ack bounded by the request timeout): the upload is then failed and can only
be aborted. Errors that are the server's answer (no space, too large, sealed) are never
retried.

Read back. :meth:`UploadPipe.read_back` returns any range of what was written so far:
stored chunks are fetched by stream sequence (Direct Get), the others come from the
window and the partial chunk. The mount reads an open file through it while it streams.

The meta is published on condition (``Nats-Expected-Last-Subject-Sequence``) that its subject
is still at the revision of the meta read just before, so the version whose chunks are purged
is exactly the one the meta replaced. When another writer published in between, the server
refuses (``StaleRevision``), the previous meta is read again and the publish retried (at most
``PUBLISH_ATTEMPTS`` times, with a short random pause): of concurrent commits of one name the
last one wins, and every replaced version's chunks are purged. That commit is
:meth:`osfs.store.semantics.Semantics.commit`, the same conditional publish as renames,
deletes and metadata updates. The meta committed is the one given to ``commit`` (a rename
or a metadata change made while the content streamed), else the one the upload began with.

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
answer decides: its error is raised, or the meta is committed the usual way. The chunk's
message id is ``<nuid>.0`` as for any first chunk, so a resume reads it like the others.

The module is over 500 lines because publishing, resuming, reading back and the one-chunk
commit all work on one state (the window of unacknowledged chunks and the stored chunks'
sequences).
"""

from __future__ import annotations

import asyncio
import collections
import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from ..errors import Corrupt, StoreError, TooLarge, Unavailable
from ..semantics import Semantics
from ..types import ObjectInfo, ObjectMeta, Replacing
from . import wire
from .conn import Conn, RawMsg
from .digest import Sha256Pipe
from .meta import MSG_ID, NatsMetaStream, new_nuid, purge_subject

log = logging.getLogger(__name__)

#: Chunks published and not yet acknowledged, per upload.
ACK_WINDOW = 16
#: Tries to resume a stream after a publish failed for want of the server.
RESUME_ATTEMPTS = 5
#: Pause before the first resume try, in seconds; doubled for each next one, up to
#: ``RESUME_PAUSE_MAX``.
RESUME_PAUSE = 0.1
RESUME_PAUSE_MAX = 2.0


@dataclass(slots=True)
class _Sent:
    """A chunk published and not yet acknowledged: its index, bytes and ack future (None
    while it waits to be published again)."""

    index: int
    data: bytes | memoryview
    fut: asyncio.Future[dict] | None = None


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
        #: Chunks not yet acknowledged, in order (their bytes are kept for a resume).
        self._window: collections.deque[_Sent] = collections.deque()
        #: Stream sequence of every stored chunk, by index (0: stored, sequence not known).
        self._seqs: list[int] = []
        #: A publish failed for want of the server: the window must be published again.
        self._broken = False
        #: Bumped when a resume deleted misplaced chunks: the message ids of the chunks
        #: published again must differ from theirs (``<nuid>.<index>.<generation>``).
        self._generation = 0
        #: How many times the stream was resumed.
        self.resumes = 0
        #: Resume tries since a chunk was last acknowledged (bounded by ``RESUME_ATTEMPTS``).
        self._fruitless = 0
        self._error: BaseException | None = None
        self._finished = False

    # ----- chunks ------------------------------------------------------------------------
    def _harvest(self) -> None:
        """Move the acknowledged chunks at the head of the window to ``_seqs``; note a
        failure (``_broken`` when the server was missing, else ``_error``)."""
        while self._window and self._window[0].fut is not None and self._window[0].fut.done():
            fut = self._window[0].fut
            exc = Unavailable("chunk publish cancelled") if fut.cancelled() else fut.exception()
            if exc is not None:
                if isinstance(exc, Unavailable):
                    self._broken = True
                elif self._error is None:
                    self._error = exc
                return
            self._window.popleft()
            self._seqs.append(int(fut.result().get("seq", 0)))
            self._fruitless = 0

    async def _send(self, sent: _Sent) -> None:
        try:
            sent.fut = await self._conn.publish_pipelined(
                self._subject, sent.data, {MSG_ID: self._msg_id(sent.index)}
            )
        except Unavailable:
            self._broken = True

    async def _settle(self, limit: int) -> None:
        """Wait until at most ``limit`` chunks are unacknowledged, resuming the stream when
        the server went missing; raise the upload's error."""
        while True:
            self._harvest()
            if self._error is not None:
                raise self._error
            if self._broken:
                await self._resume()
            elif len(self._window) > limit:
                await self._wait_oldest()
            else:
                return

    async def _wait_oldest(self) -> None:
        """Wait for the oldest ack in flight; the stream is broken if none came in time."""
        fut = self._window[0].fut
        assert fut is not None
        done, _ = await asyncio.wait([fut], timeout=self._conn.timeout)
        if not done:
            log.info("%s/%s: no ack for a chunk in %gs", self._bucket, self._meta.name, self._conn.timeout)
            self._broken = True

    async def _publish(self, chunk: bytes | memoryview) -> None:
        await self._settle(ACK_WINDOW - 1)
        sent = _Sent(self.chunks, chunk)
        self.chunks += 1
        self._window.append(sent)
        await self._send(sent)

    async def _drain(self) -> None:
        """Wait until every chunk published is acknowledged (resuming as needed)."""
        await self._settle(0)

    def _forget_acks(self) -> None:
        """Stop waiting for the acks of the window (a resume publishes it again)."""
        for sent in self._window:
            fut, sent.fut = sent.fut, None
            if fut is not None and not fut.done():
                fut.cancel()
            elif fut is not None and not fut.cancelled():
                fut.exception()  # retrieved: superseded by the republish

    async def _resume(self) -> None:
        """Publish again, on the same nuid, the chunks the server has not stored; see the
        module docstring. Raises (and keeps) ``Unavailable`` once the tries run out."""
        failure: StoreError | None = None
        while self._fruitless < RESUME_ATTEMPTS:
            await asyncio.sleep(min(RESUME_PAUSE * 2**self._fruitless, RESUME_PAUSE_MAX))
            self._fruitless += 1
            self._harvest()
            if self._error is not None:
                raise self._error
            try:
                self._forget_acks()
                stored = await self._keep_stored_prefix()
                while self._window and self._window[0].index < stored:
                    self._window.popleft()
                self._broken = False
                for sent in self._window:
                    await self._send(sent)
                    if self._broken:
                        raise Unavailable("publish failed while resuming")
            except Unavailable as exc:
                failure = exc
                self._broken = True
                continue
            except StoreError as exc:
                self._error = exc
                raise
            self.resumes += 1
            log.info(
                "%s/%s: stream resumed at chunk %d of %d",
                self._bucket,
                self._meta.name,
                stored,
                self.chunks,
            )
            return
        self._error = Unavailable(
            f"{self._bucket}/{self._meta.name}: stream not resumed after {RESUME_ATTEMPTS} tries: {failure}"
        )
        raise self._error

    async def _keep_stored_prefix(self) -> int:
        """Walk the chunks stored past the acknowledged ones: keep those that continue the
        object in order (their sequences go to ``_seqs``), delete the rest (a chunk stored
        after one that was refused, e.g. while the stream was still loading after a
        restart) and move to the next generation of message ids, so that their republish
        is not taken for a duplicate. Returns how many chunks are stored in order."""
        seq = self._seqs[-1] + 1 if self._seqs and self._seqs[-1] else 1
        misplaced: list[int] = []
        while True:
            msg = await self._conn.direct_get(self._stream, {"seq": seq, "next_by_subj": self._subject})
            if msg is None:
                break
            if not misplaced and self._index_of(msg) == len(self._seqs) and len(self._seqs) < self.chunks:
                self._seqs.append(msg.seq)
            else:
                misplaced.append(msg.seq)
            seq = msg.seq + 1
        for at in misplaced:
            await self._conn.api("STREAM.MSG.DELETE." + self._stream, {"seq": at, "no_erase": True})
        if misplaced:
            log.info("%s/%s: %d misplaced chunks deleted", self._bucket, self._meta.name, len(misplaced))
            self._generation += 1
        return len(self._seqs)

    def _msg_id(self, index: int) -> str:
        return f"{self.nuid}.{index}" if not self._generation else f"{self.nuid}.{index}.{self._generation}"

    def _index_of(self, msg: RawMsg) -> int:
        """The chunk index a stored chunk of this upload carries in its ``Nats-Msg-Id``."""
        nuid, index, *_ = [*(msg.headers or {}).get(MSG_ID, "").split("."), "", ""]
        if nuid != self.nuid or not index.isdigit():
            raise Corrupt(f"{self._bucket}/{self._meta.name}: chunk at {msg.seq} has no index of this upload")
        return int(index)

    async def _verify_count(self) -> None:
        """After a resume: the chunk subject must hold exactly the chunks published."""
        reply = await self._conn.api("STREAM.INFO." + self._stream, {"subjects_filter": self._subject})
        stored = int(((reply.get("state") or {}).get("subjects") or {}).get(self._subject, 0))
        if stored != self.chunks:
            raise Corrupt(
                f"{self._bucket}/{self._meta.name}: {stored} chunks stored, {self.chunks} published"
            )

    # ----- reading back -------------------------------------------------------------------
    async def read_back(self, offset: int, length: int) -> bytes:
        """Bytes ``[offset, offset+length)`` of what was written so far (short at its end)."""
        end = min(offset + length, self.size)
        if offset >= end:
            return b""
        self._harvest()
        cs = self._chunk_size
        stored = len(self._seqs)
        held = {sent.index: sent.data for sent in self._window}
        partial = bytes(self._buf)
        first, last = offset // cs, (end - 1) // cs
        fetched = await self._stored_chunks(first, min(last, stored - 1)) if first < stored else {}
        out = bytearray()
        for index in range(first, last + 1):
            if index < stored:
                data: bytes | memoryview = fetched.get(index) or await self._stored_chunk(index)
            elif index in held:
                data = held[index]
            else:
                data = partial
            lo = max(offset, index * cs) - index * cs
            out += memoryview(data)[lo : min(end, (index + 1) * cs) - index * cs]
        return bytes(out)

    async def _stored_chunks(self, first: int, last: int) -> dict[int, bytes | memoryview]:
        """Stored chunks ``first..last`` by index, in one batch Direct Get from the first's
        sequence (the chunk subject holds them in order); those the batch did not bring
        are left out (the caller fetches them one by one)."""
        if not self._seqs[first]:
            return {}
        fut = await self._conn.batch_get(self._stream, self._subject, self._seqs[first], last - first + 1)
        try:
            msgs = await asyncio.wait_for(fut, self._conn.timeout)
        except TimeoutError:
            raise Unavailable(f"{self._bucket}/{self._meta.name}: no answer to a read back") from None
        out: dict[int, bytes | memoryview] = {}
        for msg in msgs:
            if msg.subject == self._subject:
                index = self._index_of(msg)
                if first <= index <= last and self._seqs[index] == msg.seq:
                    out[index] = msg.data
        return out

    async def _stored_chunk(self, index: int) -> bytes | memoryview:
        """Chunk ``index`` (stored) from the server, by its sequence; one whose sequence is
        not known (its ack was lost) is found by walking the subject from a known one."""
        if self._seqs[index]:
            msg = await self._conn.direct_get(self._stream, {"seq": self._seqs[index]})
            if msg is None or msg.subject != self._subject:
                raise Corrupt(f"{self._bucket}/{self._meta.name}: chunk {index} missing")
            return msg.data
        known = max((i for i in range(index) if self._seqs[i]), default=-1)
        seq = self._seqs[known] + 1 if known >= 0 else 1
        while True:
            msg = await self._conn.direct_get(self._stream, {"seq": seq, "next_by_subj": self._subject})
            if msg is None:
                raise Corrupt(f"{self._bucket}/{self._meta.name}: chunk {index} missing")
            at = self._index_of(msg)
            if at < len(self._seqs):
                self._seqs[at] = msg.seq
            if at == index:
                return msg.data
            if at > index:
                raise Corrupt(f"{self._bucket}/{self._meta.name}: chunk {index} missing")
            seq = msg.seq + 1

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

    # ----- commit and abort -------------------------------------------------------------------
    async def finish(self, blocks: list[bytes], meta: ObjectMeta | None = None) -> ObjectInfo:
        """``write_blocks(blocks)`` then ``commit(meta)``, in one bridge crossing; a failed
        write aborts the upload."""
        if blocks:
            try:
                await self.write_blocks(blocks)
            except BaseException:
                await self.abort()
                raise
        return await self.commit(meta)

    async def commit(self, meta: ObjectMeta | None = None) -> ObjectInfo:
        """Publish the last chunk, wait for every ack, commit ``meta`` (default: the meta
        the upload began with)."""
        if self._finished:
            raise StoreError("upload already finished")
        together = self.chunks == 0 and bool(self._buf) and self._replacing is not None
        try:
            if meta is not None:
                wire.meta_subject(self._bucket, meta.name)  # ``BadName`` before any publish
                self._meta = meta
            if together:
                self._harvest()
                if self._error is not None:
                    raise self._error
                sent = _Sent(0, bytes(self._buf))
                self._buf.clear()
                self.chunks = 1
                self._window.append(sent)
                await self._send(sent)
                if self._broken:  # the server went missing: resume, then the usual commit
                    together = False
            elif self._buf:
                chunk = bytes(self._buf)
                self._buf.clear()
                await self._publish(chunk)
            if not together:
                await self._drain()
                if self.resumes:
                    await self._verify_count()
            digest = await self._sha.digest()
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
                info, expected=self._replacing.revision, stamp=self._server_time, after=self._msg_id(0)
            )
        except Unavailable as exc:
            # the meta may be stored: the re-read decides, and purges only if it is not
            self._finished = True
            self._retrieve_window()  # the re-read decides
            self._window.clear()
            return await self._settle_unanswered(info, exc)
        except StoreError:
            await self._drain()  # the chunk's error, if it was refused
            self._finished = True
            return await self._commit(info, None)
        self._finished = True
        # the meta's condition proves the chunk is stored: its ack is only collected
        futs = [sent.fut for sent in self._window if sent.fut is not None]
        if futs:
            await asyncio.wait(futs, timeout=self._conn.timeout)
            self._retrieve_window()
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

    def _retrieve_window(self) -> None:
        """Take the outcome of every finished ack in the window (so none is logged as never
        retrieved); the caller has decided the commit without them."""
        for sent in self._window:
            if sent.fut is not None and sent.fut.done() and not sent.fut.cancelled():
                sent.fut.exception()

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
        pending = [sent.fut for sent in self._window if sent.fut is not None]
        if pending:
            await asyncio.wait(pending, timeout=self._conn.timeout)
            for fut in pending:
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
