"""The spool writes its tail in the background: an append returns before the disk write
ends, a failed background write is raised by a later call before it takes new data, and
no byte is lost or served stale on the way."""

from __future__ import annotations

import errno
import os
import threading

import pytest
import trio
from corekit import read_file, resolve

from osfs import writeback
from osfs.errors import FsError
from osfs.store.types import BucketConfig, ObjectMeta
from osfs.writeback import Spool


def test_an_append_returns_while_its_disk_write_is_still_running(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(writeback, "DISK_BLOCK", 1000)
    gate = threading.Event()
    entered = threading.Event()
    real = writeback._pwrite_all

    def slow(fd: int, blocks: list[bytes], offset: int) -> None:
        entered.set()
        gate.wait(10)
        real(fd, blocks, offset)

    async def main() -> None:
        spool = Spool(tmp_path, memory_limit=100)
        await spool.pwrite(b"a" * 100, 0)
        await spool.pwrite(b"b" * 100, 100)  # spills to disk
        monkeypatch.setattr(writeback, "_pwrite_all", slow)
        await spool.pwrite(b"c" * 1000, 200)  # starts the background write and returns
        with trio.fail_after(10):
            while not entered.is_set():
                await trio.sleep(0.005)
        assert not gate.is_set()
        # reads are served from the tail while its write runs
        assert await spool.pread(1200, 0) == b"a" * 100 + b"b" * 100 + b"c" * 1000
        gate.set()
        await spool.pwrite(b"d" * 1000, 1200)  # waits for the first background write
        assert await spool.pread(2300, 0) == b"a" * 100 + b"b" * 100 + b"c" * 1000 + b"d" * 1000
        await spool.close()

    trio.run(main)


def test_a_failed_background_write_is_raised_before_new_data_is_taken(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(writeback, "DISK_BLOCK", 500)
    real = writeback._pwrite_all
    failures = [OSError(errno.ENOSPC, "No space left on device")]

    def flaky(fd: int, blocks: list[bytes], offset: int) -> None:
        if failures:
            raise failures.pop()
        real(fd, blocks, offset)

    async def main() -> None:
        spool = Spool(tmp_path, memory_limit=10)
        model = bytearray()
        monkeypatch.setattr(writeback, "_pwrite_all", flaky)
        raised = 0
        for i in range(20):
            data = bytes([65 + i]) * 200
            try:
                await spool.pwrite(data, len(model))
            except OSError as e:
                assert e.errno == errno.ENOSPC
                raised += 1
                continue  # refused: not taken
            model += data
            assert await spool.pread(len(model) + 5, 0) == bytes(model)
        assert raised == 1
        await spool.truncate(len(model))  # writes the rest of the tail
        assert await spool.pread(len(model), 0) == bytes(model)
        await spool.close()

    trio.run(main)


@pytest.mark.parametrize("truncate_to", [0, 150, 900])
def test_truncate_and_writes_elsewhere_wait_for_the_background_write(
    tmp_path, monkeypatch, truncate_to: int
) -> None:
    monkeypatch.setattr(writeback, "DISK_BLOCK", 300)

    async def main() -> None:
        spool = Spool(tmp_path, memory_limit=50)
        model = bytearray()
        for i in range(6):
            data = bytes([97 + i]) * 170
            await spool.pwrite(data, len(model))
            model += data
        await spool.pwrite(b"Z" * 40, 10)  # elsewhere: the tail is written out first
        model[10:50] = b"Z" * 40
        await spool.truncate(truncate_to)
        del model[truncate_to:]
        model.extend(bytes(truncate_to - len(model)))
        assert await spool.pread(2000, 0) == bytes(model)
        await spool.close()

    trio.run(main)


def test_a_sequential_write_never_touches_the_spool(run_fs, monkeypatch) -> None:
    def no_disk(*_args: object) -> None:
        raise AssertionError("the spool was used")

    async def body(fs, store) -> None:
        await store.create_bucket(BucketConfig("b"))
        monkeypatch.setattr(writeback, "_open_spool_file", no_disk)
        monkeypatch.setattr(writeback, "_pwrite_all", no_disk)
        data = bytes(range(256)) * 16 * 1024  # 4 MiB
        reply, attr = await fs.create(await resolve(fs, "b"), "f", os.O_WRONLY, 0o644)
        writer = fs.files.writer(attr.ino)
        for off in range(0, len(data), 32 * 1024):
            await fs.write(reply.fh, off, data[off : off + 32 * 1024])
        assert writer.streaming and not writer.spooled
        assert await writer.read(1000, 300_000) == data[1000:301_000]  # read back while open
        await fs.flush(reply.fh)
        await fs.release(reply.fh)
        info = await store.info("b", "f")
        assert b"".join([blk async for blk in store.get(info)]) == data

    run_fs(body)


def test_a_spool_failure_after_a_seek_back_publishes_nothing(run_fs, monkeypatch) -> None:
    monkeypatch.setattr(writeback, "DISK_BLOCK", 64 * 1024)
    real = writeback._pwrite_all

    def full(fd: int, blocks: list[bytes], offset: int) -> None:
        if offset > 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fd, blocks, offset)

    async def body(fs, store) -> None:
        await store.create_bucket(BucketConfig("b"))
        await store.put("b", ObjectMeta("f"), b"previous")
        monkeypatch.setattr(writeback, "_pwrite_all", full)
        data = bytes(range(256)) * 16 * 1024  # 4 MiB
        ino = await resolve(fs, "b/f")
        h = await fs.open(ino, os.O_WRONLY | os.O_TRUNC)
        writer = fs.files.writer(ino)
        for off in range(0, len(data), 64 * 1024):
            await fs.write(h.fh, off, data[off : off + 64 * 1024])
        assert writer.streaming
        with pytest.raises(FsError) as exc:  # the seek back spools: the spool is full
            await fs.write(h.fh, 0, b"x")
            await fs.write(h.fh, 4096, b"y" * 200_000)
        assert exc.value.errno == errno.ENOSPC
        with pytest.raises(FsError) as exc:
            await fs.flush(h.fh)
        assert exc.value.errno == errno.ENOSPC
        await fs.release(h.fh)
        assert await read_file(fs, "b/f") == b"previous"
        assert len(store.stream.bucket("b").chunks) == 1  # the failed stream left no chunks

    run_fs(body)
