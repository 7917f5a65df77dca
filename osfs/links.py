"""Symbolic links of the filesystem: object links and symlink objects (the :class:`Links` part).

``symlink(2)`` accepts any text. Two forms are stored:

* an **object link** (ADR-20 link meta) when the text resolves — relative to the link's
  directory, or absolute through the mount's own path, :attr:`Links.mountpoint` — to a
  stored file or a bucket of this mount, so that the official clients follow it;
* a **symlink object** for everything else (a directory, a path outside the mount, a
  missing target, another link): an ordinary object whose content is the text and whose
  metadata says ``osfs-type: symlink`` and repeats the text in ``osfs-symlink`` (as s3fs
  does on S3), so another client reading it gets the text. A text that is not UTF-8 is
  only in the content.

``readlink`` of a symlink object returns exactly its text. ``readlink`` of a link to an
object in the same bucket gives the text given to ``symlink(2)`` (``osfs-symlink``) for as
long as it still names the link's target from where the link is (so ``ln -s ./t l`` or an
absolute path through the mount read back as written); otherwise (the link or its target
was renamed, the mount moved, or another client wrote the link) the relative path from
the link's directory to the object's shown path; to another bucket ``../…/<bucket>/<path>``
(up to the mount's top; with a single-bucket mount such a link points outside it); a
bucket link gives ``../…/<bucket>``.
"""

from __future__ import annotations

import errno
import logging
import os
import posixpath
import stat
from collections.abc import Mapping

from .attrs import META_SYMLINK, META_TYPE, TYPE_SYMLINK, kind_of
from .config import FsOptions
from .errors import FsError, from_store
from .inodes import Key
from .names import Node, Tree, parent_of
from .openfiles import OpenFiles
from .store.base import ObjectStore
from .store.errors import StoreError
from .store.types import ObjectInfo, ObjectMeta
from .views import Views

log = logging.getLogger(__name__)


def _utf8(text: str) -> bool:
    """True when ``text`` (decoded with ``os.fsdecode``) was valid UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class Links:
    """Creates and reads links (object links and symlink objects); holds the mount's own path
    (``mountpoint``)."""

    def __init__(self, store: ObjectStore, options: FsOptions, views: Views, files: OpenFiles) -> None:
        self.store = store
        self.options = options
        self.views = views
        self.files = files
        #: Absolute path the filesystem is mounted at (lets ``symlink`` accept absolute
        #: targets that lie inside the mount); None when unknown.
        self.mountpoint: str | None = None

    async def symlink(self, key: Key, target: str, metadata: Mapping[str, str]) -> None:
        """Create a link at ``key`` (a free name in an existing directory of a bucket) with
        the text ``target``: an object link when ``target`` names a stored file or a bucket
        of this mount, else a symlink object. ``metadata`` (owner, times) is stored on it;
        ``EEXIST`` if ``key`` is taken."""
        tree = await self.views.tree(key[0])
        if tree.node(key[1]) is not None:
            raise FsError(errno.EEXIST)
        meta = {**metadata, META_SYMLINK: target} if _utf8(target) else dict(metadata)
        view = self.views.view(key[0])
        # the watch's echo waits for the view (see osfs.namespace.Namespace._put_marker)
        with view.holding(key[1]):
            try:
                info = await self._object_link(key, target, meta)
                if info is None:
                    meta[META_TYPE] = TYPE_SYMLINK
                    content = os.fsencode(target)
                    info = await self.store.put(key[0], ObjectMeta(key[1], metadata=meta), content)
            except StoreError as e:
                raise from_store(e, "symlink", f"{key[0]}/{key[1]}") from None
            view.apply(info)

    async def _object_link(self, key: Key, target: str, meta: Mapping[str, str]) -> ObjectInfo | None:
        """The object link at ``key`` to what ``target`` names, made now; None when
        ``target`` names no stored file or bucket of this mount (logged at DEBUG)."""
        pkey = (key[0], parent_of(key[1])[0])
        located = self._locate(pkey, target)
        if isinstance(located, str):
            log.debug("symlink %s -> %r: a symlink object (%s)", key[1], target, located)
            return None
        bucket, path = located
        if self.options.bucket is None and bucket not in await self.views.bucket_names():
            return None
        if path == "":
            return await self.store.add_bucket_link(key[0], key[1], bucket, metadata=meta)
        await self.files.publish_pending((bucket, path), "symlink (upload of the target)")
        tnode = (await self.views.tree(bucket)).node(path)
        if tnode is None or tnode.is_dir or tnode.info is None or kind_of(tnode) != stat.S_IFREG:
            return None
        return await self.store.add_link(key[0], key[1], bucket, tnode.info.name, metadata=meta)

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

    def link_size(self, node: Node, tree: Tree | None) -> int:
        """Length in bytes of what ``readlink`` shows for the link ``node``."""
        assert node.info is not None
        if node.info.link is None:
            text = node.info.metadata.get(META_SYMLINK)
            return len(text.encode()) if text is not None else node.info.size
        return len(os.fsencode(self.target_text(node, tree)))

    async def readlink(self, node: Node, tree: Tree | None) -> str:
        """What ``readlink`` shows for the link ``node`` (``tree``: its bucket's, if loaded)."""
        info = node.info
        assert info is not None
        if info.link is not None:
            return self.target_text(node, tree)
        text = info.metadata.get(META_SYMLINK)
        if text is not None:
            return text
        full = await self.views.full_info(info.bucket, info, "readlink")
        try:
            data = await self.store.read(full, 0, full.size)
        except StoreError as e:
            raise from_store(e, "readlink", f"{info.bucket}/{info.name}") from None
        return os.fsdecode(bytes(data))

    def target_text(self, node: Node, tree: Tree | None) -> str:
        """What ``readlink`` shows for the object link ``node`` (``tree``: its bucket's):
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
