"""An in-memory :class:`~osfs.store.base.ObjectStore`: a double of the stream, running the
same semantics as the NATS store.

:class:`~osfs.store.memory_stream.MemoryStream` fakes the stream primitives of
:class:`~osfs.store.semantics.MetaStream` and nothing more (the last meta of every name with
its sequence, chunks by nuid, watchers). Links, markers, renames, deletes,
conditional publishes and the commit of a put are :class:`~osfs.store.semantics.Semantics`,
run on trio here exactly as the NATS store runs them on its loop. What is left here is
what a stream does by itself:

* objects are chunked by the put's chunk size; the digest is ``semantics.encode_digest``;
* ``mtime`` is the current UTC time of the publish;
* an upload's full chunks are stored as they fill, under the upload's nuid with the
  (monotonic) time of the newest, as the stream stores them; ``abort`` and failed commits
  purge them, and an upload left unfinished leaves them for ``sweep_orphans``;
* a read of a version whose chunks are gone raises ``ObjectReplaced`` (``Corrupt`` when
  the current meta still names that version).

Fault injection and counters for tests:

* ``fail_next_put``: a :class:`StoreError` raised by the next ``Upload.commit`` (the upload's
  chunks are purged, the previous version stays), then reset to None.
* ``fail_next_read``: a :class:`StoreError` raised by the next ``read``, then reset.
* ``fail_next_watch``: a :class:`StoreError` raised by the next ``watch`` on entry, then reset.
* ``read_calls``: every ``read`` as ``(bucket, name, offset, length, readahead)``.
* ``chunk_fetches``: the number of chunks ``read`` and ``get`` have fetched.
* ``drop_chunks(bucket, name)``: lose a live version's chunks (reads then raise ``Corrupt``).
* ``stream``: the :class:`MemoryStream` beneath (to look at what is stored).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import trio

from .base import ObjectStore, Upload
from .errors import (
    BadName,
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
from .memory_stream import MemoryBucket, MemoryStream, now
from .semantics import Semantics, check, check_bucket, encode_digest
from .types import (
    DEFAULT_CHUNK_SIZE,
    AccountUsage,
    BucketConfig,
    BucketStatus,
    ObjectInfo,
    ObjectMeta,
    Replacing,
)


class MemoryUpload(Upload):
    """A streaming put into a :class:`MemoryStore`; chunks land as they fill, the meta is
    committed by :meth:`Semantics.commit`.

    ``take_failure()`` returns (and clears) the failure the next commit must raise.
    """

    def __init__(
        self,
        semantics: Semantics,
        stream: MemoryStream,
        take_failure: Callable[[], StoreError | None],
        bucket: str,
        meta: ObjectMeta,
        chunk_size: int,
        replacing: Replacing | None = None,
    ) -> None:
        self._semantics = semantics
        self._replacing = replacing
        self._stream = stream
        self._take_failure = take_failure
        self._bucket = bucket
        self._meta = meta
        self._chunk_size = chunk_size
        self._nuid = stream.new_nuid()
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
        limit = self._stream.bucket(self._bucket).config.max_object_size
        if limit >= 0 and self._size + len(data) > limit:
            raise TooLarge(f"{self._meta.name}: exceeds max object size {limit}")
        self._sha.update(data)
        self._size += len(data)
        self._pending += data
        while len(self._pending) >= self._chunk_size:
            self._store_chunk(bytes(self._pending[: self._chunk_size]))
            del self._pending[: self._chunk_size]

    def _store_chunk(self, chunk: bytes) -> None:
        self._chunks.append(chunk)
        self._stream.store_chunks(self._bucket, self._nuid, self._chunks)

    def _purge(self) -> None:
        b = self._stream.buckets.get(self._bucket)
        if b is not None and self._nuid not in {i.nuid for i in b.metas.values()}:
            b.chunks.pop(self._nuid, None)
            b.chunk_times.pop(self._nuid, None)

    async def read(self, offset: int, length: int) -> bytes:
        await trio.lowlevel.checkpoint()
        end = min(offset + length, self._size)
        if offset >= end:
            return b""
        cs = self._chunk_size
        first = offset // cs
        data = b"".join(self._chunks[first:]) + bytes(self._pending)
        return data[offset - first * cs : end - first * cs]

    async def commit(self, meta: ObjectMeta | None = None) -> ObjectInfo:
        await trio.lowlevel.checkpoint()
        if self._finished:
            raise StoreError("upload already finished")
        if meta is not None:
            check(self._bucket, meta.name)
            self._meta = meta
        self._finished = True
        try:
            info = await self._semantics.commit(self._last_chunks(), replacing=self._replacing)
        except BaseException:
            self._purge()
            raise
        b = self._stream.buckets.get(self._bucket)
        if b is not None:
            b.chunk_times.pop(self._nuid, None)
        return info

    def _last_chunks(self) -> ObjectInfo:
        """Store the short last chunk; the meta to commit. Raises what a stream would refuse
        the chunks with (an injected failure, ``Sealed``, ``NoSpace``)."""
        failure = self._take_failure()
        if failure is not None:
            raise failure
        b = self._stream.bucket(self._bucket)
        if b.read_only:
            raise Sealed(f"bucket {self._bucket} is sealed")
        if self._pending:
            self._store_chunk(bytes(self._pending))
            self._pending.clear()
        b.chunks[self._nuid] = self._chunks
        if b.config.max_bytes >= 0 and b.data_bytes() > b.config.max_bytes:
            raise NoSpace(f"bucket {self._bucket} is full")
        return ObjectInfo(
            bucket=self._bucket,
            name=self._meta.name,
            nuid=self._nuid,
            size=self._size,
            chunks=len(self._chunks),
            digest=encode_digest(self._sha.digest()),
            mtime=now(),
            description=self._meta.description,
            headers=self._meta.headers,
            metadata=self._meta.metadata,
            max_chunk_size=self._chunk_size,
        )

    async def abort(self) -> None:
        if not self._finished:
            self._purge()
        self._finished = True
        self._chunks = []
        self._pending.clear()


class MemoryStore(ObjectStore):
    """Buckets and objects held in process memory; see the module docstring."""

    def __init__(self) -> None:
        self.stream = MemoryStream()
        self._semantics = Semantics(self.stream)
        self.fail_next_put: StoreError | None = None
        self.fail_next_read: StoreError | None = None
        self.fail_next_watch: StoreError | None = None
        self.read_calls: list[tuple[str, str, int, int, int]] = []
        self.chunk_fetches = 0

    @property
    def closed(self) -> bool:
        return self.stream.closed

    def _take_put_failure(self) -> StoreError | None:
        failure, self.fail_next_put = self.fail_next_put, None
        return failure

    def drop_chunks(self, bucket: str, name: str) -> None:
        """Lose the chunks of the live version of ``name`` (simulates corruption)."""
        b = self.stream.bucket(bucket)
        info = b.live(name)
        if info is None:
            raise NotFound(name)
        b.chunks.pop(info.nuid, None)

    # ----- lifecycle -------------------------------------------------------------------
    async def close(self) -> None:
        self.stream.close()

    # ----- buckets ---------------------------------------------------------------------
    async def bucket_names(self) -> list[str]:
        await trio.lowlevel.checkpoint()
        if self.stream.closed:
            raise Unavailable("store is closed")
        return sorted(self.stream.buckets)

    async def bucket_status(self, bucket: str) -> BucketStatus:
        await trio.lowlevel.checkpoint()
        return self.stream.bucket(bucket).status()

    async def create_bucket(self, config: BucketConfig) -> BucketStatus:
        await trio.lowlevel.checkpoint()
        if self.stream.closed:
            raise Unavailable("store is closed")
        check_bucket(config.bucket)
        existing = self.stream.buckets.get(config.bucket)
        if existing is not None:
            if existing.config != config:
                raise Conflict(f"bucket {config.bucket} exists with a different config")
            return existing.status()
        b = MemoryBucket(config)
        self.stream.buckets[config.bucket] = b
        return b.status()

    async def delete_bucket(self, bucket: str) -> None:
        await trio.lowlevel.checkpoint()
        b = self.stream.bucket(bucket)
        del self.stream.buckets[bucket]
        for send in b.watchers:
            send.close()

    async def seal_bucket(self, bucket: str) -> BucketStatus:
        await trio.lowlevel.checkpoint()
        b = self.stream.bucket(bucket)
        b.sealed = True
        return b.status()

    async def account_usage(self) -> AccountUsage:
        await trio.lowlevel.checkpoint()
        if self.stream.closed:
            raise Unavailable("store is closed")
        used = {"file": 0, "memory": 0}
        for b in self.stream.buckets.values():
            used[b.config.storage if b.config.storage in used else "file"] += b.data_bytes()
        return AccountUsage(
            storage_used=used["file"],
            memory_used=used["memory"],
            max_storage=-1,
            max_memory=-1,
            streams=len(self.stream.buckets),
            max_streams=-1,
        )

    # ----- objects: metadata (the shared semantics) ---------------------------------------
    async def info(self, bucket: str, name: str, *, show_deleted: bool = False) -> ObjectInfo:
        await trio.lowlevel.checkpoint()
        return await self._semantics.info(bucket, name, show_deleted=show_deleted)

    async def list_objects(self, bucket: str, *, show_deleted: bool = False) -> list[ObjectInfo]:
        await trio.lowlevel.checkpoint()
        return await self._semantics.list_objects(bucket, show_deleted=show_deleted)

    async def update_meta(self, bucket: str, name: str, meta: ObjectMeta) -> ObjectInfo:
        await trio.lowlevel.checkpoint()
        return await self._semantics.update_meta(bucket, name, meta)

    async def rename(self, bucket: str, old: str, new: str, *, replace: bool = False) -> ObjectInfo:
        await trio.lowlevel.checkpoint()
        return await self._semantics.rename(bucket, old, new, replace_existing=replace)

    async def delete(self, bucket: str, name: str) -> ObjectInfo:
        await trio.lowlevel.checkpoint()
        return await self._semantics.delete(bucket, name)

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
        return await self._semantics.add_link(bucket, name, target_bucket, target_name, metadata=metadata)

    async def add_bucket_link(
        self, bucket: str, name: str, target_bucket: str, *, metadata: dict[str, str] | None = None
    ) -> ObjectInfo:
        await trio.lowlevel.checkpoint()
        return await self._semantics.add_bucket_link(bucket, name, target_bucket, metadata=metadata)

    async def resolve(self, bucket: str, name: str) -> ObjectInfo:
        await trio.lowlevel.checkpoint()
        return await self._semantics.resolve(bucket, name)

    # ----- objects: data ---------------------------------------------------------------
    async def begin_put(
        self,
        bucket: str,
        meta: ObjectMeta,
        *,
        chunk_size: int | None = None,
        replacing: Replacing | None = None,
        server_time: bool = True,
    ) -> Upload:
        await trio.lowlevel.checkpoint()
        check(bucket, meta.name)
        await self.stream.writable(bucket)
        size = chunk_size or DEFAULT_CHUNK_SIZE
        if size <= 0:
            raise BadName(f"invalid chunk size {size}")
        return MemoryUpload(
            self._semantics, self.stream, self._take_put_failure, bucket, meta, size, replacing
        )

    def _chunks_of(self, info: ObjectInfo) -> list[bytes]:
        b = self.stream.bucket(info.bucket)
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
        if info.digest and encode_digest(sha.digest()) != info.digest:
            raise Corrupt(f"{info.bucket}/{info.name}: digest mismatch")

    def watch(self, bucket: str, *, initial: bool = True):  # type: ignore[override]
        return self._watch(bucket, initial)

    @asynccontextmanager
    async def _watch(self, bucket: str, initial: bool) -> AsyncIterator[AsyncIterator[ObjectInfo | None]]:
        b = self.stream.bucket(bucket)
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
        b = self.stream.bucket(bucket)
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
