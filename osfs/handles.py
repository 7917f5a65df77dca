"""Reply types of the filesystem core and its open-file handles (open directories are
:class:`osfs.listings.Snapshot`).

These are the core's own types: the FUSE adapter converts them to pyfuse3's. Times are in
nanoseconds since the epoch. ``Attr.blksize`` is 1 MiB so that ``cp`` and ``cat`` use
large buffers (measured: they size their reads from ``st_blksize``).
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import FsError
from .readahead import ReadAhead
from .store.types import ObjectInfo

BLKSIZE = 1024 * 1024


@dataclass(frozen=True)
class Attr:
    """What ``stat`` shows for one inode."""

    ino: int
    mode: int
    nlink: int
    size: int
    uid: int
    gid: int
    atime_ns: int
    mtime_ns: int
    ctime_ns: int
    blksize: int = BLKSIZE
    rdev: int = 0

    @property
    def blocks(self) -> int:
        """512-byte blocks, as ``st_blocks`` counts them."""
        return (self.size + 511) // 512


@dataclass(frozen=True)
class DirEntry:
    """One ``readdir`` entry; ``offset`` is the cookie of the entry after it."""

    name: str
    attr: Attr
    offset: int


@dataclass(frozen=True)
class StatFs:
    bsize: int
    frsize: int
    blocks: int
    bfree: int
    bavail: int
    files: int
    ffree: int
    favail: int
    namemax: int = 255


@dataclass(frozen=True)
class OpenReply:
    """``keep_cache``: the kernel may keep cached pages (the object is unchanged)."""

    fh: int
    keep_cache: bool


@dataclass(frozen=True)
class Invalidation:
    """A remote change the kernel must forget.

    ``name`` None: the attributes and data of inode ``ino``; otherwise the entry ``name``
    in directory ``ino``.
    """

    ino: int
    name: str | None = None


@dataclass
class FileHandle:
    """An open file. ``info`` is the version being read (None for a file not yet stored);
    ``served`` turns True once a read of it returned data (it is then pinned: a replaced
    version gives ESTALE instead of silently switching); ``wrote`` once it was written."""

    fh: int
    ino: int
    writable: bool
    append: bool
    info: ObjectInfo | None
    readahead: ReadAhead
    error: FsError | None = None
    served: bool = False
    wrote: bool = False
