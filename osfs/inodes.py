"""Inode numbers for paths, with the kernel's lookup counts. Never awaits.

A *key* names a node of the mount: ``(bucket, path)`` where ``path`` is bucket-relative
('' for the bucket's own directory) and the mount root (when buckets are top-level
directories) is ``("", "")``. The same key keeps the same inode number for as long as the
kernel knows it (lookup count > 0) or a handle holds it; numbers are never reused within a
mount. ``move`` carries an inode (and everything below it) to a new key on rename, so open
files and cached dentries stay valid. An inode whose key was replaced or removed is
*detached*: it keeps its number until forgotten but is no longer found by key.

A ``find`` over a bucket of a million objects makes the kernel hold an inode per name
(pyfuse3 answers ``readdir`` with ``readdirplus``), so the table keeps no object per inode:
plain dictionaries of ints and strings. Paths of the *home* bucket (the mount's bucket, or
the first bucket given an inode) are kept as the bare path string (for a listed file, the
very string its listing record holds) instead of a ``(bucket, path)`` tuple; an inode's
lookup count and file type share one small int, not kept at all for the state most inodes
have after a ``find`` (one lookup, a regular file).
"""

from __future__ import annotations

import errno
import itertools
import stat

from .errors import FsError

ROOT_INODE = 1

Key = tuple[str, str]

#: The key of the directory that lists buckets (the root of a mount of every bucket).
TOP: Key = ("", "")

#: An inode's state int: its lookup count shifted by this, above its file type bits >> 12.
_COUNT_SHIFT = 4
_KIND_MASK = (1 << _COUNT_SHIFT) - 1
#: The state not kept in ``_state`` (an inode absent from it has it): one lookup, a file.
_COMMON = 1 << _COUNT_SHIFT | stat.S_IFREG >> 12


def is_top(key: Key) -> bool:
    """True for the directory that lists buckets."""
    return key == TOP


