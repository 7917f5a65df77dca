"""A sequential write streams to the store without the spool; a failed write publishes
nothing; an open file reads back what it has been written so far (real mounts)."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from mountkit import requires_fuse
from semkit import peer

pytestmark = [pytest.mark.mount, requires_fuse]

MIB = 1024 * 1024


def _block(i: int) -> bytes:
    """The ``i``-th MiB of the test pattern (different in every MiB)."""
    return hashlib.sha256(i.to_bytes(8, "big")).digest() * (MIB // 32)


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator:
    """``small_tmpfs(mib)``: a tmpfs of that size for the spool, unmounted at teardown."""
    made: list[Path] = []

    def make(mib: int) -> Path:
        where = tmp_path / f"spool{len(made)}"
        where.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={mib}m", "tmpfs", str(where)], check=True)
        made.append(where)
        return where

    yield make
    for where in made:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _peer_sha(nats_url: str, bucket: str, name: str) -> tuple[str, int]:
    """SHA-256 and size of the object as nats-py reads it."""

    class Sink:
        def __init__(self) -> None:
            self.sha, self.n = hashlib.sha256(), 0

        def write(self, data: bytes) -> None:
            self.sha.update(data)
            self.n += len(data)

    async def get(nc, js):
        sink = Sink()
        await (await js.object_store(bucket)).get(name, writeinto=sink)
        return sink.sha.hexdigest(), sink.n

    return peer(nats_url, get)


def _chunk_counts(nats_url: str, bucket: str) -> dict[str, int]:
    async def counts(nc, js):
        body = json.dumps({"subjects_filter": f"$O.{bucket}.C.>"}).encode()
        reply = json.loads((await nc.request(f"$JS.API.STREAM.INFO.OBJ_{bucket}", body, timeout=10)).data)
        return dict((reply.get("state") or {}).get("subjects") or {})

    return peer(nats_url, counts)


def _file_sha(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(MIB):
            sha.update(block)
    return sha.hexdigest()


def test_a_file_eight_times_the_spool_is_written(mount_factory, nats_url, bucket_name, small_tmpfs):
    m = mount_factory("--spool-dir", str(small_tmpfs(64)))
    b = m.path / bucket_name
    os.mkdir(b)
    sha = hashlib.sha256()
    fd = os.open(b / "big.bin", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for i in range(512):
            block = _block(i)
            sha.update(block)
            assert os.write(fd, block) == MIB
    finally:
        os.close(fd)
    assert _file_sha(b / "big.bin") == sha.hexdigest()
    assert _peer_sha(nats_url, bucket_name, "big.bin") == (sha.hexdigest(), 512 * MIB)


def test_a_failed_write_publishes_nothing_and_leaves_no_chunks(
    mount_factory, nats_url, bucket_name, small_tmpfs
):
    m = mount_factory("--spool-dir", str(small_tmpfs(4)))
    b = m.path / bucket_name
    os.mkdir(b)
    (b / "f.bin").write_bytes(b"the previous version")
    before = _chunk_counts(nats_url, bucket_name)
    fd = os.open(b / "f.bin", os.O_WRONLY | os.O_TRUNC)
    closed = False
    try:
        for i in range(16):
            os.write(fd, _block(i))
        with pytest.raises(OSError) as exc:  # the seek back spools 16 MiB into 4 MiB
            os.pwrite(fd, b"x", 0)
            for i in range(16):
                os.pwrite(fd, _block(i), i * MIB)
        assert exc.value.errno == errno.ENOSPC
        with pytest.raises(OSError) as exc:
            closed = True
            os.close(fd)
        assert exc.value.errno == errno.ENOSPC
    finally:
        if not closed:
            os.close(fd)
    assert (b / "f.bin").read_bytes() == b"the previous version"
    assert _peer_sha(nats_url, bucket_name, "f.bin")[1] == len(b"the previous version")
    assert _chunk_counts(nats_url, bucket_name) == before  # the failed stream's chunks are purged


def test_an_open_file_reads_back_what_it_was_written(mount_factory, bucket_name):
    m = mount_factory()
    b = m.path / bucket_name
    os.mkdir(b)
    written = b"".join(_block(i) for i in range(3)) + b"tail" * 1000
    fd = os.open(b / "growing.bin", os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, written)
        assert os.pread(fd, len(written) + 10, 0) == written
        assert os.pread(fd, 100, MIB - 50) == written[MIB - 50 : MIB + 50]
        with open(b / "growing.bin", "rb") as other:
            assert other.read() == written
        os.write(fd, b"more")
        assert os.pread(fd, 8, len(written) - 4) == written[-4:] + b"more"
    finally:
        os.close(fd)
    assert (b / "growing.bin").read_bytes() == written + b"more"


def test_a_seek_back_spools_what_was_streamed(mount_factory, nats_url, bucket_name):
    m = mount_factory()
    b = m.path / bucket_name
    os.mkdir(b)
    content = bytearray(b"".join(_block(i) for i in range(8)))
    fd = os.open(b / "f.bin", os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, bytes(content))
        os.pwrite(fd, b"patched", 3 * MIB - 2)  # the writer moves to the spool here
        content[3 * MIB - 2 : 3 * MIB + 5] = b"patched"
        os.write(fd, b"end")
        content += b"end"
        assert os.pread(fd, 20, 3 * MIB - 10) == bytes(content[3 * MIB - 10 : 3 * MIB + 10])
    finally:
        os.close(fd)
    want = hashlib.sha256(content).hexdigest()
    assert _file_sha(b / "f.bin") == want
    assert _peer_sha(nats_url, bucket_name, "f.bin") == (want, len(content))
