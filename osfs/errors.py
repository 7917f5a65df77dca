"""Filesystem errors and the one table mapping store errors to errno values.

Everything the core (:mod:`osfs.fs`) raises towards the FUSE adapter is an :class:`FsError`
carrying an errno. Store errors are converted by :func:`from_store` using :data:`ERRNO_TABLE`
and logged once, at the level the table gives: expected outcomes (a missing name) at DEBUG,
refusals the user should see (a sealed bucket, a full account) at INFO/WARNING, data or
transport failures at ERROR.
"""

from __future__ import annotations

import errno
import logging

from .store import errors as se

log = logging.getLogger(__name__)

#: Store error class → (errno, log level). The first matching class (in MRO order) wins.
ERRNO_TABLE: dict[type[se.StoreError], tuple[int, int]] = {
    se.NotFound: (errno.ENOENT, logging.DEBUG),
    se.BucketNotFound: (errno.ENOENT, logging.DEBUG),
    se.NameTooLong: (errno.ENAMETOOLONG, logging.INFO),
    se.BadName: (errno.EINVAL, logging.INFO),
    se.TooLarge: (errno.EFBIG, logging.WARNING),
    se.NoSpace: (errno.ENOSPC, logging.WARNING),
    se.Sealed: (errno.EROFS, logging.INFO),
    se.Corrupt: (errno.EIO, logging.ERROR),
    se.Unavailable: (errno.EIO, logging.ERROR),
    se.Conflict: (errno.EEXIST, logging.INFO),
    se.ObjectReplaced: (errno.ESTALE, logging.WARNING),
    se.StoreError: (errno.EIO, logging.ERROR),
}


class FsError(Exception):
    """A failed filesystem operation: ``errno`` is what the caller of the syscall sees."""

    def __init__(self, err: int, message: str = "") -> None:
        super().__init__(message or errno.errorcode.get(err, str(err)))
        self.errno = err


def _lookup(exc: se.StoreError) -> tuple[int, int]:
    for cls in type(exc).__mro__:
        entry = ERRNO_TABLE.get(cls)  # type: ignore[arg-type]
        if entry is not None:
            return entry
    return errno.EIO, logging.ERROR


def from_store(exc: se.StoreError, op: str, path: str = "") -> FsError:
    """Convert ``exc`` (raised while doing ``op`` on ``path``) and log it once."""
    err, level = _lookup(exc)
    log.log(level, "%s %s: %s (%s)", op, path, type(exc).__name__, exc)
    return FsError(err, f"{op} {path}: {exc}")


def fail(err: int, op: str, path: str, why: str, level: int = logging.DEBUG) -> FsError:
    """An :class:`FsError` for a refusal decided by the core, logged once at ``level``."""
    log.log(level, "%s %s: %s (%s)", op, path, errno.errorcode.get(err, err), why)
    return FsError(err, f"{op} {path}: {why}")
