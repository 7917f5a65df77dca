"""Compact listing records: what a bucket view keeps of each object.

A bucket of a million objects is listed whole, so the view keeps per name only what
``readdir``, ``lookup`` and ``getattr`` need: :class:`Listed` holds the name, nuid, size,
mtime and revision, plus the object's metadata and link only when it has any (the
``osfs-*`` keys that give a file's mode, owner, type, device and link text live there).
Everything else of the meta (digest, chunk count, headers, description) is fetched again
for the one object that needs it (opened, its extended attributes read, its meta changed):
see :meth:`osfs.views.Views.full_info`.

Records hold no per-object dict: slots only, and objects without metadata share one empty
mapping.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from .store.types import Link, ObjectInfo

_EMPTY: Mapping[str, str] = {}


class Listed:
    """One live object as the listing keeps it (never a delete marker).

    ``mtime_ns`` is the object's mtime in nanoseconds since the epoch; ``extra`` is
    ``(metadata, link)`` when the object has metadata or is a link, else None.
    """

    __slots__ = ("bucket", "extra", "mtime_ns", "name", "nuid", "revision", "size")

    deleted = False

    def __init__(
        self,
        bucket: str,
        name: str,
        nuid: str,
        size: int,
        mtime_ns: int,
        revision: int,
        extra: tuple[Mapping[str, str], Link | None] | None = None,
    ) -> None:
        self.bucket = bucket
        self.name = name
        self.nuid = nuid
        self.size = size
        self.mtime_ns = mtime_ns
        self.revision = revision
        self.extra = extra

    @classmethod
    def of(cls, info: ObjectInfo, bucket: str | None = None) -> Listed:
        """The record of a live ``info`` (``bucket``: a shared copy of its bucket name)."""
        extra = (info.metadata, info.link) if info.metadata or info.link is not None else None
        ts = info.mtime.timestamp()
        return cls(
            bucket or info.bucket, info.name, info.nuid, info.size, int(ts * 1e9), info.revision, extra
        )

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
            and self.nuid == other.nuid
            and self.size == other.size
            and self.mtime_ns == other.mtime_ns
            and self.revision == other.revision
            and self.extra == other.extra
        )

    __hash__ = None  # type: ignore[assignment]
