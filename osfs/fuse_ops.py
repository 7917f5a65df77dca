"""The pyfuse3 adapter: translates FUSE requests to :class:`osfs.fs.Filesystem` calls.

Nothing but translation lives here: names are decoded with ``os.fsdecode`` (and results
encoded with ``os.fsencode``), core :class:`Attr` values become ``EntryAttributes`` with the
mount's entry/attr timeouts, :class:`FsError` becomes ``FUSEError(errno)`` (any other
exception is logged and becomes ``EIO``), a ``readdir`` entry adds a lookup only when
``readdir_reply`` accepted it, and ``forget`` never raises. Remote changes arrive through
``Filesystem.invalidator``: entries are invalidated with ``invalidate_entry_async``, inodes
with ``invalidate_inode`` in a worker thread (it may block).

Every request goes through one translation path (:func:`_translated`), which also counts
(:class:`osfs.stats.Counters`): failed requests, and the reads and writes answered with
their bytes. The adapter answers the read-only attribute ``user.osfs.stats`` on the root
with :meth:`FuseOps.stats` as JSON (setting or removing it is ``EPERM``).
"""

from __future__ import annotations

import errno
import functools
import json
import logging
import os
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import pyfuse3
import trio

from .callers import Caller
from .errors import FsError
from .fs import Filesystem
from .handles import Attr, Invalidation
from .stats import STATS_XATTR, Counters, snapshot

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

_STATS_XATTR_B = os.fsencode(STATS_XATTR)


def _translated(fn: F) -> F:
    """Run a handler of :class:`FuseOps`, turning core errors into ``FUSEError``, and count
    the outcome in the adapter's :class:`~osfs.stats.Counters`."""
    op = fn.__name__.lstrip("_")

    @functools.wraps(fn)
    async def wrapper(self: FuseOps, *args: Any, **kwargs: Any) -> Any:
        try:
            result = await fn(self, *args, **kwargs)
        except FsError as e:
            self.counters.failed(op, e.errno)
            raise pyfuse3.FUSEError(e.errno) from None
        except pyfuse3.FUSEError as e:
            self.counters.failed(op, e.errno)
            raise
        except Exception:
            log.exception("%s failed", op)
            self.counters.failed(op, errno.EIO)
            raise pyfuse3.FUSEError(errno.EIO) from None
        self.counters.answered(op, result)
        return result

    return wrapper  # type: ignore[return-value]


def _caller(ctx: Any) -> Caller | None:
    """The process behind a request, from its ``RequestContext`` (None without one)."""
    if ctx is None:
        return None
    return Caller(ctx.uid, ctx.gid, ctx.umask, ctx.pid)


