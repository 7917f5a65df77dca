"""Open directories: the listing snapshot behind each directory handle.

``opendir`` takes the directory's entries once, sorted by name, and every ``readdir`` of
that handle reads from the snapshot, so offsets (cookies) stay valid while the directory
changes: the offset of an entry is its index plus one, whatever is added or removed
meanwhile (a positional counter over the live directory would skip or repeat entries).
Another handle opened later takes its own snapshot.

The snapshot keeps only each entry's name and tree node (references, no copy); an entry's
inode and attributes are made when ``readdir`` hands it out, so opening a directory of
100k entries costs a sort, and a ``readdir`` costs in proportion to the entries the
kernel takes. An entry whose inode moved meanwhile (a rename) is given with its current
number. Closing the handle frees the inodes the listing allocated that the kernel never
took.
"""

from __future__ import annotations

import errno
import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import overload

from .errors import FsError
from .handles import Attr, DirEntry
from .inodes import InodeTable, Key
from .listed import Listed
from .names import Node, shown_name

#: Attributes of a directory's entry: ``(inode, node) -> Attr``.
AttrOf = Callable[[int, Node], Attr]


@dataclass
class Snapshot:
    """The entries of one open directory.

    ``head`` holds entries made at ``opendir`` (``.``, ``..``, the buckets of the top);
    ``names``/``nodes`` the directory's children (their keys are ``(bucket, node path)``),
    whose attributes ``attr_of`` makes on demand; ``served`` counts the entries whose
    inode was allocated (from the start).
    """

    ino: int
    head: list[tuple[str, Key, Attr]]
    bucket: str = ""
    names: list[str] = field(default_factory=list)
    nodes: list[Node | Listed] = field(default_factory=list)
    attr_of: AttrOf | None = None
    served: int = 0

    def __len__(self) -> int:
        return len(self.head) + len(self.names)

    def key(self, i: int) -> Key:
        """The key of entry ``i``."""
        if i < len(self.head):
            return self.head[i][1]
        c = self.nodes[i - len(self.head)]
        return (self.bucket, c.name if isinstance(c, Listed) else c.path)


class DirEntries(Sequence[DirEntry]):
    """The entries of a snapshot from one offset on, made as they are read."""

    def __init__(self, listings: Listings, snap: Snapshot, offset: int) -> None:
        self._listings = listings
        self._snap = snap
        self._offset = min(max(offset, 0), len(snap))

    def __len__(self) -> int:
        return len(self._snap) - self._offset

    @overload
    def __getitem__(self, i: int) -> DirEntry: ...

    @overload
    def __getitem__(self, i: slice) -> list[DirEntry]: ...

    def __getitem__(self, i: int | slice) -> DirEntry | list[DirEntry]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        return self._listings.entry(self._snap, self._offset + i)

    def __iter__(self) -> Iterator[DirEntry]:
        for i in range(self._offset, len(self._snap)):
            yield self._listings.entry(self._snap, i)


class Listings:
    """The directory handles of one filesystem."""

    def __init__(self, inodes: InodeTable) -> None:
        self.inodes = inodes
        self._handles: dict[int, Snapshot] = {}
        self._fhs = itertools.count(1)

    def open(
        self,
        ino: int,
        head: list[tuple[str, Key, Attr]],
        bucket: str = "",
        children: dict[str, Node | Listed] | None = None,
        attr_of: AttrOf | None = None,
    ) -> int:
        """A handle on directory ``ino``: the ``head`` entries (name, key, attributes, taken
        now), then ``children`` (a directory's entries as :attr:`osfs.names.Dir.children`
        keeps them, in ``bucket``), sorted by shown name, whose attributes ``attr_of``
        gives when they are read."""
        fh = next(self._fhs)
        snap = Snapshot(ino, head, bucket, attr_of=attr_of)
        if children:
            shown = sorted((shown_name(k), c) for k, c in children.items())
            snap.names = [n for n, _ in shown]
            snap.nodes = [c for _, c in shown]
        self._handles[fh] = snap
        self.inodes.open(ino)
        return fh

    def read(self, fh: int, offset: int) -> Sequence[DirEntry]:
        """Entries of the snapshot from cookie ``offset`` on (0 = the start), made as they
        are read."""
        snap = self._handles.get(fh)
        if snap is None:
            raise FsError(errno.EBADF)
        return DirEntries(self, snap, offset)

    def entry(self, snap: Snapshot, i: int) -> DirEntry:
        """Entry ``i`` of ``snap`` with its current inode (allocated now if needed)."""
        snap.served = max(snap.served, i + 1)
        key = snap.key(i)
        ino = self.inodes.ino_for(key)
        if i < len(snap.head):
            name, _, attr = snap.head[i]
            return DirEntry(name, attr if attr.ino == ino else replace(attr, ino=ino), i + 1)
        j = i - len(snap.head)
        c = snap.nodes[j]
        node = Node(c.name, False, c) if isinstance(c, Listed) else c
        assert snap.attr_of is not None
        return DirEntry(snap.names[j], snap.attr_of(ino, node), i + 1)

    def release(self, fh: int) -> None:
        """Close a listing; inodes it allocated that the kernel never took are freed."""
        snap = self._handles.pop(fh, None)
        if snap is not None:
            for i in range(snap.served):
                ino = self.inodes.find(snap.key(i))
                if ino is not None:
                    self.inodes.drop_if_unused(ino)
            self.inodes.close(snap.ino)

    def close(self) -> None:
        """Drop every handle (at unmount)."""
        self._handles.clear()
