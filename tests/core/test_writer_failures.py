"""The streaming writer: no torn version after a failed write, a truncate to 0 starts
afresh, writes after an fsync continue from the committed version, a rename while
streaming publishes the stream under the new name (memory store)."""

from __future__ import annotations

import errno
import os

import pytest
from corekit import read_file, resolve, settle

from osfs.errors import FsError
from osfs.store import errors as se
from osfs.store.types import BucketConfig, ObjectMeta


def test_efbig_publishes_nothing_until_a_truncate_to_zero(run_fs) -> None:
    async def body(fs, store) -> None:
        await store.create_bucket(BucketConfig("b", max_object_size=10))
        await store.put("b", ObjectMeta("f"), b"before")
        await settle()
        ino = await resolve(fs, "b/f")
        h = await fs.open(ino, os.O_WRONLY | os.O_TRUNC)
        await fs.write(h.fh, 0, b"12345")
        with pytest.raises(FsError) as exc:
            await fs.write(h.fh, 5, b"1234567")
        assert exc.value.errno == errno.EFBIG
        with pytest.raises(FsError) as exc:
            await fs.write(h.fh, 5, b"1")  # the content is lost: every write says so
        assert exc.value.errno == errno.EFBIG
        with pytest.raises(FsError) as exc:
            await fs.fsync(h.fh)
        assert exc.value.errno == errno.EFBIG
        assert await store.read(await store.info("b", "f"), 0, 100) == b"before"
        await fs.setattr(ino, size=0)  # starts afresh
        await fs.write(h.fh, 0, b"after")
        with pytest.raises(FsError) as exc:  # the fsync's error is reported once more
            await fs.flush(h.fh)
        assert exc.value.errno == errno.EFBIG
        await fs.release(h.fh)
        assert await read_file(fs, "b/f") == b"after"

    run_fs(body)


def test_writes_after_fsync_continue_from_the_committed_version(run_fs) -> None:
    async def body(fs, store) -> None:
        await store.create_bucket(BucketConfig("b"))
        reply, attr = await fs.create(await resolve(fs, "b"), "log", os.O_RDWR, 0o644)
        first = bytes(range(256)) * 1000
        await fs.write(reply.fh, 0, first)
        await fs.fsync(reply.fh)
        writer = fs.files.writer(attr.ino)
        assert not writer.streaming and not writer.spooled
        assert await fs.read(reply.fh, 1000, 50) == first[1000:1050]
        await fs.write(reply.fh, len(first), b"second")
        assert writer.spooled
        await fs.flush(reply.fh)
        await fs.release(reply.fh)
        assert await read_file(fs, "b/log") == first + b"second"

    run_fs(body)


def test_a_failed_streamed_commit_publishes_nothing_at_release(run_fs) -> None:
    async def body(fs, store) -> None:
        await store.create_bucket(BucketConfig("b"))
        reply, _ = await fs.create(await resolve(fs, "b"), "g", os.O_WRONLY, 0o644)
        await fs.write(reply.fh, 0, b"data" * 1000)
        store.fail_next_put = se.Unavailable("server gone")
        with pytest.raises(FsError) as exc:
            await fs.flush(reply.fh)
        assert exc.value.errno == errno.EIO
        await fs.release(reply.fh)
        with pytest.raises(se.NotFound):
            await store.info("b", "g")
        assert store.stream.bucket("b").chunks == {}

    run_fs(body)
