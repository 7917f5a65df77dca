"""What a mount reports about itself, counted by the adapter as it translates requests and
read from the core's public counters: FuseOps over a Filesystem on a MemoryStore, no FUSE."""

from __future__ import annotations

import errno
import json
import os

import pyfuse3
import pytest

from osfs.fuse_ops import FuseOps
from osfs.stats import STATS_XATTR, Counters, prometheus_text
from osfs.store.types import BucketConfig, StoreCounters

STATS = STATS_XATTR.encode()


def test_counters_count_failures_but_not_answers() -> None:
    c = Counters()
    for err in (errno.ENOENT, errno.ENODATA, errno.EEXIST, errno.ENOTEMPTY, errno.ENOTSUP, errno.ERANGE):
        c.failed("lookup", err)
    assert c.errors == 0 and c.last_error == ""
    c.failed("mkdir", errno.EINVAL)
    assert c.errors == 1 and c.last_error == "mkdir: EINVAL"
    c.answered("read", b"abc")
    c.answered("write", 5)
    c.answered("getattr", object())
    assert (c.reads, c.bytes_read, c.writes, c.bytes_written) == (1, 3, 1, 5)


def test_the_adapter_counts_requests_and_the_core_counts_uploads(run_fs) -> None:
    async def body(fs, store) -> None:
        await store.create_bucket(BucketConfig("b"))
        ops = FuseOps(fs)
        b = await ops.lookup(pyfuse3.ROOT_INODE, b"b", None)
        with pytest.raises(pyfuse3.FUSEError):
            await ops.lookup(b.st_ino, b"absent", None)
        info, _entry = await ops.create(b.st_ino, b"f", 0o644, os.O_WRONLY, None)
        assert await ops.write(info.fh, 0, b"hello") == 5
        stats = json.loads(await ops.getxattr(pyfuse3.ROOT_INODE, STATS, None))
        assert stats["uploads_in_flight"] == 1 and stats["uploads"] == 0
        await ops.flush(info.fh)
        await ops.release(info.fh)
        info, _entry = await ops.create(b.st_ino, b"f", 0o644, os.O_RDONLY, None)
        assert await ops.read(info.fh, 0, 100) == b"hello"
        await ops.release(info.fh)
        with pytest.raises(pyfuse3.FUSEError) as exc:
            await ops.mkdir(pyfuse3.ROOT_INODE, b"bad.name", 0o755, None)
        assert exc.value.errno == errno.EINVAL
        stats = json.loads(await ops.getxattr(pyfuse3.ROOT_INODE, STATS, None))
        assert stats["uploads"] == 1 and stats["uploads_in_flight"] == 0
        assert (stats["writes"], stats["bytes_written"], stats["reads"], stats["bytes_read"]) == (1, 5, 1, 5)
        assert stats["errors"] == 1 and stats["last_error"] == "mkdir: EINVAL"
        assert stats["cache_hit_rate"] is None and stats["cache_limit"] == 0
        assert STATS in await ops.listxattr(pyfuse3.ROOT_INODE, None)
        assert STATS not in await ops.listxattr(b.st_ino, None)
        for change in (
            ops.setxattr(pyfuse3.ROOT_INODE, STATS, b"{}", None),
            ops.removexattr(pyfuse3.ROOT_INODE, STATS, None),
        ):
            with pytest.raises(pyfuse3.FUSEError) as exc:
                await change
            assert exc.value.errno == errno.EPERM
        assert ops.stats()["uploads"] == fs.files.published == 1

    run_fs(body)


def test_stores_without_counters_report_zeros(run_fs) -> None:
    async def body(fs, store) -> None:
        assert store.counters() == StoreCounters()

    run_fs(body)


def test_prometheus_text_names_counters_and_gauges() -> None:
    text = prometheus_text({"uploads": 2, "uploads_in_flight": 1, "cache_hit_rate": None}, "/mnt")
    assert 'osfs_uploads_total{mountpoint="/mnt"} 2' in text
    assert 'osfs_uploads_in_flight{mountpoint="/mnt"} 1' in text
