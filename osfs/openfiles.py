"""Open files of the filesystem: handles, writers, and publishing.

:class:`OpenFiles` owns every file handle (directory handles are in :mod:`osfs.listings`), the
:class:`~osfs.writeback.Writer` of each file open for writing (with its lock and the count
of its write handles), the last version (nuid) each inode was opened at, and the versions
kept for *orphans* (inodes whose name was unlinked or replaced while the kernel held them).

Reads of a stored version go to ``store.read`` with the handle's read-ahead hint
(:mod:`osfs.readahead`). ``open`` re-reads the object's meta, so a reader always starts on
the latest version; ``keep_cache`` is granted only when that version (nuid) is the one the
kernel may already have cached from the previous open. A file with a writer (open for
writing and written, or truncated) is read from the writer, so readers see the new data
before it is published.

Publishing: every commit of a writer goes through one method, which publishes the content,
shows the new version in the bucket view and to every handle of the inode, and counts it
(:attr:`OpenFiles.published`). Each ``flush`` (every ``close``) and ``fsync`` of a handle
that wrote publishes and raises the upload's error; a failed upload's error is raised again
by the handle's next ``flush``/``fsync`` even if a retry succeeds. The last ``release``
publishes what is left (errors only logged) and drops the writer; content the store
refused and that did not change since is not uploaded again.

Metadata changes of a file (``chmod``, xattrs) go to the stored meta and to its writer's,
so the next publish keeps them: :meth:`OpenFiles.update_meta`.

The module is longer than 500 lines because handles, writers and publishing share the
per-inode state (writer, write-handle count, last nuid, orphans) and its locking:
splitting them would make one part reach into another's state.
"""

from __future__ import annotations

import errno
import itertools
import logging
import os
import stat
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import TypeVar

import trio

from .attrs import kind_of, mode_meta, without_mtime
from .config import FsOptions
from .errors import FsError, fail, from_store
from .handles import FileHandle, OpenReply
from .inodes import InodeTable, Key
from .listed import Listed
from .names import Node
from .readahead import ReadAhead
from .store.base import ObjectStore
from .store.errors import ObjectReplaced, StoreError
from .store.types import NOTHING, ObjectInfo, ObjectMeta, Replacing
from .views import Views
from .writeback import Writer

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Times an ``open`` starts over when renames keep moving its inode.
OPEN_ATTEMPTS = 5


def _wants_write(flags: int) -> bool:
    return flags & (os.O_WRONLY | os.O_RDWR) != 0


