"""Frozen value types of the object-store interface.

These are osfs's own types: nothing here knows about NATS, nats-py or asyncio. The NATS
implementation converts the wire format (ADR-20 meta JSON, stream info) into these at the
store boundary; the in-memory store builds them directly.

Mapping fields (``headers``, ``metadata``) are read-only views; the dataclasses are frozen
but not hashable (the mappings are excluded from ``__hash__`` and compared by value).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType

#: Default chunk size of every official client (ADR-20).
DEFAULT_CHUNK_SIZE = 128 * 1024

#: Bucket names allowed by ADR-6 and all official clients; matched with ``fullmatch``.
BUCKET_NAME_RE = re.compile(r"[A-Za-z0-9_-]+")

#: The header that carries an object's MIME type (Go and JS store user headers verbatim).
MIME_HEADER = "Content-Type"

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


_EMPTY_MAP: Mapping = MappingProxyType({})


def frozen_map(m: Mapping | None) -> Mapping:
    """Return a read-only copy of ``m`` (an empty one for None; every empty one is the
    same object, as most metas have no headers nor metadata)."""
    return MappingProxyType(dict(m)) if m else _EMPTY_MAP


def valid_bucket_name(name: str) -> bool:
    """True when ``name`` is a legal bucket name (full match, no trailing newline)."""
    return BUCKET_NAME_RE.fullmatch(name) is not None


@dataclass(frozen=True)
class Link:
    """Target of an object link; ``name`` is None for a bucket link."""

    bucket: str
    name: str | None = None

    @property
    def is_bucket_link(self) -> bool:
        return self.name is None


@dataclass(frozen=True)
class ObjectMeta:
    """What a writer supplies for a put or a meta update.

    ``headers`` maps a header name to its values (always written as lists, as nats.go does);
    ``metadata`` is ADR-20 rev 2 object metadata (string to string).
    """

    name: str
    description: str = ""
    headers: Mapping[str, tuple[str, ...]] = field(default_factory=dict, hash=False)
    metadata: Mapping[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        hdrs = {k: tuple(v) if not isinstance(v, str) else (v,) for k, v in self.headers.items()}
        object.__setattr__(self, "headers", frozen_map(hdrs))
        object.__setattr__(self, "metadata", frozen_map(self.metadata))

    @property
    def mime(self) -> str | None:
        values = self.headers.get(MIME_HEADER)
        return values[0] if values else None


@dataclass(frozen=True)
class ObjectInfo:
    """One object (or link, or delete marker) as the store last published it.

    ``mtime`` is always timezone-aware UTC: the writer's value when it wrote a real time,
    otherwise (Go's zero time, nats-py's ``""``, missing) the meta message's server
    timestamp. ``revision`` is the stream sequence of the meta message (0 if unknown).
    ``nuid`` may be empty for links written by the JS client.
    """

    bucket: str
    name: str
    nuid: str
    size: int
    chunks: int
    digest: str
    mtime: datetime
    deleted: bool = False
    description: str = ""
    headers: Mapping[str, tuple[str, ...]] = field(default_factory=dict, hash=False)
    metadata: Mapping[str, str] = field(default_factory=dict, hash=False)
    link: Link | None = None
    max_chunk_size: int | None = None
    revision: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "headers", frozen_map(self.headers))
        object.__setattr__(self, "metadata", frozen_map(self.metadata))

    @property
    def is_link(self) -> bool:
        return self.link is not None

    @property
    def mime(self) -> str | None:
        values = self.headers.get(MIME_HEADER)
        return values[0] if values else None

    def meta(self) -> ObjectMeta:
        """The user-settable part of this info, e.g. to update one field of it."""
        return ObjectMeta(self.name, self.description, self.headers, self.metadata)


@dataclass(frozen=True)
class Replacing:
    """What the writer of a put believes its name holds now, so the commit needs no read of
    the previous meta: ``revision`` is the sequence of the name's last meta message (0: the
    name never had one) and ``nuid`` the version whose chunks the new one replaces ("" when
    that is none: no version, a link, a delete marker). A wrong belief costs one refused
    publish, after which the commit reads the previous meta as usual."""

    revision: int
    nuid: str = ""

    @classmethod
    def of(cls, info: ObjectInfo) -> Replacing:
        """The belief that ``info`` is the name's last meta."""
        live = not info.deleted and info.link is None
        return cls(info.revision, info.nuid if live else "")


