"""File data operations of :class:`osfs.fs.Filesystem`: open, create, read, write, flush,
fsync, release and setattr.

Reads of a stored version go to ``store.read`` with the handle's read-ahead hint
(:mod:`osfs.readahead`). ``open`` re-reads the object's meta, so a reader always starts on
the latest version; ``keep_cache`` is granted only when that version (nuid) is the one the
kernel may already have cached from the previous open. A file with a :class:`Writer` (open
for writing and written, or truncated) is read from the writer, so readers see the new
data before it is published. Upload errors: see :mod:`osfs.fs`.
"""

from __future__ import annotations

import errno
import logging
import os
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import trio

from .errors import FsError, fail, from_store
from .handles import Attr, FileHandle, OpenReply
from .inodes import Key
from .names import Node, join
from .readahead import ReadAhead
from .store.errors import NotFound, ObjectReplaced, StoreError
from .store.types import ObjectInfo, ObjectMeta
from .writeback import Writer

if TYPE_CHECKING:
    from .fs import Filesystem

log = logging.getLogger(__name__)

META_MTIME = "osfs-mtime"


#: Times an ``open`` starts over when renames keep moving its inode.
OPEN_ATTEMPTS = 5


def _wants_write(flags: int) -> bool:
    return flags & (os.O_WRONLY | os.O_RDWR) != 0


