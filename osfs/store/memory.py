"""An in-memory :class:`~osfs.store.base.ObjectStore` with the NATS store's semantics.

Used by the unit tests of every layer above the store. It keeps, per bucket, the latest meta
of every name (delete markers included) and the chunks of every live version keyed by nuid,
exactly as the stream would after rollups and purges:

* objects are chunked by the put's chunk size; the digest is ``SHA-256=`` + padded base64url;
* ``revision`` is a global sequence counter (one stream sequence per published meta);
* ``mtime`` is the current UTC time of the publish;
* a put is visible only after ``commit``; the old version's chunks are purged then, so a
  reader of the old version gets ``ObjectReplaced`` (and ``Corrupt`` when the current meta
  still names chunks that are gone);
* an upload's full chunks are stored as they fill, under the upload's nuid with the
  (monotonic) time of the newest, as the stream stores them; ``abort`` and failed commits
  purge them, and an upload left unfinished leaves them for ``sweep_orphans``;
* a rename moves the meta to the new name with the same nuid and no delete marker.

Fault injection and counters for tests:

* ``fail_next_put``: a :class:`StoreError` raised by the next ``Upload.commit`` (the upload's
  chunks are purged, the previous version stays), then reset to None.
* ``fail_next_read``: a :class:`StoreError` raised by the next ``read``, then reset.
* ``fail_next_watch``: a :class:`StoreError` raised by the next ``watch`` on entry, then reset.
* ``read_calls``: every ``read`` as ``(bucket, name, offset, length, readahead)``.
* ``chunk_fetches``: the number of chunks ``read`` and ``get`` have fetched.
* ``drop_chunks(bucket, name)``: lose a live version's chunks (reads then raise ``Corrupt``).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import math
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import trio

from .base import ObjectStore, Upload
from .errors import (
    BadName,
    BucketNotFound,
    Conflict,
    Corrupt,
    NoSpace,
    NotFound,
    ObjectReplaced,
    Sealed,
    StoreError,
    TooLarge,
    Unavailable,
)
from .types import (
    DEFAULT_CHUNK_SIZE,
    AccountUsage,
    BucketConfig,
    BucketStatus,
    Link,
    ObjectInfo,
    ObjectMeta,
    valid_bucket_name,
)

#: Maximum depth of link chains followed by ``resolve`` (as the official clients do).
MAX_LINK_DEPTH = 8


def digest_of(sha: hashlib._Hash) -> str:
    """The wire form of a SHA-256 digest: ``SHA-256=`` + padded base64url."""
    return "SHA-256=" + base64.urlsafe_b64encode(sha.digest()).decode("ascii")


def _now() -> datetime:
    return datetime.now(UTC)


def _new_nuid() -> str:
    return secrets.token_urlsafe(16)[:22]


@dataclass
class _Bucket:
    config: BucketConfig
    sealed: bool = False
    metas: dict[str, ObjectInfo] = field(default_factory=dict)
    chunks: dict[str, list[bytes]] = field(default_factory=dict)
    chunk_times: dict[str, float] = field(default_factory=dict)  # uploads not committed yet
    watchers: list[trio.MemorySendChannel] = field(default_factory=list)

    @property
    def read_only(self) -> bool:
        return self.sealed or self.config.mirror is not None

    def data_bytes(self) -> int:
        return sum(len(c) for chunks in self.chunks.values() for c in chunks)

    def live(self, name: str) -> ObjectInfo | None:
        info = self.metas.get(name)
        return None if info is None or info.deleted else info


class MemoryUpload(Upload):
    """A streaming put into a :class:`MemoryStore`; chunks are kept aside until commit."""

    def __init__(self, store: MemoryStore, bucket: str, meta: ObjectMeta, chunk_size: int) -> None:
        self._store = store
        self._bucket = bucket
        self._meta = meta
        self._chunk_size = chunk_size
        self._nuid = _new_nuid()
        self._chunks: list[bytes] = []
        self._pending = bytearray()
        self._sha = hashlib.sha256()
        self._size = 0
        self._finished = False

    @property
    def size(self) -> int:
        return self._size

    async def write(self, data: bytes) -> None:
        await trio.lowlevel.checkpoint()
        if self._finished:
            raise StoreError("upload already finished")
        limit = self._store._bucket(self._bucket).config.max_object_size
        if limit >= 0 and self._size + len(data) > limit:
            raise TooLarge(f"{self._meta.name}: exceeds max object size {limit}")
        self._sha.update(data)
        self._size += len(data)
        self._pending += data
        while len(self._pending) >= self._chunk_size:
            self._store_chunk(bytes(self._pending[: self._chunk_size]))
            del self._pending[: self._chunk_size]

    def _store_chunk(self, chunk: bytes) -> None:
        """Add a chunk to the bucket under this upload's nuid (as a chunk publish would)."""
        self._chunks.append(chunk)
        b = self._store._buckets.get(self._bucket)
        if b is not None:
            b.chunks[self._nuid] = self._chunks
            b.chunk_times[self._nuid] = time.monotonic()

    def _purge(self) -> None:
        b = self._store._buckets.get(self._bucket)
        if b is not None and self._nuid not in {i.nuid for i in b.metas.values()}:
            b.chunks.pop(self._nuid, None)
            b.chunk_times.pop(self._nuid, None)

    async def commit(self) -> ObjectInfo:
        await trio.lowlevel.checkpoint()
        if self._finished:
            raise StoreError("upload already finished")
        self._finished = True
        try:
            info = self._publish()
        except BaseException:
            self._purge()
            raise
        self._store._buckets[self._bucket].chunk_times.pop(self._nuid, None)
        return info

    def _publish(self) -> ObjectInfo:
        store = self._store
        failure = store.fail_next_put
        if failure is not None:
            store.fail_next_put = None
            raise failure
        b = store._bucket(self._bucket)
        if b.read_only:
            raise Sealed(f"bucket {self._bucket} is sealed")
        if self._pending:
            self._store_chunk(bytes(self._pending))
            self._pending.clear()
        b.chunks[self._nuid] = self._chunks
        if b.config.max_bytes >= 0 and b.data_bytes() > b.config.max_bytes:
            raise NoSpace(f"bucket {self._bucket} is full")
        nuid = self._nuid
        info = ObjectInfo(
            bucket=self._bucket,
            name=self._meta.name,
            nuid=nuid,
            size=self._size,
            chunks=len(self._chunks),
            digest=digest_of(self._sha),
            mtime=_now(),
            description=self._meta.description,
            headers=self._meta.headers,
            metadata=self._meta.metadata,
            max_chunk_size=self._chunk_size,
            revision=store._next_revision(),
        )
        store._publish(b, info)
        return info

    async def abort(self) -> None:
        if not self._finished:
            self._purge()
        self._finished = True
        self._chunks = []
        self._pending.clear()


