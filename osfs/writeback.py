"""The write path of one file: streaming upload while sequential, spool file otherwise.

A :class:`Writer` holds the new content of one file while it is open for writing, in one
of three places:

* **streaming**: while the file is written strictly sequentially from 0 (a new or
  truncated file), the bytes go only into a store :class:`~osfs.store.base.Upload`, which
  holds in memory just the chunks the server has not acknowledged (the upload's window,
  at most ``ACK_WINDOW`` chunks plus the partial last one; the NATS store also holds up to
  ``2 * HAND_OFF`` bytes of writes being handed over): no local disk, whatever the file's
  size. Reads are served by the upload (stored chunks from the server, the rest from
  memory). A failed publish is resumed by the upload itself; :meth:`Writer.commit` then
  only publishes the meta, with the writer's final meta (a rename, ``chmod`` or xattr
  change made while streaming is published with the content).
* **spooled**: a :class:`Spool` (memory up to ``MEMORY_SPOOL`` bytes, then an unnamed
  local file in ``FsOptions.spool_dir`` that vanishes on close, even after a crash), which
  can be read and written at any offset and is uploaded whole by ``commit``. A writer
  moves there when it must: a write not at the end, a truncate other than to 0, a file
  that started from existing content, a write after a streamed commit. What was streamed
  so far is read back from the upload into the spool, then the stream is aborted (its
  chunks purged).
* **committed**: after a streamed commit nothing is held; reads go to the committed
  version, and a later change spools it first.

No torn versions: a failure that loses the content (a write or truncate the spool refuses,
``TooLarge`` past the bucket's max object size, an upload error, a streamed commit that
failed, a spool that cannot be filled) makes the writer ``failed``: its stream is aborted
and its spool dropped, and every later write, read and commit raises the same error, so
``close``/``fsync`` return it and nothing is published (the previous version stays). A
truncate to 0 starts afresh (a new stream) and clears it. A refusal of a spooled commit
(``NoSpace``, ``TooLarge``, ``Sealed``, ``BadName``) is kept in ``refused`` until the
content changes, so the last ``release`` does not upload the same content again.

Disk I/O runs in worker threads (``trio.to_thread``) with ``pread``/``pwrite`` (no shared
file position); writes, truncates and commits of one writer are serialised by a lock.
Small files never touch the disk, so creating many small files costs no thread hops. The
module holds the spool and the writer together (over 500 lines) because the writer's
move from stream to spool is the spool's only producer of large content.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
import os
import tempfile
import time
from pathlib import Path

import trio

from .store.base import ObjectStore, Upload
from .store.bridge import Call, call_in_thread
from .store.errors import BadName, NoSpace, Sealed, StoreError, TooLarge, Unavailable
from .store.types import ObjectInfo, ObjectMeta, Replacing

log = logging.getLogger(__name__)

#: Size of the blocks moved between the spool and the store.
COPY_BLOCK = 1024 * 1024
#: Content up to this size is spooled in memory; larger content goes to a file.
MEMORY_SPOOL = 1024 * 1024
#: Appends to a spool file are gathered into writes of this size.
DISK_BLOCK = 1024 * 1024


class Spool:
    """Random-access scratch storage: a bytearray, spilled to an unnamed file when large.

    Once on disk, appends are gathered in memory (the *tail*: the written ``bytes``
    objects themselves, no copy, starting at ``_tail_at``) and written with one
    ``pwritev`` per ``DISK_BLOCK`` bytes, so a file streamed in 64 KiB writes costs one
    worker-thread hop per MiB rather than one per write. That ``pwritev`` runs in the
    background (at most one at a time): the append that started it returns at once, and
    the next one waits for it, raising its error. Bytes stay in the tail until their write
    has finished, so ``pread`` never misses them. Writes elsewhere, and truncates, write
    the tail out first.
    """

    def __init__(self, directory: Path, memory_limit: int = MEMORY_SPOOL) -> None:
        self._dir = directory
        self._limit = memory_limit
        self._buf: bytearray | None = bytearray()
        self._fd: int | None = None
        self._tail: list[bytes] = []
        self._tail_bytes = 0
        self._tail_at = 0
        #: The tail's background write: (the call, blocks it writes, bytes it writes).
        self._flight: tuple[Call[None], int, int] | None = None

    @property
    def on_disk(self) -> bool:
        return self._fd is not None

    async def pwrite(self, data: bytes, offset: int) -> None:
        end = offset + len(data)
        if self._buf is not None and end > self._limit:
            await self._spill()
        if self._buf is not None:
            if offset > len(self._buf):
                self._buf.extend(bytes(offset - len(self._buf)))
            self._buf[offset:end] = data
            return
        if not self._tail or offset != self._tail_at + self._tail_bytes:
            await self._write_tail()
            self._tail_at = offset
        unwritten = self._tail_bytes - (self._flight[2] if self._flight else 0) + len(data)
        if unwritten >= DISK_BLOCK:
            # this append starts the next background write: the previous one must have
            # landed, and its error is raised before ``data`` is taken
            await self._landed()
        self._tail.append(data if isinstance(data, bytes) else bytes(data))
        self._tail_bytes += len(data)
        if unwritten >= DISK_BLOCK:
            self._start_tail_write()

    def _start_tail_write(self) -> None:
        """Write the whole tail in the background (none may be in flight)."""
        assert self._fd is not None and self._flight is None
        blocks = list(self._tail)
        call = call_in_thread(functools.partial(_pwrite_all, self._fd, blocks, self._tail_at))
        self._flight = (call, len(blocks), self._tail_bytes)

    async def _landed(self) -> None:
        """Wait for the background write, if any, and drop what it wrote from the tail.

        Its error is raised here (once); its blocks then stay in the tail, to be written
        again by the next write of the tail."""
        if self._flight is None:
            return
        call, count, n = self._flight
        try:
            await call.result()
        except trio.Cancelled:
            raise  # still running: the next wait finds it
        except BaseException:
            self._flight = None
            raise
        self._flight = None
        del self._tail[:count]
        self._tail_bytes -= n
        self._tail_at += n

    async def _write_tail(self) -> None:
        await self._landed()
        while self._tail:
            assert self._fd is not None
            blocks = list(self._tail)
            n = sum(len(b) for b in blocks)
            await trio.to_thread.run_sync(_pwrite_all, self._fd, blocks, self._tail_at)
            del self._tail[: len(blocks)]
            self._tail_bytes -= n
            self._tail_at += n

    async def pread(self, length: int, offset: int) -> bytes:
        if self._buf is not None:
            return bytes(self._buf[offset : offset + length])
        assert self._fd is not None
        end = offset + length
        out = bytearray()
        pos = offset
        while pos < end:
            t0, t1 = self._tail_at, self._tail_at + self._tail_bytes
            if self._tail and t0 <= pos < t1:
                lo = pos - t0
                out += b"".join(self._tail)[lo : lo + min(end, t1) - pos]
                pos = min(end, t1)
                continue
            before_tail = bool(self._tail) and pos < t0
            stop = min(end, t0) if before_tail else end
            piece = await trio.to_thread.run_sync(os.pread, self._fd, stop - pos, pos)
            if len(piece) < stop - pos:
                if not before_tail:  # the end of the content
                    out += piece
                    break
                piece += bytes(stop - pos - len(piece))  # a hole up to the tail
            out += piece
            pos += len(piece)
        return bytes(out)

    async def truncate(self, size: int) -> None:
        if self._buf is not None and size > self._limit:
            await self._spill()
        if self._buf is not None:
            if size < len(self._buf):
                del self._buf[size:]
            else:
                self._buf.extend(bytes(size - len(self._buf)))
        else:
            assert self._fd is not None
            await self._write_tail()
            await trio.to_thread.run_sync(os.ftruncate, self._fd, size)

    async def _spill(self) -> None:
        assert self._buf is not None
        data = bytes(self._buf)
        self._fd = await trio.to_thread.run_sync(_open_spool_file, str(self._dir), data)
        self._buf = None

    async def close(self) -> None:
        """Drop the content. Waits for a background write (it uses the file), not for the
        file's closing: freeing the page cache of a large spool takes tens of ms, which
        the ``close`` of the file being written would otherwise wait for."""
        with trio.CancelScope(shield=True), contextlib.suppress(OSError):
            await self._landed()
        fd, self._fd, self._buf = self._fd, None, None
        self._tail, self._tail_bytes = [], 0
        if fd is not None:
            trio.lowlevel.start_thread_soon(functools.partial(os.close, fd), _ignore)


def _ignore(_result: object) -> None:
    """Nobody waits for a spool file's closing (an unnamed file: nothing is left to lose)."""


