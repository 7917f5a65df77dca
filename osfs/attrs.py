"""The ``osfs-*`` object-metadata vocabulary, and what ``stat`` shows for a node.

File attributes that objects do not carry natively are kept in their metadata under keys
starting with :data:`RESERVED_PREFIX` (``user.meta.osfs-*`` extended attributes are
refused, so only the filesystem writes them). Absent means the mount's defaults:
``FsOptions.uid``/``gid``, ``0o666`` for files and ``0o777`` for directories, both less
``umask``, and the object's own mtime.

* ``osfs-mode``: permission bits in octal (e.g. ``"640"``);
* ``osfs-uid``, ``osfs-gid``: decimal ids;
* ``osfs-mtime``: modification time in nanoseconds since the epoch (dropped by a new write);
* ``osfs-atime``: access time set explicitly (``touch -a``, ``utimensat``), in nanoseconds;
  absent: the mtime (reads never update it);
* ``osfs-symlink``: the text given to ``symlink(2)``, on an object link and on a symlink
  object (:mod:`osfs.links`);
* ``osfs-type``: what a non-directory object is when it is not a regular file:
  ``symlink`` (a *symlink object*: its content is the link's text), ``fifo``, ``socket``,
  ``char`` or ``block`` (empty objects standing for special files);
* ``osfs-rdev``: the device number of a ``char`` or ``block`` special file (decimal, as
  the kernel encodes ``dev_t``).

The whole vocabulary, as other clients see it, is in ``docs/object-format.md``.

This module only spells and reads these keys; it holds no state.
"""

from __future__ import annotations

import stat
from collections.abc import Callable, Mapping
from dataclasses import replace

from .config import FsOptions
from .handles import Attr
from .listed import Listed
from .names import Node, Tree
from .store.types import ObjectInfo, ObjectMeta
from .writeback import Writer

#: Metadata keys starting with this belong to the filesystem.
RESERVED_PREFIX = "osfs-"
META_MODE = "osfs-mode"
META_UID = "osfs-uid"
META_GID = "osfs-gid"
META_MTIME = "osfs-mtime"
META_ATIME = "osfs-atime"
META_SYMLINK = "osfs-symlink"
META_TYPE = "osfs-type"
META_RDEV = "osfs-rdev"
TYPE_SYMLINK = "symlink"

#: ``osfs-type`` values and the file type bits each stands for.
TYPES: dict[str, int] = {
    TYPE_SYMLINK: stat.S_IFLNK,
    "fifo": stat.S_IFIFO,
    "socket": stat.S_IFSOCK,
    "char": stat.S_IFCHR,
    "block": stat.S_IFBLK,
}


def type_meta(kind: int, rdev: int) -> dict[str, str]:
    """The metadata recording a special file of type bits ``kind`` (nothing for a regular
    file); ``rdev`` is kept for devices."""
    name = next((n for n, k in TYPES.items() if k == kind), None)
    if name is None or kind == stat.S_IFLNK:
        return {}
    out = {META_TYPE: name}
    if kind in (stat.S_IFCHR, stat.S_IFBLK):
        out[META_RDEV] = str(rdev)
    return out


def is_symlink(info: ObjectInfo | Listed | None) -> bool:
    """True for an object link and for a symlink object."""
    return info is not None and (info.link is not None or info.metadata.get(META_TYPE) == TYPE_SYMLINK)


def kind_of(node: Node) -> int:
    """The file type bits (``stat.S_IFMT``) of ``node``; an unknown ``osfs-type`` is a
    regular file."""
    if node.is_dir:
        return stat.S_IFDIR
    info = node.info
    if info is None:
        return stat.S_IFREG
    if info.link is not None:
        return stat.S_IFLNK
    return TYPES.get(info.metadata.get(META_TYPE, ""), stat.S_IFREG)


def meta_int(text: str | None, base: int = 10, default: int = 0) -> int:
    """``text`` as an integer; ``default`` when absent or malformed."""
    if text is None:
        return default
    try:
        return int(text, base)
    except ValueError:
        return default


def mode_meta(mode: int, base: int, umask: int) -> dict[str, str]:
    """The metadata recording permission bits ``mode`` of a new object (nothing when they
    are the default ``base & ~umask``)."""
    perm = mode & 0o7777
    return {} if perm == base & ~umask else {META_MODE: f"{perm:o}"}


def owner_meta(uid: int, gid: int, options: FsOptions) -> dict[str, str]:
    """The metadata recording owner ``uid`` and group ``gid`` of a new object (only what
    differs from the mount's ``--uid``/``--gid``)."""
    out: dict[str, str] = {}
    if uid != options.uid:
        out[META_UID] = str(uid)
    if gid != options.gid:
        out[META_GID] = str(gid)
    return out


