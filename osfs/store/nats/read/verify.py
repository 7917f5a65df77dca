"""Digest check of versions read in order through ranged reads (the serving thread).

A whole-object ``get`` hashes everything it streams. Ranged reads (what the mount does)
are checked here: :class:`DigestVerifier` hashes the bytes of a version *as they are
served*, in order, on the thread that serves them (the trio thread, for the mount), and
gives a verdict when the hash reaches the end of the version. It never fetches anything
and never makes a read wait for a fetch: it only looks at the bytes a read returns and at
what the chunk cache holds.

Hashing where reads are served, not where chunks land, keeps it off the asyncio loop,
which receives and parses every byte and is the busier thread of a sequential read
(hashlib releases the GIL, so the loop goes on receiving while the reader hashes).

Contract (``ChunkReader.check_served`` calls :meth:`DigestVerifier.served` with every range
a read returns, and the reader's chunk cache):

* A version ``(bucket, nuid)`` has at most one *cursor*: how many bytes from its start
  have been hashed, and a SHA-256 state. At most ``max_cursors`` exist; the least recently
  fed is dropped first, and a dropped version is *given up* (remembered, bounded).
* A cursor starts when a range starting at byte 0 is served, or, for a version not given
  up, when a later range is served while chunk 0 is cached. Versions whose meta has no
  digest, or one :func:`wire.decode_digest` cannot read (other clients' metas), get no
  cursor: they are never checked.
* Each call hashes, from the cursor on: cached chunks up to the served range, the served
  bytes, then cached chunks up to the furthest byte served so far. So a range served out
  of order (a read that waited on a fetch, answered after the next one) is hashed from
  the cache later. Chunks that have not been served (read-ahead) are left alone: hashing
  them early would only hold up the read that happened to come first.
* When the cursor reaches the end of the version its digest is compared with the meta's:
  :attr:`Verdict.MATCH` or :attr:`Verdict.MISMATCH`, and the cursor is gone. A cursor that
  cannot advance (a random reader skipped a chunk that is not cached) simply waits, until
  a later range fills the gap or it is pushed out of the table.
* A version whose check failed is remembered as *bad* (bounded LRU): every later read of it
  must fail with :func:`failed`. One that passed is remembered as *good* (bounded LRU) and
  not hashed again while remembered: the bytes of a version (a nuid) never change.

Threads: every method is called holding the reader's lock (``lock``, given at
construction), except :meth:`served`, which takes it itself to pick what to hash and
hashes without it. The verifier never calls back into the reader: :meth:`served` is given
the chunk cache to look in (``cache.peek``, under the lock). One range of a version is
hashed at a time: a call that finds the version's cursor busy leaves its range to the
cache (the busy call's next pass, or the next range served, hashes it from there).
"""

from __future__ import annotations

import collections
import enum
import hashlib
import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

from ...disk_cache import ChunkKey
from ...errors import Corrupt
from ...types import ObjectInfo
from .. import wire
from .index import ChunkIndex

#: Versions hashed at the same time (each cursor holds one SHA-256 state, ~200 bytes).
MAX_CURSORS = 64
#: Versions remembered as given up (not restarted from the cache by later ranges).
MAX_GIVEN_UP = 1024
#: Versions remembered as failing their digest check.
MAX_BAD = 1024
#: Versions remembered as having passed it (not hashed again while remembered).
MAX_GOOD = 4096

VersionKey = tuple[str, str]  # (bucket, nuid)
Buffer = bytes | bytearray | memoryview


class PeekableCache(Protocol):
    """The chunk cache as the verifier looks at it."""

    def peek(self, key: ChunkKey) -> Buffer | None:
        """The cached chunk ``key`` or None, leaving the LRU order alone (lock held)."""
        ...


class Verdict(enum.Enum):
    """The outcome of a completed check."""

    MATCH = "match"
    MISMATCH = "mismatch"


@dataclass
class _Cursor:
    expected: bytes
    size: int
    #: Bytes hashed from the start of the version.
    pos: int = 0
    #: The furthest byte served so far (ranges past ``pos`` are hashed from the cache).
    served_to: int = 0
    busy: bool = False
    sha: Any = field(default_factory=hashlib.sha256)