def _pwrite_all(fd: int, blocks: list[bytes], offset: int) -> None:
    """Write ``blocks`` one after the other at ``offset`` (``pwritev``; short writes resumed)."""
    views = [memoryview(b) for b in blocks]
    while views:
        n = os.pwritev(fd, views, offset)
        offset += n
        while views and n >= len(views[0]):
            n -= len(views[0])
            views.pop(0)
        if views and n:
            views[0] = views[0][n:]


def _open_spool_file(directory: str, initial: bytes) -> int:
    """An unnamed file in ``directory`` (named-then-unlinked where O_TMPFILE is missing)."""
    try:
        fd = os.open(directory, os.O_TMPFILE | os.O_RDWR, 0o600)
    except (OSError, AttributeError):
        fd, path = tempfile.mkstemp(".spool", "osfs-", directory)
        os.unlink(path)
    try:
        if initial:
            os.pwrite(fd, initial, 0)
    except BaseException:
        os.close(fd)
        raise
    return fd


class Writer:
    """New content of one object; see the module docstring."""

    def __init__(
        self,
        store: ObjectStore,
        bucket: str,
        meta: ObjectMeta,
        *,
        spool_dir: Path,
        chunk_size: int,
        base: ObjectInfo | None = None,
        replacing: Replacing | None = None,
    ) -> None:
        self.store = store
        #: What the name holds as the creator saw it, passed to the streaming put
        #: (:meth:`osfs.store.base.ObjectStore.begin_put`) so its commit reads no meta first.
        self.replacing = replacing
        self.bucket = bucket
        self.meta = meta
        self.base = base
        self.size = 0
        self.mtime_ns = time.time_ns()
        self.dirty = False
        self.unlinked = False
        self.committed: ObjectInfo | None = None
        #: The store's refusal of the last commit (no space, too large, sealed, bad name)
        #: while the content has not changed since: retrying it cannot succeed.
        self.refused: StoreError | None = None
        #: Why the content is lost (a write, the stream or the spool failed): every later
        #: commit raises it and publishes nothing, until a truncate to 0.
        self.failed: StoreError | None = None
        self._spool_dir = spool_dir
        self._chunk_size = chunk_size
        self._spool: Spool | None = None
        self._upload: Upload | None = None
        self._lock = trio.Lock()

    @property
    def name(self) -> str:
        return self.meta.name

    @property
    def streaming(self) -> bool:
        """True while the content is going straight into a store upload."""
        return self._upload is not None

    @property
    def spooled(self) -> bool:
        """True while the content is held in a spool."""
        return self._spool is not None

    async def start(self, fill_from: ObjectInfo | None) -> None:
        """Copy ``fill_from``'s content into a spool, or start streaming."""
        try:
            if fill_from is not None and fill_from.size > 0:
                await self._fill_spool(fill_from)
            else:
                await self._restart(self.replacing)
        except BaseException:
            await self.close()
            raise

    async def _restart(self, replacing: Replacing | None = None) -> None:
        """Empty content: a new stream (a spool for a file without a name). ``replacing``:
        what the name holds as the creator saw it (see ``ObjectStore.begin_put``); only the
        first stream of a writer knows it."""
        self.size = 0
        self.dirty = True
        if self.unlinked:
            self._spool = Spool(self._spool_dir)
        else:
            # the mount shows its writer's mtime, not the publish time: not read back
            self._upload = await self.store.begin_put(
                self.bucket,
                self.meta,
                chunk_size=self._chunk_size,
                replacing=replacing,
                server_time=False,
            )

    async def _fill_spool(self, source: ObjectInfo) -> None:
        spool = self._spool = Spool(self._spool_dir)
        self.size = 0
        async for block in self.store.get(source):
            await spool.pwrite(block, self.size)
            self.size += len(block)

    async def _lock_now(self) -> None:
        """Take the lock without a checkpoint when it is free (a streaming append then
        returns without yielding to the scheduler: one less round trip per FUSE write)."""
        try:
            self._lock.acquire_nowait()
        except trio.WouldBlock:
            await self._lock.acquire()

    async def write(self, offset: int, data: bytes) -> int:
        """Write ``data`` at ``offset``; return the number of bytes written.

        A failure loses the content: the writer is ``failed`` (see the module docstring),
        and the error is raised here and by every later commit."""
        await self._lock_now()
        try:
            if self.failed is not None:
                raise self.failed
            if self._upload is not None and offset == self.size:
                try:
                    await self._upload.write(data)
                except StoreError as e:  # ``TooLarge`` too: no torn version of the file
                    await self._fail(e)
                    raise
            else:
                await self._to_spool(f"write at {offset} of {self.size}")
                assert self._spool is not None
                try:
                    await self._spool.pwrite(data, offset)
                except OSError as e:
                    await self._fail(_spool_error(e))
                    raise
            self.size = max(self.size, offset + len(data))
            self.mtime_ns = time.time_ns()
            self.dirty = True
            self.refused = None
            return len(data)
        finally:
            self._lock.release()

    async def read(self, offset: int, length: int) -> bytes:
        """Bytes of the new content (short at its end)."""
        length = max(0, min(length, self.size - offset))
        if length == 0:
            return b""
        if self.failed is not None:
            raise self.failed
        if self._spool is not None:
            return await self._spool.pread(length, offset)
        if self._upload is not None:
            async with self._lock:  # the upload hands its writes over while it reads
                if self._upload is not None:
                    return await self._upload.read(offset, length)
            return await self.read(offset, length)
        assert self.committed is not None
        return bytes(await self.store.read(self.committed, offset, length))

    async def truncate(self, size: int) -> None:
        """Cut or extend the content to ``size``; a truncate to 0 starts afresh (a new
        stream) and clears a failure."""
        async with self._lock:
            if size == self.size and self.failed is None:
                return
            if size == 0:
                await self._drop_content()
                self.failed = None
                try:
                    await self._restart()
                except StoreError as e:
                    self.failed = e
                    raise
            else:
                if self.failed is not None:
                    raise self.failed
                await self._to_spool("truncate")
                assert self._spool is not None
                try:
                    await self._spool.truncate(size)
                except OSError as e:
                    await self._fail(_spool_error(e))
                    raise
            self.size = size
            self.mtime_ns = time.time_ns()
            self.dirty = True
            self.refused = None

    async def commit(self) -> ObjectInfo | None:
        """Publish the content if it changed since the last commit; return the new info
        (None when this call published nothing: no change, or the file was unlinked).

        A failed writer publishes nothing and raises its failure; a failed streamed
        upload fails the writer (its content is gone with it)."""
        async with self._lock:
            if self.failed is not None:
                raise self.failed
            if not self.dirty or self.unlinked:
                return None
            try:
                if self._upload is not None:
                    upload, self._upload = self._upload, None
                    try:
                        info = await upload.commit(self.meta)
                    except BaseException as e:
                        await upload.abort()  # the content went with it
                        self.failed = e if isinstance(e, StoreError) else Unavailable("upload interrupted")
                        raise
                else:
                    assert self._spool is not None
                    info = await self.store.put(
                        self.bucket, self.meta, self._blocks(), chunk_size=self._chunk_size
                    )
            except (NoSpace, TooLarge, Sealed, BadName) as e:
                self.refused = e
                raise
            self.committed = self.base = info
            self.dirty = False
            return info

    async def settled(self) -> None:
        """Wait until no write, truncate or commit of this writer is in progress (a commit
        publishes under the name and meta it started with)."""
        async with self._lock:
            return

    async def _blocks(self):
        assert self._spool is not None
        offset = 0
        while offset < self.size:
            block = await self._spool.pread(min(COPY_BLOCK, self.size - offset), offset)
            if not block:
                break
            offset += len(block)
            yield block

    async def _to_spool(self, why: str) -> None:
        """Make sure the content is in a spool: copy what was streamed so far (read back
        from the store) or the committed version into a new one, then abort the stream.
        A failure fails the writer."""
        if self._spool is not None:
            return
        log.debug("%s/%s: spooling (%s)", self.bucket, self.name, why)
        spool = Spool(self._spool_dir)
        try:
            offset = 0
            while offset < self.size:
                n = min(COPY_BLOCK, self.size - offset)
                if self._upload is not None:
                    block = await self._upload.read(offset, n)
                else:
                    assert self.committed is not None
                    block = bytes(await self.store.read(self.committed, offset, n))
                if len(block) != n:
                    raise StoreError(f"{self.bucket}/{self.name}: {len(block)} of {n} bytes read back")
                await spool.pwrite(block, offset)
                offset += n
        except BaseException as e:
            await spool.close()
            failure = _spool_error(e) if isinstance(e, OSError) else e
            if isinstance(failure, StoreError):
                await self._fail(failure)
            raise
        upload, self._upload, self._spool = self._upload, None, spool
        if upload is not None:
            await upload.abort()

    async def _fail(self, failure: StoreError) -> None:
        """The content is lost: keep ``failure``, drop the stream (its chunks are purged)
        and the spool."""
        log.warning("%s/%s: write failed, nothing will be published: %s", self.bucket, self.name, failure)
        self.failed = failure
        await self._drop_content()

    async def _drop_content(self) -> None:
        with trio.CancelScope(shield=True):
            upload, self._upload = self._upload, None
            if upload is not None:
                await upload.abort()
            spool, self._spool = self._spool, None
            if spool is not None:
                await spool.close()

    async def close(self) -> None:
        """Abort any stream and remove the spool file."""
        await self._drop_content()


def _spool_error(exc: OSError) -> StoreError:
    """The store error a failed spool write fails a writer with (same errno at close)."""
    if exc.errno == errno.ENOSPC:
        return NoSpace(f"spool: {exc}")
    if exc.errno == errno.EFBIG:
        return TooLarge(f"spool: {exc}")
    return StoreError(f"spool: {exc}")