class MemoryStore(ObjectStore):
    """Buckets and objects held in process memory; see the module docstring."""

    def __init__(self) -> None:
        self._buckets: dict[str, _Bucket] = {}
        self._revisions = itertools.count(1)
        self._closed = False
        self.fail_next_put: StoreError | None = None
        self.fail_next_read: StoreError | None = None
        self.fail_next_watch: StoreError | None = None
        self.read_calls: list[tuple[str, str, int, int, int]] = []
        self.chunk_fetches = 0

    # ----- internals -------------------------------------------------------------------
    def _next_revision(self) -> int:
        return next(self._revisions)

    def _check_open(self) -> None:
        if self._closed:
            raise Unavailable("store is closed")

    def _bucket(self, bucket: str) -> _Bucket:
        self._check_open()
        if not valid_bucket_name(bucket):
            raise BadName(f"invalid bucket name {bucket!r}")
        b = self._buckets.get(bucket)
        if b is None:
            raise BucketNotFound(bucket)
        return b

    def _writable(self, bucket: str, name: str | None = None) -> _Bucket:
        b = self._bucket(bucket)
        if name is not None and not name:
            raise BadName("object name must not be empty")
        if b.read_only:
            raise Sealed(f"bucket {bucket} is sealed")
        return b

    def _publish(self, b: _Bucket, info: ObjectInfo, *, purge_old: bool = True) -> None:
        """Store ``info`` as the latest meta of its name and tell the watchers."""
        old = b.metas.get(info.name)
        b.metas[info.name] = info
        if purge_old and old is not None and old.nuid != info.nuid:
            b.chunks.pop(old.nuid, None)
        for send in list(b.watchers):
            try:
                send.send_nowait(info)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                b.watchers.remove(send)

    def _status(self, b: _Bucket) -> BucketStatus:
        c = b.config
        return BucketStatus(
            bucket=c.bucket,
            description=c.description,
            ttl=c.ttl,
            storage=c.storage,
            replicas=c.replicas,
            compression=c.compression,
            sealed=b.sealed,
            size=sum(1 for i in b.metas.values() if not i.deleted),
            bytes=b.data_bytes(),
            max_object_size=c.max_object_size,
            max_bytes=c.max_bytes,
            mirror=c.mirror is not None,
            metadata=c.metadata,
            backing_store="memory",
        )

    def drop_chunks(self, bucket: str, name: str) -> None:
        """Lose the chunks of the live version of ``name`` (simulates corruption)."""
        info = self._bucket(bucket).live(name)
        if info is None:
            raise NotFound(name)
        self._buckets[bucket].chunks.pop(info.nuid, None)

    # ----- lifecycle -------------------------------------------------------------------
    async def close(self) -> None:
        self._closed = True
        for b in self._buckets.values():
            for send in b.watchers:
                send.close()
            b.watchers.clear()

    # ----- buckets ---------------------------------------------------------------------
    async def bucket_names(self) -> list[str]:
        await trio.lowlevel.checkpoint()
        self._check_open()
        return sorted(self._buckets)

    async def bucket_status(self, bucket: str) -> BucketStatus:
        await trio.lowlevel.checkpoint()
        return self._status(self._bucket(bucket))

    async def create_bucket(self, config: BucketConfig) -> BucketStatus:
        await trio.lowlevel.checkpoint()
        self._check_open()
        if not valid_bucket_name(config.bucket):
            raise BadName(f"invalid bucket name {config.bucket!r}")
        existing = self._buckets.get(config.bucket)
        if existing is not None:
            if existing.config != config:
                raise Conflict(f"bucket {config.bucket} exists with a different config")
            return self._status(existing)
        b = _Bucket(config)
        self._buckets[config.bucket] = b
        return self._status(b)

    async def delete_bucket(self, bucket: str) -> None:
        await trio.lowlevel.checkpoint()
        b = self._bucket(bucket)
        del self._buckets[bucket]
        for send in b.watchers:
            send.close()

    async def seal_bucket(self, bucket: str) -> BucketStatus:
        await trio.lowlevel.checkpoint()
        b = self._bucket(bucket)
        b.sealed = True
        return self._status(b)

    async def account_usage(self) -> AccountUsage:
        await trio.lowlevel.checkpoint()
        self._check_open()
        used = {"file": 0, "memory": 0}
        for b in self._buckets.values():
            used[b.config.storage if b.config.storage in used else "file"] += b.data_bytes()
        return AccountUsage(
            storage_used=used["file"],
            memory_used=used["memory"],
            max_storage=-1,
            max_memory=-1,
            streams=len(self._buckets),
            max_streams=-1,
        )

    # ----- objects: metadata -----------------------------------------------------------
    async def info(self, bucket: str, name: str, *, show_deleted: bool = False) -> ObjectInfo:
        await trio.lowlevel.checkpoint()
        b = self._bucket(bucket)
        if not name:
            raise BadName("object name must not be empty")
        info = b.metas.get(name)
        if info is None or (info.deleted and not show_deleted):
            raise NotFound(f"{bucket}/{name}")
        return info

    async def list_objects(self, bucket: str, *, show_deleted: bool = False) -> list[ObjectInfo]:
        await trio.lowlevel.checkpoint()
        b = self._bucket(bucket)
        infos = [i for i in b.metas.values() if show_deleted or not i.deleted]
        return sorted(infos, key=lambda i: i.revision)

    async def update_meta(self, bucket: str, name: str, meta: ObjectMeta) -> ObjectInfo:
        await trio.lowlevel.checkpoint()
        b = self._writable(bucket, name)
        if meta.name != name:
            raise BadName(f"update_meta cannot rename {name!r} to {meta.name!r}")
        info = b.live(name)
        if info is None:
            raise NotFound(f"{bucket}/{name}")
        new = replace(
            info,
            description=meta.description,
            headers=meta.headers,
            metadata=meta.metadata,
            mtime=_now(),
            revision=self._next_revision(),
        )
        self._publish(b, new)
        return new

    async def rename(self, bucket: str, old: str, new: str, *, replace: bool = False) -> ObjectInfo:
        await trio.lowlevel.checkpoint()
        b = self._writable(bucket, old)
        if not new:
            raise BadName("object name must not be empty")
        info = b.live(old)
        if info is None:
            raise NotFound(f"{bucket}/{old}")
        if old == new:
            return info
        target = b.live(new)
        if target is not None and not replace:
            raise Conflict(f"{bucket}/{new} exists")
        moved = _replace_info(info, name=new, mtime=_now(), revision=self._next_revision())
        self._publish(b, moved)
        del b.metas[old]
        return moved

    async def delete(self, bucket: str, name: str) -> None:
        await trio.lowlevel.checkpoint()
        b = self._writable(bucket, name)
        info = b.live(name)
        if info is None:
            raise NotFound(f"{bucket}/{name}")
        marker = _replace_info(
            info, deleted=True, size=0, chunks=0, digest="", mtime=_now(), revision=self._next_revision()
        )
        self._publish(b, marker, purge_old=False)
        b.chunks.pop(info.nuid, None)

    def _check_link_name(self, b: _Bucket, name: str) -> None:
        existing = b.live(name)
        if existing is not None and not existing.is_link:
            raise Conflict(f"{name} exists and is not a link")

    async def add_link(
        self,
        bucket: str,
        name: str,
        target_bucket: str,
        target_name: str,
        *,
        metadata: dict[str, str] | None = None,
    ) -> ObjectInfo:
        await trio.lowlevel.checkpoint()
        b = self._writable(bucket, name)
        tb = self._bucket(target_bucket)
        if not target_name:
            raise BadName("link target name must not be empty")
        target = tb.metas.get(target_name)
        if target is None:
            raise NotFound(f"{target_bucket}/{target_name}")
        if target.deleted or target.is_link:
            raise Conflict(f"cannot link to {'a deleted object' if target.deleted else 'a link'}")
        self._check_link_name(b, name)
        return self._publish_link(b, bucket, name, Link(target_bucket, target_name), metadata)

    async def add_bucket_link(
        self, bucket: str, name: str, target_bucket: str, *, metadata: dict[str, str] | None = None
    ) -> ObjectInfo:
        await trio.lowlevel.checkpoint()
        b = self._writable(bucket, name)
        self._bucket(target_bucket)
        self._check_link_name(b, name)
        return self._publish_link(b, bucket, name, Link(target_bucket), metadata)

    def _publish_link(
        self, b: _Bucket, bucket: str, name: str, link: Link, metadata: dict[str, str] | None
    ) -> ObjectInfo:
        nuid = _new_nuid()
        b.chunks[nuid] = []
        info = ObjectInfo(
            bucket=bucket,
            name=name,
            nuid=nuid,
            size=0,
            chunks=0,
            digest="",
            mtime=_now(),
            link=link,
            metadata=dict(metadata or {}),
            revision=self._next_revision(),
        )
        self._publish(b, info)
        return info

    async def resolve(self, bucket: str, name: str) -> ObjectInfo:
        info = await self.info(bucket, name)
        for _ in range(MAX_LINK_DEPTH):
            if info.link is None:
                return info
            if info.link.name is None:
                raise Conflict(f"{bucket}/{name} is a bucket link")
            try:
                info = await self.info(info.link.bucket, info.link.name)
            except BucketNotFound as e:
                raise NotFound(f"{bucket}/{name}: dangling link") from e
        if info.link is None:
            return info
        raise NotFound(f"{bucket}/{name}: too many levels of links")

    # ----- objects: data ---------------------------------------------------------------
    async def begin_put(self, bucket: str, meta: ObjectMeta, *, chunk_size: int | None = None) -> Upload:
        await trio.lowlevel.checkpoint()
        self._writable(bucket, meta.name)
        size = chunk_size or DEFAULT_CHUNK_SIZE
        if size <= 0:
            raise BadName(f"invalid chunk size {size}")
        return MemoryUpload(self, bucket, meta, size)

    def _chunks_of(self, info: ObjectInfo) -> list[bytes]:
        b = self._bucket(info.bucket)
        chunks = b.chunks.get(info.nuid)
        current = b.live(info.name)
        if chunks is None:
            if current is not None and current.nuid == info.nuid:
                raise Corrupt(f"{info.bucket}/{info.name}: chunks missing")
            raise ObjectReplaced(f"{info.bucket}/{info.name}: version replaced", current)
        return chunks

    async def read(self, info: ObjectInfo, offset: int, length: int, *, readahead: int = 0) -> bytes:
        await trio.lowlevel.checkpoint()
        self.read_calls.append((info.bucket, info.name, offset, length, readahead))
        failure = self.fail_next_read
        if failure is not None:
            self.fail_next_read = None
            raise failure
        chunks = self._chunks_of(info)
        if offset < 0 or length < 0:
            raise ValueError("negative offset or length")
        end = min(offset + length, info.size)
        if offset >= end:
            return b""
        csize = info.max_chunk_size or (len(chunks[0]) if chunks else DEFAULT_CHUNK_SIZE)
        first, last = offset // csize, math.ceil(end / csize)
        self.chunk_fetches += last - first
        data = b"".join(chunks[first:last])
        return data[offset - first * csize : end - first * csize]

    def get(self, info: ObjectInfo) -> AsyncIterator[bytes]:
        return self._get(info)

    async def _get(self, info: ObjectInfo) -> AsyncIterator[bytes]:
        await trio.lowlevel.checkpoint()
        chunks = self._chunks_of(info)
        sha = hashlib.sha256()
        for chunk in chunks:
            self.chunk_fetches += 1
            sha.update(chunk)
            yield chunk
            await trio.lowlevel.checkpoint()
        if info.digest and digest_of(sha) != info.digest:
            raise Corrupt(f"{info.bucket}/{info.name}: digest mismatch")

    def watch(self, bucket: str, *, initial: bool = True):  # type: ignore[override]
        return self._watch(bucket, initial)

    @asynccontextmanager
    async def _watch(self, bucket: str, initial: bool) -> AsyncIterator[AsyncIterator[ObjectInfo | None]]:
        b = self._bucket(bucket)
        failure = self.fail_next_watch
        if failure is not None:
            self.fail_next_watch = None
            raise failure
        send, receive = trio.open_memory_channel[ObjectInfo | None](math.inf)
        if initial:
            for info in sorted(b.metas.values(), key=lambda i: i.revision):
                send.send_nowait(info)
            send.send_nowait(None)
        b.watchers.append(send)
        try:
            async with receive:
                yield _iterate(receive)
        finally:
            if send in b.watchers:
                b.watchers.remove(send)
            send.close()

    # ----- maintenance -----------------------------------------------------------------
    async def sweep_orphans(self, bucket: str, older_than: float) -> int:
        await trio.lowlevel.checkpoint()
        if older_than < 0:
            raise ValueError(f"negative grace {older_than}")
        b = self._bucket(bucket)
        if b.read_only:
            raise Sealed(f"bucket {bucket} is sealed")
        named = {i.nuid for i in b.metas.values()}
        cutoff = time.monotonic() - older_than
        orphans = [n for n, t in b.chunk_times.items() if n not in named and t <= cutoff]
        for nuid in orphans:
            b.chunks.pop(nuid, None)
            del b.chunk_times[nuid]
        return len(orphans)


async def _iterate(receive: trio.MemoryReceiveChannel) -> AsyncIterator[ObjectInfo | None]:
    async for item in receive:
        yield item


def _replace_info(info: ObjectInfo, **changes: object) -> ObjectInfo:
    return replace(info, **changes)  # type: ignore[arg-type]
