"""Symbolic links of :class:`osfs.fs.Filesystem`: object links shown as symlinks.

``readlink`` of a link to an object in the same bucket gives the relative path from the
link's directory to the object's shown path; to another bucket ``../…/<bucket>/<path>``
(up to the mount's top; with a single-bucket mount such a link points outside it); a
bucket link gives ``../…/<bucket>``. ``symlink`` creates an
object link when the target resolves (relative to the link's directory, or absolute
through the mount's own path, ``Filesystem.mountpoint``) to a stored file or to a bucket
inside the mount; anything else — an absolute path elsewhere, a path leaving the mount, a
directory inside a bucket, a missing file, another link — is refused with ``EPERM``
(object links cannot express it), logged at INFO with the reason.

The link records the target object; the text given to ``symlink(2)`` is kept beside it in
the link's metadata (``osfs-symlink``). ``readlink`` returns that text for as long as it
still names the link's target from where the link is (so ``ln -s ./t l`` or an absolute
path through the mount read back as written); otherwise (the link or its target was
renamed, the mount moved, or another client wrote the link) the relative form above.
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

#: Metadata key of an object link that holds the text given to ``symlink(2)``.
META_SYMLINK = "osfs-symlink"


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
        text = {META_SYMLINK: target}
        try:
            if path == "":
                info = await self.store.add_bucket_link(key[0], key[1], bucket, metadata=text)
            else:
                await self._publish_pending((bucket, path))
                ttree = await self._tree(bucket)
                tnode = ttree.node(path)
                if tnode is None or tnode.is_dir or tnode.info is None or tnode.info.is_link:
                    raise fail(errno.EPERM, "symlink", target, "target is not a stored file", logging.INFO)
                info = await self.store.add_link(key[0], key[1], bucket, tnode.info.name, metadata=text)
        except StoreError as e:
            raise from_store(e, "symlink", f"{key[0]}/{key[1]}") from None
        self._view(key[0]).apply(info)
        return await self.lookup(parent, name)

    async def _publish_pending(self: Filesystem, key: Key) -> None:
        """Make sure the file at ``key`` is stored: a file whose first upload has not been
        published yet (its last ``release`` still committing, or never written) is
        committed now, so a link has an object to point to."""
        ino = self.inodes.find(key)
        writer = self._writers.get(ino) if ino is not None else None
        if writer is None:
            return
        await writer.settled()
        if writer.dirty and writer.committed is None and not writer.unlinked:
            try:
                info = await writer.commit()
            except StoreError as e:
                raise from_store(e, "symlink (upload of the target)", f"{key[0]}/{key[1]}") from None
            if info is not None and ino is not None:
                self._published(ino, writer, info)

    async def _resolve_target(self: Filesystem, pkey: Key, target: str) -> tuple[str, str]:
        """``(bucket, path)`` that ``target`` names, relative to the directory ``pkey``
        (an absolute ``target`` must lie under :attr:`Filesystem.mountpoint`)."""
        located = self._locate(pkey, target)
        if isinstance(located, str):
            raise fail(errno.EPERM, "symlink", target, located, logging.INFO)
        bucket, path = located
        if self.options.bucket is None and bucket not in await self._bucket_names():
            raise fail(errno.EPERM, "symlink", target, "target bucket does not exist", logging.INFO)
        return bucket, path

    def _locate(self: Filesystem, pkey: Key, target: str) -> tuple[str, str] | str:
        """``(bucket, path)`` that ``target`` names from the directory ``pkey`` (path ``""``
        for a bucket), or why it names nothing inside the mount. Pure path arithmetic."""
        if not target:
            return "empty target"
        if target.startswith("/"):
            top = posixpath.normpath(self.mountpoint).rstrip("/") if self.mountpoint else None
            path = posixpath.normpath(target)
            if top is not None and path == top:
                rel = "."
            elif top is not None and path.startswith(top + "/"):
                rel = path[len(top) + 1 :]
            else:
                return f"absolute targets outside the mount are refused ({top or 'mount path unknown'})"
        else:
            dir_parts = [pkey[0]] if self.options.bucket is None else []
            dir_parts += pkey[1].split("/") if pkey[1] else []
            rel = posixpath.normpath(posixpath.join(".", *dir_parts, target))
        if rel == ".." or rel.startswith("../") or (rel == "." and self.options.bucket is None):
            return "target is outside the mount"
        if self.options.bucket is not None:
            return self.options.bucket, "" if rel == "." else rel
        bucket, _, path = rel.partition("/")
        return bucket, path

    async def readlink(self: Filesystem, ino: int) -> str:
        node, tree = await self._node(self._key(ino))
        if node.info is None or node.info.link is None:
            raise FsError(errno.EINVAL)
        return self._link_target(node, tree)

    def _link_target(self: Filesystem, node: Node, tree: Tree | None) -> str:
        """What ``readlink`` shows for the link ``node``: its ``symlink(2)`` text while that
        still names the target from the link's directory, else the relative form."""
        assert node.info is not None and node.info.link is not None
        link = node.info.link
        dir_path = parent_of(node.path)[0]
        if link.name is None:
            shown = ""
        elif link.bucket == node.info.bucket and tree is not None:
            shown = tree.path_of(link.name) or link.name
        else:
            other = self._views.get(link.bucket)
            other_tree = other.cached_tree if other is not None else None
            shown = (other_tree.path_of(link.name) if other_tree is not None else None) or link.name
        text = node.info.metadata.get(META_SYMLINK)
        if text and self._locate((node.info.bucket, dir_path), text) == (link.bucket, shown):
            return text
        if link.bucket == node.info.bucket and link.name is not None:
            return posixpath.relpath(shown, dir_path or ".")
        depth = len(dir_path.split("/")) if dir_path else 0
        up = "../" * (depth + 1)
        return up + link.bucket if link.name is None else f"{up}{link.bucket}/{shown}"
