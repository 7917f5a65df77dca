"""The asyncio side of the NATS store: buckets, and the object semantics run on the loop.

:class:`Core` holds the connection, the chunk reader, the meta consumers and the
:class:`~osfs.store.semantics.Semantics` over :class:`~osfs.store.nats.meta.NatsMetaStream`;
:class:`~osfs.store.nats.store.NatsStore` crosses the bridge once per call into one of
these coroutines. Bucket operations (names, status, create, delete, seal, account usage)
are JetStream API requests here.

Bucket status ``size`` counts the meta subjects whose last message is not a delete
marker when the bucket has at most ``COUNT_LIMIT`` names (one STREAM.INFO with
``subjects_filter`` gives the per-subject counts, but not whether each is a marker, so the
number of delete markers is subtracted by a list); beyond that it is -1.
"""

from __future__ import annotations

import asyncio
import json

from ..disk_cache import DiskCache
from ..errors import BadName, Conflict, StoreError
from ..semantics import Semantics
from ..types import AccountUsage, BucketConfig, BucketStatus, ObjectInfo, ObjectMeta, Replacing
from . import wire
from .bulk import BulkLane
from .conn import Conn
from .consumers import MetaConsumers
from .meta import NatsMetaStream
from .read.fetch import ChunkReader
from .upload import UploadPipe

#: Buckets with more names than this report ``size`` -1 in their status.
COUNT_LIMIT = 10_000


class Core:
    """The store's parts on the asyncio loop, and its bucket operations and puts as
    coroutines; see the module docstring. ``semantics`` runs the meta operations,
    ``consumers`` the watches, ``reader`` the reads."""

    def __init__(
        self, conn: Conn, cache_size: int, disk: DiskCache | None = None, bulk: BulkLane | None = None
    ) -> None:
        self.conn = conn
        self.reader = ChunkReader(conn, cache_size, self._last_meta, disk)
        self.consumers = MetaConsumers(conn, self.reader.observe, bulk)
        self.metas = NatsMetaStream(conn, self.consumers, self.reader.observe)
        self.semantics = Semantics(self.metas)

    async def _last_meta(self, bucket: str, name: str) -> ObjectInfo | None:
        return await self.metas.last_meta(bucket, name)

    async def close(self) -> None:
        await self.consumers.close()
        await self.reader.close()
        await self.conn.close()

    async def _stream_info(self, bucket: str, body: dict | None = None) -> dict:
        return await self.conn.api("STREAM.INFO." + wire.stream_name(bucket), body)

    # ----- buckets ---------------------------------------------------------------------
    async def bucket_names(self) -> list[str]:
        names: set[str] = set()
        offset = 0
        while True:
            reply = await self.conn.api("STREAM.NAMES", {"offset": offset})
            streams = reply.get("streams") or []
            for s in streams:
                b = wire.bucket_of_stream(s)
                if b is not None:
                    names.add(b)
            offset += len(streams)
            if not streams or offset >= int(reply.get("total", 0)):
                break
        return sorted(names)

    async def bucket_status(self, bucket: str) -> BucketStatus:
        si = await self._stream_info(bucket)
        return wire.bucket_status(si, objects=await self._count_live(bucket, si))

    async def _count_live(self, bucket: str, si: dict) -> int:
        state = si.get("state") or {}
        if int(state.get("messages", 0)) == 0:
            return 0
        try:
            reply = await self._stream_info(bucket, {"subjects_filter": wire.meta_wildcard(bucket)})
        except StoreError:
            return -1
        subjects = (reply.get("state") or {}).get("subjects") or {}
        if len(subjects) > COUNT_LIMIT:
            return -1
        if not subjects:
            return 0
        infos = await self.consumers.snapshot(bucket)
        return sum(1 for i in infos if not i.deleted)

    async def create_bucket(self, config: BucketConfig) -> BucketStatus:
        try:
            cfg = wire.stream_config(config)
        except ValueError as exc:
            raise BadName(str(exc)) from exc
        self.metas.forget_status(config.bucket)
        try:
            si = await self.conn.api("STREAM.CREATE." + cfg["name"], cfg)
        except Conflict:
            raise Conflict(f"bucket {config.bucket} exists with a different config") from None
        return wire.bucket_status(si, objects=0 if not (si.get("state") or {}).get("messages") else -1)

    async def delete_bucket(self, bucket: str) -> None:
        self.metas.forget_status(bucket)
        await self.conn.api("STREAM.DELETE." + wire.stream_name(bucket))
        self.conn.no_direct.discard(wire.stream_name(bucket))

    async def seal_bucket(self, bucket: str) -> BucketStatus:
        si = await self._stream_info(bucket)
        cfg = dict(si["config"])
        if not cfg.get("sealed"):
            cfg["sealed"] = True
            try:
                si = await self.conn.api("STREAM.UPDATE." + cfg["name"], cfg)
            finally:
                self.metas.forget_status(bucket)
        return wire.bucket_status(si, objects=await self._count_live(bucket, si))

    async def account_usage(self) -> AccountUsage:
        info = await self.conn.api("INFO")
        limits = info.get("limits") or {}
        max_storage = int(limits.get("max_storage", -1))
        max_memory = int(limits.get("max_memory", -1))
        if max_storage < 0 or max_memory < 0:
            server = await self._server_limits()
            if max_storage < 0:
                max_storage = server.get("max_storage", -1)
            if max_memory < 0:
                max_memory = server.get("max_memory", -1)
        return AccountUsage(
            storage_used=int(info.get("storage", 0)),
            memory_used=int(info.get("memory", 0)),
            max_storage=max_storage,
            max_memory=max_memory,
            streams=int(info.get("streams", 0)),
            max_streams=int(limits.get("max_streams", -1)),
        )

    async def _server_limits(self) -> dict[str, int]:
        """The server's JetStream ``max_storage``/``max_memory`` ($SYS.REQ.SERVER.PING.JSZ).

        Needs system-account rights; without them (the usual case) this is ``{}``.
        """
        try:
            msg = await asyncio.wait_for(
                self.conn.nc.request("$SYS.REQ.SERVER.PING.JSZ", b"", timeout=0.5), 1.0
            )
            data = (json.loads(msg.data).get("data") or {}).get("config") or {}
            return {k: int(data[k]) for k in ("max_storage", "max_memory") if k in data}
        except Exception:
            return {}

    # ----- data ------------------------------------------------------------------------
    async def begin_put(
        self,
        bucket: str,
        meta: ObjectMeta,
        chunk_size: int,
        replacing: Replacing | None = None,
        server_time: bool = True,
    ) -> UploadPipe:
        limit = self.conn.nc.max_payload
        if limit and chunk_size > limit:
            raise BadName(f"chunk size {chunk_size} exceeds the server's max_payload {limit}")
        status = await self.metas.writable(bucket)
        return self.new_pipe(bucket, meta, chunk_size, status.max_object_size, replacing, server_time)

    def new_pipe(
        self,
        bucket: str,
        meta: ObjectMeta,
        chunk_size: int,
        max_object_size: int,
        replacing: Replacing | None = None,
        server_time: bool = True,
    ) -> UploadPipe:
        """A put into ``bucket``, known writable with ``max_object_size`` and to accept
        ``chunk_size``; no I/O, so callable from the trio thread too (the pipe is then used
        only on the loop)."""
        return UploadPipe(
            self.conn,
            self.semantics,
            self.metas,
            bucket,
            meta,
            chunk_size,
            max_object_size,
            replacing,
            server_time,
        )
