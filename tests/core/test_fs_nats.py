"""The core over the real NATS store: random operation sequences against the dict model.

The same steps as ``test_fs_model`` (including another client's puts, seen through the
watch), run on the session's nats-server, so the core is checked against the real store's
timing and semantics, not only the in-memory one's.
"""

from __future__ import annotations

import random
from pathlib import Path

import trio
from test_fs_model import NAMES, apply, check

from osfs.config import ConnectOptions, FsOptions
from osfs.fs import Filesystem
from osfs.store.types import BucketConfig


def random_step(rng: random.Random) -> tuple:
    kind = rng.choice(["new", "append", "poke", "truncate", "rename", "unlink", "remote", "failput"])
    name = rng.choice(NAMES)
    if kind in ("new", "remote", "failput"):
        return (kind, name, rng.randbytes(rng.randrange(0, 3000)))
    if kind == "append":
        return (kind, name, rng.randbytes(rng.randrange(1, 500)))
    if kind == "poke":
        return (kind, name, rng.randrange(0, 4000), rng.randbytes(rng.randrange(1, 50)))
    if kind == "truncate":
        return (kind, name, rng.randrange(0, 4000))
    if kind == "rename":
        return (kind, name, rng.choice(NAMES))
    return (kind, name)


def test_core_over_nats_matches_model(nats_url: str, bucket_name: str, tmp_path: Path) -> None:
    from osfs.store.nats.store import NatsStore

    rng = random.Random(20261127)

    async def main() -> None:
        with trio.fail_after(240):
            await run_trials()

    async def run_trials() -> None:
        store = await NatsStore.connect(ConnectOptions(servers=(nats_url,)))
        try:
            for trial in range(6):
                steps = [random_step(rng) for _ in range(15)]
                bucket = f"{bucket_name}_{trial}"
                await store.create_bucket(BucketConfig(bucket))
                fs = Filesystem(store, FsOptions(spool_dir=tmp_path, chunk_size=1024))
                async with trio.open_nursery() as nursery:
                    await fs.start(nursery)
                    model: dict[str, bytes] = {}
                    for step in steps:
                        await apply(fs, store, model, step, bucket)
                    await check(fs, store, model, bucket)
                    await fs.close()
                    nursery.cancel_scope.cancel()
                await store.delete_bucket(bucket)
        finally:
            await store.close()

    trio.run(main)
