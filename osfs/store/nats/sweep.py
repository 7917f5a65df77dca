"""Orphaned chunks: finding and purging chunk subjects no meta names (asyncio side).

An upload streams its chunks to ``$O.<bucket>.C.<nuid>`` before it publishes the meta that
names ``nuid``; an upload that never finishes (its process killed, its connection lost for
good) leaves chunks that nothing will ever read. :func:`sweep_orphans` purges those it can
prove unreferenced, and nothing else:

* **No meta names the nuid.** Every meta message of the bucket counts: live metas, delete
  markers and links alike, decodable or not (a meta that is not a JSON object with a string
  ``nuid`` protects every chunk subject whose nuid appears anywhere in its bytes).
* **The subject's newest message is older than the grace.** An upload in progress (of any
  client) has chunks and no meta yet; the grace (``older_than`` seconds before the server's
  time, read from the STREAM.INFO reply) protects it.
* **No meta arrived since.** Right before each purge, the meta messages stored after the
  listing are read (one Direct Get ``next_by_subj`` when there are none) and their nuids
  added, so a commit that landed meanwhile keeps its chunks; the purge removes only
  messages up to the one whose age was checked, so a chunk stored after that is kept too.

Chunk subjects are enumerated with STREAM.INFO ``subjects_filter`` (paged by ``offset``),
metas by batch Direct Get over ``$O.<bucket>.M.>`` at the pace they are read (a snapshot
consumer on servers without batch support); a bucket whose oldest message is
younger than the grace, or that has no chunks, costs one or two STREAM.INFO requests. A
sealed bucket or a mirror raises ``Sealed`` before anything is read.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

from ..errors import Sealed
from . import wire
from .conn import Conn
from .listing import NoBatchSupport, walk_metas
from .meta import purge_subject

log = logging.getLogger(__name__)


class MetaRefs:
    """The nuids the metas of one bucket name, and the raw metas that could not be read."""

    def __init__(self, conn: Conn, bucket: str) -> None:
        self._conn = conn
        self._bucket = bucket
        self._stream = wire.stream_name(bucket)
        self._wildcard = wire.meta_wildcard(bucket)
        self._nuids: set[str] = set()
        self._unreadable: list[bytes] = []

    def add(self, payload: bytes) -> None:
        """Take the nuid a meta message names (or keep it whole when it cannot be read)."""
        try:
            doc = json.loads(payload)
        except ValueError:
            doc = None
        nuid = doc.get("nuid") if isinstance(doc, dict) else None
        if isinstance(nuid, str) and nuid:
            self._nuids.add(nuid)
        else:
            self._unreadable.append(bytes(payload))

    def names(self, nuid: str) -> bool:
        """True when some meta may name ``nuid``."""
        if nuid in self._nuids:
            return True
        token = nuid.encode()
        return any(token in raw for raw in self._unreadable)

    async def load(self, *, direct: bool) -> None:
        """Every meta message now in the stream: by batch Direct Get at the pace they are
        read (see :mod:`.listing`) when the stream answers ``direct`` gets, else (and on
        servers without batch support) from a snapshot consumer."""
        if direct and self._stream not in self._conn.no_direct:
            try:
                async for batch in walk_metas(self._conn, self._bucket):
                    for msg in batch:
                        self.add(msg.data)
                return
            except NoBatchSupport:
                log.debug("%s: metas of the sweep from a consumer", self._bucket)
        if await self._conn.last_msg(self._stream, self._wildcard) is None:
            return
        async for msg in self._conn.snapshot(self._stream, self._wildcard):
            self.add(msg.data)

    async def catch_up(self, from_seq: int) -> int:
        """Add the metas stored at sequence ``from_seq`` or later; the sequence to catch up
        from next time."""
        while True:
            msg = await self._conn.direct_get(self._stream, {"seq": from_seq, "next_by_subj": self._wildcard})
            if msg is None:
                return from_seq
            self.add(msg.data)
            from_seq = msg.seq + 1


async def chunk_subjects(conn: Conn, bucket: str) -> list[str]:
    """Every chunk subject of ``bucket`` that holds a message (STREAM.INFO, paged)."""
    stream = wire.stream_name(bucket)
    out: list[str] = []
    offset = 0
    while True:
        reply = await conn.api(
            "STREAM.INFO." + stream, {"subjects_filter": wire.chunk_wildcard(bucket), "offset": offset}
        )
        subjects = list((reply.get("state") or {}).get("subjects") or {})
        out.extend(subjects)
        offset += len(subjects)
        if not subjects or offset >= int(reply.get("total", 0)):
            return out


async def sweep_orphans(conn: Conn, bucket: str, older_than: float) -> int:
    """Purge the chunk subjects of ``bucket`` that no meta names and whose newest message is
    at least ``older_than`` seconds old (see the module docstring); return how many."""
    stream = wire.stream_name(bucket)
    si = await conn.api("STREAM.INFO." + stream)
    status = wire.bucket_status(si)
    if status.read_only:
        raise Sealed(f"bucket {bucket} is {'sealed' if status.sealed else 'a mirror'}")
    state = si.get("state") or {}
    now = wire.parse_timestamp(str(si.get("ts", ""))) or datetime.now(UTC)
    cutoff = now - timedelta(seconds=older_than)
    oldest = wire.parse_timestamp(str(state.get("first_ts", "")))
    if not state.get("messages") or (oldest is not None and oldest > cutoff):
        return 0  # every message is younger than the grace
    mark = int(state.get("last_seq", 0)) + 1
    prefix = wire.chunk_wildcard(bucket)[:-1]
    subjects = [s for s in await chunk_subjects(conn, bucket) if s.startswith(prefix) and s[len(prefix) :]]
    if not subjects:
        return 0
    refs = MetaRefs(conn, bucket)
    await refs.load(direct=bool((si.get("config") or {}).get("allow_direct")))
    purged = 0
    for subject in subjects:
        nuid = subject[len(prefix) :]
        if "." in nuid or refs.names(nuid):
            continue
        newest = await conn.last_msg(stream, subject)
        when = wire.parse_timestamp(newest.time) if newest is not None else None
        if newest is None or newest.subject != subject or when is None or when > cutoff:
            continue
        mark = await refs.catch_up(mark)
        if refs.names(nuid):
            continue
        n = await purge_subject(conn, stream, subject, before=newest.seq + 1)
        log.debug("%s: purged %d orphaned chunks of nuid %s", bucket, n, nuid)
        purged += 1
    return purged
