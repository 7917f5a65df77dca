"""Filling a bucket with many small objects straight on its stream, for benchmarks and
tests of big buckets (``bench/bench_scale.py``, the big-listing tests).

Writing a million objects through the store (or a mount) takes long; here each object is
one chunk message (optional) and one meta message in nats.go's form, published on the
bucket's stream with pipelined acks (up to ``WINDOW`` unanswered), on a connection of its
own. Names are ``d<dir>/f<file>``, ``per_dir`` files to a directory, so ``n`` objects fill
``ceil(n / per_dir)`` directories.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import UTC, datetime

import nats
from nats.nuid import NUID

from ..semantics import encode_digest
from ..types import BucketConfig, ObjectInfo
from . import wire

#: Publishes whose acks are not in yet, at most.
WINDOW = 4000


def object_name(i: int, per_dir: int) -> str:
    """The name of the ``i``-th object of a filled bucket."""
    return f"d{i // per_dir:04d}/f{i % per_dir:06d}"


async def fill_bucket(
    url: str, bucket: str, n: int, *, per_dir: int = 1000, data: bytes = b"", allow_direct: bool = True
) -> None:
    """Create ``bucket`` (if missing) and add ``n`` objects named by :func:`object_name`,
    each holding ``data`` (one chunk; none when empty). ``allow_direct=False`` makes a
    stream like those of old clients (no Direct Get). Raises ``RuntimeError`` when the
    server refuses a publish."""
    nc = await nats.connect(url)
    try:
        cfg = wire.stream_config(BucketConfig(bucket))
        cfg["allow_direct"] = allow_direct
        reply = json.loads(
            (await nc.request("$JS.API.STREAM.CREATE." + cfg["name"], json.dumps(cfg).encode())).data
        )
        if "error" in reply and reply["error"].get("err_code") != 10058:
            raise RuntimeError(f"cannot create bucket {bucket}: {reply['error']}")
        await _publish_all(nc, bucket, n, per_dir, data)
    finally:
        await nc.close()


async def _publish_all(nc: nats.NATS, bucket: str, n: int, per_dir: int, data: bytes) -> None:
    acked = 0
    sent = 0
    errors: list[str] = []
    room = asyncio.Event()

    async def on_ack(msg: object) -> None:
        nonlocal acked
        acked += 1
        body = getattr(msg, "data", b"")
        if b'"error"' in body and len(errors) < 3:
            errors.append(body.decode(errors="replace"))
        room.set()

    inbox = nc.new_inbox()
    await nc.subscribe(inbox, cb=on_ack)
    nuids = NUID()
    digest = encode_digest(hashlib.sha256(data).digest()) if data else ""
    now = datetime.now(UTC)
    for i in range(n):
        nuid = nuids.next().decode()
        if data:
            await nc.publish(wire.chunk_subject(bucket, nuid), data, reply=inbox)
            sent += 1
        name = object_name(i, per_dir)
        info = ObjectInfo(
            bucket=bucket,
            name=name,
            nuid=nuid,
            size=len(data),
            chunks=1 if data else 0,
            digest=digest,
            mtime=now,
        )
        await nc.publish(wire.meta_subject(bucket, name), wire.encode_meta(info), reply=inbox)
        sent += 1
        while sent - acked > WINDOW:
            room.clear()
            await asyncio.wait_for(room.wait(), 30)
    while acked < sent:
        room.clear()
        await asyncio.wait_for(room.wait(), 30)
    if errors:
        raise RuntimeError(f"publishes refused: {errors}")
