"""A NATS upload whose server restarts in the middle resumes on the same nuid: the
committed object has exactly its chunks, in order, and reads back whole (own server)."""

from __future__ import annotations

import hashlib
import random
import threading
from pathlib import Path

import trio

from osfs.embedded import EmbeddedServer
from osfs.store.nats.options import ConnectOptions
from osfs.store.nats.store import NatsStore
from osfs.store.types import BucketConfig, ObjectMeta

CS = 64 * 1024


def test_an_upload_resumes_after_a_server_restart(tmp_path: Path) -> None:
    server = EmbeddedServer(tmp_path / "nats", token="").start()
    port = server.client_port
    data = random.Random(7).randbytes(12 * 1024 * 1024)
    restarted = threading.Event()

    def restart() -> None:
        server.stop()
        trio.from_thread.run(trio.sleep, 0)  # the writer is now publishing into the outage
        threading.Event().wait(3.0)  # longer than the request timeout below
        server.port = port
        server.start()
        restarted.set()

    async def main() -> None:
        opts = ConnectOptions(servers=(server.url,), request_timeout=1.0)
        store = await NatsStore.connect(opts)
        try:
            await store.create_bucket(BucketConfig("rs"))
            up = await store.begin_put("rs", ObjectMeta("f"), chunk_size=CS)
            half = len(data) // 3
            await up.write(data[:half])
            await up.flush()  # type: ignore[attr-defined]
            async with trio.open_nursery() as nursery:
                nursery.start_soon(trio.to_thread.run_sync, restart)
                await trio.sleep(0.2)
                for off in range(half, len(data), 256 * 1024):
                    await up.write(data[off : off + 256 * 1024])
                info = await up.commit()
            assert restarted.is_set()
            assert up.resumes >= 1  # type: ignore[attr-defined]
            assert (info.size, info.chunks) == (len(data), len(data) // CS)
            got = b"".join([block async for block in store.get(await store.info("rs", "f"))])
            assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
        finally:
            await store.close()

    try:
        trio.run(main)
    finally:
        server.stop()
