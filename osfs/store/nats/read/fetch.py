"""The read path of the NATS store: the chunk cache, fetches, read-ahead (asyncio side).

**Index.** Where each chunk of a version is (stream sequence, byte span) comes from
:mod:`osfs.store.nats.read.index`; indexes are immutable for a ``(bucket, nuid)`` (every put
gets a fresh nuid), so they are kept in an LRU.

``ReadStats`` counts which index path was taken, chunk fetches, batch requests, cache and
disk-cache hits, read-ahead and digest checks.

**Chunks** are fetched by batch Direct Get ``{"seq": N, "next_by_subj": S, "batch": K}``:
a run of consecutive chunks that are neither cached nor in flight goes in requests of about
``BATCH_BYTES`` (1 MiB: one request for eight 128 KiB chunks), a lone chunk by plain Direct
Get ``{"seq": N}`` (buckets without ``allow_direct``: chunk by chunk with
``STREAM.MSG.GET``). Every reply must be on the chunk subject at the expected sequence; a
404 or another subject means the version is gone: the meta is re-read, giving
``ObjectReplaced`` when the nuid changed and ``Corrupt`` when not. ``get`` (in
:mod:`osfs.store.nats.read.get`) streams the whole version with several such requests in
flight, bypassing the cache, and yields one list of chunks per request (one wake-up of the
consumer per MiB, not per chunk).

**Cache.** A :class:`ChunkCache` (an LRU bounded in bytes, ``getsizeof=len``) keyed by
``(bucket, nuid, chunk_no)``, so a stale version is never served. The chunks of one batch
are read-only views of one :class:`~osfs.store.nats.read.cache.Landing` (the parser's handler
copies them there, back to back), so a read within one batch is answered with a view of
it, no copy; the LRU evicts the chunks of a batch together, so their buffer is freed
when it is counted as freed. Every chunk being fetched has a
future in ``_inflight`` from the moment its request is decided, so a read and the
read-ahead (or two readers) never fetch a chunk twice. ``read(..., readahead=N)`` starts
batch fetches of the chunks in the next ``N`` bytes, at most ``READAHEAD_BYTES`` in flight
for the whole store. The cache and the index LRU are guarded by one lock so the trio
thread can serve a fully cached range itself (:meth:`ChunkReader.read_cached`): sequential
readers kept ahead of by read-ahead then do not wait on the loop at all, and they hand
read-ahead to the loop (a wake-up of its thread) once per half window, not once per read.
A sequential reader (one that passes a read-ahead hint) drops the chunks it left ``DROP_BEHIND`` bytes
behind: the kernel's page cache has them, and a streaming copy should not push out what
random readers use, nor grow the process by the size of the cache.

A version's cached chunks and index are dropped as soon as the store sees a newer meta of
its name (its own writes, ``info``, listings, watches: :meth:`ChunkReader.observe`); until
then a replaced version's cached bytes may still be served (they are always that version's
bytes: keys hold the nuid). A range that needs a fetch notices a version is gone at once
(``ObjectReplaced``).

**Disk cache.** With a :class:`~osfs.store.disk_cache.DiskCache` (``--disk-cache``, run
through :class:`~osfs.store.nats.read.disk.DiskTier`), a chunk fetched from the server is also
written there in the background, and a run of chunks to fetch is first looked for there,
in order; what is found goes through the digest check and into the memory cache like a
fetched chunk. Replaced or damaged versions are deleted from it as from memory.

**Digest.** ``read`` and ``read_cached`` return bytes unchecked; whoever serves them passes
them to :meth:`ChunkReader.check_served` (``NatsStore.read`` does, on the trio thread), so
a version read from start to end in order is hashed on the way by a
:class:`~osfs.store.nats.read.verify.DigestVerifier` (random readers are not checked). A
version whose digest does not match is marked bad, its cached chunks are dropped, one
ERROR line is logged, and every read of it raises ``Corrupt`` from then on: the read whose
check completed the hash, any read still assembling its range, and cached reads.

Nearly 600 lines: the cache, the in-flight table and the read-ahead budget are one
state under one lock, shared by every method here.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import cachetools

from ...disk_cache import ChunkKey, DiskCache
from ...errors import Corrupt, NotFound, ObjectReplaced, StoreError, Unavailable
from ...types import ObjectInfo, StoreCounters
from .. import wire
from ..conn import Conn, RawMsg
from .cache import Chunk, ChunkCache, Landing, assemble
from .disk import DiskTier
from .index import FETCH_WINDOW, ChunkIndex, Gone, build_index, checked_chunk, per_batch
from .verify import DigestVerifier, Verdict, failed

log = logging.getLogger(__name__)

#: Bytes of read-ahead in flight for the whole store.
READAHEAD_BYTES = 32 * 1024 * 1024
#: A sequential reader's chunks this far behind its position are evicted from the cache.
DROP_BEHIND = 4 * 1024 * 1024
#: Indexes kept (each is small: a few numbers, or two lists for scanned objects).
INDEX_CACHE_ENTRIES = 4096


@dataclass
class ReadStats:
    """Counters of the read path (for tests and diagnostics)."""

    index_fast: int = 0
    index_scan: int = 0
    chunk_fetches: int = 0
    cache_hits: int = 0
    readahead_fetches: int = 0
    batch_gets: int = 0
    #: Chunks served from the disk cache.
    disk_hits: int = 0
    #: Read-ahead asked of the loop by ``read_cached`` (each wakes the loop's thread).
    readahead_handoffs: int = 0
    #: Versions whose digest was checked by ranged reads and matched / did not match.
    verified: int = 0
    digest_failures: int = 0


class ChunkReader:
    """Chunk indexes, cache and fetches for a :class:`Conn`.

    Its API, by thread: on the asyncio loop, ``read``, ``index``, ``chunk``, ``observe``,
    ``gone``, ``close`` (and the whole-object get of :mod:`.get` over them); on the thread
    that serves reads (the store's trio thread), ``read_cached`` (a range from memory, or
    None), ``check_served`` (the digest check of the bytes about to be served: the reader
    hands the verifier the served bytes and its cache, the verifier never calls back) and
    ``counters``; ``check_good`` and ``mark_bad`` on either. State shared between the two
    threads is guarded by ``lock``.
    """

    def __init__(
        self,
        conn: Conn,
        cache_size: int,
        reread_meta: Callable[[str, str], Awaitable[ObjectInfo | None]],
        disk: DiskCache | None = None,
    ) -> None:
        self.conn = conn
        self.disk = disk
        self.stats = ReadStats()
        self.loop = asyncio.get_running_loop()
        self._disk = DiskTier(disk, self.loop)
        #: Guards ``cache``, ``_indexes`` and ``stats``: the trio thread reads them too.
        self.lock = threading.Lock()
        self.cache: ChunkCache = ChunkCache(maxsize=max(1, cache_size), getsizeof=len)
        self._indexes: cachetools.LRUCache = cachetools.LRUCache(maxsize=INDEX_CACHE_ENTRIES)
        self._inflight: dict[ChunkKey, asyncio.Future[Chunk]] = {}
        self._tasks: set[asyncio.Task] = set()
        self._ahead_bytes = 0  # read-ahead in flight
        #: (bucket, nuid) -> the byte offset read-ahead was last asked up to (under ``lock``).
        self._asked: cachetools.LRUCache = cachetools.LRUCache(maxsize=INDEX_CACHE_ENTRIES)
        self._names: dict[tuple[str, str], str] = {}  # (bucket, name) -> nuid of an index
        self._reread_meta = reread_meta
        self.verifier = DigestVerifier(self.lock)

    # ----- cache (shared with the trio thread, always under the lock) ----------------------
    def _cache_put(self, key: ChunkKey, data: Chunk) -> None:
        if len(data) <= self.cache.maxsize:
            with self.lock:
                self.cache[key] = data

    def _cache_get(self, key: ChunkKey) -> Chunk | None:
        with self.lock:
            data = self.cache.get(key)
            if data is not None:
                self.stats.cache_hits += 1
            return data

    def _cached(self, key: ChunkKey) -> bool:
        with self.lock:
            return key in self.cache

    def cached_bytes(self) -> int:
        with self.lock:
            return int(self.cache.currsize)

    def counters(self) -> StoreCounters:
        """The read path's counters, the cache's and the disk tier's sizes; any thread."""
        disk = self.disk
        with self.lock:
            s = self.stats
            return StoreCounters(
                cache_hits=s.cache_hits,
                chunk_fetches=s.chunk_fetches,
                cache_bytes=int(self.cache.currsize),
                cache_limit=int(self.cache.maxsize),
                verified=s.verified,
                digest_failures=s.digest_failures,
                disk_hits=s.disk_hits,
                disk_cache_bytes=disk.bytes if disk is not None else 0,
                disk_cache_limit=disk.limit if disk is not None else 0,
            )

    def read_cached(self, info: ObjectInfo, offset: int, length: int, readahead: int) -> Chunk | None:
        """``read`` served from memory without waiting on the loop, or None (cross then).

        Callable from any thread. Works when the version's index and every chunk of the
        range are cached; read-ahead past the range is then scheduled on the loop without
        waiting for it, so a sequential reader kept ahead of by read-ahead never crosses
        the bridge at all.
        """
        end = min(offset + length, info.size)
        with self.lock:
            idx = self._indexes.get((info.bucket, info.nuid))
            if idx is None or self.verifier.is_bad((info.bucket, info.nuid)):
                return None
            first, last = idx.chunk_at(offset), idx.chunk_at(end - 1)
            parts = []
            for i in range(first, last + 1):
                data = self.cache.get((info.bucket, info.nuid, i))
                if data is None:
                    return None
                parts.append(data)
            self.stats.cache_hits += len(parts)
            ahead = readahead > 0 and last + 1 < idx.chunks
            if readahead > 0:
                self._drop_behind(info, idx, offset)
            if ahead:  # nothing to do when the window's last chunk is here already
                until = min(end + readahead, info.size)
                tail = idx.chunk_at(until - 1)
                ahead = (info.bucket, info.nuid, tail) not in self.cache and self._ask_ahead(info, end, until)
        if ahead:
            with contextlib.suppress(RuntimeError):  # the loop is closed: no read-ahead
                self.loop.call_soon_threadsafe(self._schedule_readahead, info, idx, last + 1, end + readahead)
        return assemble(idx, parts, first, last, offset, end)

    def _ask_ahead(self, info: ObjectInfo, end: int, until: int) -> bool:
        """Whether a cached read ending at ``end`` asks the loop for read-ahead up to
        ``until``; records that it did (caller holds the lock).

        Not while what was asked before still reaches more than half the window past
        ``end``: a sequential reader then wakes the loop once per half window, handing it
        runs of half a window to fetch, rather than once per read for one batch each.
        A reader that went back before what it asked asks again at once.
        """
        key = (info.bucket, info.nuid)
        asked = self._asked.get(key, 0)
        if end + (until - end) // 2 < asked <= until:
            return False
        self._asked[key] = until
        self.stats.readahead_handoffs += 1
        return True

    # ----- index -----------------------------------------------------------------------
    async def index(self, info: ObjectInfo) -> ChunkIndex:
        """The chunk index of ``info``'s version (cached); errors as for ``read``."""
        key = (info.bucket, info.nuid)
        with self.lock:
            idx = self._indexes.get(key)
        if idx is None:
            try:
                idx = await self._build_index(info)
            except Gone:
                raise await self.gone(info) from None
            with self.lock:
                self._indexes[key] = idx
                self._names[(info.bucket, info.name)] = info.nuid
        return idx

    def observe(self, info: ObjectInfo) -> None:
        """Note the latest meta of a name: a cached version it replaced or deleted is dropped.

        Called for every meta the store reads or writes, so reads of a replaced version stop
        being served from memory as soon as the store learns of the replacement (and then
        raise ``ObjectReplaced``). Dropping a version that is still current costs only
        refetches.
        """
        key = (info.bucket, info.name)
        with self.lock:
            old = self._names.get(key)
            if old is None or (old == info.nuid and not info.deleted):
                return
            del self._names[key]
            self.verifier.forget(info.bucket, old)
            self._disk.discard(info.bucket, old)
            idx = self._indexes.pop((info.bucket, old), None)
            if idx is not None:
                for i in range(idx.chunks):
                    self.cache.pop((info.bucket, old, i), None)

    async def _build_index(self, info: ObjectInfo) -> ChunkIndex:
        built = await build_index(self.conn, info)
        if built.first is None or built.last is None:
            self.stats.index_scan += 1
            return built.index
        self.stats.index_fast += 1
        last, first = (info.bucket, info.nuid, info.chunks - 1), (info.bucket, info.nuid, 0)
        self.check_good(info)
        self._cache_put(last, built.last)
        self._cache_put(first, built.first)
        self._disk.put(last, built.last)
        if first != last:
            self._disk.put(first, built.first)
        return built.index

    # ----- fetching --------------------------------------------------------------------
    async def gone(self, info: ObjectInfo) -> StoreError:
        """The error for a version whose chunks are missing: replaced, deleted or corrupt."""
        try:
            current = await self._reread_meta(info.bucket, info.name)
        except NotFound:
            current = None
        if current is None or current.deleted or current.nuid != info.nuid:
            return ObjectReplaced(f"{info.bucket}/{info.name}: version {info.nuid} was replaced", current)
        return Corrupt(f"{info.bucket}/{info.name}: chunks of version {info.nuid} are missing")

    async def _fetch(self, info: ObjectInfo, idx: ChunkIndex, i: int, cache: bool) -> Chunk:
        if cache and self._disk.enabled:
            data = await self._disk_chunk(info, idx, i)
            if data is not None:
                return data
        stream = wire.stream_name(info.bucket)
        subject = wire.chunk_subject(info.bucket, info.nuid)
        seq = idx.seq(i)
        self.stats.chunk_fetches += 1
        msg: RawMsg | None = await self.conn.direct_get(stream, {"seq": seq})
        if msg is None or msg.subject != subject:
            # A lagging follower may not have it yet: ask the leader before giving up.
            msg = await self.conn.msg_get(stream, {"seq": seq})
            if msg is None or msg.subject != subject:
                raise Gone()
        if len(msg.data) != idx.end(i) - idx.start(i):
            raise Corrupt(
                f"{info.bucket}/{info.name}: chunk {i} has {len(msg.data)} bytes, expected "
                f"{idx.end(i) - idx.start(i)}"
            )
        if cache:
            self.check_good(info)
            self._cache_put((info.bucket, info.nuid, i), msg.data)
            self._disk.put((info.bucket, info.nuid, i), msg.data)
        return msg.data

    async def read(self, info: ObjectInfo, offset: int, length: int, readahead: int) -> Chunk:
        """Bytes ``[offset, offset+length)`` of ``info``'s version (short at EOF)."""
        if offset < 0 or length < 0:
            raise ValueError("negative offset or length")
        end = min(offset + length, info.size)
        if offset >= end:
            return b""
        self.check_good(info)
        idx = await self.index(info)
        first, last = idx.chunk_at(offset), idx.chunk_at(end - 1)
        span = max(FETCH_WINDOW, 4 * per_batch(info, idx))
        started = min(last + 1, first + span)
        self._want(info, idx, range(first, started))
        if readahead > 0 and last + 1 < idx.chunks:
            self._schedule_readahead(info, idx, last + 1, end + readahead)
        parts: list[Chunk] = []
        try:
            for i in range(first, last + 1):
                if started <= last and started - i < span // 2:
                    hi = min(last + 1, i + span)
                    self._want(info, idx, range(started, hi))
                    started = hi
                parts.append(await self._chunk_data(info, idx, i))
        except Gone:
            raise await self.gone(info) from None
        self.check_good(info)  # the check may have failed while this read waited
        if readahead > 0:
            with self.lock:
                self._drop_behind(info, idx, offset)
        return assemble(idx, parts, first, last, offset, end)

    def chunk(self, info: ObjectInfo, idx: ChunkIndex, i: int, *, cache: bool = True) -> Awaitable[Chunk]:
        """The bytes of chunk ``i``: from the cache, a fetch in flight, or a new fetch
        (kept in the cache and shared with other readers when ``cache``).

        Raises ``Gone`` when the chunk is missing.
        """
        key = (info.bucket, info.nuid, i)
        data = self._cache_get(key)
        if data is not None:
            fut: asyncio.Future[Chunk] = asyncio.get_running_loop().create_future()
            fut.set_result(data)
            return fut
        pending = self._inflight.get(key)
        if pending is not None:
            return asyncio.shield(pending)
        if not cache:  # a whole-object get: nobody shares these fetches
            return asyncio.ensure_future(self._fetch(info, idx, i, cache))
        task = asyncio.ensure_future(self._fetch(info, idx, i, cache))
        self._inflight[key] = task
        task.add_done_callback(lambda _t: self._inflight.pop(key, None))
        return asyncio.shield(task)

    async def _chunk_data(self, info: ObjectInfo, idx: ChunkIndex, i: int) -> Chunk:
        """Chunk ``i`` from the cache, its fetch in flight, or a new fetch."""
        key = (info.bucket, info.nuid, i)
        data = self._cache_get(key)
        if data is not None:
            return data
        pending = self._inflight.get(key)
        if pending is None:
            self._want(info, idx, range(i, i + 1))
            pending = self._inflight[key]
        return await asyncio.shield(pending)

    def _want(self, info: ObjectInfo, idx: ChunkIndex, numbers: range, *, ahead: bool = False) -> int:
        """Start fetching the chunks of ``numbers`` that are neither cached nor in flight.

        Runs of consecutive chunks go in batch Direct Gets of about ``BATCH_BYTES``; each
        chunk gets a future in ``_inflight`` at once (so later readers share it) that the
        batch completes. Read-ahead (``ahead``) stops when ``READAHEAD_BYTES`` are in flight.
        Returns the number of chunks started.
        """
        per = per_batch(info, idx)
        run: list[int] = []
        started = 0
        for i in numbers:
            key = (info.bucket, info.nuid, i)
            missing = key not in self._inflight and not self._cached(key)
            if missing:
                run.append(i)
            if run and (not missing or len(run) >= per):
                if ahead and self._ahead_bytes >= READAHEAD_BYTES:
                    return started
                started += self._start_run(info, idx, run, ahead)
                run = []
        if run and not (ahead and self._ahead_bytes >= READAHEAD_BYTES):
            started += self._start_run(info, idx, run, ahead)
        return started

    def _start_run(self, info: ObjectInfo, idx: ChunkIndex, run: list[int], ahead: bool) -> int:
        loop = asyncio.get_running_loop()
        futs: list[asyncio.Future[Chunk]] = []
        for i in run:
            key = (info.bucket, info.nuid, i)
            fut: asyncio.Future[Chunk] = loop.create_future()
            fut.add_done_callback(functools.partial(self._landed, key))
            self._inflight[key] = fut
            futs.append(fut)
        nbytes = idx.end(run[-1]) - idx.start(run[0])
        if ahead:
            self._ahead_bytes += nbytes
            self.stats.readahead_fetches += len(run)
        task = asyncio.ensure_future(self._fetch_run(info, idx, run[0], futs))
        self._tasks.add(task)
        task.add_done_callback(functools.partial(self._run_done, nbytes if ahead else 0))
        return len(run)

    def _landed(self, key: ChunkKey, fut: asyncio.Future[Chunk]) -> None:
        if self._inflight.get(key) is fut:
            del self._inflight[key]
        if not fut.cancelled():
            fut.exception()  # read-ahead failures are nobody's concern until read

    def _run_done(self, ahead_bytes: int, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        self._ahead_bytes -= ahead_bytes

    async def _fetch_run(
        self, info: ObjectInfo, idx: ChunkIndex, first: int, futs: list[asyncio.Future[Chunk]]
    ) -> None:
        """Fetch chunks ``first, first+1, ...`` into the cache and into ``futs``."""
        stream = wire.stream_name(info.bucket)
        subject = wire.chunk_subject(info.bucket, info.nuid)
        end = first + len(futs)
        i = first
        try:
            while self._disk.enabled and i < end:
                data = await self._disk_chunk(info, idx, i)
                if data is None:
                    break
                futs[i - first].set_result(data)
                i += 1
            if end - i == 1 or stream in self.conn.no_direct:
                while i < end:
                    futs[i - first].set_result(await self._fetch(info, idx, i, True))
                    i += 1
                return
            while i < end:
                self.stats.chunk_fetches += end - i
                self.stats.batch_gets += 1
                landing = Landing(idx.end(end - 1) - idx.start(i), idx.start(i), i, end - i)
                reply = await self.conn.batch_get(stream, subject, idx.seq(i), end - i, into=landing)
                done, _ = await asyncio.wait([reply], timeout=self.conn.timeout)
                if not done:
                    reply.cancel()
                    raise Unavailable(f"{info.bucket}/{info.name}: no answer to a batch get")
                msgs = reply.result()
                if not msgs:  # maybe a lagging follower: one by one, asking the leader
                    self.stats.chunk_fetches -= end - i
                    futs[i - first].set_result(await self._fetch(info, idx, i, True))
                    i += 1
                    continue
                self.stats.chunk_fetches -= end - i - min(len(msgs), end - i)
                self.check_good(info)  # its chunks must not be cached once it failed
                for msg in msgs[: end - i]:
                    data = checked_chunk(info, idx, subject, i, msg)
                    self._cache_put((info.bucket, info.nuid, i), data)
                    self._disk.put((info.bucket, info.nuid, i), data)
                    futs[i - first].set_result(data)
                    i += 1
        except BaseException as exc:
            for fut in futs[i - first :]:
                if fut.done():
                    continue
                if isinstance(exc, Exception):
                    fut.set_exception(exc)
                else:
                    fut.cancel()
            if not isinstance(exc, Exception):
                raise

    # ----- digest check (see verify.py) -------------------------------------------------
    def check_served(self, info: ObjectInfo, offset: int, data: Chunk) -> None:
        """Pass bytes ``[offset, offset + len(data))`` of ``info``'s version, about to be
        served, to the digest check; ``Corrupt`` if this completed the check and it failed:
        they must then not be served (a version that failed before is refused by ``read``
        and ``read_cached`` already). Callable from any thread (the trio thread, for the
        mount: the hashing stays off the loop)."""
        if not data:
            return
        with self.lock:
            idx = self._indexes.get((info.bucket, info.nuid))
        verdict = None if idx is None else self.verifier.served(info, idx, offset, data, self.cache)
        if verdict is Verdict.MATCH:
            with self.lock:
                self.stats.verified += 1
        elif verdict is Verdict.MISMATCH:
            self.mark_bad(info)
            raise failed(info)

    def check_good(self, info: ObjectInfo) -> None:
        with self.lock:
            if self.verifier.is_bad((info.bucket, info.nuid)):
                raise failed(info)

    def mark_bad(self, info: ObjectInfo) -> None:
        """Fail every later read of ``info``'s version and drop its cached chunks; log once.
        Callable from any thread."""
        with self.lock:
            if not self.verifier.mark_bad((info.bucket, info.nuid)):
                return
            self.stats.digest_failures += 1
            for i in range(info.chunks):
                self.cache.pop((info.bucket, info.nuid, i), None)
        with contextlib.suppress(RuntimeError):  # the loop is closed: nothing to discard
            self.loop.call_soon_threadsafe(self._disk.discard, info.bucket, info.nuid)
        log.error("%s/%s: digest mismatch of version %s: its reads fail", info.bucket, info.name, info.nuid)

    # ----- disk cache (see disk.py) ------------------------------------------------------
    async def _disk_chunk(self, info: ObjectInfo, idx: ChunkIndex, i: int) -> bytes | None:
        """Chunk ``i`` from the disk cache (checked and put in the memory cache), or None."""
        key = (info.bucket, info.nuid, i)
        data = await self._disk.get(key, idx.end(i) - idx.start(i))
        if data is None:
            return None
        self.stats.disk_hits += 1
        self.check_good(info)
        self._cache_put(key, data)
        return data

    def _schedule_readahead(self, info: ObjectInfo, idx: ChunkIndex, first: int, until: int) -> None:
        """Start fetching the chunks from ``first`` to offset ``until``. When the store's
        read-ahead budget cut that short, the next cached read asks again (``_ask_ahead``
        forgets what was asked); else it is recorded as asked."""
        last = first
        while last < idx.chunks and idx.start(last) < until:
            last += 1
        if last > first:
            self._want(info, idx, range(first, last), ahead=True)
        with self.lock:
            if self._ahead_bytes >= READAHEAD_BYTES:
                self._asked.pop((info.bucket, info.nuid), None)
            else:
                self._asked[(info.bucket, info.nuid)] = until

    def _drop_behind(self, info: ObjectInfo, idx: ChunkIndex, offset: int) -> None:
        """Evict the chunks a sequential reader left more than ``DROP_BEHIND`` behind.

        Its data is in the kernel's page cache by now; keeping it here too would only
        push out chunks that random readers need (and grow the process). Caller holds
        the lock.
        """
        if offset <= DROP_BEHIND:
            return
        hi = idx.chunk_at(offset - DROP_BEHIND)
        lo = max(0, hi - 2 * per_batch(info, idx) - 2)
        for j in range(lo, hi):
            self.cache.pop((info.bucket, info.nuid, j), None)

    async def close(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._disk.close()