class FileOpsMixin:
    """Mixed into :class:`osfs.fs.Filesystem`; uses its tables and views."""

    async def open(self: Filesystem, ino: int, flags: int) -> OpenReply:
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
            key = self._key(ino)
            node, _ = await self._node(key)
            if node.is_dir:
                raise FsError(errno.EISDIR)
            if node.info is not None and node.info.link is not None:
                raise FsError(errno.ELOOP)
            if writable and self.options.read_only:
                raise fail(errno.EROFS, "open", key[1], "read-only mount")
            info = await self._fresh_info(key, node)
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

    async def _fresh_info(self: Filesystem, key: Key, node: Node) -> ObjectInfo | None:
        """The latest meta of a stored file (None for a file not stored yet).

        While the bucket's watch is live the cached meta is current (within the watch's
        latency; a read that finds it replaced before serving anything re-reads it), so
        no request is made; otherwise it is fetched.
        """
        if node.info is None or not node.info.nuid:
            return None
        if self._view(key[0]).watching:
            return node.info
        try:
            info = await self.store.info(key[0], node.info.name)
        except NotFound:
            self._view(key[0]).remove(node.info.name)
            raise FsError(errno.ENOENT) from None
        except StoreError as e:
            raise from_store(e, "open", f"{key[0]}/{node.info.name}") from None
        self._view(key[0]).apply(info)
        return info

    def _new_handle(self: Filesystem, ino: int, writable: bool, append: bool, info: ObjectInfo | None) -> int:
        fh = next(self._fhs)
        self._handles[fh] = FileHandle(fh, ino, writable, append, info, ReadAhead(self.options.chunk_size))
        self.inodes.open(ino)
        if writable:
            self._write_handles[ino] = self._write_handles.get(ino, 0) + 1
        return fh

    async def _writer(self: Filesystem, ino: int, key: Key, node: Node, *, truncate: bool) -> Writer:
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
            base = node.info if node.info is not None and node.info.nuid else None
            meta = base.meta() if base is not None else ObjectMeta(obj)
            if META_MTIME in meta.metadata:
                meta = replace(meta, metadata={k: v for k, v in meta.metadata.items() if k != META_MTIME})
            writer = Writer(
                self.store,
                key[0],
                meta,
                spool_dir=self.options.spool_dir,
                chunk_size=self.options.chunk_size,
                base=base,
            )
            await self._guard(writer.start(None if truncate else base), "open for writing", obj)
            self._writers[ino] = writer
            return writer

    async def _detached_writer(self: Filesystem, ino: int, *, truncate: bool) -> Writer:
        """The writer of a file whose name was unlinked while a descriptor keeps it open
        for writing (made from the version that descriptor opened; never published).
        ``ENOENT`` when no such descriptor exists."""
        writer = self._writers.get(ino)
        if writer is not None:
            return writer
        h = next(
            (h for h in self._handles.values() if isinstance(h, FileHandle) and h.ino == ino and h.writable),
            None,
        )
        if h is None or h.info is None:
            raise FsError(errno.ENOENT)
        lock = self._writer_locks.setdefault(ino, trio.Lock())
        async with lock:
            writer = self._writers.get(ino)
            if writer is None:
                writer = Writer(
                    self.store,
                    h.info.bucket,
                    h.info.meta(),
                    spool_dir=self.options.spool_dir,
                    chunk_size=self.options.chunk_size,
                    base=h.info,
                )
                writer.unlinked = True
                await self._guard(writer.start(None if truncate else h.info), "write", h.info.name)
                self._writers[ino] = writer
            return writer

    async def _guard(self: Filesystem, work, op: str, path: str):
        """Await ``work``, converting store and disk errors."""
        try:
            return await work
        except StoreError as e:
            raise from_store(e, op, path) from None
        except OSError as e:
            log.error("%s %s: spool I/O failed: %s", op, path, e)
            raise FsError(e.errno or errno.EIO) from None

    async def create(
        self: Filesystem, parent: int, name: str, flags: int, mode: int
    ) -> tuple[OpenReply, Attr]:
        """Create and open a new file; adds one lookup to its inode."""
        pkey = self._writable_dir(parent, name, "create")
        if self._is_top(pkey):
            raise fail(errno.EPERM, "create", name, "only directories (buckets) at the top", logging.INFO)
        key = (pkey[0], join(pkey[1], name))
        tree = await self._tree(key[0])
        pnode = tree.node(pkey[1])
        if pnode is None or not pnode.is_dir:
            raise FsError(errno.ENOENT)
        existing = tree.node(key[1])
        if existing is not None:
            if flags & os.O_EXCL:
                raise FsError(errno.EEXIST)
            attr = await self.lookup(parent, name)
            return await self.open(attr.ino, flags), attr
        meta = ObjectMeta(key[1], metadata=self._mode_meta(mode, 0o666))
        writer = Writer(
            self.store, key[0], meta, spool_dir=self.options.spool_dir, chunk_size=self.options.chunk_size
        )
        await self._guard(writer.start(None), "create", f"{key[0]}/{key[1]}")
        placeholder = ObjectInfo(key[0], key[1], "", 0, 0, "", datetime.now(UTC), metadata=meta.metadata)
        self._view(key[0]).set_pending(key[1], placeholder)
        ino = self.inodes.ino_for(key)
        self.inodes.remember(ino)
        self._writers[ino] = writer
        fh = self._new_handle(ino, True, bool(flags & os.O_APPEND), None)
        node = Node(key[1], False, placeholder)
        return OpenReply(fh, False), self._attr(ino, node, await self._tree(key[0]))

    def _file_handle(self: Filesystem, fh: int) -> FileHandle:
        handle = self._handles.get(fh)
        if not isinstance(handle, FileHandle):
            raise FsError(errno.EBADF)
        return handle

    async def read(self: Filesystem, fh: int, offset: int, size: int) -> bytes | memoryview:
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
                fresh = current or await self._reread(h.info)
                if not own and fresh.size != h.info.size:
                    # the kernel sized this inode from the old version: serving the new
                    # one would cut or pad it
                    raise from_store(e, "read", f"{h.info.bucket}/{h.info.name}") from None
                h.info = fresh
                self._last_nuid[h.ino] = h.info.nuid
            except StoreError as e:
                raise from_store(e, "read", f"{h.info.bucket}/{h.info.name}") from None
        raise FsError(errno.ESTALE)

    async def _reread(self: Filesystem, info: ObjectInfo) -> ObjectInfo:
        """The current meta behind a version that turned out to be replaced."""
        try:
            current = await self.store.info(info.bucket, info.name)
        except StoreError as e:
            raise from_store(e, "read", f"{info.bucket}/{info.name}") from None
        self._view(info.bucket).apply(current)
        return current

    async def write(self: Filesystem, fh: int, offset: int, data: bytes) -> int:
        h = self._file_handle(fh)
        if not h.writable:
            raise FsError(errno.EBADF)
        writer = self._writers.get(h.ino)
        if writer is None and self.inodes.key_of(h.ino) is None:
            writer = await self._detached_writer(h.ino, truncate=False)
        elif writer is None:
            key = self._key(h.ino)
            node, _ = await self._node(key)
            writer = await self._writer(h.ino, key, node, truncate=False)
        if h.append:
            offset = writer.size
        h.wrote = True
        return await self._guard(writer.write(offset, data), "write", writer.name)

    async def flush(self: Filesystem, fh: int) -> None:
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

    async def fsync(self: Filesystem, fh: int, datasync: bool = False) -> None:
        h = self._file_handle(fh)
        if h.writable:
            await self._commit(h)

    async def _commit(self: Filesystem, h: FileHandle) -> None:
        writer = self._writers.get(h.ino)
        if writer is not None and writer.dirty and not writer.unlinked:
            try:
                info = await writer.commit()
            except StoreError as e:
                err = from_store(e, "upload", f"{writer.bucket}/{writer.name}")
                for other in self._handles.values():
                    if isinstance(other, FileHandle) and other.ino == h.ino and other.writable:
                        other.error = err
                raise err from None
            if info is not None:
                self._published(h.ino, writer, info)
        if h.error is not None:
            err, h.error = h.error, None
            raise err

    def _published(self: Filesystem, ino: int, writer: Writer, info: ObjectInfo) -> None:
        view = self._view(writer.bucket)
        view.set_pending(writer.name, None)
        view.apply(info)
        self._last_nuid[ino] = info.nuid
        for handle in self._handles.values():
            if isinstance(handle, FileHandle) and handle.ino == ino:
                handle.info = info

    async def release(self: Filesystem, fh: int) -> None:
        """Close a handle; the last writer publishes (errors only logged) and drops its spool."""
        h = self._handles.pop(fh, None)
        if not isinstance(h, FileHandle):
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
            self._drop_orphan(h.ino)

    async def _finish_writer(self: Filesystem, ino: int) -> None:
        """Publish a writer's last changes (errors are only logged), then drop it unless
        a new write handle opened meanwhile (its release finishes the writer then).

        Content the store refused (no space, too large, sealed) and that did not change
        since is not uploaded again: the refusal was already returned by ``close``."""
        writer = self._writers.get(ino)
        if writer is None:
            return
        with trio.CancelScope(shield=True):
            try:
                if writer.dirty and not writer.unlinked and writer.refused is None:
                    info = await writer.commit()
                    if info is not None:
                        self._published(ino, writer, info)
            except StoreError as e:
                from_store(e, "upload at release", f"{writer.bucket}/{writer.name}")
            finally:
                if self._write_handles.get(ino, 0) == 0 and self._writers.get(ino) is writer:
                    del self._writers[ino]
                    self._writer_locks.pop(ino, None)
                    if not writer.unlinked:
                        # an unlinked writer's name may already hold a new file's placeholder
                        # (the kernel sends RELEASE without waiting for it)
                        self._view(writer.bucket).set_pending(writer.name, None)
                    await writer.close()

    async def setattr(
        self: Filesystem,
        ino: int,
        *,
        size: int | None = None,
        mode: int | None = None,
        uid: int | None = None,
        gid: int | None = None,
        mtime_ns: int | None = None,
    ) -> Attr:
        """Truncate and/or change mode, owner or mtime (kept in object metadata).

        A file still open after its name was unlinked (the temp-file idiom) can be
        truncated through its descriptor; other changes to it are accepted and dropped,
        since it will never be published."""
        if self.inodes.key_of(ino) is None:
            writer = await self._detached_writer(ino, truncate=size == 0)
            if size is not None:
                await self._guard(writer.truncate(size), "truncate", writer.name)
            return await self.getattr(ino)
        key = self._key(ino)
        await self._settle(key)
        node, _ = await self._node(key)
        if self.options.read_only:
            raise fail(errno.EROFS, "setattr", key[1], "read-only mount")
        if size is not None:
            if node.is_dir:
                raise FsError(errno.EISDIR)
            writer = self._writers.get(ino) or await self._writer(ino, key, node, truncate=size == 0)
            await self._guard(writer.truncate(size), "truncate", writer.name)
            if self._write_handles.get(ino, 0) == 0:
                try:
                    info = await self._guard(writer.commit(), "truncate", writer.name)
                    if info is not None:
                        self._published(ino, writer, info)
                finally:
                    await self._finish_writer(ino)
            node, _ = await self._node(key)
        changes: dict[str, str] = {}
        if mode is not None:
            changes["osfs-mode"] = f"{mode & 0o7777:o}"
        if uid is not None:
            changes["osfs-uid"] = str(uid)
        if gid is not None:
            changes["osfs-gid"] = str(gid)
        if mtime_ns is not None:
            changes[META_MTIME] = str(mtime_ns)
            writer = self._writers.get(ino)
            if writer is not None:
                writer.mtime_ns = mtime_ns
        if changes:
            await self._set_metadata(ino, key, node, changes)
        return await self.getattr(ino)

    async def _set_metadata(
        self: Filesystem, ino: int, key: Key, node: Node, changes: dict[str, str]
    ) -> None:
        """Merge ``changes`` into the object's metadata (and into an open writer's).

        The shown mtime is pinned (``osfs-mtime``) first, so a chmod/chown does not move it.
        """
        if META_MTIME not in changes and node.info is not None and META_MTIME not in node.info.metadata:
            changes = {**changes, META_MTIME: str(int(node.info.mtime.timestamp() * 1e9))}
        await self._update_meta(ino, key, node, lambda m: replace(m, metadata={**m.metadata, **changes}))

    async def _update_meta(self: Filesystem, ino: int, key: Key, node: Node, change) -> None:
        """Apply ``change`` (ObjectMeta → ObjectMeta) to the stored meta and any writer's."""
        if node.info is None:
            return
        view = self._view(key[0])
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
            stored = view.infos[obj]
            try:
                info = await self.store.update_meta(key[0], obj, change(stored.meta()))
            except StoreError as e:
                raise from_store(e, "setattr", f"{key[0]}/{obj}") from None
            view.apply(info)
