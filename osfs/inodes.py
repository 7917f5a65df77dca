"""Inode numbers for paths, with the kernel's lookup counts. Never awaits.

A *key* names a node of the mount: ``(bucket, path)`` where ``path`` is bucket-relative
('' for the bucket's own directory) and the mount root (when buckets are top-level
directories) is ``("", "")``. The same key keeps the same inode number for as long as the
kernel knows it (lookup count > 0) or a handle holds it; numbers are never reused within a
mount. ``move`` carries an inode (and everything below it) to a new key on rename, so open
files and cached dentries stay valid. An inode whose key was replaced or removed is
*detached*: it keeps its number until forgotten but is no longer found by key.
"""

from __future__ import annotations

import errno
import itertools
from dataclasses import dataclass

from .errors import FsError

ROOT_INODE = 1

Key = tuple[str, str]

#: The key of the directory that lists buckets (the root of a mount of every bucket).
TOP: Key = ("", "")


def is_top(key: Key) -> bool:
    """True for the directory that lists buckets."""
    return key == TOP


@dataclass(slots=True)
class Inode:
    ino: int
    key: Key | None
    lookups: int = 0
    opens: int = 0
    #: File type bits (``stat.S_IFMT``) last shown for this inode (0: not shown yet).
    kind: int = 0


class InodeTable:
    """The ino ↔ key maps and lookup counts of one mount."""

    def __init__(self, root_key: Key) -> None:
        self._by_ino: dict[int, Inode] = {}
        self._by_key: dict[Key, Inode] = {}
        self._numbers = itertools.count(ROOT_INODE + 1)
        root = Inode(ROOT_INODE, root_key, lookups=1)
        self._by_ino[ROOT_INODE] = root
        self._by_key[root_key] = root

    def __len__(self) -> int:
        return len(self._by_ino)

    def ino_for(self, key: Key) -> int:
        """The inode number of ``key``, allocating one (with no lookups) if needed."""
        node = self._by_key.get(key)
        if node is None:
            node = Inode(next(self._numbers), key)
            self._by_ino[node.ino] = node
            self._by_key[key] = node
        return node.ino

    def find(self, key: Key) -> int | None:
        """The inode number of ``key`` if one is allocated."""
        node = self._by_key.get(key)
        return node.ino if node is not None else None

    def key_of(self, ino: int) -> Key | None:
        """The key of ``ino`` (None when unknown or detached)."""
        node = self._by_ino.get(ino)
        return node.key if node is not None else None

    def key(self, ino: int) -> Key:
        """The key of ``ino``; ``ENOENT`` when unknown or detached."""
        key = self.key_of(ino)
        if key is None:
            raise FsError(errno.ENOENT)
        return key

    def known(self, ino: int) -> bool:
        return ino in self._by_ino

    def kind(self, ino: int) -> int:
        """File type bits last shown for ``ino`` (0 when unknown)."""
        node = self._by_ino.get(ino)
        return node.kind if node is not None else 0

    def set_kind(self, ino: int, kind: int) -> None:
        """Record the file type bits shown for ``ino``."""
        node = self._by_ino.get(ino)
        if node is not None:
            node.kind = kind

    def lookups(self, ino: int) -> int:
        node = self._by_ino.get(ino)
        return node.lookups if node is not None else 0

    def remember(self, ino: int, n: int = 1) -> None:
        """Add ``n`` kernel lookups to ``ino``."""
        node = self._by_ino.get(ino)
        if node is not None:
            node.lookups += n

    def forget(self, ino: int, n: int) -> None:
        """Drop ``n`` lookups; free the inode when none remain and no handle holds it."""
        node = self._by_ino.get(ino)
        if node is None or ino == ROOT_INODE:
            return
        node.lookups = max(0, node.lookups - n)
        self._maybe_free(node)

    def open(self, ino: int) -> None:
        node = self._by_ino.get(ino)
        if node is not None:
            node.opens += 1

    def close(self, ino: int) -> None:
        node = self._by_ino.get(ino)
        if node is not None:
            node.opens = max(0, node.opens - 1)
            self._maybe_free(node)

    def drop_if_unused(self, ino: int) -> None:
        """Free ``ino`` if the kernel never took it (allocated for a listing it did not accept)."""
        node = self._by_ino.get(ino)
        if node is not None:
            self._maybe_free(node)

    def _maybe_free(self, node: Inode) -> None:
        if node.lookups == 0 and node.opens == 0 and node.ino != ROOT_INODE:
            del self._by_ino[node.ino]
            if node.key is not None and self._by_key.get(node.key) is node:
                del self._by_key[node.key]

    def detach(self, key: Key) -> int | None:
        """Unbind ``key`` from its inode (the file was removed or replaced)."""
        node = self._by_key.pop(key, None)
        if node is None:
            return None
        node.key = None
        self._maybe_free(node)
        return node.ino

    def move(self, old: Key, new: Key) -> None:
        """Rename: ``old`` and every key below it now live under ``new``."""
        self.detach(new)
        bucket, path = old
        prefix = path + "/"
        moved = [
            n
            for k, n in self._by_key.items()
            if k == old or (k[0] == bucket and (path == "" or k[1].startswith(prefix)))
        ]
        for node in moved:
            assert node.key is not None
            del self._by_key[node.key]
        for node in moved:
            assert node.key is not None
            rest = node.key[1][len(path) :].lstrip("/")
            node.key = (new[0], "/".join(p for p in (new[1], rest) if p))
            if node.key in self._by_key:
                self._by_key[node.key].key = None
            self._by_key[node.key] = node
