"""Unlink and rename of :class:`osfs.fs.Filesystem`.

``unlink`` publishes a delete marker; a file still open for writing under that name is
never published (its descriptor keeps working on the local copy). ``rename`` within a bucket
is O(1) for a file (the meta moves, the chunks stay) and moves every object under the prefix
for a directory (``RENAME_CONCURRENCY`` at a time, not atomic); across buckets it is
``EXDEV``. Renaming over a file replaces it atomically for readers: the bucket view holds
the watch updates of both names (:meth:`osfs.watch.BucketView.holding`) until the view and
the inode table have both moved, and a file replaced while open for writing becomes like
an unlinked one.
"""

from __future__ import annotations

import errno
import logging
from dataclasses import replace
from typing import TYPE_CHECKING

import trio

from .errors import FsError, fail, from_store
from .inodes import Key
from .names import Node, join
from .store.errors import StoreError
from .watch import BucketView
from .writeback import Writer

if TYPE_CHECKING:
    from .fs import Filesystem

#: Objects moved at once by a directory rename.
RENAME_CONCURRENCY = 8


class NamespaceMixin:
    """Mixed into :class:`osfs.fs.Filesystem`."""

    async def unlink(self: Filesystem, parent: int, name: str) -> None:
        pkey = self._writable_dir(parent, name, "unlink")
        if self._is_top(pkey):
            raise FsError(errno.EISDIR)
        key = (pkey[0], join(pkey[1], name))
        await self._settle(key)
        node, _ = await self._node(key)
        if node.is_dir:
            raise FsError(errno.EISDIR)
        view = self._view(key[0])
        obj = node.object_name
        assert obj is not None
        writer = self._writer_at(key)
        if writer is not None:
            self._unname_writer(view, writer, obj)
        if obj in view.infos:
            await self._delete_object(key[0], obj, "unlink")
        self._orphan(key, node)
        self.inodes.detach(key)

    async def rename(
        self: Filesystem, parent: int, name: str, new_parent: int, new_name: str, flags: int = 0
    ) -> None:
        """Rename within a bucket (``EXDEV`` across buckets).

        ``flags``: 1 (RENAME_NOREPLACE) refuses an existing target; 2 (RENAME_EXCHANGE) is
        not supported (``EINVAL``).
        """
        pkey = self._writable_dir(parent, name, "rename")
        nkey = self._writable_dir(new_parent, new_name, "rename")
        if flags & 2:
            raise fail(errno.EINVAL, "rename", name, "RENAME_EXCHANGE is not supported")
        if self._is_top(pkey) or self._is_top(nkey):
            raise fail(errno.EPERM, "rename", name, "buckets cannot be renamed", logging.INFO)
        if pkey[0] != nkey[0]:
            raise FsError(errno.EXDEV)
        bucket = pkey[0]
        old_key, new_key = (bucket, join(pkey[1], name)), (bucket, join(nkey[1], new_name))
        if old_key == new_key:
            return
        await self._settle(old_key)
        await self._settle(new_key)
        node, tree = await self._node(old_key)
        assert tree is not None
        if tree.node(nkey[1]) is None:
            raise FsError(errno.ENOENT)
        target = tree.node(new_key[1])
        if target is not None and flags & 1:
            raise FsError(errno.EEXIST)
        if node.is_dir:
            if new_key[1].startswith(old_key[1] + "/"):
                raise FsError(errno.EINVAL)
            await self._rename_dir(bucket, old_key[1], new_key[1], target)
        else:
            if target is not None and target.is_dir:
                raise FsError(errno.EISDIR)
            assert node.object_name is not None
            # the inode moves in the same step as the view: an open of the replaced inode
            # never sees the moved content under the old inode's size
            view = self._view(bucket)
            with view.holding(node.object_name, new_key[1]):
                await self._rename_file(old_key, node, new_key[1])
                self._orphan(new_key, target)
                self.inodes.move(old_key, new_key)
            return
        self.inodes.move(old_key, new_key)

    async def _rename_file(self: Filesystem, old_key: Key, node: Node, new_obj: str) -> None:
        """Move the file at ``old_key`` to ``new_obj``; a file open for writing at
        ``new_obj`` becomes like an unlinked file (never published)."""
        bucket = old_key[0]
        view = self._view(bucket)
        obj = node.object_name
        assert obj is not None
        writer = self._writer_at(old_key)
        replaced = self._writer_at((bucket, new_obj))
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
            self._unname_writer(view, replaced, new_obj)
        if writer is not None:
            self._rename_writer(view, writer, new_obj)

    def _rename_writer(self: Filesystem, view: BucketView, writer: Writer, new_obj: str) -> None:
        pending = view.pending.get(writer.name)
        view.set_pending(writer.name, None)
        writer.meta = replace(writer.meta, name=new_obj)
        if pending is not None:
            view.set_pending(new_obj, replace(pending, name=new_obj))

    async def _rename_dir(self: Filesystem, bucket: str, old: str, new: str, target: Node | None) -> None:
        view = self._view(bucket)
        if target is not None:
            if not target.is_dir:
                raise FsError(errno.ENOTDIR)
            inside = [n for n in view.names_under(new + "/") if n != new + "/"]
            if inside:
                raise FsError(errno.ENOTEMPTY)
            if new + "/" in view.infos:
                await self._delete_object(bucket, new + "/", "rename")
        writers = {w.name: w for w in self._writers.values() if w.bucket == bucket}
        failures: list[tuple[str, StoreError]] = []
        limiter = trio.CapacityLimiter(RENAME_CONCURRENCY)

        async def move(obj: str) -> None:
            dest = new + obj[len(old) :]
            if obj in writers:
                self._rename_writer(view, writers[obj], dest)
            if obj not in view.infos:
                return
            async with limiter:
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
