"""The object store on NATS JetStream: :class:`NatsStore`, the trio face of :class:`Core`.

Every method validates its arguments (``BadName`` before anything is sent), then crosses
the trio/asyncio bridge at most once into a :class:`~osfs.store.nats.core.Core` coroutine:
a ``read`` the chunk cache holds is served on the trio side, and upload writes are gathered
there and cross a MiB at a time, without waiting for the previous MiB's publishing. A
``begin_put`` into a bucket whose status a put of the last ``WRITABLE_TTL`` seconds read
(writable, its max object size, the chunk size accepted) does not cross at all: its pipe
is made here and used on the loop from its first hand-off, so a small file crosses once,
at its commit.
``get`` and ``watch`` stream their items through one bounded bridge channel. Pipelines (chunk
publishing with a window of acks, chunk fetches with several in flight, read-ahead into the
byte-bounded chunk cache) run wholly on the asyncio side: see ``upload`` and
``read``.

Usage::

    store = await NatsStore.connect(ConnectOptions(servers=("nats://127.0.0.1:4222",)))
    try:
        info = await store.put("bucket", ObjectMeta("a/b.txt"), b"hello")
        data = await store.read(info, 0, 5)
    finally:
        await store.close()
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress

import trio

from ..base import ObjectStore, Upload
from ..bridge import BridgeClosed, Call
from ..disk_cache import DiskCache
from ..errors import BadName, TooLarge, Unavailable
from ..semantics import check
from ..types import (
    DEFAULT_CHUNK_SIZE,
    AccountUsage,
    BucketConfig,
    BucketStatus,
    ObjectInfo,
    ObjectMeta,
    Replacing,
    StoreCounters,
)
from . import allocator
from .bulk import BulkLane
from .conn import Conn
from .core import Core
from .loop import Bridge
from .meta import WRITABLE_TTL
from .options import ConnectOptions
from .read.fetch import ChunkReader, ReadStats
from .read.get import get_whole
from .sweep import sweep_orphans
from .upload import UploadPipe

#: Bytes of writes gathered on the trio side before they cross to the upload pipeline.
HAND_OFF = 1024 * 1024
#: Default size of the chunk cache, in bytes.
DEFAULT_CACHE_SIZE = 256 * 1024 * 1024
#: Metas buffered between the asyncio side and a trio watcher (a few hundred bytes each: a
#: large snapshot crosses in few hand-overs, each a wake-up of both threads).
STREAM_BUFFER = 1024
#: Lists of chunks (about 1 MiB each) buffered between a whole-object get and its reader.
GET_BUFFER = 8


class NatsUpload(Upload):
    """A streaming put over an :class:`UploadPipe` on the asyncio side.

    Writes are gathered on the trio side and handed over ``HAND_OFF`` bytes at a time, in
    one bridge crossing (FUSE delivers 64 KiB to 1 MiB writes, and a crossing costs two
    thread wake-ups) that the writer does not wait for: the next hand-off (or ``commit``)
    first waits for the one in flight. So a write returns as soon as its data is held here,
    while the asyncio side hashes and publishes the previous MiB; at most one hand-off is in
    flight and ``2 * HAND_OFF`` bytes are held on this side. ``commit`` hands over the rest
    and commits in one crossing; ``read`` hands over what is held and reads back on the
    asyncio side (:meth:`UploadPipe.read_back`). The max object size is checked on the trio side, so
    ``TooLarge`` is still raised by the ``write`` that exceeds it; other upload errors
    (those of a hand-off included) surface at a later ``write`` or at ``commit``.
    """

    def __init__(self, bridge: Bridge, pipe: UploadPipe) -> None:
        self._bridge = bridge
        self._pipe = pipe
        self._held: list[bytes] = []
        self._held_bytes = 0
        self._size = 0
        self._handed: Call[None] | None = None

    @property
    def size(self) -> int:
        return self._size

    @property
    def nuid(self) -> str:
        """The nuid (chunk subject id) this upload writes."""
        return self._pipe.nuid

    async def _run(self, fn, *args):  # type: ignore[no-untyped-def]
        try:
            return await self._bridge.run(fn, *args)
        except BridgeClosed:
            raise Unavailable("store is closed") from None

    def _take_held(self) -> list[bytes]:
        held, self._held, self._held_bytes = self._held, [], 0
        return held

    async def write(self, data: bytes) -> None:
        if not data:
            return
        limit = self._pipe.max_size
        if limit >= 0 and self._size + len(data) > limit:
            raise TooLarge(f"{self._pipe.bucket}/{self._pipe.name}: exceeds max object size {limit}")
        self._held.append(data if isinstance(data, bytes) else bytes(data))
        self._held_bytes += len(data)
        self._size += len(data)
        if self._held_bytes >= HAND_OFF:
            await self.flush()

    async def flush(self) -> None:
        """Hand the writes gathered so far to the upload pipeline without waiting for it
        (after the previous hand-off finished; its error is raised here)."""
        if self._held:
            await self._settle()
            try:
                self._handed = self._bridge.start_call(self._pipe.write_blocks, self._take_held())
            except BridgeClosed:
                raise Unavailable("store is closed") from None

    async def _settle(self) -> None:
        """Wait for the hand-off in flight, if any; raise its error."""
        handed = self._handed
        if handed is None:
            return
        try:
            await handed.result()
        except trio.Cancelled:
            raise  # still in flight: the next settle waits for it
        except BridgeClosed:
            self._handed = None
            raise Unavailable("store is closed") from None
        except BaseException:
            self._handed = None
            raise
        self._handed = None

    @property
    def resumes(self) -> int:
        """How many times the stream was resumed after the server went missing."""
        return self._pipe.resumes

    async def read(self, offset: int, length: int) -> bytes:
        """Hands over what is held, then reads back on the asyncio side (one crossing)."""
        if offset >= self._size or length <= 0:
            return b""
        await self.flush()
        await self._settle()
        return await self._run(self._pipe.read_back, offset, length)

    async def commit(self, meta: ObjectMeta | None = None) -> ObjectInfo:
        await self._settle()
        return await self._run(self._pipe.finish, self._take_held(), meta)

    async def abort(self) -> None:
        self._take_held()
        with trio.CancelScope(shield=True):
            handed, self._handed = self._handed, None
            if handed is not None:
                with suppress(Exception):  # moot: the upload is discarded
                    await handed.result()
            try:
                await self._bridge.run(self._pipe.abort)
            except BridgeClosed:
                return


class NatsStore(ObjectStore):
    """An :class:`ObjectStore` on a NATS server; build it with :meth:`connect`.

    Its parts: the ``bridge`` to the asyncio loop; the ``core`` running on that loop (bucket
    operations, the semantics, the meta consumers); the chunk ``reader``, whose serving API
    (``read_cached``, ``check_served``, ``counters``: callable from this thread) serves
    cached ranges and checks digests here while ``read`` and ``get_whole`` run on the loop;
    and the ``disk`` cache, closed with the store.
    """

    def __init__(self, bridge: Bridge, core: Core, reader: ChunkReader, disk: DiskCache | None) -> None:
        self._bridge = bridge
        self._core = core
        self._sem = core.semantics
        self._reader = reader
        self._disk = disk
        self._closed = False
        #: (bucket, chunk size) of recent puts: when a crossing found it writable, and the
        #: bucket's max object size then (see the module docstring).
        self._put_limits: dict[tuple[str, int], tuple[float, int]] = {}

    @classmethod
    async def connect(
        cls,
        options: ConnectOptions,
        *,
        cache_size: int = DEFAULT_CACHE_SIZE,
        disk_cache: DiskCache | None = None,
    ) -> NatsStore:
        """Connect to ``options.servers`` (which must not be empty); ``Unavailable`` if that fails.

        ``cache_size`` bounds the chunk cache in bytes; ``disk_cache`` adds a second level
        on disk (the store closes it).
        """
        if not options.servers:
            raise Unavailable("no NATS server given")
        allocator.tune()
        bridge = Bridge().start()
        try:
            core = await bridge.run(_open_core, options, cache_size, disk_cache)
        except BaseException:
            bridge.close()
            if disk_cache is not None:
                disk_cache.close()
            raise
        return cls(bridge, core, core.reader, disk_cache)

    # ----- introspection ----------------------------------------------------------------
    def counters(self) -> StoreCounters:
        return self._reader.counters()

    @property
    def stats(self) -> ReadStats:
        """Counters of the read path (index fast path vs scan, fetches, cache hits, read-ahead)."""
        return self._reader.stats

    @property
    def cache_bytes(self) -> int:
        """Bytes of chunk data in the cache now."""
        return self._reader.counters().cache_bytes

    @property
    def cache_limit(self) -> int:
        return self._reader.counters().cache_limit

    @property
    def disk_cache_bytes(self) -> int:
        """Bytes of chunk data in the disk cache (0 without one)."""
        return self._reader.counters().disk_cache_bytes

    @property
    def disk_cache_limit(self) -> int:
        return self._reader.counters().disk_cache_limit

    async def _run(self, fn, *args):  # type: ignore[no-untyped-def]
        if self._closed:
            raise Unavailable("store is closed")
        try:
            return await self._bridge.run(fn, *args)
        except BridgeClosed:
            raise Unavailable("store is closed") from None

    # ----- lifecycle -------------------------------------------------------------------
    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with trio.CancelScope(shield=True):
            with suppress(BridgeClosed):
                await self._bridge.run(self._core.close)
            await trio.to_thread.run_sync(self._bridge.close)
            if self._disk is not None:
                self._disk.close()

    # ----- buckets ---------------------------------------------------------------------
    async def bucket_names(self) -> list[str]:
        return await self._run(self._core.bucket_names)

    async def bucket_status(self, bucket: str) -> BucketStatus:
        check(bucket)
        return await self._run(self._core.bucket_status, bucket)

    async def create_bucket(self, config: BucketConfig) -> BucketStatus:
        check(config.bucket)
        self._forget_limits(config.bucket)
        return await self._run(self._core.create_bucket, config)

    async def delete_bucket(self, bucket: str) -> None:
        check(bucket)
        self._forget_limits(bucket)
        await self._run(self._core.delete_bucket, bucket)

    async def seal_bucket(self, bucket: str) -> BucketStatus:
        check(bucket)
        self._forget_limits(bucket)
        try:
            return await self._run(self._core.seal_bucket, bucket)
        finally:
            self._forget_limits(bucket)

    async def account_usage(self) -> AccountUsage:
        return await self._run(self._core.account_usage)

    # ----- objects: metadata -----------------------------------------------------------
    async def info(self, bucket: str, name: str, *, show_deleted: bool = False) -> ObjectInfo:
        check(bucket, name)
        return await self._run(functools.partial(self._sem.info, bucket, name, show_deleted=show_deleted))

    async def list_objects(self, bucket: str, *, show_deleted: bool = False) -> list[ObjectInfo]:
        check(bucket)
        return await self._run(functools.partial(self._sem.list_objects, bucket, show_deleted=show_deleted))

    async def update_meta(self, bucket: str, name: str, meta: ObjectMeta) -> ObjectInfo:
        check(bucket, name)
        if meta.name != name:
            raise BadName(f"update_meta cannot rename {name!r} to {meta.name!r}")
        return await self._run(self._sem.update_meta, bucket, name, meta)

    async def rename(self, bucket: str, old: str, new: str, *, replace: bool = False) -> ObjectInfo:
        check(bucket, old)
        check(bucket, new)
        rename = functools.partial(self._sem.rename, bucket, old, new, replace_existing=replace)
        return await self._run(rename)

    async def delete(self, bucket: str, name: str) -> ObjectInfo:
        check(bucket, name)
        return await self._run(self._sem.delete, bucket, name)

    async def add_link(
        self,
        bucket: str,
        name: str,
        target_bucket: str,
        target_name: str,
        *,
        metadata: dict[str, str] | None = None,
    ) -> ObjectInfo:
        check(bucket, name)
        check(target_bucket, target_name)
        return await self._run(
            functools.partial(self._sem.add_link, bucket, name, target_bucket, target_name, metadata=metadata)
        )

    async def add_bucket_link(
        self, bucket: str, name: str, target_bucket: str, *, metadata: dict[str, str] | None = None
    ) -> ObjectInfo:
        check(bucket, name)
        check(target_bucket)
        return await self._run(
            functools.partial(self._sem.add_bucket_link, bucket, name, target_bucket, metadata=metadata)
        )

    async def resolve(self, bucket: str, name: str) -> ObjectInfo:
        check(bucket, name)
        return await self._run(self._sem.resolve, bucket, name)

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
        check(bucket, meta.name)
        size = DEFAULT_CHUNK_SIZE if chunk_size is None else chunk_size
        if size <= 0:
            raise BadName(f"invalid chunk size {size}")
        if self._closed:
            raise Unavailable("store is closed")
        now = trio.current_time()
        known = self._put_limits.get((bucket, size))
        if known is not None and now - known[0] < WRITABLE_TTL:
            pipe = self._core.new_pipe(bucket, meta, size, known[1], replacing, server_time)
        else:
            pipe = await self._run(self._core.begin_put, bucket, meta, size, replacing, server_time)
            self._put_limits[(bucket, size)] = (now, pipe.max_size)
        return NatsUpload(self._bridge, pipe)

    def _forget_limits(self, bucket: str) -> None:
        """``bucket`` was created, sealed or deleted here: its next put reads its status."""
        for key in [k for k in self._put_limits if k[0] == bucket]:
            del self._put_limits[key]

    async def read(
        self, info: ObjectInfo, offset: int, length: int, *, readahead: int = 0
    ) -> bytes | memoryview:
        if offset < 0 or length < 0:
            raise ValueError("negative offset or length")
        if min(offset + length, info.size) <= offset:
            return b""
        if self._closed:
            raise Unavailable("store is closed")
        # served from memory on this thread when it can be, else one crossing to fetch;
        # the digest check hashes here either way, off the loop
        data = self._reader.read_cached(info, offset, length, readahead)
        if data is None:
            data = await self._run(self._reader.read, info, offset, length, readahead)
        else:
            await trio.lowlevel.checkpoint()
        self._reader.check_served(info, offset, data)
        return data

    def get(self, info: ObjectInfo) -> AsyncIterator[bytes]:
        return self._get(info)

    async def _get(self, info: ObjectInfo) -> AsyncIterator[bytes]:
        if info.size == 0:
            return
        if self._closed:
            raise Unavailable("store is closed")
        try:
            async with self._bridge.stream(get_whole, self._reader, info, buffer=GET_BUFFER) as groups:
                async for group in groups:
                    for block in group:
                        yield block
        except BridgeClosed:
            raise Unavailable("store is closed") from None

    def watch(
        self, bucket: str, *, initial: bool = True
    ) -> AbstractAsyncContextManager[AsyncIterator[ObjectInfo | None]]:
        check(bucket)
        return self._watch(bucket, initial)

    @asynccontextmanager
    async def _watch(self, bucket: str, initial: bool) -> AsyncIterator[AsyncIterator[ObjectInfo | None]]:
        await self._run(self._core.metas.check_bucket, bucket)
        try:
            async with self._bridge.stream(
                _watch_events, self._core, bucket, initial, buffer=STREAM_BUFFER
            ) as events:
                yield events
        except BridgeClosed:
            raise Unavailable("store is closed") from None

    # ----- maintenance -----------------------------------------------------------------
    async def sweep_orphans(self, bucket: str, older_than: float) -> int:
        check(bucket)
        if older_than < 0:
            raise ValueError(f"negative grace {older_than}")
        return await self._run(sweep_orphans, self._core.conn, bucket, older_than)


def _watch_events(core: Core, bucket: str, initial: bool) -> AsyncIterator[ObjectInfo | None]:
    return core.consumers.metas(bucket, initial=initial, live=True)


async def _open_core(options: ConnectOptions, cache_size: int, disk: DiskCache | None) -> Core:
    return Core(await Conn.open(options), cache_size, disk, BulkLane(options))