#: The belief that a name holds nothing at all (a new file).
NOTHING = Replacing(0)


@dataclass(frozen=True)
class StreamSource:
    """A stream source or mirror (seed ``StreamSource``)."""

    name: str
    opt_start_seq: int | None = None
    opt_start_time: str | None = None
    filter_subject: str | None = None
    external_api: str | None = None
    external_deliver: str | None = None


@dataclass(frozen=True)
class Placement:
    cluster: str | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Republish:
    dest: str
    src: str | None = None
    headers_only: bool = False


@dataclass(frozen=True)
class BucketConfig:
    """Options for creating a bucket; each maps onto the stream config as nats.go sends it.

    ``ttl`` is in seconds (0 = none). ``max_bytes`` limits the whole bucket (-1 = none).
    ``max_object_size`` limits one object (-1 = none); nats.go has no such option, so it is
    kept in the stream's metadata under ``osfs.max_object_size`` and enforced by writers.
    """

    bucket: str
    description: str = ""
    max_object_size: int = -1
    max_bytes: int = -1
    storage: str = "file"  # "file" | "memory"
    replicas: int = 1
    ttl: float = 0.0
    compression: str = "none"  # "none" | "s2"
    placement: Placement | None = None
    republish: Republish | None = None
    mirror: StreamSource | None = None
    sources: tuple[StreamSource, ...] = ()
    metadata: Mapping[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "metadata", frozen_map(self.metadata))


@dataclass(frozen=True)
class BucketStatus:
    """Every field of the seed's ObjectStoreStatus, plus what a filesystem needs.

    ``size`` is the number of live objects when known (-1 when not counted: the stream state
    alone cannot tell), ``bytes`` the bytes stored in the backing stream (chunks and metas).
    ``stream_info`` is the raw stream info as a plain JSON-like dict (empty for the memory
    store).
    """

    bucket: str
    description: str
    ttl: float
    storage: str
    replicas: int
    compression: str
    sealed: bool
    size: int
    bytes: int
    max_object_size: int = -1
    max_bytes: int = -1
    mirror: bool = False
    metadata: Mapping[str, str] = field(default_factory=dict, hash=False)
    backing_store: str = "JetStream"
    stream_info: Mapping = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "metadata", frozen_map(self.metadata))

    @property
    def read_only(self) -> bool:
        """Sealed buckets and mirrors accept no writes."""
        return self.sealed or self.mirror


@dataclass(frozen=True)
class AccountUsage:
    """JetStream account usage and limits, for ``statfs`` (-1 = unlimited)."""

    storage_used: int
    memory_used: int
    max_storage: int
    max_memory: int
    streams: int
    max_streams: int


@dataclass(frozen=True)
class StoreCounters:
    """Read-path counters of a store since it opened (all zero for stores that keep none).

    ``cache_hits``/``chunk_fetches``: chunk reads served from the memory cache / fetched
    from the server; ``cache_bytes``/``cache_limit``: chunk data in the memory cache and its
    bound; ``verified``/``digest_failures``: versions read in order whose digest matched /
    did not match; ``disk_hits``, ``disk_cache_bytes``, ``disk_cache_limit``: the same for
    the disk cache (0 without one).
    """

    cache_hits: int = 0
    chunk_fetches: int = 0
    cache_bytes: int = 0
    cache_limit: int = 0
    verified: int = 0
    digest_failures: int = 0
    disk_hits: int = 0
    disk_cache_bytes: int = 0
    disk_cache_limit: int = 0
