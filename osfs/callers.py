"""Who asks: the process behind a request (:class:`Caller`), and the ownership rules the
filesystem applies for it.

New entries belong to their creator (:func:`new_owner`): its uid, and its gid unless the
parent directory is setgid (then the directory's group, and a new directory is setgid
too). A caller's supplementary groups are read from ``/proc/<pid>/status`` when a
``chgrp`` needs them.

What the kernel checks: with ``default_permissions`` it checks every access against the
modes and owners we report (search, read, write, execute; creating and removing entries,
the sticky bit) and applies its ``setattr`` rules (``chown``, ``chgrp``, ``chmod``,
``utimensat``) before a request reaches us. Without it the kernel checks nothing. So the
``chown``/``chgrp``/``chmod`` rules are checked here too (:func:`check_setattr`), and hold
either way; access modes are enforced only with ``default_permissions`` (on with
``allow_other`` unless turned off, see :mod:`osfs.mount`).
"""

from __future__ import annotations

import errno
import logging
import stat
from dataclasses import dataclass
from pathlib import Path

from .errors import fail

#: Directory of the process status files that list supplementary groups.
PROC = Path("/proc")


@dataclass(frozen=True)
class Caller:
    """The process behind a request: ids, umask, and pid (0: unknown)."""

    uid: int
    gid: int
    umask: int = 0
    pid: int = 0

    @property
    def is_root(self) -> bool:
        return self.uid == 0


def groups_of(caller: Caller) -> set[int]:
    """``caller``'s groups: its gid and, when its process is still there, its
    supplementary groups."""
    groups = {caller.gid}
    if caller.pid > 0:
        try:
            text = (PROC / str(caller.pid) / "status").read_text()
        except OSError:
            return groups
        for line in text.splitlines():
            if line.startswith("Groups:"):
                groups.update(int(g) for g in line.split()[1:])
    return groups


def new_owner(
    caller: Caller, parent_gid: int, parent_mode: int, mode: int, *, is_dir: bool
) -> tuple[int, int, int]:
    """``(uid, gid, mode)`` of an entry ``caller`` creates with ``mode`` in a directory of
    group ``parent_gid`` and mode ``parent_mode``: the caller's umask applied, the group
    and (for a directory) the setgid bit inherited from a setgid parent."""
    mode &= ~(caller.umask & 0o777)
    gid = caller.gid
    if parent_mode & stat.S_ISGID:
        gid = parent_gid
        if is_dir:
            mode |= stat.S_ISGID
    return caller.uid, gid, mode


#: The bits a write by anyone clears from a file's mode.
PRIVILEGE_BITS = stat.S_ISUID | stat.S_ISGID


def only_drops_privileges(current: int, mode: int) -> bool:
    """True when ``mode`` is ``current`` with only setuid and/or setgid cleared: what the
    kernel asks for when somebody other than the owner writes to a setuid/setgid file."""
    current, mode = stat.S_IMODE(current), stat.S_IMODE(mode)
    return mode != current and mode | PRIVILEGE_BITS == current | PRIVILEGE_BITS and not mode & ~current


def check_setattr(
    caller: Caller,
    owner: tuple[int, int],
    *,
    mode: int | None,
    uid: int | None,
    gid: int | None,
    current_mode: int | None = None,
) -> None:
    """``EPERM`` unless ``caller`` may make these changes to an entry owned by ``owner``
    (uid, gid): only root changes the owner; the owner may set the group to one of its
    groups, and change the mode. Anybody may clear the setuid/setgid bits of an entry
    whose mode is ``current_mode`` (the kernel does so when a non-owner writes to it)."""
    if caller.is_root:
        return
    if mode is not None and current_mode is not None and only_drops_privileges(current_mode, mode):
        mode = None
    is_owner = caller.uid == owner[0]
    if uid is not None and (uid != owner[0] or not is_owner):
        raise fail(errno.EPERM, "chown", str(uid), "only root changes an owner", logging.INFO)
    if gid is not None and (not is_owner or (gid != owner[1] and gid not in groups_of(caller))):
        raise fail(errno.EPERM, "chgrp", str(gid), "not the owner, or not a group of the owner", logging.INFO)
    if mode is not None and not is_owner:
        raise fail(errno.EPERM, "chmod", f"{mode:o}", "not the owner", logging.INFO)
