"""The filesystem core: FUSE-free operations on inodes, over an :class:`ObjectStore`.

:class:`Filesystem` composes parts that own their state, and dispatches to them:

* :attr:`~Filesystem.inodes` (:mod:`osfs.inodes`): inode numbers and lookup counts;
* :attr:`~Filesystem.views` (:mod:`osfs.views`): the live meta of every visited bucket;
* :attr:`~Filesystem.files` (:mod:`osfs.openfiles`): file handles, writers, publishing;
* :attr:`~Filesystem.listings` (:mod:`osfs.listings`): directory handles;
* :attr:`~Filesystem.namespace` (:mod:`osfs.namespace`): mkdir, rmdir, unlink, rename, buckets;
* :attr:`~Filesystem.links` (:mod:`osfs.links`): symlinks (object links, symlink objects);
* :attr:`~Filesystem.xattrs` (:mod:`osfs.xattrs`): extended attributes;
* :attr:`~Filesystem.changes` (:mod:`osfs.changes`): directory change times, and what the
  kernel must forget when another client changes a name.

What ``stat`` shows is built by :func:`osfs.attrs.attr_of` (the ``osfs-*`` metadata).

Layout: without ``FsOptions.bucket`` the root lists every bucket (see
:mod:`osfs.namespace`); with it, that bucket is the root. Inside a bucket the tree follows
:mod:`osfs.names`. Object links and symlink objects are symlinks (:mod:`osfs.links`); FIFOs,
sockets and devices are empty objects that say what they are (:mod:`osfs.attrs`).

Every method raises only :class:`osfs.errors.FsError`. Names are ``str`` (the adapter
decodes bytes with ``os.fsdecode``). ``lookup``, ``mkdir``, ``create``, ``mknod`` and ``symlink`` add
one kernel lookup to the inode they return; ``remember`` adds one for ``readdir`` entries
the kernel accepted; ``forget`` drops them. A new name is checked here, once, for every
operation that gives one (:func:`osfs.names.bad_new_name`).

Writes and the upload error contract are in :mod:`osfs.writeback` and
:mod:`osfs.openfiles`. Remote changes reach the kernel through the async callback
``invalidator`` (set by the adapter), called in order by a worker in the nursery given to
:meth:`Filesystem.start` (see :mod:`osfs.changes`). Operations that make entries or change
owners take the requesting process as a :class:`osfs.callers.Caller`.

Concurrency: everything runs in one trio thread; state (inode table, views, handles,
writers) is consistent between checkpoints, and every ``await`` may see it changed (a
handler re-reads what it needs after awaiting). Worker threads touch only spool files.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace

import trio

from .attrs import META_MTIME, attr_of, changes_of, is_symlink, owner_meta, pin_mtime
from .callers import Caller, check_setattr, new_owner
from .changes import Changes
from .config import FsOptions
from .errors import FsError, fail, from_store
from .handles import Attr, DirEntry, Invalidation, OpenReply, StatFs
from .inodes import ROOT_INODE, TOP, InodeTable, Key, is_top
from .links import Links
from .listed import Listed
from .listings import Listings
from .names import MAX_COMPONENT, Node, Tree, bad_new_name, join, parent_of
from .namespace import Namespace
from .openfiles import OpenFiles
from .store.base import ObjectStore
from .store.errors import BucketNotFound, StoreError
from .store.types import ObjectMeta, valid_bucket_name
from .views import Views
from .xattrs import Xattrs

log = logging.getLogger(__name__)

#: Free space reported when the account has no storage limit (1 PiB).
UNLIMITED_FREE = 1 << 50


class Filesystem:
    """See the module docstring. Workers run in the nursery given to :meth:`start`."""

    def __init__(self, store: ObjectStore, options: FsOptions) -> None:
        self.store = store
        self.options = options
        self.inodes = InodeTable((options.bucket, "") if options.bucket else TOP)
        self._started_ns = time.time_ns()
        self.views = Views(store, options, lambda bucket, name: self.changes.on_remote_change(bucket, name))
        self.files = OpenFiles(store, options, self.inodes, self.views)
        self.changes = Changes(self.inodes, self.views, self.files)
        self.listings = Listings(self.inodes)
        self.namespace = Namespace(store, options, self.inodes, self.views, self.files)
        self.links = Links(store, options, self.views, self.files)
        self.xattrs = Xattrs(store, options, self.inodes, self.views, self.files, self.namespace)

    @property
    def invalidator(self) -> Callable[[Invalidation], Awaitable[None]] | None:
        """The async callback that makes the kernel forget what a remote change made stale
        (set by the adapter; see :mod:`osfs.changes`)."""
        return self.changes.invalidator

    @invalidator.setter
    def invalidator(self, callback: Callable[[Invalidation], Awaitable[None]] | None) -> None:
        self.changes.invalidator = callback

    @property
    def mountpoint(self) -> str | None:
        """Absolute path the filesystem is mounted at (set by the mount; lets ``symlink``
        accept absolute targets that lie inside the mount)."""
        return self.links.mountpoint

    @mountpoint.setter
    def mountpoint(self, path: str | None) -> None:
        self.links.mountpoint = path

    # ----- lifecycle -----------------------------------------------------------------------
    async def start(self, nursery: trio.Nursery) -> None:
        """Start the workers: the invalidation worker now, bucket watches when first used."""
        nursery.start_soon(self.changes.worker)
        self.views.start(nursery)

    async def flush_all(self) -> None:
        """Upload every file with unpublished writes; errors are logged, not raised."""
        await self.files.flush_all()

    async def close(self) -> None:
        """Discard spool files; stop using the store."""
        await self.files.close()
        self.listings.close()

    # ----- attributes and lookups ----------------------------------------------------------
    def _attr(self, ino: int, node: Node, tree: Tree | None) -> Attr:
        key = self.inodes.key_of(ino)
        attr = attr_of(
            ino,
            node,
            tree,
            self.options,
            default_mtime_ns=self._started_ns,
            writer=self.files.writer(ino),
            written_mtime_ns=self.files.written_mtime(ino, node.info),
            touched_ns=self.changes.touched(key) if node.is_dir and key is not None else None,
            changed_ns=self.changes.changed(key) if key is not None else None,
            link_size=self.links.link_size,
        )
        self.inodes.set_kind(ino, stat.S_IFMT(attr.mode))
        return attr

    async def getattr(self, ino: int) -> Attr:
        """Attributes of ``ino``; an open file that was unlinked or replaced keeps answering
        from its handle (``fstat`` after ``unlink``)."""
        if self.inodes.key_of(ino) is None:
            held = self._held_attr(ino)
            if held is not None:
                return held
        try:
            node, tree = await self.views.node(self.inodes.key(ino))
        except FsError as e:
            # the name vanished (deleted by another client) while the file is open: its
            # readers keep the version they have (then ESTALE), as after a local unlink
            held = self._held_attr(ino) if e.errno == errno.ENOENT else None
            if held is None:
                raise
            return held
        return self._attr(ino, node, tree)

    def _held_attr(self, ino: int) -> Attr | None:
        """Attributes of ``ino``, a file open but no longer named, from an open handle's
        version (None if it has none); its link count is 0."""
        if not self.files.has_handle(ino):
            return None
        held = self.files.held_info(ino)
        attr = self._attr(ino, Node("", False, Listed.of(held) if held is not None else None), None)
        return replace(attr, nlink=0)

    async def lookup(self, parent: int, name: str) -> Attr:
        """The attributes of ``name`` in ``parent``; adds one lookup to its inode."""
        key = await self._child_key(parent, name)
        node, tree = await self.views.node(key)
        ino = self.inodes.ino_for(key)
        self.inodes.remember(ino)
        return self._attr(ino, node, tree)

    async def _child_key(self, parent: int, name: str) -> Key:
        pkey = self.inodes.key(parent)
        if len(name.encode("utf-8", "surrogateescape")) > MAX_COMPONENT:
            raise fail(
                errno.ENAMETOOLONG,
                "lookup",
                repr(name),
                f"component longer than {MAX_COMPONENT} bytes",
                logging.INFO,
            )
        if is_top(pkey):
            if not valid_bucket_name(name):
                raise FsError(errno.ENOENT)
            if name not in await self.views.bucket_names():
                try:
                    await self.store.bucket_status(name)
                except BucketNotFound:
                    raise FsError(errno.ENOENT) from None
                except StoreError as e:
                    raise from_store(e, "lookup", name) from None
                self.views.forget_bucket_names()
            return (name, "")
        return (pkey[0], join(pkey[1], name))

    def remember(self, ino: int) -> None:
        """The kernel accepted a ``readdir`` entry for ``ino``: one more lookup."""
        self.inodes.remember(ino)

    def forget(self, items: list[tuple[int, int]]) -> None:
        """Drop kernel lookups (and the status change time of a freed inode); never raises."""
        for ino, n in items:
            try:
                key = self.inodes.key_of(ino)
                self.inodes.forget(ino, n)
                self.files.drop_orphan(ino)
                if key is not None and not self.inodes.known(ino):
                    self.changes.forget(key)
            except Exception:
                log.exception("forget of inode %d failed", ino)

    async def setattr(
        self,
        ino: int,
        *,
        size: int | None = None,
        mode: int | None = None,
        uid: int | None = None,
        gid: int | None = None,
        mtime_ns: int | None = None,
        atime_ns: int | None = None,
        caller: Caller | None = None,
    ) -> Attr:
        """Truncate and/or change mode, owner, mtime or atime (kept in object metadata); owner and
        mode changes follow the kernel's rules for ``caller`` (:func:`osfs.callers.check_setattr`).

        A file still open after its name was unlinked (the temp-file idiom) can be
        truncated through its descriptor; other changes to it are accepted and dropped,
        since it will never be published."""
        if self.inodes.key_of(ino) is None:
            if size is not None:
                await self.files.truncate(ino, None, None, size)
            else:
                await self.files.detached_writer(ino)
            return await self.getattr(ino)
        key = self.inodes.key(ino)
        await self.files.settle(key)
        node, tree = await self.views.node(key)
        if self.options.read_only:
            raise fail(errno.EROFS, "setattr", key[1], "read-only mount")
        if caller is not None and (mode is not None or uid is not None or gid is not None):
            now = self._attr(ino, node, tree)
            check_setattr(caller, (now.uid, now.gid), mode=mode, uid=uid, gid=gid, current_mode=now.mode)
        if size is not None:
            if node.is_dir:
                raise FsError(errno.EISDIR)
            await self.files.truncate(ino, key, node, size)
            node, tree = await self.views.node(key)
        changes = changes_of(mode=mode, uid=uid, gid=gid, mtime_ns=mtime_ns, atime_ns=atime_ns)
        if mtime_ns is not None:
            self.files.set_mtime(ino, mtime_ns)
        if changes:
            # the shown mtime is pinned first, so a chmod/chown does not move it
            shown = self._attr(ino, node, tree).mtime_ns
            if mtime_ns is not None:
                self.changes.times_set(key)
            if node.is_dir and node.info is None and key[1]:
                # a directory implied by names below it gets a marker to keep these
                meta = ObjectMeta(key[1] + "/", metadata={META_MTIME: str(shown), **changes})
                await self.namespace.write_marker(key, meta)
            else:
                pinned = pin_mtime(changes, node.info, shown)
                await self.files.update_meta(
                    ino, key, node, lambda m: replace(m, metadata={**m.metadata, **pinned})
                )
        self.changes.status_changed(key)
        return await self.getattr(ino)

    # ----- files ---------------------------------------------------------------------------
    async def open(self, ino: int, flags: int) -> OpenReply:
        """Open ``ino`` (see :meth:`osfs.openfiles.OpenFiles.open`)."""
        return await self.files.open(ino, flags)

    async def create(
        self, parent: int, name: str, flags: int, mode: int, caller: Caller | None = None
    ) -> tuple[OpenReply, Attr]:
        """Create and open a new file owned by ``caller``; adds one lookup to its inode."""
        pkey = self._writable_dir(parent, name, "create")
        if is_top(pkey):
            raise fail(errno.EPERM, "create", name, "only directories (buckets) at the top", logging.INFO)
        key = (pkey[0], join(pkey[1], name))
        tree = await self.views.tree(key[0])
        pnode = tree.node(pkey[1])
        if pnode is None or not pnode.is_dir:
            raise FsError(errno.ENOENT)
        if tree.node(key[1]) is not None:
            if flags & os.O_EXCL:
                raise FsError(errno.EEXIST)
            attr = await self.lookup(parent, name)
            return await self.files.open(attr.ino, flags), attr
        owner, mode = await self._new_owner(parent, caller, mode, is_dir=False)
        reply, ino, node = await self.files.create(key, flags, mode, owner)
        self.changes.touch(pkey)
        return reply, self._attr(ino, node, await self.views.tree(key[0]))

    async def read(self, fh: int, offset: int, size: int) -> bytes | memoryview:
        return await self.files.read(fh, offset, size)

    async def write(self, fh: int, offset: int, data: bytes) -> int:
        return await self.files.write(fh, offset, data)

    async def flush(self, fh: int) -> None:
        """Publish what this handle wrote; raise the upload's error."""
        await self.files.flush(fh)

    async def fsync(self, fh: int, datasync: bool = False) -> None:
        await self.files.fsync(fh)

    async def release(self, fh: int) -> None:
        """Close a handle; the last writer publishes (errors only logged)."""
        await self.files.release(fh)

    # ----- directories ---------------------------------------------------------------------
    async def opendir(self, ino: int) -> int:
        """Open a directory: its entries are taken now, sorted; offsets index into them
        (attributes are made as ``readdir`` hands entries out)."""
        key = self.inodes.key(ino)
        node, tree = await self.views.node(key, need_tree=True)
        if not node.is_dir:
            raise FsError(errno.ENOTDIR)
        entries: list[tuple[str, Key, Attr]] = [(".", key, self._attr(ino, node, tree))]
        pkey = self._parent_key(key)
        pino = self.inodes.find(pkey)
        if pino is not None:
            try:
                pnode, ptree = await self.views.node(pkey)
            except FsError:
                pnode, ptree = Node(pkey[1], True), None
            entries.append(("..", pkey, self._attr(pino, pnode, ptree)))
        if is_top(key):
            for b in await self.views.bucket_names(fresh=True):
                bkey = (b, "")
                bino = self.inodes.ino_for(bkey)
                entries.append((b, bkey, self._attr(bino, Node("", True), None)))
            return self.listings.open(ino, entries)
        assert tree is not None
        d = tree.dirs[node.path]
        return self.listings.open(
            ino, entries, key[0], d.children, lambda cino, child: self._attr(cino, child, tree)
        )

    def _parent_key(self, key: Key) -> Key:
        """The key of the directory holding the directory ``key`` (the root's is itself)."""
        if key == self.inodes.key(ROOT_INODE):
            return key
        if key[1] == "":
            return TOP
        return (key[0], parent_of(key[1])[0])

    def readdir(self, fh: int, offset: int) -> Sequence[DirEntry]:
        """Entries of the snapshot from cookie ``offset`` on (0 = the start): ``.`` and
        ``..`` first (the kernel adds no lookup for them)."""
        return self.listings.read(fh, offset)

    def releasedir(self, fh: int) -> None:
        """Close a listing; inodes it allocated that the kernel never took are freed."""
        self.listings.release(fh)

    # ----- names ---------------------------------------------------------------------------
    def _writable_dir(self, parent: int, name: str, op: str) -> Key:
        """The key of ``parent``, where ``op`` gives (or takes) ``name`` on a writable mount."""
        if self.options.read_only:
            raise fail(errno.EROFS, op, name, "read-only mount")
        bad = bad_new_name(name)
        if bad is not None:
            raise fail(bad.errno, op, repr(name), bad.why, logging.INFO)
        return self.inodes.key(parent)

    async def _existing_dir(self, pkey: Key) -> None:
        """``ENOENT`` unless ``pkey`` is a directory of a bucket (``ENOTDIR`` for a file)."""
        node, _ = await self.views.node(pkey)
        if not node.is_dir:
            raise FsError(errno.ENOTDIR)

    async def _new_owner(
        self, parent: int, caller: Caller | None, mode: int, *, is_dir: bool
    ) -> tuple[dict[str, str], int]:
        """The owner metadata and the mode of an entry ``caller`` makes in ``parent`` with
        ``mode`` (see :func:`osfs.callers.new_owner`; no caller: the mount's owner)."""
        who = caller or Caller(self.options.uid, self.options.gid)
        pattr = await self.getattr(parent)
        uid, gid, mode = new_owner(who, pattr.gid, pattr.mode, mode, is_dir=is_dir)
        return owner_meta(uid, gid, self.options), mode

    async def mkdir(self, parent: int, name: str, mode: int, caller: Caller | None = None) -> Attr:
        """A directory (a bucket at the top) owned by ``caller``."""
        pkey = self._writable_dir(parent, name, "mkdir")
        if is_top(pkey):
            await self.namespace.make_bucket(name)
            return await self.lookup(ROOT_INODE, name)
        owner, mode = await self._new_owner(parent, caller, mode, is_dir=True)
        await self.namespace.mkdir(pkey, name, mode, owner)
        self.changes.touch(pkey)
        return await self.lookup(parent, name)

    async def mknod(self, parent: int, name: str, mode: int, rdev: int, caller: Caller | None = None) -> Attr:
        """A FIFO, socket, device or empty file at ``name`` owned by ``caller`` (see
        :mod:`osfs.namespace`); adds one lookup to its inode."""
        pkey = self._writable_dir(parent, name, "mknod")
        if is_top(pkey):
            raise fail(errno.EPERM, "mknod", name, "only directories (buckets) at the top", logging.INFO)
        owner, perm = await self._new_owner(parent, caller, mode & 0o7777, is_dir=False)
        await self.namespace.mknod((pkey[0], join(pkey[1], name)), stat.S_IFMT(mode) | perm, rdev, owner)
        self.changes.touch(pkey)
        return await self.lookup(parent, name)

    async def rmdir(self, parent: int, name: str) -> None:
        pkey = self._writable_dir(parent, name, "rmdir")
        if is_top(pkey):
            await self.namespace.remove_bucket(name)
        else:
            await self.namespace.rmdir((pkey[0], join(pkey[1], name)))
            self.changes.touch(pkey)

    async def unlink(self, parent: int, name: str) -> None:
        pkey = self._writable_dir(parent, name, "unlink")
        if is_top(pkey):
            raise FsError(errno.EISDIR)
        await self.namespace.unlink((pkey[0], join(pkey[1], name)))
        self.changes.touch(pkey)

    async def rename(self, parent: int, name: str, new_parent: int, new_name: str, flags: int = 0) -> None:
        """Rename within a bucket (``EXDEV`` across buckets; see :mod:`osfs.namespace`).

        ``flags``: 1 (RENAME_NOREPLACE) refuses an existing target; 2 (RENAME_EXCHANGE) is
        not supported (``EINVAL``).
        """
        pkey = self._writable_dir(parent, name, "rename")
        nkey = self._writable_dir(new_parent, new_name, "rename")
        if flags & 2:
            raise fail(errno.EINVAL, "rename", name, "RENAME_EXCHANGE is not supported")
        if is_top(pkey) or is_top(nkey):
            raise fail(errno.EPERM, "rename", name, "buckets cannot be renamed", logging.INFO)
        if pkey[0] != nkey[0]:
            raise FsError(errno.EXDEV)
        old_key, new_key = (pkey[0], join(pkey[1], name)), (nkey[0], join(nkey[1], new_name))
        await self.namespace.rename(old_key, new_key, flags)
        self.changes.status_changed(new_key)
        self.changes.touch(pkey)
        self.changes.touch(nkey)

    async def symlink(self, parent: int, name: str, target: str, caller: Caller | None = None) -> Attr:
        """A link at ``name`` with the text ``target``, owned by ``caller`` (see
        :mod:`osfs.links`)."""
        pkey = self._writable_dir(parent, name, "symlink")
        if is_top(pkey):
            raise fail(errno.EPERM, "symlink", name, "no links beside buckets", logging.INFO)
        await self._existing_dir(pkey)
        owner, _ = await self._new_owner(parent, caller, 0o777, is_dir=False)
        await self.links.symlink((pkey[0], join(pkey[1], name)), target, owner)
        self.changes.touch(pkey)
        return await self.lookup(parent, name)

    async def link(self, ino: int, new_parent: int, new_name: str) -> Attr:
        """Hard links: refused with ``EPERM`` (an object has one name; see SEMANTICS.md),
        after the same checks of the new name as every other operation that gives one."""
        self._writable_dir(new_parent, new_name, "link")
        raise fail(errno.EPERM, "link", repr(new_name), "hard links are not supported", logging.INFO)

    async def readlink(self, ino: int) -> str:
        node, tree = await self.views.node(self.inodes.key(ino))
        if not is_symlink(node.info):
            raise FsError(errno.EINVAL)
        return await self.links.readlink(node, tree)

    # ----- extended attributes -------------------------------------------------------------
    async def listxattr(self, ino: int) -> list[str]:
        return await self.xattrs.listxattr(ino)

    async def getxattr(self, ino: int, name: str) -> bytes:
        return await self.xattrs.getxattr(ino, name)

    async def setxattr(self, ino: int, name: str, value: bytes) -> None:
        await self.xattrs.setxattr(ino, name, value)
        self.changes.status_changed(self.inodes.key(ino))

    async def removexattr(self, ino: int, name: str) -> None:
        await self.xattrs.removexattr(ino, name)
        self.changes.status_changed(self.inodes.key(ino))

    # ----- the whole mount -----------------------------------------------------------------
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
