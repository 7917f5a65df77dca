"""Names of the filesystem: directories, buckets, unlink and rename (the :class:`Namespace` part).

Without ``FsOptions.bucket`` the root lists every bucket and ``mkdir``/``rmdir`` at the
root create/destroy buckets (``rmdir`` only when the bucket holds no object at all).
``mknod`` stores FIFOs, sockets and devices as empty objects whose metadata says what they
are (:mod:`osfs.attrs`). Inside a bucket ``mkdir`` writes a directory marker ``"<path>/"``
and ``rmdir`` deletes it.
A directory that exists only because objects are named under it (written by another
client) gets its marker when its last entry goes through this mount (``unlink``,
``rmdir`` of its last subdirectory, a rename out of it), so it stays until ``rmdir``, for
every client and after a remount; the marker is written before the entry is removed.

``unlink`` publishes a delete marker; a file still open for writing under that name is
never published (its descriptor keeps working on the local copy). ``rename`` within a bucket
is O(1) for a file (the meta moves, the chunks stay) and moves every object under the prefix
for a directory (``RENAME_CONCURRENCY`` at a time, not atomic); across buckets it is
``EXDEV``. Renaming over a file replaces it atomically for readers: the bucket view holds
the watch updates of both names (:meth:`osfs.views.BucketView.holding`) until the view and
the inode table have both moved, and a file replaced while open for writing becomes like
an unlinked one.
"""

from __future__ import annotations

import errno
import logging
import stat
from collections.abc import Mapping

import trio

from .attrs import mode_meta, type_meta
from .config import FsOptions
from .errors import FsError, fail, from_store
from .inodes import InodeTable, Key
from .names import Node, join, parent_of
from .openfiles import OpenFiles
from .store.base import ObjectStore
from .store.errors import NotFound, StoreError
from .store.types import BucketConfig, ObjectInfo, ObjectMeta, valid_bucket_name
from .views import Views

log = logging.getLogger(__name__)

#: Objects moved at once by a directory rename.
RENAME_CONCURRENCY = 8


