"""Writes anywhere, truncation, upload errors, timestamps and modes through a real mount."""

from __future__ import annotations

import asyncio
import errno
import json
import os
import stat
import threading
from pathlib import Path

import nats
import nats.js.errors
import pytest
from mountkit import requires_fuse
from semkit import peer, raw_meta, sh, wait_for

pytestmark = [pytest.mark.mount, requires_fuse]


class MetaRecorder:
    """Every meta message published to a bucket while active (plain NATS subscription)."""

    def __init__(self, nats_url: str, bucket: str) -> None:
        self.url, self.bucket = nats_url, bucket
        self.metas: list[dict] = []
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        nc = await nats.connect(self.url)

        async def cb(msg):
            if msg.data:
                self.metas.append(json.loads(msg.data))

        await nc.subscribe(f"$O.{self.bucket}.M.>", cb=cb)
        await nc.flush()
        self._ready.set()
        await self._stop.wait()
        await nc.flush()
        await nc.close()

    def __enter__(self) -> MetaRecorder:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def sizes(self, name: str) -> list[int]:
        return [m.get("size", 0) for m in self.metas if m.get("name") == name and not m.get("deleted")]


def _bucket(mnt, bucket_name):
    b = mnt.path / bucket_name
    b.mkdir()
    return b


def test_redirect_over_existing_file_publishes_no_empty_version(mnt, nats_url, bucket_name):
    b = _bucket(mnt, bucket_name)
    f = b / "f.txt"
    f.write_bytes(b"original content")
    with MetaRecorder(nats_url, bucket_name) as rec:
        sh("sh", "-c", f"printf 'new' > '{f}'")
        sh("sh", "-c", f"echo 'appended' >> '{f}'")
        sh("cp", "/etc/hostname", str(f))
        assert wait_for(lambda: len(rec.sizes("f.txt")) >= 3)
    assert 0 not in rec.sizes("f.txt"), rec.metas
    assert f.read_bytes() == Path("/etc/hostname").read_bytes()
    # truncating to zero and closing does publish the empty file
    sh("sh", "-c", f": > '{f}'")
    assert wait_for(lambda: raw_meta(nats_url, bucket_name, "f.txt")["size"] == 0)
    assert f.read_bytes() == b""


def test_append_truncate_dd_and_writes_at_offsets(mnt, bucket_name, tmp_path):
    b = _bucket(mnt, bucket_name)
    f, local = b / "f.bin", tmp_path / "f.bin"
    steps = [
        "printf 'hello world' > {f}",
        "printf ' and more' >> {f}",
        "truncate -s 5 {f}",
        "truncate -s 300000 {f}",
        "printf 'XYZ' | dd of={f} bs=1 seek=200000 conv=notrunc status=none",
        "head -c 150000 /dev/zero | tr '\\0' q | dd of={f} bs=4096 seek=10 conv=notrunc status=none",
        "printf 'tail' >> {f}",
        "truncate -s -1000 {f}",
        "dd if=/dev/zero of={f} bs=1000 count=3 seek=1 status=none",
    ]
    for step in steps:
        for target in (f, local):
            sh("sh", "-c", step.format(f=f"'{target}'"))
        assert f.read_bytes() == local.read_bytes(), step
    assert os.stat(f).st_size == os.stat(local).st_size

    # pwrite anywhere, past the end too (the gap reads as zeros)
    fd = os.open(f, os.O_RDWR)
    try:
        os.pwrite(fd, b"A" * 10, 3)
        os.pwrite(fd, b"B" * 10, os.fstat(fd).st_size + 5000)
    finally:
        os.close(fd)
    fd = os.open(local, os.O_RDWR)
    try:
        os.pwrite(fd, b"A" * 10, 3)
        os.pwrite(fd, b"B" * 10, os.fstat(fd).st_size + 5000)
    finally:
        os.close(fd)
    assert f.read_bytes() == local.read_bytes()


