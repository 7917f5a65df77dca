"""The filesystem core: FUSE-free operations on inodes, over an :class:`ObjectStore`.

Layout: without ``FsOptions.bucket`` the root lists every bucket and ``mkdir``/``rmdir`` at
the root create/destroy buckets (``rmdir`` only when the bucket holds no object at all);
with it, that bucket is the root. Inside a bucket the tree follows :mod:`osfs.names`;
``mkdir`` writes a directory marker ``"<path>/"``. Object links are symlinks.

Every method raises only :class:`osfs.errors.FsError`. Names are ``str`` (the adapter
decodes bytes with ``os.fsdecode``). ``lookup``, ``mkdir``, ``create`` and ``symlink`` add
one kernel lookup to the inode they return; ``remember`` adds one for ``readdir`` entries
the kernel accepted; ``forget`` drops them.

Attributes kept in object metadata (written by ``chmod``/``chown``/``touch``, read back by
``getattr``; absent means the mount's defaults: ``FsOptions.uid``/``gid``, ``0o666`` for
files and ``0o777`` for directories, both less ``umask``, and the object's own mtime):

* ``osfs-mode``: permission bits in octal (e.g. ``"640"``);
* ``osfs-uid``, ``osfs-gid``: decimal ids;
* ``osfs-mtime``: modification time in nanoseconds since the epoch (dropped by a new write).

Writes and the upload error contract are in :mod:`osfs.writeback`; each ``flush`` (every
``close``) and ``fsync`` of a handle that wrote publishes the content and raises the
upload's error; a failed upload's error is raised again by the handle's next
``flush``/``fsync`` even if a retry succeeds. Remote changes reach the kernel through
the async callback ``invalidator`` (set by the adapter), called in order by a worker in the
nursery given to :meth:`Filesystem.start` (see :mod:`osfs.watch`).

Concurrency: everything runs in one trio thread; state (inode table, views, handles,
writers) is consistent between checkpoints, and every ``await`` may see it changed (a
handler re-reads what it needs after awaiting). Worker threads touch only spool files.
"""

from __future__ import annotations

import errno
import itertools
import logging
import math
import stat
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace

import trio

from .config import FsOptions
from .errors import FsError, fail, from_store
from .files import FileOpsMixin
from .handles import Attr, DirEntry, DirHandle, FileHandle, Invalidation, StatFs
from .inodes import ROOT_INODE, InodeTable, Key
from .links import LinksMixin
from .names import Node, Tree, bad_component, join, parent_of
from .namespace import NamespaceMixin
from .store.base import ObjectStore
from .store.errors import BucketNotFound, NotFound, StoreError
from .store.types import BucketConfig, ObjectInfo, ObjectMeta, valid_bucket_name
from .watch import BucketView
from .writeback import Writer
from .xattrs import XattrMixin

log = logging.getLogger(__name__)

META_MODE = "osfs-mode"
META_UID = "osfs-uid"
META_GID = "osfs-gid"
META_MTIME = "osfs-mtime"

#: How long the list of buckets is reused (seconds).
BUCKET_LIST_TTL = 1.0
#: Free space reported when the account has no storage limit (1 PiB).
UNLIMITED_FREE = 1 << 50


