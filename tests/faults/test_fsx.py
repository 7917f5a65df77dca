"""fsx-style random operations on a file in the mount, compared with a local model after
every step: writes at random offsets (holes included), truncates, reads, fsync,
close/reopen (plain, O_TRUNC, O_APPEND). At every close the published object (read with
nats-py) must equal the model too."""

from __future__ import annotations

import os
import random

import pytest
from faultkit import peer, raw_object, requires_fuse, store_call, wait_for

from osfs.store.types import BucketConfig

pytestmark = [pytest.mark.mount, requires_fuse]

KIB = 1024
MAX_SIZE = 1536 * KIB
STEPS = 250


class Model:
    """The expected content and a log of what was done (printed on failure)."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.log: list[str] = []

    def write(self, offset: int, chunk: bytes) -> None:
        if offset > len(self.data):
            self.data.extend(bytes(offset - len(self.data)))
        self.data[offset : offset + len(chunk)] = chunk

    def truncate(self, size: int) -> None:
        if size < len(self.data):
            del self.data[size:]
        else:
            self.data.extend(bytes(size - len(self.data)))


def _check(fd: int, model: Model, rnd: random.Random) -> None:
    size = os.fstat(fd).st_size
    assert size == len(model.data), f"size {size} != {len(model.data)}"
    if model.data:
        off = rnd.randrange(len(model.data))
        n = rnd.randint(1, 256 * KIB)
        got = os.pread(fd, n, off)
        assert got == bytes(model.data[off : off + n]), f"pread({n}, {off}) differs"
    assert os.pread(fd, 10, len(model.data)) == b""


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_operations_match_a_local_model(mounts, nats_url, bucket_name, seed):
    store_call(nats_url, lambda s: s.create_bucket(BucketConfig(bucket=bucket_name)))
    m = mounts("--chunk-size", "16K")
    path = m.path / bucket_name / "fsx.bin"
    rnd = random.Random(seed)
    model = Model()

    def published() -> bytes | None:
        return peer(nats_url, lambda nc, js: raw_object(js, bucket_name, "fsx.bin"))

    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
    appending = False  # Linux: pwrite on an O_APPEND descriptor appends whatever the offset
    try:
        for step in range(STEPS):
            op = rnd.choices(
                ["write", "append", "truncate", "read", "fsync", "reopen", "reopen_trunc", "reopen_append"],
                weights=[30, 8, 10, 20, 5, 10, 2, 3],
            )[0]
            model.log.append(f"{step}: {op}")
            if op == "write":
                off = rnd.randrange(0, MAX_SIZE)
                n = rnd.randint(1, 200 * KIB)
                n = min(n, MAX_SIZE - off) or 1
                chunk = rnd.randbytes(n)
                model.log[-1] += f" {n}@{off}"
                assert os.pwrite(fd, chunk, off) == n
                model.write(len(model.data) if appending else off, chunk)
            elif op == "append":
                chunk = rnd.randbytes(rnd.randint(1, 64 * KIB))
                model.log[-1] += f" {len(chunk)}"
                assert os.pwrite(fd, chunk, len(model.data)) == len(chunk)
                model.write(len(model.data), chunk)
            elif op == "truncate":
                size = rnd.randrange(0, MAX_SIZE)
                model.log[-1] += f" {size}"
                os.ftruncate(fd, size)
                model.truncate(size)
            elif op == "read":
                pass
            elif op == "fsync":
                os.fsync(fd)
            else:
                os.close(fd)
                fd = -1
                # a handle that wrote publishes in close; one that only created or truncated
                # publishes in the release that follows close asynchronously
                want = bytes(model.data)
                assert wait_for(lambda want=want: published() == want, 10), (
                    f"published object differs ({len(published() or b'')} bytes)"
                )
                assert path.read_bytes() == bytes(model.data)
                flags = os.O_RDWR
                if op == "reopen_trunc":
                    flags |= os.O_TRUNC
                    model.truncate(0)
                fd = os.open(path, flags)
                appending = op == "reopen_append"
                if appending:
                    os.close(fd)
                    fd = os.open(path, os.O_RDWR | os.O_APPEND)
                    chunk = rnd.randbytes(rnd.randint(1, 32 * KIB))
                    assert os.write(fd, chunk) == len(chunk)
                    model.write(len(model.data), chunk)
            _check(fd, model, rnd)
    except AssertionError as exc:
        raise AssertionError(
            f"seed {seed}: {exc}\n" + "\n".join(model.log[-25:]) + "\n" + m.log[-2000:]
        ) from exc
    finally:
        if fd >= 0:
            os.close(fd)
    assert wait_for(lambda: published() == bytes(model.data), 10)
    assert path.read_bytes() == bytes(model.data)