class FuseOps(pyfuse3.Operations):
    """``pyfuse3.Operations`` over a :class:`Filesystem`."""

    enable_writeback_cache = False

    def __init__(self, fs: Filesystem) -> None:
        super().__init__()
        self.fs = fs
        self.counters = Counters()
        fs.invalidator = self._invalidate

    def stats(self) -> dict[str, Any]:
        """The mount's numbers now (:func:`osfs.stats.snapshot`)."""
        return snapshot(self.counters, self.fs.files, self.fs.store)

    # ----- helpers -------------------------------------------------------------------------
    def _entry(self, attr: Attr) -> pyfuse3.EntryAttributes:
        e = pyfuse3.EntryAttributes()
        e.st_ino = attr.ino
        e.generation = 0
        e.entry_timeout = self.fs.options.entry_timeout
        e.attr_timeout = self.fs.options.attr_timeout
        e.st_mode = attr.mode
        e.st_nlink = attr.nlink
        e.st_uid = attr.uid
        e.st_gid = attr.gid
        e.st_rdev = attr.rdev
        e.st_size = attr.size
        e.st_blksize = attr.blksize
        e.st_blocks = attr.blocks
        e.st_atime_ns = attr.atime_ns
        e.st_mtime_ns = attr.mtime_ns
        e.st_ctime_ns = attr.ctime_ns
        return e

    async def _invalidate(self, inv: Invalidation) -> None:
        if inv.name is not None:
            pyfuse3.invalidate_entry_async(inv.ino, os.fsencode(inv.name), ignore_enoent=True)
            return
        try:
            await trio.to_thread.run_sync(pyfuse3.invalidate_inode, inv.ino)
        except OSError as e:
            if e.errno not in (errno.ENOENT, errno.ENOSYS):
                log.warning("invalidating inode %d failed: %s", inv.ino, e)

    # ----- names ---------------------------------------------------------------------------
    @_translated
    async def lookup(self, parent_inode: int, name: bytes, ctx: Any = None) -> pyfuse3.EntryAttributes:
        return self._entry(await self.fs.lookup(parent_inode, os.fsdecode(name)))

    async def forget(self, inode_list: Sequence[tuple[int, int]]) -> None:
        try:
            self.fs.forget(list(inode_list))
        except Exception:
            log.exception("forget failed")

    @_translated
    async def getattr(self, inode: int, ctx: Any = None) -> pyfuse3.EntryAttributes:
        return self._entry(await self.fs.getattr(inode))

    @_translated
    async def setattr(
        self,
        inode: int,
        attr: pyfuse3.EntryAttributes,
        fields: pyfuse3.SetattrFields,
        fh: int | None,
        ctx: Any,
    ) -> pyfuse3.EntryAttributes:
        result = await self.fs.setattr(
            inode,
            size=attr.st_size if fields.update_size else None,
            mode=attr.st_mode if fields.update_mode else None,
            uid=attr.st_uid if fields.update_uid else None,
            gid=attr.st_gid if fields.update_gid else None,
            mtime_ns=attr.st_mtime_ns if fields.update_mtime else None,
            atime_ns=attr.st_atime_ns if fields.update_atime else None,
            caller=_caller(ctx),
        )
        return self._entry(result)

    @_translated
    async def link(
        self, inode: int, new_parent_inode: int, new_name: bytes, ctx: Any
    ) -> pyfuse3.EntryAttributes:
        return self._entry(await self.fs.link(inode, new_parent_inode, os.fsdecode(new_name)))

    @_translated
    async def readlink(self, inode: int, ctx: Any) -> bytes:
        return os.fsencode(await self.fs.readlink(inode))

    @_translated
    async def mkdir(self, parent_inode: int, name: bytes, mode: int, ctx: Any) -> pyfuse3.EntryAttributes:
        return self._entry(await self.fs.mkdir(parent_inode, os.fsdecode(name), mode, _caller(ctx)))

    @_translated
    async def mknod(
        self, parent_inode: int, name: bytes, mode: int, rdev: int, ctx: Any
    ) -> pyfuse3.EntryAttributes:
        return self._entry(await self.fs.mknod(parent_inode, os.fsdecode(name), mode, rdev, _caller(ctx)))

    @_translated
    async def rmdir(self, parent_inode: int, name: bytes, ctx: Any) -> None:
        await self.fs.rmdir(parent_inode, os.fsdecode(name))

    @_translated
    async def unlink(self, parent_inode: int, name: bytes, ctx: Any) -> None:
        await self.fs.unlink(parent_inode, os.fsdecode(name))

    @_translated
    async def symlink(
        self, parent_inode: int, name: bytes, target: bytes, ctx: Any
    ) -> pyfuse3.EntryAttributes:
        attr = await self.fs.symlink(parent_inode, os.fsdecode(name), os.fsdecode(target), _caller(ctx))
        return self._entry(attr)

    @_translated
    async def rename(
        self,
        parent_inode_old: int,
        name_old: bytes,
        parent_inode_new: int,
        name_new: bytes,
        flags: int,
        ctx: Any,
    ) -> None:
        await self.fs.rename(
            parent_inode_old, os.fsdecode(name_old), parent_inode_new, os.fsdecode(name_new), flags
        )

    # ----- files ---------------------------------------------------------------------------
    def _file_info(self, fh: int, keep_cache: bool) -> pyfuse3.FileInfo:
        return pyfuse3.FileInfo(fh=fh, keep_cache=keep_cache, direct_io=False)

    @_translated
    async def open(self, inode: int, flags: int, ctx: Any) -> pyfuse3.FileInfo:
        reply = await self.fs.open(inode, flags)
        return self._file_info(reply.fh, reply.keep_cache)

    @_translated
    async def create(
        self, parent_inode: int, name: bytes, mode: int, flags: int, ctx: Any
    ) -> tuple[pyfuse3.FileInfo, pyfuse3.EntryAttributes]:
        reply, attr = await self.fs.create(parent_inode, os.fsdecode(name), flags, mode, _caller(ctx))
        return self._file_info(reply.fh, reply.keep_cache), self._entry(attr)

    @_translated
    async def read(self, fh: int, off: int, size: int) -> bytes | memoryview:
        return await self.fs.read(fh, off, size)

    @_translated
    async def write(self, fh: int, off: int, buf: bytes) -> int:
        return await self.fs.write(fh, off, buf)

    @_translated
    async def flush(self, fh: int) -> None:
        await self.fs.flush(fh)

    @_translated
    async def fsync(self, fh: int, datasync: bool) -> None:
        await self.fs.fsync(fh, datasync)

    @_translated
    async def release(self, fh: int) -> None:
        await self.fs.release(fh)

    # ----- directories ---------------------------------------------------------------------
    @_translated
    async def opendir(self, inode: int, ctx: Any) -> int:
        return await self.fs.opendir(inode)

    @_translated
    async def readdir(self, fh: int, start_id: int, token: pyfuse3.ReaddirToken) -> None:
        for entry in self.fs.readdir(fh, start_id):
            if not pyfuse3.readdir_reply(
                token, os.fsencode(entry.name), self._entry(entry.attr), entry.offset
            ):
                break
            if entry.name not in (".", ".."):  # the kernel takes no lookup for these
                self.fs.remember(entry.attr.ino)

    @_translated
    async def releasedir(self, fh: int) -> None:
        self.fs.releasedir(fh)

    @_translated
    async def fsyncdir(self, fh: int, datasync: bool) -> None:
        return None

    @_translated
    async def statfs(self, ctx: Any) -> pyfuse3.StatvfsData:
        s = await self.fs.statfs()
        out = pyfuse3.StatvfsData()
        out.f_bsize = s.bsize
        out.f_frsize = s.frsize
        out.f_blocks = s.blocks
        out.f_bfree = s.bfree
        out.f_bavail = s.bavail
        out.f_files = s.files
        out.f_ffree = s.ffree
        out.f_favail = s.favail
        out.f_namemax = s.namemax
        return out

    # ----- extended attributes -------------------------------------------------------------
    def _is_stats(self, inode: int, name: bytes) -> bool:
        return inode == pyfuse3.ROOT_INODE and name == _STATS_XATTR_B

    async def getxattr(self, inode: int, name: bytes, ctx: Any) -> bytes:
        if self._is_stats(inode, name):
            return json.dumps(self.stats(), sort_keys=True).encode()
        if not name.startswith(b"user."):
            # The kernel asks for security.capability before every write (it caches no
            # answer), ls -l for SELinux labels and ACLs of every file: only user.*
            # attributes exist, so answer as the core does without entering it.
            raise pyfuse3.FUSEError(errno.ENOTSUP)
        return await self._getxattr(inode, name)

    @_translated
    async def _getxattr(self, inode: int, name: bytes) -> bytes:
        return await self.fs.getxattr(inode, os.fsdecode(name))

    @_translated
    async def listxattr(self, inode: int, ctx: Any) -> list[bytes]:
        names = [os.fsencode(n) for n in await self.fs.listxattr(inode)]
        if inode == pyfuse3.ROOT_INODE:
            names.append(_STATS_XATTR_B)
        return names

    @_translated
    async def setxattr(self, inode: int, name: bytes, value: bytes, ctx: Any) -> None:
        if self._is_stats(inode, name):
            raise FsError(errno.EPERM)
        await self.fs.setxattr(inode, os.fsdecode(name), value)

    @_translated
    async def removexattr(self, inode: int, name: bytes, ctx: Any) -> None:
        if self._is_stats(inode, name):
            raise FsError(errno.EPERM)
        await self.fs.removexattr(inode, os.fsdecode(name))
