"""Changes to directories as the kernel must learn them: the :class:`Changes` part.

It keeps, for each directory, when its entries last changed (through this mount or seen
in a bucket's watch), shown as the directory's mtime and ctime until an explicit
``utimensat``; and for each entry, when its status last changed through this mount
(``chmod``, ``chown``, ``utimensat``, ``truncate``, an attribute, a rename), shown as its
ctime, while the kernel holds its inode. Both are kept in memory only: after a remount
an entry shows its stored times.

And it turns another client's change of a name (reported by :mod:`osfs.views`) into what
the kernel must forget, delivered in order by a worker to the async callback
``invalidator`` (set by the adapter): the inode's attributes and data, and — when the
name appeared, vanished or now stands for another kind of node — the entry in its parent
directory and the parent's attributes. While the name still stands for a node of the
kind the kernel knows, the entry is kept, so the kernel keeps the inode number (tools
such as ``tar`` compare inode numbers across a change). Directories that vanish with
their last object expire with ``entry_timeout``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable

import trio

from .attrs import kind_of
from .handles import Invalidation
from .inodes import InodeTable, Key
from .names import parent_of
from .openfiles import OpenFiles
from .views import Views

log = logging.getLogger(__name__)


class Changes:
    """Directory change times and the invalidations of remote changes."""

    def __init__(self, inodes: InodeTable, views: Views, files: OpenFiles) -> None:
        self.inodes = inodes
        self.views = views
        self.files = files
        self.invalidator: Callable[[Invalidation], Awaitable[None]] | None = None
        self._send, self._recv = trio.open_memory_channel[Invalidation](math.inf)
        self._touched: dict[Key, int] = {}
        self._changed: dict[Key, int] = {}

    # ----- directory times -----------------------------------------------------------------
    def touch(self, dir_key: Key) -> None:
        """The entries of the directory ``dir_key`` changed now."""
        self._touched[dir_key] = time.time_ns()

    def touched(self, dir_key: Key) -> int | None:
        """When the entries of ``dir_key`` last changed (None: not since the mount started,
        or its times were set since)."""
        return self._touched.get(dir_key)

    def times_set(self, dir_key: Key) -> None:
        """The times of ``dir_key`` were set explicitly: they are shown from now on."""
        self._touched.pop(dir_key, None)

    def status_changed(self, key: Key) -> None:
        """The status (mode, owner, times, attributes, name) of ``key`` changed now."""
        self._changed[key] = time.time_ns()

    def forget(self, key: Key) -> None:
        """The kernel forgot ``key``'s inode: its status change time is dropped (so the
        table stays as large as what the kernel holds; directory times are kept)."""
        self._changed.pop(key, None)

    def changed(self, key: Key) -> int | None:
        """When the status of ``key`` last changed through this mount (None: not since
        the mount started)."""
        return self._changed.get(key)

    # ----- remote changes ------------------------------------------------------------------
    def on_remote_change(self, bucket: str, name: str) -> None:
        """A watch saw another client change ``name``: record and tell the kernel."""
        path = name.rstrip("/")
        parent, leaf = parent_of(path)
        out: list[Invalidation] = []
        dir_ino = self.inodes.find((bucket, parent))
        ino = self.inodes.find((bucket, path))
        if leaf and not self._same_kind(bucket, path, ino):
            self.touch((bucket, parent))
            if dir_ino is not None:
                out.append(Invalidation(dir_ino, leaf))
                out.append(Invalidation(dir_ino))
        if ino is not None and self.files.writer(ino) is None:
            out.append(Invalidation(ino))
        if self.invalidator is not None:
            for inv in out:
                self._send.send_nowait(inv)

    def _same_kind(self, bucket: str, path: str, ino: int | None) -> bool:
        """True when ``path`` still shows a node of the kind the kernel knows ``ino`` as."""
        tree = self.views.cached_tree(bucket)
        node = tree.node(path) if tree is not None else None
        return node is not None and ino is not None and self.inodes.kind(ino) == kind_of(node)

    async def worker(self) -> None:
        """Deliver invalidations to ``invalidator`` in order, one at a time."""
        async for inv in self._recv:
            if self.invalidator is None:
                continue
            try:
                await self.invalidator(inv)
            except Exception:
                log.exception("invalidation of %s failed", inv)