class InodeTable:
    """The ino ↔ key maps and lookup counts of one mount.

    ``_inos`` maps bucket, then path, to the inode number; ``_keys`` maps an inode number
    to its path (home bucket), its key (other buckets) or None (detached); ``_state`` to
    ``lookups << 4 | kind >> 12`` when that is not ``_COMMON`` (an allocated inode absent
    from it has that state); ``_opens`` holds the open handle counts that are not 0.
    """

    def __init__(self, root_key: Key) -> None:
        self._home: str | None = root_key[0] or None
        self._inos: dict[str, dict[str, int]] = {}
        self._keys: dict[int, str | Key | None] = {}
        self._state: dict[int, int] = {}
        self._opens: dict[int, int] = {}
        self._numbers = itertools.count(ROOT_INODE + 1)
        self._bind(ROOT_INODE, root_key)
        self._set_state(ROOT_INODE, 1 << _COUNT_SHIFT)

    def __len__(self) -> int:
        return len(self._keys)

    # ----- keys ----------------------------------------------------------------------
    def _bind(self, ino: int, key: Key) -> None:
        bucket, path = key
        if self._home is None and bucket:
            self._home = bucket
        self._inos.setdefault(bucket, {})[path] = ino
        self._keys[ino] = path if bucket == self._home else key

    def _unbind(self, key: Key) -> int | None:
        """Remove ``key`` from the by-key map; the inode it named (None if none)."""
        paths = self._inos.get(key[0])
        if paths is None:
            return None
        ino = paths.pop(key[1], None)
        if not paths:
            del self._inos[key[0]]
        return ino

    def ino_for(self, key: Key) -> int:
        """The inode number of ``key``, allocating one (with no lookups) if needed."""
        paths = self._inos.get(key[0])
        ino = paths.get(key[1]) if paths is not None else None
        if ino is None:
            ino = next(self._numbers)
            self._bind(ino, key)
            self._set_state(ino, 0)
        return ino

    def find(self, key: Key) -> int | None:
        """The inode number of ``key`` if one is allocated."""
        paths = self._inos.get(key[0])
        return paths.get(key[1]) if paths is not None else None

    def key_of(self, ino: int) -> Key | None:
        """The key of ``ino`` (None when unknown or detached)."""
        k = self._keys.get(ino)
        if k is None or isinstance(k, tuple):
            return k
        assert self._home is not None
        return (self._home, k)

    def key(self, ino: int) -> Key:
        """The key of ``ino``; ``ENOENT`` when unknown or detached."""
        key = self.key_of(ino)
        if key is None:
            raise FsError(errno.ENOENT)
        return key

    def known(self, ino: int) -> bool:
        return ino in self._keys

    # ----- counts --------------------------------------------------------------------
    def _get_state(self, ino: int) -> int | None:
        """The state int of ``ino`` (None when unknown)."""
        if ino not in self._keys:
            return None
        return self._state.get(ino, _COMMON)

    def _set_state(self, ino: int, state: int) -> None:
        if state == _COMMON:
            self._state.pop(ino, None)
        else:
            self._state[ino] = state

    def kind(self, ino: int) -> int:
        """File type bits last shown for ``ino`` (0 when unknown)."""
        return ((self._get_state(ino) or 0) & _KIND_MASK) << 12

    def set_kind(self, ino: int, kind: int) -> None:
        """Record the file type bits (``stat.S_IFMT``) shown for ``ino``."""
        state = self._get_state(ino)
        if state is not None:
            self._set_state(ino, (state & ~_KIND_MASK) | (stat.S_IFMT(kind) >> 12))

    def lookups(self, ino: int) -> int:
        return (self._get_state(ino) or 0) >> _COUNT_SHIFT

    def remember(self, ino: int, n: int = 1) -> None:
        """Add ``n`` kernel lookups to ``ino``."""
        state = self._get_state(ino)
        if state is not None:
            self._set_state(ino, state + (n << _COUNT_SHIFT))

    def forget(self, ino: int, n: int) -> None:
        """Drop ``n`` lookups; free the inode when none remain and no handle holds it."""
        state = self._get_state(ino)
        if state is None or ino == ROOT_INODE:
            return
        count = max(0, (state >> _COUNT_SHIFT) - n)
        self._set_state(ino, (count << _COUNT_SHIFT) | (state & _KIND_MASK))
        self._maybe_free(ino)

    def open(self, ino: int) -> None:
        if ino in self._keys:
            self._opens[ino] = self._opens.get(ino, 0) + 1

    def close(self, ino: int) -> None:
        if ino in self._keys:
            left = self._opens.pop(ino, 0) - 1
            if left > 0:
                self._opens[ino] = left
            self._maybe_free(ino)

    def drop_if_unused(self, ino: int) -> None:
        """Free ``ino`` if the kernel never took it (allocated for a listing it did not accept)."""
        if ino in self._keys:
            self._maybe_free(ino)

    def _maybe_free(self, ino: int) -> None:
        if ino == ROOT_INODE or self.lookups(ino) or ino in self._opens:
            return
        key = self.key_of(ino)
        del self._keys[ino]
        self._state.pop(ino, None)
        if key is not None and self.find(key) == ino:
            self._unbind(key)

    def detach(self, key: Key) -> int | None:
        """Unbind ``key`` from its inode (the file was removed or replaced)."""
        ino = self._unbind(key)
        if ino is None:
            return None
        self._keys[ino] = None
        self._maybe_free(ino)
        return ino

    def move(self, old: Key, new: Key) -> None:
        """Rename: ``old`` and every key below it now live under ``new``."""
        self.detach(new)
        bucket, path = old
        prefix = path + "/"
        paths = self._inos.get(bucket, {})
        moved = [(p, ino) for p, ino in paths.items() if p == path or path == "" or p.startswith(prefix)]
        for p, _ in moved:
            self._unbind((bucket, p))
        for p, ino in moved:
            rest = p[len(path) :].lstrip("/")
            key = (new[0], "/".join(q for q in (new[1], rest) if q))
            displaced = self.find(key)
            if displaced is not None:
                self._keys[displaced] = None
            self._bind(ino, key)
