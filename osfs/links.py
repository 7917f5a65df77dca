"""Symbolic links of the filesystem: object links shown as symlinks (the :class:`Links` part).

``readlink`` of a link to an object in the same bucket gives the relative path from the
link's directory to the object's shown path; to another bucket ``../…/<bucket>/<path>``
(up to the mount's top; with a single-bucket mount such a link points outside it); a
bucket link gives ``../…/<bucket>``. ``symlink`` creates an
object link when the target resolves (relative to the link's directory, or absolute
through the mount's own path, :attr:`Links.mountpoint`) to a stored file or to a bucket
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

from .attrs import META_SYMLINK
from .config import FsOptions
from .errors import FsError, fail, from_store
from .inodes import Key
from .names import Node, Tree, parent_of
from .openfiles import OpenFiles
from .store.base import ObjectStore
from .store.errors import StoreError
from .views import Views


class Links:
    """Creates and reads object links; holds the mount's own path (``mountpoint``)."""

    def __init__(self, store: ObjectStore, options: FsOptions, views: Views, files: OpenFiles) -> None:
        self.store = store
        self.options = options
        self.views = views
        self.files = files
        #: Absolute path the filesystem is mounted at (lets ``symlink`` accept absolute
        #: targets that lie inside the mount); None when unknown.
        self.mountpoint: str | None = None

    async def symlink(self, key: Key, target: str) -> None:
        """Create an object link at ``key`` (a free name in an existing directory of a
        bucket) to the object or bucket ``target`` resolves to.

        ``target`` must resolve (relative to the link's directory) to an existing file or a
        bucket inside this mount: otherwise ``EPERM`` (object links cannot dangle, point
        outside the store, at directories, or at other links); ``EEXIST`` if ``key`` is taken.
        """
        pkey = (key[0], parent_of(key[1])[0])
        bucket, path = await self._resolve_target(pkey, target)
        tree = await self.views.tree(key[0])
        if tree.node(key[1]) is not None:
            raise FsError(errno.EEXIST)
        text = {META_SYMLINK: target}
        try:
            if path == "":
                info = await self.store.add_bucket_link(key[0], key[1], bucket, metadata=text)
            else:
                await self.files.publish_pending((bucket, path), "symlink (upload of the target)")
                ttree = await self.views.tree(bucket)
                tnode = ttree.node(path)
                if tnode is None or tnode.is_dir or tnode.info is None or tnode.info.is_link:
                    raise fail(errno.EPERM, "symlink", target, "target is not a stored file", logging.INFO)
                info = await self.store.add_link(key[0], key[1], bucket, tnode.info.name, metadata=text)
        except StoreError as e:
            raise from_store(e, "symlink", f"{key[0]}/{key[1]}") from None
        self.views.view(key[0]).apply(info)

    async def _resolve_target(self, pkey: Key, target: str) -> tuple[str, str]:
        """``(bucket, path)`` that ``target`` names, relative to the directory ``pkey``
        (an absolute ``target`` must lie under :attr:`mountpoint`)."""
        located = self._locate(pkey, target)
        if isinstance(located, str):
            raise fail(errno.EPERM, "symlink", target, located, logging.INFO)
        bucket, path = located
        if self.options.bucket is None and bucket not in await self.views.bucket_names():
            raise fail(errno.EPERM, "symlink", target, "target bucket does not exist", logging.INFO)
        return bucket, path

    def _locate(self, pkey: Key, target: str) -> tuple[str, str] | str:
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

    def target_text(self, node: Node, tree: Tree | None) -> str:
        """What ``readlink`` shows for the link ``node`` (``tree``: its bucket's, if loaded):
        its ``symlink(2)`` text while that still names the target from the link's
        directory, else the relative form."""
        assert node.info is not None and node.info.link is not None
        link = node.info.link
        dir_path = parent_of(node.path)[0]
        if link.name is None:
            shown = ""
        elif link.bucket == node.info.bucket and tree is not None:
            shown = tree.path_of(link.name) or link.name
        else:
            other_tree = self.views.cached_tree(link.bucket)
            shown = (other_tree.path_of(link.name) if other_tree is not None else None) or link.name
        text = node.info.metadata.get(META_SYMLINK)
        if text and self._locate((node.info.bucket, dir_path), text) == (link.bucket, shown):
            return text
        if link.bucket == node.info.bucket and link.name is not None:
            return posixpath.relpath(shown, dir_path or ".")
        depth = len(dir_path.split("/")) if dir_path else 0
        up = "../" * (depth + 1)
        return up + link.bucket if link.name is None else f"{up}{link.bucket}/{shown}"