class OpenFiles:
    """Handles and writers of one filesystem; see the module docstring.

    Callers check names, permissions and the read-only option before calling; the
    methods here raise only :class:`FsError`.
    """

    def __init__(self, store: ObjectStore, options: FsOptions, inodes: InodeTable, views: Views) -> None:
        self.store = store
        self.options = options
        self.inodes = inodes
        self.views = views
        #: Files published by this mount (commits that made a new version).
        self.published = 0
        self._handles: dict[int, FileHandle] = {}
        self._fhs = itertools.count(1)
        self._writers: dict[int, Writer] = {}
        self._writer_locks: dict[int, trio.Lock] = {}
        self._write_handles: dict[int, int] = {}
        self._last_nuid: dict[int, str] = {}
        #: Last version of files whose name was unlinked or replaced while the kernel still
        #: held their inode: an ``open`` racing with the rename/unlink opens that version.
        self._orphans: dict[int, ObjectInfo] = {}
        #: The writer's mtime of each version this mount published, by inode: shown
        #: instead of the store's publish time, so a file's times do not move when its
        #: upload commits after ``close``.
        self._written: dict[int, tuple[str, int]] = {}

    # ----- what other parts ask ------------------------------------------------------------
    @property
    def in_flight(self) -> int:
        """Files that have a writer: open for writing (whatever a ``flush`` already
        published may change again), or publishing at their last ``release``."""
        return len(self._writers)

    def writer(self, ino: int) -> Writer | None:
        """The writer of ``ino``, if it is open for writing (or committing)."""
        return self._writers.get(ino)

    def writer_at(self, key: Key) -> Writer | None:
        """The writer of the file at ``key``, if it is open for writing (or committing)."""
        ino = self.inodes.find(key)
        return self._writers.get(ino) if ino is not None else None

    def writers_in(self, bucket: str) -> dict[str, Writer]:
        """The writers of ``bucket``'s files, by object name."""
        return {w.name: w for w in self._writers.values() if w.bucket == bucket}

    def held_info(self, ino: int) -> ObjectInfo | None:
        """The version an open handle of ``ino`` reads (None if no handle has one)."""
        for h in self._handles.values():
            if h.ino == ino:
                return h.info
        return None

    def has_handle(self, ino: int) -> bool:
        """True while a file handle of ``ino`` is open."""
        return any(h.ino == ino for h in self._handles.values())

    async def settle(self, key: Key) -> None:
        """Wait for an upload of ``key``'s file that is in flight (a ``release`` committing
        while the application already renames or unlinks the file)."""
        writer = self.writer_at(key)
        if writer is not None:
            await writer.settled()

    # ----- names going away ----------------------------------------------------------------
    def unname(self, writer: Writer, name: str) -> None:
        """``writer``'s file lost its name (unlinked, or replaced by a rename): it is never
        published, and stops being shown under ``name``."""
        writer.unlinked = True
        self.views.view(writer.bucket).set_pending(name, None)

    def rename_writer(self, writer: Writer, new_obj: str) -> None:
        """``writer``'s file moved to ``new_obj``: it publishes and is shown there."""
        view = self.views.view(writer.bucket)
        pending = view.pending.get(writer.name)
        view.set_pending(writer.name, None)
        writer.meta = replace(writer.meta, name=new_obj)
        if pending is not None:
            view.set_pending(new_obj, replace(pending, name=new_obj))

    async def kept_version(self, key: Key, node: Node | None) -> ObjectInfo | None:
        """The full meta of the stored file ``node`` at ``key`` if the kernel knows its inode
        (to pass to :meth:`orphan` once the name is gone; None otherwise)."""
        if self.inodes.find(key) is None or node is None or node.is_dir:
            return None
        info = node.info
        if info is None or not info.nuid or info.link is not None:
            return None
        try:
            return await self.views.full_info(key[0], info)
        except FsError:
            return None

    def orphan(self, key: Key, info: ObjectInfo | None) -> None:
        """``key``'s name is going away: keep its version ``info`` (from
        :meth:`kept_version`, or the meta a delete returned) for opens of its inode."""
        ino = self.inodes.find(key)
        if ino is not None and info is not None and info.nuid and info.link is None:
            self._orphans[ino] = info

    def drop_orphan(self, ino: int) -> None:
        """Forget ``ino``'s kept version once the kernel no longer knows the inode."""
        if not self.inodes.known(ino):
            self._orphans.pop(ino, None)
            self._written.pop(ino, None)

    def written_mtime(self, ino: int, info: ObjectInfo | Listed | None) -> int | None:
        """The mtime this mount's writer gave the version ``info`` of ``ino`` (None when
        this mount did not publish that version)."""
        written = self._written.get(ino)
        if written is None or info is None or written[0] != info.nuid:
            return None
        return written[1]

    # ----- open and create -----------------------------------------------------------------
    async def open(self, ino: int, flags: int) -> OpenReply:
        """Open ``ino``. An inode whose name was just unlinked or replaced (the kernel
        resolved the name before the change) opens its last version for reading, as a
        local file system would (``ESTALE`` on read if that version's chunks are already
        purged); for writing it is ``ENOENT``. A rename that moves the inode while the
        open waits on the store makes the open start over, so the version opened is
        always the one the inode stands for when the open returns."""
        writable = _wants_write(flags)
        for _attempt in range(OPEN_ATTEMPTS):
            orphan = self._orphans.get(ino) if self.inodes.key_of(ino) is None else None
            if orphan is not None and not writable:
                fh = self._new_handle(ino, False, False, orphan)
                # pinned: the kernel knows this inode with the old version's size, so if that
                # version's chunks are already gone the reader gets ESTALE, never a mix
                self._file_handle(fh).served = True
                return OpenReply(fh, False)
            key = self.inodes.key_of(ino)
            if key is None:
                raise FsError(errno.ENOENT)
            node, _ = await self.views.node(key)
            if node.is_dir:
                raise FsError(errno.EISDIR)
            if kind_of(node) != stat.S_IFREG:
                raise FsError(errno.ELOOP if kind_of(node) == stat.S_IFLNK else errno.ENXIO)
            if writable and self.options.read_only:
                raise fail(errno.EROFS, "open", key[1], "read-only mount")
            info = await self.views.current_info(key, node)
            if self.inodes.key_of(ino) == key:
                break
        else:
            raise fail(errno.ESTALE, "open", str(ino), "the file kept being renamed during the open")
        keep_cache = info is not None and ino not in self._writers and self._last_nuid.get(ino) == info.nuid
        if info is not None:
            self._last_nuid[ino] = info.nuid
        if writable and flags & os.O_TRUNC:
            await self._writer(ino, key, node, truncate=True)
            keep_cache = False
        return OpenReply(self._new_handle(ino, writable, bool(flags & os.O_APPEND), info), keep_cache)

    async def create(
        self, key: Key, flags: int, mode: int, owner: Mapping[str, str]
    ) -> tuple[OpenReply, int, Node]:
        """Create and open a new file at ``key`` (whose parent exists and name is free) with
        the owner metadata ``owner``; adds one lookup to its inode. Returns the reply, the
        inode and the node shown."""
        meta = ObjectMeta(key[1], metadata={**mode_meta(mode, 0o666, self.options.umask), **owner})
        # the name is free in the view: most likely it never held a meta (a delete marker
        # there only costs the commit one refused publish)
        writer = self._new_writer(key[0], meta, base=None, replacing=NOTHING)
        await self._guard(writer.start(None), "create", f"{key[0]}/{key[1]}")
        placeholder = ObjectInfo(key[0], key[1], "", 0, 0, "", datetime.now(UTC), metadata=meta.metadata)
        self.views.view(key[0]).set_pending(key[1], placeholder)
        ino = self.inodes.ino_for(key)
        self.inodes.remember(ino)
        self._writers[ino] = writer
        fh = self._new_handle(ino, True, bool(flags & os.O_APPEND), None)
        return OpenReply(fh, False), ino, Node(key[1], False, Listed.of(placeholder))

    def _new_handle(self, ino: int, writable: bool, append: bool, info: ObjectInfo | None) -> int:
        fh = next(self._fhs)
        self._handles[fh] = FileHandle(fh, ino, writable, append, info, ReadAhead(self.options.chunk_size))
        self.inodes.open(ino)
        if writable:
            self._write_handles[ino] = self._write_handles.get(ino, 0) + 1
        return fh

    def _file_handle(self, fh: int) -> FileHandle:
        handle = self._handles.get(fh)
        if handle is None:
            raise FsError(errno.EBADF)
        return handle

    # ----- writers -------------------------------------------------------------------------
    def _new_writer(
        self, bucket: str, meta: ObjectMeta, base: ObjectInfo | None, replacing: Replacing | None = None
    ) -> Writer:
        o = self.options
        return Writer(
            self.store,
            bucket,
            meta,
            spool_dir=o.spool_dir,
            chunk_size=o.chunk_size,
            base=base,
            replacing=replacing,
        )

    async def _writer(self, ino: int, key: Key, node: Node, *, truncate: bool) -> Writer:
        """The writer of ``ino``, made on first use (filled from the stored version unless
        ``truncate``)."""
        lock = self._writer_locks.setdefault(ino, trio.Lock())
        async with lock:
            writer = self._writers.get(ino)
            if writer is not None:
                if truncate:
                    await self._guard(writer.truncate(0), "truncate", writer.name)
                return writer
            obj = node.object_name or key[1]
            listed = node.info if node.info is not None and node.info.nuid else None
            base = (
                await self.views.full_info(key[0], listed, "open for writing") if listed is not None else None
            )
            meta = without_mtime(base.meta() if base is not None else ObjectMeta(obj))
            writer = self._new_writer(key[0], meta, base, Replacing.of(base) if base is not None else None)
            await self._guard(writer.start(None if truncate else base), "open for writing", obj)
            self._writers[ino] = writer
            return writer

    async def _detached_writer(self, ino: int, *, truncate: bool) -> Writer:
        """The writer of a file whose name was unlinked while a descriptor keeps it open
        for writing (made from the version that descriptor opened; never published).
        ``ENOENT`` when no such descriptor exists."""
        writer = self._writers.get(ino)
        if writer is not None:
            return writer
        h = next((h for h in self._handles.values() if h.ino == ino and h.writable), None)
        if h is None or h.info is None:
            raise FsError(errno.ENOENT)
        lock = self._writer_locks.setdefault(ino, trio.Lock())
        async with lock:
            writer = self._writers.get(ino)
            if writer is None:
                writer = self._new_writer(h.info.bucket, h.info.meta(), h.info)
                writer.unlinked = True
                await self._guard(writer.start(None if truncate else h.info), "write", h.info.name)
                self._writers[ino] = writer
            return writer

    async def _guard(self, work: Awaitable[T], op: str, path: str) -> T:
        """Await ``work``, converting store and disk errors."""
        try:
            return await work
        except StoreError as e:
            raise from_store(e, op, path) from None
        except OSError as e:
            log.error("%s %s: spool I/O failed: %s", op, path, e)
            raise FsError(e.errno or errno.EIO) from None

    # ----- data ----------------------------------------------------------------------------
    async def read(self, fh: int, offset: int, size: int) -> bytes | memoryview:
        """Up to ``size`` bytes at ``offset``: from the writer if the file has one, else from
        the handle's version (a version replaced before anything was served is switched
        for the current one; after that, or at another size, ``ESTALE``)."""
        h = self._file_handle(fh)
        writer = self._writers.get(h.ino)
        if writer is not None:
            return await self._guard(writer.read(offset, size), "read", writer.name)
        if h.info is None:
            return b""
        hint = h.readahead.hint(offset, size)
        for _ in range(2):
            try:
                data = await self.store.read(h.info, offset, size, readahead=hint)
                h.served = True
                return data
            except ObjectReplaced as e:
                current = e.current if isinstance(e.current, ObjectInfo) else None
                if current is not None and current.deleted:
                    # unlinked by someone: a delete marker keeps the nuid, it is no new version
                    raise from_store(e, "read", f"{h.info.bucket}/{h.info.name}") from None
                own = current is not None and current.nuid == self._last_nuid.get(h.ino)
                if h.served and not own:
                    raise from_store(e, "read", f"{h.info.bucket}/{h.info.name}") from None
                fresh = current or await self.views.reread(h.info, "read")
                if not own and fresh.size != h.info.size:
                    # the kernel sized this inode from the old version: serving the new
                    # one would cut or pad it
                    raise from_store(e, "read", f"{h.info.bucket}/{h.info.name}") from None
                h.info = fresh
                self._last_nuid[h.ino] = h.info.nuid
            except StoreError as e:
                raise from_store(e, "read", f"{h.info.bucket}/{h.info.name}") from None
        raise FsError(errno.ESTALE)

    async def write(self, fh: int, offset: int, data: bytes) -> int:
        """Write ``data`` at ``offset`` (at the end for an ``O_APPEND`` handle)."""
        h = self._file_handle(fh)
        if not h.writable:
            raise FsError(errno.EBADF)
        writer = self._writers.get(h.ino)
        key = self.inodes.key_of(h.ino)
        if writer is None and key is None:
            writer = await self._detached_writer(h.ino, truncate=False)
        elif writer is None:
            assert key is not None
            node, _ = await self.views.node(key)
            writer = await self._writer(h.ino, key, node, truncate=False)
        if h.append:
            offset = writer.size
        h.wrote = True
        return await self._guard(writer.write(offset, data), "write", writer.name)

    async def truncate(self, ino: int, key: Key | None, node: Node | None, size: int) -> None:
        """Set the size of ``ino``'s file (``key``/``node``: where it is; None for a file
        whose name was unlinked while a descriptor keeps it open). A file open for writing
        by no handle is published at once."""
        if key is None or node is None:
            writer = await self._detached_writer(ino, truncate=size == 0)
            await self._guard(writer.truncate(size), "truncate", writer.name)
            return
        writer = self._writers.get(ino) or await self._writer(ino, key, node, truncate=size == 0)
        await self._guard(writer.truncate(size), "truncate", writer.name)
        if self._write_handles.get(ino, 0) == 0:
            try:
                await self._guard(self._publish(ino, writer), "truncate", writer.name)
            finally:
                await self._finish_writer(ino)

    async def detached_writer(self, ino: int) -> None:
        """Make sure an unlinked file still open for writing has its (never published)
        writer, so changes to it are accepted; ``ENOENT`` when no descriptor holds it."""
        await self._detached_writer(ino, truncate=False)

    # ----- publishing ----------------------------------------------------------------------
    async def _publish(self, ino: int, writer: Writer) -> None:
        """Publish ``writer``'s changes if it has any and still has a name (raises the
        store's error); the one place a commit becomes a shown, counted version."""
        if not writer.dirty or writer.unlinked:
            return
        view = self.views.view(writer.bucket)
        # the watch's echo of this commit waits for the view, so it is not taken for
        # another client's change (that would invalidate the kernel's entry)
        with view.holding(writer.name):
            info = await writer.commit()
            if info is None:
                return
            self.published += 1
            self._written[ino] = (info.nuid, writer.mtime_ns)
            view.set_pending(writer.name, None)
            view.apply(info)
        self._last_nuid[ino] = info.nuid
        for handle in self._handles.values():
            if handle.ino == ino:
                handle.info = info

    async def publish_pending(self, key: Key, op: str) -> None:
        """Make sure the file at ``key`` is stored: a file whose first upload has not been
        published yet (its last ``release`` still committing, or never written) is
        committed now (``op`` names the caller in errors)."""
        ino = self.inodes.find(key)
        writer = self._writers.get(ino) if ino is not None else None
        if writer is None or ino is None:
            return
        await writer.settled()
        if writer.committed is None:
            try:
                await self._publish(ino, writer)
            except StoreError as e:
                raise from_store(e, op, f"{key[0]}/{key[1]}") from None

    async def flush(self, fh: int) -> None:
        """Publish what this handle wrote (every ``close``); raise the upload's error.

        A handle that wrote nothing publishes nothing here: the kernel also flushes when a
        duplicate of the descriptor is closed (``printf x > f`` closes the descriptor it
        ``dup2``-ed to stdout before writing), and publishing then would make the empty,
        just-truncated version visible. Its changes (an ``O_TRUNC`` open, a new empty
        file) are published by the last ``release`` instead.
        """
        h = self._file_handle(fh)
        if h.writable and h.wrote:
            await self._commit(h)
        elif h.error is not None:
            err, h.error = h.error, None
            raise err

    async def fsync(self, fh: int) -> None:
        """Publish the file's changes; raise the upload's error."""
        h = self._file_handle(fh)
        if h.writable:
            await self._commit(h)

    async def _commit(self, h: FileHandle) -> None:
        writer = self._writers.get(h.ino)
        if writer is not None:
            try:
                await self._publish(h.ino, writer)
            except StoreError as e:
                err = from_store(e, "upload", f"{writer.bucket}/{writer.name}")
                for other in self._handles.values():
                    if other.ino == h.ino and other.writable:
                        other.error = err
                raise err from None
        if h.error is not None:
            err, h.error = h.error, None
            raise err

    async def release(self, fh: int) -> None:
        """Close a handle; the last writer publishes (errors only logged) and drops its spool."""
        h = self._handles.pop(fh, None)
        if h is None:
            return
        try:
            if h.writable:
                left = self._write_handles.get(h.ino, 1) - 1
                if left > 0:
                    self._write_handles[h.ino] = left
                else:
                    self._write_handles.pop(h.ino, None)
                    await self._finish_writer(h.ino)
        finally:
            self.inodes.close(h.ino)
            self.drop_orphan(h.ino)

    async def _finish_writer(self, ino: int) -> None:
        """Publish a writer's last changes (errors are only logged), then drop it unless
        a new write handle opened meanwhile (its release finishes the writer then).

        Content the store refused (no space, too large, sealed) and that did not change
        since is not uploaded again: the refusal was already returned by ``close``."""
        writer = self._writers.get(ino)
        if writer is None:
            return
        with trio.CancelScope(shield=True):
            try:
                if writer.refused is None:
                    await self._publish(ino, writer)
            except StoreError as e:
                from_store(e, "upload at release", f"{writer.bucket}/{writer.name}")
            finally:
                if self._write_handles.get(ino, 0) == 0 and self._writers.get(ino) is writer:
                    del self._writers[ino]
                    self._writer_locks.pop(ino, None)
                    if not writer.unlinked:
                        # an unlinked writer's name may already hold a new file's placeholder
                        # (the kernel sends RELEASE without waiting for it)
                        self.views.view(writer.bucket).set_pending(writer.name, None)
                    await writer.close()

    async def flush_all(self) -> None:
        """Publish every file with unpublished writes; errors are logged, not raised."""
        for ino, writer in list(self._writers.items()):
            try:
                await self._publish(ino, writer)
            except StoreError as e:
                from_store(e, "flush at unmount", f"{writer.bucket}/{writer.name} (inode {ino})")

    async def close(self) -> None:
        """Discard spool files and handles."""
        for writer in list(self._writers.values()):
            await writer.close()
        self._writers.clear()
        self._handles.clear()

    # ----- metadata ------------------------------------------------------------------------
    def set_mtime(self, ino: int, mtime_ns: int) -> None:
        """Show ``mtime_ns`` for ``ino``'s unpublished data too."""
        writer = self._writers.get(ino)
        if writer is not None:
            writer.mtime_ns = mtime_ns

    async def update_meta(
        self, ino: int, key: Key, node: Node, change: Callable[[ObjectMeta], ObjectMeta]
    ) -> None:
        """Apply ``change`` to the stored meta of ``node`` and to its writer's, if any."""
        if node.info is None:
            return
        view = self.views.view(key[0])
        writer = self._writers.get(ino)
        if writer is not None:
            writer.meta = change(writer.meta)
            pending = view.pending.get(writer.name)
            if pending is not None:
                m = writer.meta
                view.set_pending(
                    writer.name,
                    replace(pending, description=m.description, headers=m.headers, metadata=m.metadata),
                )
        obj = node.info.name
        if obj in view.infos:
            stored = await self.views.full_info(key[0], view.infos[obj], "setattr")
            try:
                info = await self.store.update_meta(key[0], obj, change(stored.meta()))
            except StoreError as e:
                raise from_store(e, "setattr", f"{key[0]}/{obj}") from None
            view.apply(info)