def changes_of(
    *, mode: int | None, uid: int | None, gid: int | None, mtime_ns: int | None, atime_ns: int | None = None
) -> dict[str, str]:
    """The metadata entries that record a ``chmod``/``chown``/``touch`` (None: unchanged)."""
    changes: dict[str, str] = {}
    if mode is not None:
        changes[META_MODE] = f"{mode & 0o7777:o}"
    if uid is not None:
        changes[META_UID] = str(uid)
    if gid is not None:
        changes[META_GID] = str(gid)
    if mtime_ns is not None:
        changes[META_MTIME] = str(mtime_ns)
    if atime_ns is not None:
        changes[META_ATIME] = str(atime_ns)
    return changes


def pin_mtime(changes: Mapping[str, str], info: ObjectInfo | Listed | None, shown_ns: int) -> dict[str, str]:
    """``changes`` plus the mtime shown now (``shown_ns``) when neither pins one yet, so
    that a ``chmod``/``chown`` does not move the shown mtime."""
    out = dict(changes)
    if META_MTIME not in out and info is not None and META_MTIME not in info.metadata:
        out[META_MTIME] = str(shown_ns)
    return out


def without_mtime(meta: ObjectMeta) -> ObjectMeta:
    """``meta`` less a pinned mtime (a new write moves the mtime)."""
    if META_MTIME not in meta.metadata:
        return meta
    return replace(meta, metadata={k: v for k, v in meta.metadata.items() if k != META_MTIME})


def attr_of(
    ino: int,
    node: Node,
    tree: Tree | None,
    options: FsOptions,
    *,
    default_mtime_ns: int,
    writer: Writer | None,
    written_mtime_ns: int | None,
    touched_ns: int | None,
    changed_ns: int | None,
    link_size: Callable[[Node, Tree | None], int],
) -> Attr:
    """What ``stat`` shows for ``node`` as inode ``ino``.

    ``tree`` is the node's bucket tree (None when not loaded: a directory then shows
    ``nlink`` 2); ``default_mtime_ns`` is shown for nodes without an object; ``writer``,
    the file's open writer, gives the size and mtime of data not yet published;
    ``written_mtime_ns``, the mtime this mount's writer gave the shown version (None: not
    written here), is shown instead of its publish time; ``touched_ns``, when a directory's
    entries last changed (None: not since the mount started), is its mtime and ctime;
    ``changed_ns``, when the node's status last changed (None: unknown), moves its ctime;
    ``link_size`` gives the length in bytes of what ``readlink`` shows for a link.
    """
    info = node.info
    meta = info.metadata if info is not None else {}
    mtime = default_mtime_ns
    if info is not None:
        mtime = meta_int(meta.get(META_MTIME)) or written_mtime_ns or info.mtime_ns
    if node.is_dir:
        kind, perm, size = stat.S_IFDIR, 0o777 & ~options.umask, 0
        d = tree.dirs.get(node.path) if tree is not None else None
        nlink = 2 + (d.subdirs if d is not None else 0)
    elif kind_of(node) == stat.S_IFLNK:
        kind, perm, nlink = stat.S_IFLNK, 0o777, 1
        size = link_size(node, tree)
    elif kind_of(node) != stat.S_IFREG:
        kind, perm, nlink, size = kind_of(node), 0o666 & ~options.umask, 1, 0
    else:
        kind, perm, nlink = stat.S_IFREG, 0o666 & ~options.umask, 1
        size = info.size if info is not None else 0
        if writer is not None:
            size = writer.size
            mtime = writer.mtime_ns if writer.dirty else max(mtime, writer.mtime_ns)
    ctime = max(mtime, changed_ns or 0)
    if node.is_dir and touched_ns is not None:
        mtime = touched_ns
        ctime = max(ctime, touched_ns)
    mode_text = meta.get(META_MODE)
    if mode_text is not None and kind != stat.S_IFLNK:
        perm = meta_int(mode_text, 8) & 0o7777
    if options.read_only:
        perm &= ~0o222
    return Attr(
        ino=ino,
        mode=kind | perm,
        nlink=nlink,
        size=size,
        uid=meta_int(meta.get(META_UID), default=options.uid),
        gid=meta_int(meta.get(META_GID), default=options.gid),
        atime_ns=meta_int(meta.get(META_ATIME)) or mtime,
        mtime_ns=mtime,
        ctime_ns=max(ctime, mtime),
        rdev=meta_int(meta.get(META_RDEV)) if kind in (stat.S_IFCHR, stat.S_IFBLK) else 0,
    )