class DigestVerifier:
    """Sequential SHA-256 cursors over the bytes served from versions."""

    def __init__(
        self,
        lock: threading.Lock,
        *,
        max_cursors: int = MAX_CURSORS,
        max_given_up: int = MAX_GIVEN_UP,
    ) -> None:
        self._lock = lock
        self._max_cursors = max(1, max_cursors)
        self._max_given_up = max(1, max_given_up)
        self._cursors: collections.OrderedDict[VersionKey, _Cursor] = collections.OrderedDict()
        self._given_up: collections.OrderedDict[VersionKey, None] = collections.OrderedDict()
        self._bad: collections.OrderedDict[VersionKey, None] = collections.OrderedDict()
        self._good: collections.OrderedDict[VersionKey, None] = collections.OrderedDict()
        #: Versions given up so far (for tests and diagnostics).
        self.given_up = 0

    def __len__(self) -> int:
        """Cursors in progress."""
        return len(self._cursors)

    def served(
        self, info: ObjectInfo, idx: ChunkIndex, offset: int, data: Buffer, cache: PeekableCache
    ) -> Verdict | None:
        """Bytes ``[offset, offset + len(data))`` of ``info``'s version (indexed by ``idx``)
        were served; ``cache`` holds the chunks fetched so far (looked at under the lock,
        its LRU order untouched). Returns the verdict when this completed the version's
        check, else None.

        Takes the lock to pick what to hash, and hashes without it.
        """
        key = (info.bucket, info.nuid)
        end = offset + len(data)
        with self._lock:
            cur = self._cursors.get(key)
            if cur is None:
                cur = self._start(info, key, offset, cache)
                if cur is None:
                    return None
            else:
                self._cursors.move_to_end(key)
            cur.served_to = max(cur.served_to, end)
            if cur.busy:
                return None
            cur.busy = True
        pos = cur.pos
        try:
            while True:
                with self._lock:
                    if self._cursors.get(key) is not cur:  # forgotten or pushed out meanwhile
                        return None
                    cur.pos = pos
                    pieces, pos = self._plan(info, idx, pos, cur.served_to, offset, end, data, cache)
                    if not pieces:
                        break
                for piece in pieces:  # without the lock: hashlib releases the GIL too
                    cur.sha.update(piece)
            with self._lock:
                if pos < cur.size or self._cursors.get(key) is not cur:
                    return None
                del self._cursors[key]
                if cur.sha.digest() != cur.expected:
                    return Verdict.MISMATCH
                _remember(self._good, key, MAX_GOOD)
            return Verdict.MATCH
        finally:
            cur.busy = False

    def _plan(
        self,
        info: ObjectInfo,
        idx: ChunkIndex,
        pos: int,
        limit: int,
        offset: int,
        end: int,
        data: Buffer,
        cache: PeekableCache,
    ) -> tuple[list[Buffer], int]:
        """What to hash from ``pos`` towards ``limit``: cached chunks, the served bytes where
        they start at or before ``pos``, cached chunks after them; and the position after
        it all (a chunk that reaches past ``limit`` is hashed whole)."""
        pieces: list[Buffer] = []
        while pos < limit:
            if offset <= pos < end:
                pieces.append(memoryview(data)[pos - offset :])
                pos = end
                continue
            i = idx.chunk_at(pos)
            chunk = cache.peek((info.bucket, info.nuid, i))
            if chunk is None or len(chunk) != idx.end(i) - idx.start(i):
                break
            pieces.append(memoryview(chunk)[pos - idx.start(i) :])
            pos = idx.end(i)
        return pieces, pos

    def is_bad(self, key: VersionKey) -> bool:
        """Whether version ``key`` failed its check."""
        return key in self._bad

    def mark_bad(self, key: VersionKey) -> bool:
        """Remember that version ``key`` failed its check; False if it was known already."""
        self._cursors.pop(key, None)
        if key in self._bad:
            self._bad.move_to_end(key)
            return False
        self._good.pop(key, None)
        _remember(self._bad, key, MAX_BAD)
        return True

    def forget(self, bucket: str, nuid: str) -> None:
        """Drop the cursor of a version nobody will read any more (replaced or deleted)."""
        self._cursors.pop((bucket, nuid), None)

    def _start(self, info: ObjectInfo, key: VersionKey, offset: int, cache: PeekableCache) -> _Cursor | None:
        if info.size <= 0 or not info.digest or key in self._bad:
            return None
        if key in self._good:
            self._good.move_to_end(key)
            return None
        if offset != 0 and (key in self._given_up or cache.peek((info.bucket, info.nuid, 0)) is None):
            return None
        expected = wire.decode_digest(info.digest)
        if expected is None:
            return None
        self._given_up.pop(key, None)
        cur = _Cursor(expected, info.size)
        self._cursors[key] = cur
        while len(self._cursors) > self._max_cursors:
            old, _ = self._cursors.popitem(last=False)
            self._give_up(old)
        return cur

    def _give_up(self, key: VersionKey) -> None:
        self.given_up += 1
        _remember(self._given_up, key, self._max_given_up)


def _remember(table: collections.OrderedDict[VersionKey, None], key: VersionKey, limit: int) -> None:
    """Put ``key`` last in the bounded LRU ``table``, dropping the oldest past ``limit``."""
    table[key] = None
    table.move_to_end(key)
    while len(table) > limit:
        table.popitem(last=False)


def failed(info: ObjectInfo) -> Corrupt:
    """The error of every read of a version that failed its digest check."""
    return Corrupt(f"{info.bucket}/{info.name}: version {info.nuid} failed its digest check")
