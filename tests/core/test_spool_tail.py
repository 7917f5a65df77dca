"""The spool's gathered appends (its tail) read back like a bytearray, however writes,
truncates and reads interleave."""

from __future__ import annotations

import random

import pytest
import trio

from osfs import writeback
from osfs.writeback import Spool


@pytest.mark.parametrize("seed", range(6))
def test_tail_of_appends_matches_a_bytearray(tmp_path, monkeypatch, seed: int) -> None:
    monkeypatch.setattr(writeback, "DISK_BLOCK", 700)
    rng = random.Random(seed)

    async def main() -> None:
        spool = Spool(tmp_path, memory_limit=500)
        model = bytearray()
        for _ in range(400):
            op = rng.random()
            if op < 0.6:  # append: gathered in the tail
                off = len(model)
            elif op < 0.8:  # anywhere, holes included
                off = rng.randrange(0, len(model) + 300)
            else:
                size = rng.randrange(0, len(model) + 100)
                await spool.truncate(size)
                del model[size:]
                model.extend(bytes(size - len(model)))
                continue
            data = rng.randbytes(rng.randrange(1, 250))
            await spool.pwrite(data, off)
            if off > len(model):
                model.extend(bytes(off - len(model)))
            model[off : off + len(data)] = data
            start = rng.randrange(0, len(model) + 1)
            n = rng.randrange(0, len(model) - start + 50)
            assert await spool.pread(n, start) == bytes(model[start : start + n])
        assert await spool.pread(len(model) + 10, 0) == bytes(model)
        await spool.close()

    trio.run(main)