def test_read_while_open_for_writing_and_two_writers(mnt, nats_url, bucket_name):
    b = _bucket(mnt, bucket_name)
    f = b / "shared.bin"
    w1 = os.open(f, os.O_WRONLY | os.O_CREAT, 0o644)
    w2 = os.open(f, os.O_RDWR)
    try:
        os.pwrite(w1, b"1" * 100, 0)
        os.pwrite(w2, b"2" * 50, 25)
        r = os.open(f, os.O_RDONLY)
        try:
            assert os.pread(r, 1000, 0) == b"1" * 25 + b"2" * 50 + b"1" * 25
        finally:
            os.close(r)
        assert os.pread(w2, 1000, 0) == b"1" * 25 + b"2" * 50 + b"1" * 25
        os.pwrite(w1, b"3" * 10, 95)
    finally:
        os.close(w1)
        os.close(w2)
    expected = b"1" * 25 + b"2" * 50 + b"1" * 20 + b"3" * 10
    assert f.read_bytes() == expected

    async def get(nc, js):
        return (await (await js.object_store(bucket_name)).get("shared.bin")).data

    assert wait_for(lambda: peer(nats_url, get) == expected)


def test_fsync_publishes_before_close(mnt, nats_url, bucket_name):
    b = _bucket(mnt, bucket_name)
    fd = os.open(b / "f", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.write(fd, b"synced data")
        os.fsync(fd)

        async def get(nc, js):
            return (await (await js.object_store(bucket_name)).get("f")).data

        assert peer(nats_url, get) == b"synced data"
    finally:
        os.close(fd)


def test_failed_upload_error_from_fsync_and_close(mnt, nats_url, bucket_name):
    async def make(nc, js):
        from nats.js.api import ObjectStoreConfig

        await js.create_object_store(bucket_name, config=ObjectStoreConfig(max_bytes=256 * 1024))

    peer(nats_url, make)
    f = mnt.path / bucket_name / "too-big.bin"
    fd = os.open(f, os.O_WRONLY | os.O_CREAT, 0o644)
    data = os.urandom(1024 * 1024)
    failed: list[int] = []
    try:
        try:
            os.write(fd, data)
        except OSError as e:  # may already be refused while streaming
            failed.append(e.errno)
        with pytest.raises(OSError) as exc:
            os.fsync(fd)
        failed.append(exc.value.errno)
    finally:
        with pytest.raises(OSError) as exc:
            os.close(fd)
        failed.append(exc.value.errno)
    assert set(failed) <= {errno.ENOSPC, errno.EFBIG}, failed
    # nothing was published: once the handle is released the name is gone again
    assert wait_for(lambda: not f.exists())
    assert os.listdir(f.parent) == []


def test_chmod_chown_utimens_persist_and_defaults(mnt, nats_url, bucket_name):
    b = _bucket(mnt, bucket_name)
    f = b / "f"
    f.write_bytes(b"x")
    os.chmod(f, 0o640)
    os.chown(f, 1234, 5678)
    os.utime(f, ns=(1_600_000_000_123_456_789, 1_600_000_000_123_456_789))
    st = os.stat(f)
    assert stat.S_IMODE(st.st_mode) == 0o640
    assert (st.st_uid, st.st_gid) == (1234, 5678)
    assert st.st_mtime_ns == 1_600_000_000_123_456_789
    meta = raw_meta(nats_url, bucket_name, "f")["metadata"]
    assert meta["osfs-mode"] == "640" and meta["osfs-uid"] == "1234" and meta["osfs-gid"] == "5678"
    assert meta["osfs-mtime"] == "1600000000123456789"

    # an object written by another client: server timestamp, default mode and owner
    async def put(nc, js):
        obs = await js.object_store(bucket_name)
        return (await obs.put("plain", b"abc")).mtime

    mtime = peer(nats_url, put)
    assert wait_for(lambda: (b / "plain").exists())
    st = os.stat(b / "plain")
    assert stat.S_IMODE(st.st_mode) == 0o644
    assert (st.st_uid, st.st_gid) == (os.getuid(), os.getgid())
    from datetime import datetime

    # the server's timestamp of the meta message, not the mount's clock or start time
    server = datetime.fromisoformat(mtime).timestamp()
    assert abs(st.st_mtime - server) < 1.0
    assert st.st_mtime_ns != os.stat(b).st_mtime_ns


def _tree(root) -> dict[str, tuple]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", stat.S_IMODE(st.st_mode))
            else:
                with open(p, "rb") as fh:
                    out[rel] = ("file", stat.S_IMODE(st.st_mode), st.st_mtime_ns // 10**9, fh.read())
    return out


def _local_tree(root):
    (root / "a" / "b").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "a" / "one.txt").write_bytes(b"one\n")
    (root / "a" / "b" / "two.bin").write_bytes(os.urandom(300_000))
    (root / "top").write_bytes(b"")
    os.chmod(root / "a" / "one.txt", 0o600)
    os.chmod(root / "top", 0o755)
    for i, p in enumerate(sorted(root.rglob("*"))):
        if p.is_file():
            os.utime(p, (1_500_000_000 + i, 1_500_000_000 + i))


def test_rsync_twice_and_cp_p(mnt, bucket_name, tmp_path):
    b = _bucket(mnt, bucket_name)
    src = tmp_path / "src"
    _local_tree(src)
    first = sh("rsync", "-a", "--stats", f"{src}/", f"{b}/r/")
    assert "Number of regular files transferred: 3" in first.stdout
    second = sh("rsync", "-a", "--stats", "--itemize-changes", f"{src}/", f"{b}/r/")
    assert "Number of regular files transferred: 0" in second.stdout, second.stdout
    assert not [ln for ln in second.stdout.splitlines() if ln.startswith((">f", "<f", "cf"))]
    files = {k: v for k, v in _tree(src).items() if v[0] == "file"}
    assert {k: v for k, v in _tree(b / "r").items() if v[0] == "file"} == files
    sh("cp", "-p", str(src / "a" / "one.txt"), str(b / "copy"))
    st, lst = os.stat(b / "copy"), os.stat(src / "a" / "one.txt")
    assert (stat.S_IMODE(st.st_mode), st.st_mtime_ns) == (stat.S_IMODE(lst.st_mode), lst.st_mtime_ns)
    sh("cp", "-p", str(b / "copy"), str(tmp_path / "back"))
    assert os.stat(tmp_path / "back").st_mtime_ns == lst.st_mtime_ns


def test_tar_extract_and_create_round_trip(mnt, bucket_name, tmp_path):
    b = _bucket(mnt, bucket_name)
    src = tmp_path / "src"
    _local_tree(src)
    os.symlink("a/one.txt", src / "zlink")
    sh("tar", "-C", str(src), "--sort=name", "-cf", str(tmp_path / "in.tar"), ".")
    sh("tar", "-C", str(b), "-xf", str(tmp_path / "in.tar"))
    assert _tree(b) == _tree(src)
    sh("tar", "-C", str(b), "--sort=name", "-cf", str(tmp_path / "out.tar"), ".")
    out = tmp_path / "out"
    out.mkdir()
    sh("tar", "-C", str(out), "-xf", str(tmp_path / "out.tar"))
    assert _tree(out) == _tree(src)


def test_unlinked_file_stays_usable_through_its_descriptor(mnt, nats_url, bucket_name):
    b = _bucket(mnt, bucket_name)
    f = b / "tmpfile"
    f.write_bytes(b"stored version")
    fd = os.open(f, os.O_RDWR)
    try:
        os.unlink(f)
        assert not f.exists()
        os.ftruncate(fd, 0)
        os.write(fd, b"scratch")
        os.ftruncate(fd, 4)
        assert os.fstat(fd).st_size == 4
        assert os.pread(fd, 100, 0) == b"scra"
    finally:
        os.close(fd)
    assert os.listdir(b) == []

    async def live(nc, js):
        obs = await js.object_store(bucket_name)
        try:
            return [i.name for i in await obs.list(ignore_deletes=True)]
        except nats.js.errors.NotFoundError:  # no such bucket, or nothing in it
            return []

    assert peer(nats_url, live) == []
