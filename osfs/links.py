"""Symbolic links of :class:`osfs.fs.Filesystem`: object links shown as symlinks.

``readlink`` of a link to an object in the same bucket gives the relative path from the
link's directory to the object's shown path; to another bucket ``../…/<bucket>/<path>``
(up to the mount's top; with a single-bucket mount such a link points outside it); a
bucket link gives ``../…/<bucket>``. ``symlink`` creates an
object link when the target resolves (relative to the link's directory, never absolute)
to a stored file or to a bucket inside the mount; anything else — an absolute path, a
path leaving the mount, a directory inside a bucket, a missing file, another link — is
refused with ``EPERM`` (object links cannot express it), logged at INFO with the reason.
"""

from __future__ import annotations

import errno
import logging
import posixpath
from typing import TYPE_CHECKING

from .errors import FsError, fail, from_store
from .handles import Attr
from .inodes import Key
from .names import Node, Tree, join, parent_of
from .store.errors import StoreError

if TYPE_CHECKING:
    from .fs import Filesystem


class LinksMixin:
    """Mixed into :class:`osfs.fs.Filesystem`."""

    async def symlink(self: Filesystem, parent: int, name: str, target: str) -> Attr:
        """An object link at ``name`` to the object or bucket ``target`` resolves to.

        ``target`` must resolve (relative to the link's directory) to an existing file or a
        bucket inside this mount: otherwise ``EPERM`` (object links cannot dangle, point
        outside the store, at directories, or at other links).
        """
        pkey = self._writable_dir(parent, name, "symlink")
        if self._is_top(pkey):
            raise fail(errno.EPERM, "symlink", name, "no links beside buckets", logging.INFO)
        key = (pkey[0], join(pkey[1], name))
        bucket, path = await self._resolve_target(pkey, target)
        tree = await self._tree(key[0])
        if tree.node(key[1]) is not None:
            raise FsError(errno.EEXIST)
        try:
            if path == "":
                info = await self.store.add_bucket_link(key[0], key[1], bucket)
            else:
                ttree = await self._tree(bucket)
                tnode = ttree.node(path)
                if tnode is None or tnode.is_dir or tnode.info is None or tnode.info.is_link:
                    raise fail(errno.EPERM, "symlink", target, "target is not a stored file", logging.INFO)
                info = await self.store.add_link(key[0], key[1], bucket, tnode.info.name)
        except StoreError as e:
            raise from_store(e, "symlink", f"{key[0]}/{key[1]}") from None
        self._view(key[0]).apply(info)
        return await self.lookup(parent, name)

    async def _resolve_target(self: Filesystem, pkey: Key, target: str) -> tuple[str, str]:
        """``(bucket, path)`` that ``target`` names, relative to the directory ``pkey``."""
        if target.startswith("/") or not target:
            raise fail(errno.EPERM, "symlink", target, "absolute targets are not supported", logging.INFO)
        dir_parts = pkey[1].split("/") if pkey[1] else []
        if self.options.bucket is None:
            rel = posixpath.normpath(posixpath.join(pkey[0], *dir_parts, target))
        else:
            rel = posixpath.normpath(posixpath.join(".", *dir_parts, target))
        if rel == ".." or rel.startswith("../") or (rel == "." and self.options.bucket is None):
            raise fail(errno.EPERM, "symlink", target, "target is outside the mount", logging.INFO)
        if self.options.bucket is not None:
            return self.options.bucket, "" if rel == "." else rel
        bucket, _, path = rel.partition("/")
        if bucket not in await self._bucket_names():
            raise fail(errno.EPERM, "symlink", target, "target bucket does not exist", logging.INFO)
        return bucket, path

    async def readlink(self: Filesystem, ino: int) -> str:
        node, tree = await self._node(self._key(ino))
        if node.info is None or node.info.link is None:
            raise FsError(errno.EINVAL)
        return self._link_target(node, tree)

    def _link_target(self: Filesystem, node: Node, tree: Tree | None) -> str:
        assert node.info is not None and node.info.link is not None
        link = node.info.link
        dir_path = parent_of(node.path)[0]
        depth = len(dir_path.split("/")) if dir_path else 0
        if link.bucket == node.info.bucket and link.name is not None and tree is not None:
            shown = tree.path_of(link.name) or link.name
            return posixpath.relpath(shown, dir_path or ".")
        up = "../" * (depth + 1)
        if link.name is None:
            return up + link.bucket
        other = self._views.get(link.bucket)
        other_tree = other.cached_tree if other is not None else None
        shown = (other_tree.path_of(link.name) if other_tree is not None else None) or link.name
        return f"{up}{link.bucket}/{shown}"
