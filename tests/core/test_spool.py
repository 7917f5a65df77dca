"""The spool: memory first, an unnamed file past the limit, same bytes either way."""

from __future__ import annotations

import os
import random

import trio
from corekit import read_file, resolve

from osfs.store.types import BucketConfig
from osfs.writeback import Spool


def test_spool_matches_a_bytearray_across_the_spill(tmp_path) -> None:
    rng = random.Random(7)

    async def main() -> None:
        spool = Spool(tmp_path, memory_limit=1000)
        model = bytearray()
        for _ in range(200):
            op = rng.random()
            if op < 0.8:
                off = rng.randrange(0, len(model) + 300)
                data = rng.randbytes(rng.randrange(1, 200))
                await spool.pwrite(data, off)
                if off > len(model):
                    model.extend(bytes(off - len(model)))
                model[off : off + len(data)] = data
            else:
                size = rng.randrange(0, len(model) + 100)
                await spool.truncate(size)
                del model[size:]
                model.extend(bytes(size - len(model)))
            assert await spool.pread(len(model) + 10, 0) == bytes(model)[: len(model) + 10]
            assert os.listdir(tmp_path) == []
        assert spool.on_disk
        await spool.close()

    trio.run(main)


def test_large_random_writes_through_the_core(run_fs) -> None:
    size = 3 * 1024 * 1024 + 5
    rng = random.Random(3)

    async def body(fs, store) -> None:
        await store.create_bucket(BucketConfig("b"))
        model = bytearray(rng.randbytes(size))
        reply, attr = await fs.create(await resolve(fs, "b"), "f", os.O_RDWR, 0o644)
        for off in range(0, size, 131072):
            await fs.write(reply.fh, off, bytes(model[off : off + 131072]))
        for _ in range(50):
            off = rng.randrange(0, size)
            data = rng.randbytes(rng.randrange(1, 70000))
            await fs.write(reply.fh, off, data)
            model[off : off + len(data)] = data
        del model[size:]
        await fs.setattr(attr.ino, size=size)
        assert await fs.read(reply.fh, 1_000_000, 100) == bytes(model[1_000_000:1_000_100])
        await fs.release(reply.fh)
        assert await read_file(fs, "b/f") == bytes(model)

    run_fs(body)