class Namespace:
    """Changes to names. Callers pass keys whose last component was checked
    (:func:`osfs.names.bad_new_name`) on a writable mount; methods raise only ``FsError``."""

    def __init__(
        self, store: ObjectStore, options: FsOptions, inodes: InodeTable, views: Views, files: OpenFiles
    ) -> None:
        self.store = store
        self.options = options
        self.inodes = inodes
        self.views = views
        self.files = files

    # ----- directories and buckets ---------------------------------------------------------
    async def mkdir(self, pkey: Key, name: str, mode: int, owner: Mapping[str, str]) -> None:
        """Write the directory marker of ``name`` in the directory ``pkey`` of a bucket,
        with the owner metadata ``owner``."""
        key = (pkey[0], join(pkey[1], name))
        tree = await self.views.tree(pkey[0])
        if tree.node(pkey[1]) is None:
            raise FsError(errno.ENOENT)
        if tree.node(key[1]) is not None:
            raise FsError(errno.EEXIST)
        meta = ObjectMeta(key[1] + "/", metadata={**mode_meta(mode, 0o777, self.options.umask), **owner})
        await self._put_marker(key, meta, "mkdir")

    async def write_marker(self, key: Key, meta: ObjectMeta) -> None:
        """Write the marker ``meta`` (named ``"<path>/"``) of the directory ``key``, one
        without a marker, to hold its attributes."""
        await self._put_marker(key, meta, "setattr")

    async def _put_marker(self, key: Key, meta: ObjectMeta, op: str) -> None:
        """Store the empty object ``meta`` for the entry at ``key`` and show it.

        The watch's echo of this put is held back until the view has it (see
        :meth:`osfs.views.BucketView.holding`): an echo taken for another client's change
        would invalidate the kernel's fresh entry, and the next lookup would give the
        entry a new inode number.
        """
        view = self.views.view(key[0])
        with view.holding(meta.name):
            try:
                info = await self.store.put(key[0], meta, b"")
            except StoreError as e:
                raise from_store(e, op, f"{key[0]}/{key[1]}") from None
            view.apply(info)

    async def keep_parent(self, key: Key) -> None:
        """The entry at ``key`` is about to leave its directory: if it is the last entry of
        a directory without a marker (other than the bucket's own), write the marker."""
        parent = parent_of(key[1])[0]
        if not parent:
            return
        tree = await self.views.tree(key[0])
        d = tree.dirs.get(parent)
        if d is None or d.node.info is not None or len(d.children) != 1:
            return
        await self._put_marker((key[0], parent), ObjectMeta(parent + "/"), "keep directory")

    async def mknod(self, key: Key, mode: int, rdev: int, owner: Mapping[str, str]) -> None:
        """Create the empty file or special file (FIFO, socket, device) ``key`` of type and
        permission bits ``mode`` in an existing directory of a bucket (``EEXIST`` if taken),
        with the owner metadata ``owner``."""
        tree = await self.views.tree(key[0])
        pnode = tree.node(parent_of(key[1])[0])
        if pnode is None or not pnode.is_dir:
            raise FsError(errno.ENOENT)
        if tree.node(key[1]) is not None:
            raise FsError(errno.EEXIST)
        kind = stat.S_IFMT(mode)
        if kind not in (stat.S_IFREG, stat.S_IFIFO, stat.S_IFSOCK, stat.S_IFCHR, stat.S_IFBLK):
            raise fail(errno.EINVAL, "mknod", key[1], f"file type {kind:o}", logging.INFO)
        metadata = {**mode_meta(mode, 0o666, self.options.umask), **type_meta(kind, rdev), **owner}
        await self._put_marker(key, ObjectMeta(key[1], metadata=metadata), "mknod")

    async def make_bucket(self, name: str) -> None:
        """Create the bucket ``name`` with the mount's bucket defaults."""
        if not valid_bucket_name(name):
            raise fail(errno.EINVAL, "mkdir", name, "not a valid bucket name", logging.INFO)
        if name in await self.views.bucket_names(fresh=True):
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
        self.views.forget_bucket_names()

    async def rmdir(self, key: Key) -> None:
        """Remove the empty directory at ``key`` inside a bucket."""
        node, _ = await self.views.node(key)
        if not node.is_dir:
            raise FsError(errno.ENOTDIR)
        view = self.views.view(key[0])
        marker = key[1] + "/"
        if [n for n in view.names_under(marker) if n != marker]:
            raise FsError(errno.ENOTEMPTY)
        await self.keep_parent(key)
        if marker in view.infos:
            await self._delete_object(key[0], marker, "rmdir")
        self.inodes.detach(key)

    async def remove_bucket(self, name: str) -> None:
        """Delete the bucket ``name`` if it holds no object at all (``ENOTEMPTY``)."""
        try:
            objects = await self.store.list_objects(name)
            if objects:
                raise FsError(errno.ENOTEMPTY)
            await self.store.delete_bucket(name)
        except StoreError as e:
            raise from_store(e, "rmdir", name) from None
        self.views.drop(name)
        self.inodes.detach((name, ""))

    async def _delete_object(self, bucket: str, name: str, op: str) -> ObjectInfo | None:
        """Delete ``name`` from the store and the view (already gone is fine); returns the
        meta deleted (None when it was already gone)."""
        deleted = None
        view = self.views.view(bucket)
        # the marker's echo may come through the watch before the delete's answer: held
        # until the view has dropped the name, it is not taken for another client's change
        # (which would make the kernel forget the directory's entries)
        with view.holding(name):
            try:
                deleted = await self.store.delete(bucket, name)
            except NotFound:
                log.debug("%s %s/%s: already deleted", op, bucket, name)
            except StoreError as e:
                raise from_store(e, op, f"{bucket}/{name}") from None
            view.remove(name)
        return deleted

    # ----- files ---------------------------------------------------------------------------
    async def unlink(self, key: Key) -> None:
        """Remove the file or link at ``key`` (``EISDIR`` for a directory)."""
        await self.files.settle(key)
        node, _ = await self.views.node(key)
        if node.is_dir:
            raise FsError(errno.EISDIR)
        view = self.views.view(key[0])
        obj = node.object_name
        assert obj is not None
        writer = self.files.writer_at(key)
        await self.keep_parent(key)
        if writer is not None:
            self.files.unname(writer, obj)
        # the version deleted is kept for opens of the inode racing with the unlink: the
        # delete reads it anyway, so it costs no round trip of its own
        kept = await self._delete_object(key[0], obj, "unlink") if obj in view.infos else None
        self.files.orphan(key, kept)
        self.inodes.detach(key)

    async def rename(self, old_key: Key, new_key: Key, flags: int = 0) -> None:
        """Rename within one bucket (the caller refuses other buckets and the top).

        ``flags``: 1 (RENAME_NOREPLACE) refuses an existing target.
        """
        if old_key == new_key:
            return
        bucket = old_key[0]
        await self.files.settle(old_key)
        await self.files.settle(new_key)
        node, tree = await self.views.node(old_key)
        assert tree is not None
        if tree.node(parent_of(new_key[1])[0]) is None:
            raise FsError(errno.ENOENT)
        target = tree.node(new_key[1])
        if target is not None and flags & 1:
            raise FsError(errno.EEXIST)
        if parent_of(old_key[1])[0] != parent_of(new_key[1])[0]:
            await self.keep_parent(old_key)
        if node.is_dir:
            if new_key[1].startswith(old_key[1] + "/"):
                raise FsError(errno.EINVAL)
            # the echoes of the markers' changes (the target's removed, the moved one's
            # put) wait until the view and the inode table have both moved
            with self.views.view(bucket).holding(old_key[1] + "/", new_key[1] + "/"):
                await self._rename_dir(bucket, old_key[1], new_key[1], target)
                self.inodes.move(old_key, new_key)
            return
        if target is not None and target.is_dir:
            raise FsError(errno.EISDIR)
        assert node.object_name is not None
        # the inode moves in the same step as the view: an open of the replaced inode
        # never sees the moved content under the old inode's size
        view = self.views.view(bucket)
        kept = await self.files.kept_version(new_key, target)
        with view.holding(node.object_name, new_key[1]):
            await self._rename_file(old_key, node, new_key[1])
            self.files.orphan(new_key, kept)
            self.inodes.move(old_key, new_key)

    async def _rename_file(self, old_key: Key, node: Node, new_obj: str) -> None:
        """Move the file at ``old_key`` to ``new_obj``; a file open for writing at
        ``new_obj`` becomes like an unlinked file (never published)."""
        bucket = old_key[0]
        view = self.views.view(bucket)
        obj = node.object_name
        assert obj is not None
        writer = self.files.writer_at(old_key)
        replaced = self.files.writer_at((bucket, new_obj))
        if obj in view.infos:
            try:
                moved = await self.store.rename(bucket, obj, new_obj, replace=True)
            except StoreError as e:
                raise from_store(e, "rename", f"{bucket}/{obj}") from None
            view.remove(obj)
            view.remove(new_obj)
            view.apply(moved)
        elif new_obj in view.infos:
            await self._delete_object(bucket, new_obj, "rename")
        if replaced is not None:
            self.files.unname(replaced, new_obj)
        if writer is not None:
            self.files.rename_writer(writer, new_obj)

    async def _rename_dir(self, bucket: str, old: str, new: str, target: Node | None) -> None:
        view = self.views.view(bucket)
        if target is not None:
            if not target.is_dir:
                raise FsError(errno.ENOTDIR)
            inside = [n for n in view.names_under(new + "/") if n != new + "/"]
            if inside:
                raise FsError(errno.ENOTEMPTY)
            if new + "/" in view.infos:
                await self._delete_object(bucket, new + "/", "rename")
        writers = self.files.writers_in(bucket)
        failures: list[tuple[str, StoreError]] = []
        limiter = trio.CapacityLimiter(RENAME_CONCURRENCY)

        async def move(obj: str) -> None:
            dest = new + obj[len(old) :]
            if obj in writers:
                self.files.rename_writer(writers[obj], dest)
            if obj not in view.infos:
                return
            async with limiter:
                with view.holding(obj, dest):
                    try:
                        moved = await self.store.rename(bucket, obj, dest)
                    except StoreError as e:
                        failures.append((obj, e))
                        return
                    view.remove(obj)
                    view.apply(moved)

        async with trio.open_nursery() as nursery:
            for obj in view.names_under(old + "/"):
                nursery.start_soon(move, obj)
        if failures:
            obj, e = failures[0]
            raise from_store(e, f"rename ({len(failures)} objects not moved)", f"{bucket}/{obj}")
