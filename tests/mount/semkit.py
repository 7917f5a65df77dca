"""Helpers of the file-semantics tests: nats-py as an independent peer, shell tools, raw
stream inspection."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import time

import nats


def peer(nats_url: str, fn):
    """Run ``await fn(nc, js)`` with nats-py (the interop peer) and return its result."""

    async def run():
        nc = await nats.connect(nats_url)
        try:
            return await fn(nc, nc.jetstream())
        finally:
            await nc.close()

    return asyncio.run(run())


def sh(*cmd: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, check=check, **kw)


def wait_for(pred, timeout: float = 10.0, interval: float = 0.05) -> bool:
    """Poll ``pred`` until true (coherence is asynchronous: tests wait for a state)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(interval)
    return bool(pred())


def meta_subject(bucket: str, name: str) -> str:
    return f"$O.{bucket}.M.{base64.urlsafe_b64encode(name.encode()).decode()}"


def stream_state(nats_url: str, bucket: str, kind: str = "C") -> tuple[int, dict[str, int]]:
    """``(last_seq, {subject: count})`` of the bucket's stream for chunk (``C``) or meta
    (``M``) subjects."""

    async def fn(nc, js):
        si = await js.stream_info(f"OBJ_{bucket}", subjects_filter=f"$O.{bucket}.{kind}.>")
        return si.state.last_seq, dict(si.state.subjects or {})

    return peer(nats_url, fn)


def publish_meta(nats_url: str, bucket: str, meta: dict, *, rollup: bool = True) -> None:
    """Publish a raw meta message the way another client would."""

    async def fn(nc, js):
        headers = {"Nats-Rollup": "sub"} if rollup else None
        await js.publish(meta_subject(bucket, meta["name"]), json.dumps(meta).encode(), headers=headers)

    peer(nats_url, fn)


def raw_meta(nats_url: str, bucket: str, name: str) -> dict:
    """The latest meta message of ``name``, decoded."""

    async def fn(nc, js):
        msg = await js.get_last_msg(f"OBJ_{bucket}", meta_subject(bucket, name))
        return json.loads(msg.data)

    return peer(nats_url, fn)
