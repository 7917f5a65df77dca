"""Digest check of versions read in order through the chunk cache (asyncio side).

A whole-object ``get`` hashes everything it streams. Ranged reads (what the mount does)
fetch chunks into the cache in whatever order readers ask for them; :class:`DigestVerifier`
hashes a version while its chunks arrive *in order*, and gives a verdict when the last one
has been hashed. It never fetches anything and never makes a read wait: it only looks at
chunks as they come from the server and at what the cache holds.

Contract (``ChunkReader`` calls :meth:`DigestVerifier.landed` with every chunk fetched for
the cache, before caching it):

* A version ``(bucket, nuid)`` has at most one *cursor*: the next chunk number to hash and
  a SHA-256 state. At most ``max_cursors`` exist (least recently fed dropped first).
* A cursor starts when chunk 0 lands (the index fast path passes it here too), or when a
  later chunk lands while chunk 0 is still cached (its cursor was pushed out of the table),
  unless the version was given up before. Versions whose meta has no digest, or one :func:`wire.decode_digest`
  cannot read (other clients' metas), get no cursor: they are never checked.
* When the chunk at the cursor lands it is hashed, then every following chunk already
  cached. When the cursor passes the last chunk the digest is compared with the meta's:
  :attr:`Verdict.MATCH` or :attr:`Verdict.MISMATCH`, and the cursor is gone.
* A version whose check failed is remembered as *bad* (bounded LRU): every later read of
  it must fail with :func:`failed`. The bad set is the only state another thread reads
  (``ChunkReader.read_cached``): :meth:`is_bad` and :meth:`mark_bad` are called under the
  reader's lock.
* A cursor that cannot advance because its chunk is neither cached nor being fetched while
  a later one landed (evicted under cache pressure, or skipped by a random reader) is given
  up: that version is simply not verified (remembered, bounded, so random readers do not
  restart cursors over and over); only chunk 0 landing again starts it anew.

Hashing is done inline, on the loop: hashlib (about 1.4 GB/s with SHA extensions) costs
10-20 % of sequential read throughput that way, and handing chunks of 64 KiB or more to the
hashing thread of :mod:`~osfs.store.digest` measured no better on two cores (the server and
the loop already use both), so the simpler path stays.
"""

from __future__ import annotations

import collections
import enum
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import wire
from .disk_cache import ChunkKey
from .errors import Corrupt
from .types import ObjectInfo

#: Versions hashed at the same time (each cursor holds one SHA-256 state, ~200 bytes).
MAX_CURSORS = 64
#: Versions remembered as given up (not restarted by later out-of-order chunks).
MAX_GIVEN_UP = 1024
#: Versions remembered as failing their digest check.
MAX_BAD = 1024

VersionKey = tuple[str, str]  # (bucket, nuid)


class Verdict(enum.Enum):
    """The outcome of a completed check."""

    MATCH = "match"
    MISMATCH = "mismatch"


@dataclass
class _Cursor:
    expected: bytes
    chunks: int
    next: int = 0
    sha: Any = field(default_factory=hashlib.sha256)

    def feed(self, data: bytes) -> None:
        self.sha.update(data)
        self.next += 1


class DigestVerifier:
    """Sequential SHA-256 cursors over versions read through the chunk cache.

    ``cached(key)`` returns a cached chunk or None without touching the cache's LRU order;
    ``fetching(key)`` tells whether a chunk is being fetched. Both are called only from
    :meth:`landed`, on the thread that calls it (the asyncio loop).
    """

    def __init__(
        self,
        cached: Callable[[ChunkKey], bytes | None],
        fetching: Callable[[ChunkKey], bool],
        *,
        max_cursors: int = MAX_CURSORS,
        max_given_up: int = MAX_GIVEN_UP,
    ) -> None:
        self._cached = cached
        self._fetching = fetching
        self._max_cursors = max(1, max_cursors)
        self._max_given_up = max(1, max_given_up)
        self._cursors: collections.OrderedDict[VersionKey, _Cursor] = collections.OrderedDict()
        self._given_up: collections.OrderedDict[VersionKey, None] = collections.OrderedDict()
        self._bad: collections.OrderedDict[VersionKey, None] = collections.OrderedDict()
        #: Versions given up so far (for tests and diagnostics).
        self.given_up = 0

    def __len__(self) -> int:
        """Cursors in progress."""
        return len(self._cursors)

    def landed(self, info: ObjectInfo, i: int, data: bytes) -> Verdict | None:
        """Chunk ``i`` of ``info``'s version came from the server (not cached yet).

        Returns the verdict when this completed the version's check, else None.
        """
        key = (info.bucket, info.nuid)
        cur = self._cursors.get(key)
        if cur is None:
            cur = self._start(info, key, i)
            if cur is None:
                return None
        else:
            self._cursors.move_to_end(key)
        if cur.next > i:  # fetched again after an eviction: hashed already
            return None
        self._advance(info, cur, i, data)
        if cur.next >= cur.chunks:
            del self._cursors[key]
            return Verdict.MATCH if cur.sha.digest() == cur.expected else Verdict.MISMATCH
        if cur.next < i and not self._fetching((info.bucket, info.nuid, cur.next)):
            self._give_up(key)
        return None

    def is_bad(self, key: VersionKey) -> bool:
        """Whether version ``key`` failed its check (caller holds the reader's lock)."""
        return key in self._bad

    def mark_bad(self, key: VersionKey) -> bool:
        """Remember that version ``key`` failed its check; False if it was known already.

        Called on the loop thread, holding the reader's lock.
        """
        self._cursors.pop(key, None)
        if key in self._bad:
            self._bad.move_to_end(key)
            return False
        self._bad[key] = None
        while len(self._bad) > MAX_BAD:
            self._bad.popitem(last=False)
        return True

    def forget(self, bucket: str, nuid: str) -> None:
        """Drop the cursor of a version nobody will read any more (replaced or deleted)."""
        self._cursors.pop((bucket, nuid), None)

    def _start(self, info: ObjectInfo, key: VersionKey, i: int) -> _Cursor | None:
        if key in self._given_up and i != 0:
            return None
        if info.chunks <= 0 or not info.digest:
            return None
        if i != 0 and self._cached((info.bucket, info.nuid, 0)) is None:
            return None
        expected = wire.decode_digest(info.digest)
        if expected is None:
            return None
        self._given_up.pop(key, None)
        cur = _Cursor(expected, info.chunks)
        self._cursors[key] = cur
        while len(self._cursors) > self._max_cursors:
            self._cursors.popitem(last=False)
        return cur

    def _advance(self, info: ObjectInfo, cur: _Cursor, i: int, data: bytes) -> None:
        """Hash chunks from the cursor on: chunk ``i`` is ``data``, the others from the cache."""
        while cur.next < cur.chunks:
            chunk = data if cur.next == i else self._cached((info.bucket, info.nuid, cur.next))
            if chunk is None:
                return
            cur.feed(chunk)

    def _give_up(self, key: VersionKey) -> None:
        del self._cursors[key]
        self.given_up += 1
        self._given_up[key] = None
        self._given_up.move_to_end(key)
        while len(self._given_up) > self._max_given_up:
            self._given_up.popitem(last=False)


def failed(info: ObjectInfo) -> Corrupt:
    """The error of every read of a version that failed its digest check."""
    return Corrupt(f"{info.bucket}/{info.name}: version {info.nuid} failed its digest check")
