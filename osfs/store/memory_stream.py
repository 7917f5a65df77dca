"""The stream double under :class:`~osfs.store.memory.MemoryStore`: buckets held in memory.

:class:`MemoryStream` fakes the stream primitives of :class:`~osfs.store.semantics.MetaStream`
and nothing more: per bucket (:class:`MemoryBucket`), the last meta message of every name
with its sequence (``revision``, from one counter for every bucket), the chunks of every
version keyed by nuid, and the watchers told of every meta published. A conditional
publish whose expected sequence is not the subject's raises ``StaleRevision``, as the
server does; a sealed bucket or a mirror refuses publishes with ``Sealed``.
"""

from __future__ import annotations

import itertools
import secrets
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import trio
import trio.testing

from .errors import BucketNotFound, Sealed, StaleRevision, Unavailable
from .semantics import check_bucket
from .types import BucketConfig, BucketStatus, ObjectInfo


def now() -> datetime:
    """The current UTC time (the stream's timestamp of a publish)."""
    return datetime.now(UTC)


@dataclass
class MemoryBucket:
    """What the stream of one bucket holds."""

    config: BucketConfig
    sealed: bool = False
    #: The last meta message of every name (delete markers included).
    metas: dict[str, ObjectInfo] = field(default_factory=dict)
    #: Chunks by nuid.
    chunks: dict[str, list[bytes]] = field(default_factory=dict)
    #: Time the newest chunk of an upload not committed yet was stored, by nuid.
    chunk_times: dict[str, float] = field(default_factory=dict)
    watchers: list[trio.MemorySendChannel] = field(default_factory=list)

    @property
    def read_only(self) -> bool:
        return self.sealed or self.config.mirror is not None

    def data_bytes(self) -> int:
        return sum(len(c) for chunks in self.chunks.values() for c in chunks)

    def live(self, name: str) -> ObjectInfo | None:
        info = self.metas.get(name)
        return None if info is None or info.deleted else info

    def status(self) -> BucketStatus:
        c = self.config
        return BucketStatus(
            bucket=c.bucket,
            description=c.description,
            ttl=c.ttl,
            storage=c.storage,
            replicas=c.replicas,
            compression=c.compression,
            sealed=self.sealed,
            size=sum(1 for i in self.metas.values() if not i.deleted),
            bytes=self.data_bytes(),
            max_object_size=c.max_object_size,
            max_bytes=c.max_bytes,
            mirror=c.mirror is not None,
            metadata=c.metadata,
            backing_store="memory",
        )


class MemoryStream:
    """The stream primitives (:class:`~osfs.store.semantics.MetaStream`) over buckets held
    in memory; every call raises ``Unavailable`` once :meth:`close` was called."""

    def __init__(self) -> None:
        self.buckets: dict[str, MemoryBucket] = {}
        self.closed = False
        #: When true, a meta's watchers have taken it before its publisher hears back, as
        #: when a server delivers the watch update before the publish's ack.
        self.echo_before_ack = False
        self._sequence = itertools.count(1)

    def close(self) -> None:
        self.closed = True
        for b in self.buckets.values():
            for send in b.watchers:
                send.close()
            b.watchers.clear()

    def bucket(self, bucket: str) -> MemoryBucket:
        """The bucket's stream; ``Unavailable`` when closed, ``BadName``, ``BucketNotFound``."""
        if self.closed:
            raise Unavailable("store is closed")
        check_bucket(bucket)
        b = self.buckets.get(bucket)
        if b is None:
            raise BucketNotFound(bucket)
        return b

    # ----- MetaStream -------------------------------------------------------------------
    async def last_meta(self, bucket: str, name: str, *, leader: bool = False) -> ObjectInfo | None:
        return self.bucket(bucket).metas.get(name)

    async def subject_revision(self, bucket: str, name: str, *, leader: bool = False) -> int:
        info = self.bucket(bucket).metas.get(name)
        return info.revision if info is not None else 0

    async def publish_meta(self, info: ObjectInfo, *, expected: int | None, stamp: bool = True) -> ObjectInfo:
        # the stored time is known here: ``stamp`` changes nothing
        b = self.bucket(info.bucket)
        if b.read_only:
            raise Sealed(f"bucket {info.bucket} is sealed")
        current = b.metas.get(info.name)
        if expected is not None and expected != (current.revision if current is not None else 0):
            raise StaleRevision(f"{info.bucket}/{info.name}: not at revision {expected}")
        info = replace(info, revision=next(self._sequence), mtime=now())
        b.metas[info.name] = info
        if not info.deleted and info.chunks == 0:
            b.chunks.setdefault(info.nuid, [])  # a version without chunks: nothing missing
        for send in list(b.watchers):
            try:
                send.send_nowait(info)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                b.watchers.remove(send)
        if self.echo_before_ack and b.watchers:
            await trio.testing.wait_all_tasks_blocked()
        return info

    async def purge_meta(self, bucket: str, name: str, *, before: int) -> None:
        b = self.bucket(bucket)
        info = b.metas.get(name)
        if info is not None and info.revision < before:
            del b.metas[name]

    async def purge_chunks(self, bucket: str, nuid: str) -> None:
        b = self.bucket(bucket)
        b.chunks.pop(nuid, None)
        b.chunk_times.pop(nuid, None)

    async def all_metas(self, bucket: str) -> list[ObjectInfo]:
        return sorted(self.bucket(bucket).metas.values(), key=lambda i: i.revision)

    async def check_bucket(self, bucket: str) -> None:
        self.bucket(bucket)

    async def writable(self, bucket: str) -> BucketStatus:
        b = self.bucket(bucket)
        if b.read_only:
            raise Sealed(f"bucket {bucket} is sealed")
        return b.status()

    async def pause(self, seconds: float) -> None:
        await trio.sleep(seconds)

    def new_nuid(self) -> str:
        return secrets.token_urlsafe(16)[:22]

    # ----- chunks ---------------------------------------------------------------------------
    def store_chunks(self, bucket: str, nuid: str, chunks: list[bytes]) -> None:
        """Chunks of an upload in progress land under its nuid (as chunk publishes do)."""
        b = self.buckets.get(bucket)
        if b is not None:
            b.chunks[nuid] = chunks
            b.chunk_times[nuid] = time.monotonic()
