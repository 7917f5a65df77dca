"""Open directories: the listing snapshot behind each directory handle.

``opendir`` lists a directory once, sorted, and every ``readdir`` of that handle reads from
the snapshot, so offsets (cookies) stay valid while the directory changes: the offset of
an entry is its index plus one. An entry whose inode moved meanwhile (a rename) is given
with its current number. Closing the handle frees the inodes the listing allocated that
the kernel never took.
"""

from __future__ import annotations

import errno
import itertools
from dataclasses import replace

from .errors import FsError
from .handles import Attr, DirEntry, DirHandle
from .inodes import InodeTable, Key


class Listings:
    """The directory handles of one filesystem."""

    def __init__(self, inodes: InodeTable) -> None:
        self.inodes = inodes
        self._handles: dict[int, DirHandle] = {}
        self._fhs = itertools.count(1)

    def open(self, ino: int, entries: list[tuple[str, Key, Attr]]) -> int:
        """A handle on ``entries`` (name, key, attributes; sorted, taken now) of directory
        ``ino``."""
        fh = next(self._fhs)
        self._handles[fh] = DirHandle(fh, ino, entries)
        self.inodes.open(ino)
        return fh

    def read(self, fh: int, offset: int) -> list[DirEntry]:
        """Entries of the snapshot from cookie ``offset`` on (0 = the start)."""
        handle = self._handles.get(fh)
        if handle is None:
            raise FsError(errno.EBADF)
        out = []
        for i in range(offset, len(handle.entries)):
            name, key, attr = handle.entries[i]
            ino = self.inodes.ino_for(key)
            if ino != attr.ino:
                attr = replace(attr, ino=ino)
            out.append(DirEntry(name, attr, i + 1))
        return out

    def release(self, fh: int) -> None:
        """Close a listing; inodes it allocated that the kernel never took are freed."""
        handle = self._handles.pop(fh, None)
        if handle is not None:
            for _, key, _ in handle.entries:
                ino = self.inodes.find(key)
                if ino is not None:
                    self.inodes.drop_if_unused(ino)
            self.inodes.close(handle.ino)

    def close(self) -> None:
        """Drop every handle (at unmount)."""
        self._handles.clear()