class Filesystem(FileOpsMixin, NamespaceMixin, LinksMixin, XattrMixin):
    """See the module docstring. Workers run in the nursery given to :meth:`start`."""

    def __init__(self, store: ObjectStore, options: FsOptions) -> None:
        self.store = store
        self.options = options
        self.root_key: Key = (options.bucket, "") if options.bucket else ("", "")
        self.inodes = InodeTable(self.root_key)
        self.invalidator: Callable[[Invalidation], Awaitable[None]] | None = None
        self._inval_send, self._inval_recv = trio.open_memory_channel[Invalidation](math.inf)
        self._views: dict[str, BucketView] = {}
        self._nursery: trio.Nursery | None = None
        self._handles: dict[int, FileHandle | DirHandle] = {}
        self._fhs = itertools.count(1)
        self._writers: dict[int, Writer] = {}
        self._writer_locks: dict[int, trio.Lock] = {}
        self._write_handles: dict[int, int] = {}
        self._last_nuid: dict[int, str] = {}
        #: Last version of files whose name was unlinked or replaced while the kernel still
        #: held their inode: an ``open`` racing with the rename/unlink opens that version.
        self._orphans: dict[int, ObjectInfo] = {}
        self._buckets: tuple[float, list[str]] | None = None
        self._started_ns = time.time_ns()
        #: Absolute path the filesystem is mounted at (set by the mount; lets ``symlink``
        #: accept absolute targets that lie inside the mount).
        self.mountpoint: str | None = None

    # ----- lifecycle -----------------------------------------------------------------------
    async def start(self, nursery: trio.Nursery) -> None:
        """Start the workers: the invalidation worker now, bucket watches when first used."""
        self._nursery = nursery
        nursery.start_soon(self._invalidation_worker)
        if self.options.bucket:
            self._view(self.options.bucket)

    async def flush_all(self) -> None:
        """Upload every file with unpublished writes; errors are logged, not raised."""
        for ino, writer in list(self._writers.items()):
            try:
                await writer.commit()
            except StoreError as e:
                from_store(e, "flush at unmount", f"{writer.bucket}/{writer.name} (inode {ino})")

    async def close(self) -> None:
        """Discard spool files; stop using the store."""
        for writer in list(self._writers.values()):
            await writer.close()
        self._writers.clear()
        self._handles.clear()

    # ----- views and nodes -----------------------------------------------------------------
    def _view(self, bucket: str) -> BucketView:
        view = self._views.get(bucket)
        if view is None or view.gone:
            if self._nursery is None:
                raise RuntimeError("Filesystem.start() must be called first")
            view = BucketView(self.store, bucket, self._on_remote_change)
            self._views[bucket] = view
            self._nursery.start_soon(view.run)
        return view

    async def _tree(self, bucket: str) -> Tree:
        try:
            return await self._view(bucket).tree()
        except StoreError as e:
            raise from_store(e, "list", bucket) from None

    def _key(self, ino: int) -> Key:
        key = self.inodes.key_of(ino)
        if key is None:
            raise FsError(errno.ENOENT)
        return key

    def _is_top(self, key: Key) -> bool:
        """True for the directory that lists buckets."""
        return key == ("", "")

    async def _node(self, key: Key, *, need_tree: bool = False) -> tuple[Node, Tree | None]:
        """The node at ``key`` and its bucket's tree (None for the top, and for a bucket's
        own directory whose bucket is not loaded yet unless ``need_tree``: ``ls -l`` of the
        top does not start a watch per bucket)."""
        if self._is_top(key):
            return Node("", True), None
        if key[1] == "" and not need_tree:
            view = self._views.get(key[0])
            if view is None or view.gone or not view.ready.is_set():
                if key[0] != self.options.bucket and key[0] not in await self._bucket_names():
                    raise FsError(errno.ENOENT)
                return Node("", True), None
        tree = await self._tree(key[0])
        node = tree.node(key[1])
        if node is None:
            raise FsError(errno.ENOENT)
        return node, tree

    async def _bucket_names(self, fresh: bool = False) -> list[str]:
        now = trio.current_time()
        if fresh or self._buckets is None or now - self._buckets[0] > BUCKET_LIST_TTL:
            try:
                self._buckets = (now, await self.store.bucket_names())
            except StoreError as e:
                raise from_store(e, "list buckets") from None
        return self._buckets[1]

    def _on_remote_change(self, bucket: str, name: str) -> None:
        """A watch saw another client change ``name``: tell the kernel what to forget.

        That is the entry in its parent directory and the inode's attributes and data.
        Directories that appear need nothing (the kernel caches no negative entries);
        directories that vanish with their last object expire with ``entry_timeout``.
        """
        if self.invalidator is None:
            return
        path = name.rstrip("/")
        parent, leaf = parent_of(path)
        out: list[Invalidation] = []
        dir_ino = self.inodes.find((bucket, parent))
        if dir_ino is not None and leaf:
            out.append(Invalidation(dir_ino, leaf))
        ino = self.inodes.find((bucket, path))
        if ino is not None and ino not in self._writers:
            out.append(Invalidation(ino))
        for inv in out:
            self._inval_send.send_nowait(inv)

    async def _invalidation_worker(self) -> None:
        """Deliver invalidations to ``invalidator`` in order, one at a time."""
        async for inv in self._inval_recv:
            if self.invalidator is None:
                continue
            try:
                await self.invalidator(inv)
            except Exception:
                log.exception("invalidation of %s failed", inv)

    # ----- attributes ----------------------------------------------------------------------
    def _attr(self, ino: int, node: Node, tree: Tree | None) -> Attr:
        o = self.options
        info = node.info
        meta = info.metadata if info is not None else {}
        mtime = self._started_ns
        if info is not None:
            mtime = _int(meta.get(META_MTIME)) or int(info.mtime.timestamp() * 1e9)
        if node.is_dir:
            kind, perm, size = stat.S_IFDIR, 0o777 & ~o.umask, 0
            d = tree.dirs.get(node.path) if tree is not None else None
            nlink = 2 + (d.subdirs if d is not None else 0)
        elif info is not None and info.link is not None:
            kind, perm, nlink = stat.S_IFLNK, 0o777, 1
            size = len(self._link_target(node, tree).encode())
        else:
            kind, perm, nlink = stat.S_IFREG, 0o666 & ~o.umask, 1
            size = info.size if info is not None else 0
            writer = self._writers.get(ino)
            if writer is not None:
                size = writer.size
                mtime = writer.mtime_ns if writer.dirty else max(mtime, writer.mtime_ns)
        mode_text = meta.get(META_MODE)
        if mode_text is not None and kind != stat.S_IFLNK:
            perm = _int(mode_text, 8) & 0o7777
        if o.read_only:
            perm &= ~0o222
        return Attr(
            ino=ino,
            mode=kind | perm,
            nlink=nlink,
            size=size,
            uid=_int(meta.get(META_UID), default=o.uid),
            gid=_int(meta.get(META_GID), default=o.gid),
            atime_ns=mtime,
            mtime_ns=mtime,
            ctime_ns=mtime,
        )

    async def getattr(self, ino: int) -> Attr:
        """Attributes of ``ino``; an open file that was unlinked or replaced keeps answering
        from its handle (``fstat`` after ``unlink``)."""
        if self.inodes.key_of(ino) is None:
            held = self._held_attr(ino)
            if held is not None:
                return held
        try:
            node, tree = await self._node(self._key(ino))
        except FsError as e:
            # the name vanished (deleted by another client) while the file is open: its
            # readers keep the version they have (then ESTALE), as after a local unlink
            held = self._held_attr(ino) if e.errno == errno.ENOENT else None
            if held is None:
                raise
            return held
        return self._attr(ino, node, tree)

    def _held_attr(self, ino: int) -> Attr | None:
        """Attributes of ``ino`` from an open handle's version (None if it has none)."""
        for h in self._handles.values():
            if isinstance(h, FileHandle) and h.ino == ino:
                return self._attr(ino, Node("", False, h.info), None)
        return None

    async def lookup(self, parent: int, name: str) -> Attr:
        """The attributes of ``name`` in ``parent``; adds one lookup to its inode."""
        key = await self._child_key(parent, name)
        node, tree = await self._node(key)
        ino = self.inodes.ino_for(key)
        self.inodes.remember(ino)
        return self._attr(ino, node, tree)

    async def _child_key(self, parent: int, name: str) -> Key:
        pkey = self._key(parent)
        if self._is_top(pkey):
            if not valid_bucket_name(name):
                raise FsError(errno.ENOENT)
            if name not in await self._bucket_names():
                try:
                    await self.store.bucket_status(name)
                except BucketNotFound:
                    raise FsError(errno.ENOENT) from None
                except StoreError as e:
                    raise from_store(e, "lookup", name) from None
                self._buckets = None
            return (name, "")
        return (pkey[0], join(pkey[1], name))

    def remember(self, ino: int) -> None:
        """The kernel accepted a ``readdir`` entry for ``ino``: one more lookup."""
        self.inodes.remember(ino)

    def forget(self, items: list[tuple[int, int]]) -> None:
        """Drop kernel lookups; never raises."""
        for ino, n in items:
            try:
                self.inodes.forget(ino, n)
                self._drop_orphan(ino)
            except Exception:
                log.exception("forget of inode %d failed", ino)

    async def _settle(self, key: Key) -> None:
        """Wait for an upload of ``key``'s file that is in flight (a ``release`` committing
        while the application already renames or unlinks the file)."""
        writer = self._writer_at(key)
        if writer is not None:
            await writer.settled()

    def _writer_at(self, key: Key) -> Writer | None:
        """The writer of the file at ``key``, if it is open for writing (or committing)."""
        ino = self.inodes.find(key)
        return self._writers.get(ino) if ino is not None else None

    def _unname_writer(self, view: BucketView, writer: Writer, name: str) -> None:
        """``writer``'s file lost its name (unlinked, or replaced by a rename): it is never
        published, and stops being shown under ``name``."""
        writer.unlinked = True
        view.set_pending(name, None)

    def _orphan(self, key: Key, node: Node | None) -> None:
        """``key``'s name is going away: keep its version for opens of its inode."""
        ino = self.inodes.find(key)
        info = node.info if node is not None and not node.is_dir else None
        if ino is not None and info is not None and info.nuid and info.link is None:
            self._orphans[ino] = info

    def _drop_orphan(self, ino: int) -> None:
        if ino in self._orphans and not self.inodes.known(ino):
            del self._orphans[ino]

    # ----- directories ---------------------------------------------------------------------
    async def opendir(self, ino: int) -> int:
        key = self._key(ino)
        node, tree = await self._node(key, need_tree=True)
        if not node.is_dir:
            raise FsError(errno.ENOTDIR)
        entries: list[tuple[str, Key, Attr]] = []
        if self._is_top(key):
            for b in await self._bucket_names(fresh=True):
                bkey = (b, "")
                bino = self.inodes.ino_for(bkey)
                entries.append((b, bkey, self._attr(bino, Node("", True), None)))
        else:
            assert tree is not None
            d = tree.dirs[node.path]
            for name in sorted(d.children):
                child = d.children[name]
                ckey = (key[0], child.path)
                cino = self.inodes.ino_for(ckey)
                entries.append((name, ckey, self._attr(cino, child, tree)))
        fh = next(self._fhs)
        self._handles[fh] = DirHandle(fh, ino, entries)
        self.inodes.open(ino)
        return fh

    def readdir(self, fh: int, offset: int) -> list[DirEntry]:
        """Entries of the snapshot from cookie ``offset`` on (0 = the start)."""
        handle = self._handles.get(fh)
        if not isinstance(handle, DirHandle):
            raise FsError(errno.EBADF)
        out = []
        for i in range(offset, len(handle.entries)):
            name, key, attr = handle.entries[i]
            ino = self.inodes.ino_for(key)
            if ino != attr.ino:
                attr = replace(attr, ino=ino)
            out.append(DirEntry(name, attr, i + 1))
        return out

    def releasedir(self, fh: int) -> None:
        """Close a listing; inodes it allocated that the kernel never took are freed."""
        handle = self._handles.pop(fh, None)
        if isinstance(handle, DirHandle):
            for _, key, _ in handle.entries:
                ino = self.inodes.find(key)
                if ino is not None:
                    self.inodes.drop_if_unused(ino)
            self.inodes.close(handle.ino)

    def _writable_dir(self, parent: int, name: str, op: str) -> Key:
        if self.options.read_only:
            raise fail(errno.EROFS, op, name, "read-only mount")
        why = bad_component(name)
        if why is None and not _is_utf8(name):
            why = "name is not valid UTF-8"
        if why is not None:
            err = errno.ENAMETOOLONG if "255" in why else errno.EINVAL
            raise fail(err, op, repr(name), why, logging.INFO)
        return self._key(parent)

    async def mkdir(self, parent: int, name: str, mode: int) -> Attr:
        pkey = self._writable_dir(parent, name, "mkdir")
        if self._is_top(pkey):
            return await self._make_bucket(name)
        key = (pkey[0], join(pkey[1], name))
        tree = await self._tree(pkey[0])
        if tree.node(pkey[1]) is None:
            raise FsError(errno.ENOENT)
        if tree.node(key[1]) is not None:
            raise FsError(errno.EEXIST)
        meta = ObjectMeta(key[1] + "/", metadata=self._mode_meta(mode, 0o777))
        try:
            info = await self.store.put(key[0], meta, b"")
        except StoreError as e:
            raise from_store(e, "mkdir", f"{key[0]}/{key[1]}") from None
        self._view(key[0]).apply(info)
        return await self.lookup(parent, name)

    def _mode_meta(self, mode: int, base: int) -> dict[str, str]:
        perm = mode & 0o7777
        return {} if perm == base & ~self.options.umask else {META_MODE: f"{perm:o}"}

    async def _make_bucket(self, name: str) -> Attr:
        if not valid_bucket_name(name):
            raise fail(errno.EINVAL, "mkdir", name, "not a valid bucket name", logging.INFO)
        if name in await self._bucket_names(fresh=True):
            raise FsError(errno.EEXIST)
        d = self.options.bucket_defaults
        config = BucketConfig(
            bucket=name,
            description=d.description,
            max_object_size=d.max_object_size,
            max_bytes=d.max_bytes,
            storage=d.storage,
            replicas=d.replicas,
            ttl=d.ttl,
            compression=d.compression,
        )
        try:
            await self.store.create_bucket(config)
        except StoreError as e:
            raise from_store(e, "mkdir", name) from None
        self._buckets = None
        return await self.lookup(ROOT_INODE, name)

    async def rmdir(self, parent: int, name: str) -> None:
        pkey = self._writable_dir(parent, name, "rmdir")
        if self._is_top(pkey):
            await self._remove_bucket(name)
            return
        key = (pkey[0], join(pkey[1], name))
        node, _ = await self._node(key)
        if not node.is_dir:
            raise FsError(errno.ENOTDIR)
        view = self._view(key[0])
        marker = key[1] + "/"
        if [n for n in view.names_under(marker) if n != marker]:
            raise FsError(errno.ENOTEMPTY)
        if marker in view.infos:
            await self._delete_object(key[0], marker, "rmdir")
        self.inodes.detach(key)

    async def _delete_object(self, bucket: str, name: str, op: str) -> None:
        """Delete ``name`` from the store and the view (already gone is fine)."""
        try:
            await self.store.delete(bucket, name)
        except NotFound:
            log.debug("%s %s/%s: already deleted", op, bucket, name)
        except StoreError as e:
            raise from_store(e, op, f"{bucket}/{name}") from None
        self._view(bucket).remove(name)

    async def _remove_bucket(self, name: str) -> None:
        try:
            objects = await self.store.list_objects(name)
            if objects:
                raise FsError(errno.ENOTEMPTY)
            await self.store.delete_bucket(name)
        except StoreError as e:
            raise from_store(e, "rmdir", name) from None
        view = self._views.pop(name, None)
        if view is not None:
            view.gone = True
        self._buckets = None
        self.inodes.detach((name, ""))

    async def statfs(self) -> StatFs:
        try:
            usage = await self.store.account_usage()
        except StoreError as e:
            raise from_store(e, "statfs") from None
        bsize = 4096
        used = usage.storage_used + usage.memory_used
        total = usage.max_storage if usage.max_storage > 0 else used + UNLIMITED_FREE
        free = max(0, total - used)
        files = 1 << 32
        return StatFs(bsize, bsize, total // bsize, free // bsize, free // bsize, files, files, files)


def _int(text: str | None, base: int = 10, default: int = 0) -> int:
    """``text`` as an integer; ``default`` when absent or malformed."""
    if text is None:
        return default
    try:
        return int(text, base)
    except ValueError:
        return default


def _is_utf8(name: str) -> bool:
    """False for names decoded from bytes that are not UTF-8 (lone surrogates)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
