"""Compact listing records: what a bucket view keeps of each object.

A bucket of a million objects is listed whole, so the view keeps per name only what
``readdir``, ``lookup`` and ``getattr`` need: :class:`Listed` holds the name, nuid, size,
mtime and revision, plus the object's metadata and link only when it has any (the
``osfs-*`` keys that give a file's mode, owner, type, device and link text live there).
Everything else of the meta (digest, chunk count, headers, description) is fetched again
for the one object that needs it (opened, its extended attributes read, its meta changed):
see :meth:`osfs.views.Views.full_info`.

Records hold no per-object dict: slots only, the numbers packed in one bytes object, the
nuid as one integer, and no slot at all for metadata when an object has none.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from datetime import UTC, datetime

from .store.types import Link, ObjectInfo

_EMPTY: Mapping[str, str] = {}
#: The mtime in nanoseconds, first in a record's packed numbers.
_MTIME = struct.Struct("<q")


#: Keys of the common nuids (22 bytes, the first one 1-127) lie in [_LOW, _HIGH).
_LOW, _HIGH = 1 << 168, 1 << 175


def nuid_key(nuid: str) -> int:
    """A compact dictionary key standing for ``nuid`` (one to one: see :func:`nuid_of`).

    A nuid of 22 bytes whose first byte is 1-127 (every nuid NATS makes) is its bytes read
    as one number: in ``[2**168, 2**175)``, six of CPython's 30-bit digits, a 48-byte int.
    Any other is its bytes after a 0xFF byte, which lands in the top 256th of its length's
    range, outside that one.
    """
    raw = nuid.encode("utf-8", "surrogateescape")
    if len(raw) == 22 and 0 < raw[0] < 0x80:
        return int.from_bytes(raw, "big")
    return int.from_bytes(b"\xff" + raw, "big")


def nuid_of(key: int) -> str:
    """The nuid that :func:`nuid_key` gave ``key`` for."""
    if _LOW <= key < _HIGH:
        raw = key.to_bytes(22, "big")
    else:
        raw = key.to_bytes((key.bit_length() + 7) // 8, "big")[1:]
    return raw.decode("utf-8", "surrogateescape")


def _pack(mtime_ns: int, size: int, revision: int) -> bytes:
    """The mtime in 8 bytes, then ``size`` and ``revision`` as unsigned LEB128 varints."""
    out = bytearray(_MTIME.pack(mtime_ns))
    for n in (max(size, 0), max(revision, 0)):
        while n >= 0x80:
            out.append((n & 0x7F) | 0x80)
            n >>= 7
        out.append(n)
    return bytes(out)


def _unpack(data: bytes) -> tuple[int, int, int]:
    """``(mtime_ns, size, revision)`` packed by :func:`_pack`."""
    nums = [_MTIME.unpack_from(data)[0]]
    pos = _MTIME.size
    for _ in range(2):
        n = shift = 0
        while True:
            b = data[pos]
            pos += 1
            n |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                break
        nums.append(n)
    return nums[0], nums[1], nums[2]


class Listed:
    """One live object as the listing keeps it (never a delete marker).

    ``mtime_ns`` is the object's mtime in nanoseconds since the epoch; ``extra`` is
    ``(metadata, link)`` when the object has metadata or is a link, else None. The
    numbers are packed in one bytes object and the nuid is kept as its :func:`nuid_key`
    (the key of the view's nuid index, shared); :meth:`of` makes the record.
    """

    __slots__ = ("_nums", "bucket", "name", "nuid_key")

    deleted = False
    extra: tuple[Mapping[str, str], Link | None] | None = None

    def __init__(self, bucket: str, name: str, nuid: str, size: int, mtime_ns: int, revision: int) -> None:
        self.bucket = bucket
        self.name = name
        self._nums = _pack(mtime_ns, size, revision)
        self.nuid_key = nuid_key(nuid)

    @classmethod
    def of(cls, info: ObjectInfo, bucket: str | None = None) -> Listed:
        """The record of a live ``info`` (``bucket``: a shared copy of its bucket name)."""
        mtime_ns = int(info.mtime.timestamp() * 1e9)
        args = (bucket or info.bucket, info.name, info.nuid, info.size, mtime_ns, info.revision)
        if info.metadata or info.link is not None:
            return ListedWithMeta(*args, extra=(info.metadata, info.link))
        return Listed(*args)

    @property
    def nuid(self) -> str:
        return nuid_of(self.nuid_key)

    @property
    def size(self) -> int:
        # ``getattr`` of every entry of a listing asks for it: the common sizes (below
        # 2 MiB) are read without the general decoder
        d = self._nums
        b0 = d[8]
        if b0 < 0x80:
            return b0
        b1 = d[9]
        if b1 < 0x80:
            return (b0 & 0x7F) | b1 << 7
        b2 = d[10]
        if b2 < 0x80:
            return (b0 & 0x7F) | (b1 & 0x7F) << 7 | b2 << 14
        return _unpack(d)[1]

    @property
    def mtime_ns(self) -> int:
        return _MTIME.unpack_from(self._nums)[0]

    @property
    def revision(self) -> int:
        return _unpack(self._nums)[2]

    @property
    def metadata(self) -> Mapping[str, str]:
        return self.extra[0] if self.extra is not None else _EMPTY

    @property
    def link(self) -> Link | None:
        return self.extra[1] if self.extra is not None else None

    @property
    def is_link(self) -> bool:
        return self.link is not None

    @property
    def mtime(self) -> datetime:
        return datetime.fromtimestamp(self.mtime_ns / 1e9, UTC)

    def same_version(self, info: ObjectInfo) -> bool:
        """True when ``info`` is the full meta of the version this record stands for."""
        return info.name == self.name and info.nuid == self.nuid and info.revision == self.revision

    def __repr__(self) -> str:
        return f"Listed({self.bucket!r}, {self.name!r}, size={self.size}, revision={self.revision})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Listed):
            return NotImplemented
        return (
            self.bucket == other.bucket
            and self.name == other.name
            and self._nums == other._nums
            and self.nuid_key == other.nuid_key
            and self.extra == other.extra
        )

    __hash__ = None  # type: ignore[assignment]


class ListedWithMeta(Listed):
    """A :class:`Listed` record of an object that has metadata or is a link."""

    __slots__ = ("extra",)

    def __init__(
        self,
        bucket: str,
        name: str,
        nuid: str,
        size: int,
        mtime_ns: int,
        revision: int,
        *,
        extra: tuple[Mapping[str, str], Link | None],
    ) -> None:
        super().__init__(bucket, name, nuid, size, mtime_ns, revision)
        self.extra = extra
