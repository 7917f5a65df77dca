"""The mount through real file tools: buckets as directories, objects as files."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import time

import nats
import nats.js.errors
import pytest
from mountkit import requires_fuse
from semkit import sh, wait_for

pytestmark = [pytest.mark.mount, requires_fuse]


def peer(nats_url: str, fn):
    """Run ``await fn(js)`` with nats-py (the interop peer) and return its result."""

    async def run():
        nc = await nats.connect(nats_url)
        try:
            return await fn(nc.jetstream())
        finally:
            await nc.close()

    return asyncio.run(run())


def test_root_lists_buckets_made_by_others(mnt, nats_url, bucket_name):
    async def make(js):
        obs = await js.create_object_store(bucket_name)
        await obs.put("dir/sub/file.txt", b"hello from nats-py")
        await obs.put("top.txt", b"top")

    peer(nats_url, make)
    root = mnt.path
    assert wait_for(lambda: bucket_name in os.listdir(root))
    b = root / bucket_name
    assert sorted(os.listdir(b)) == ["dir", "top.txt"]
    assert os.listdir(b / "dir") == ["sub"]
    assert (b / "dir" / "sub" / "file.txt").read_bytes() == b"hello from nats-py"
    st = os.stat(b / "top.txt")
    assert st.st_size == 3
    assert st.st_blksize == 1024 * 1024
    assert st.st_nlink == 1
    assert abs(st.st_mtime - time.time()) < 3600
    assert os.path.isdir(b / "dir")
    out = sh("find", str(b)).stdout.split()
    assert str(b / "dir" / "sub" / "file.txt") in out


def test_mkdir_rmdir_buckets(mnt, nats_url, bucket_name):
    b = mnt.path / bucket_name
    os.mkdir(b)
    names = peer(nats_url, lambda js: js.stream_info(f"OBJ_{bucket_name}"))
    assert names.config.name == f"OBJ_{bucket_name}"
    (b / "f").write_bytes(b"x")
    with pytest.raises(OSError) as e:
        os.rmdir(b)
    assert e.value.errno == errno.ENOTEMPTY
    os.unlink(b / "f")
    os.rmdir(b)
    assert not b.exists()
    with pytest.raises(OSError) as e:
        os.mkdir(mnt.path / "bad.name")
    assert e.value.errno == errno.EINVAL
    assert "bad.name" not in os.listdir(mnt.path)


def test_cp_in_and_out_random_file(mnt, nats_url, bucket_name, tmp_path):
    data = os.urandom(5 * 1024 * 1024 + 12345)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    b = mnt.path / bucket_name
    os.mkdir(b)
    sh("cp", str(src), str(b / "copy.bin"))
    sh("cmp", str(src), str(b / "copy.bin"))
    back = tmp_path / "back.bin"
    sh("cp", str(b / "copy.bin"), str(back))
    assert back.read_bytes() == data

    async def get(js):
        obs = await js.object_store(bucket_name)
        with open(tmp_path / "peer.bin", "wb") as f:
            res = await obs.get("copy.bin", writeinto=f)
        return res.info

    info = peer(nats_url, get)  # nats-py verifies the digest
    assert info.size == len(data)
    assert (tmp_path / "peer.bin").read_bytes() == data
    assert os.stat(b / "copy.bin").st_size == len(data)
    piped = sh("sh", "-c", f"cat '{b / 'copy.bin'}' | sha256sum").stdout.split()[0]
    assert piped == hashlib.sha256(data).hexdigest()


def test_redirects_append_and_rm(mnt, bucket_name):
    b = mnt.path / bucket_name
    os.mkdir(b)
    f = b / "log.txt"
    sh("sh", "-c", f"echo one > {f}")
    sh("sh", "-c", f"echo two >> {f}")
    sh("sh", "-c", f"echo three >> {f}")
    assert f.read_text() == "one\ntwo\nthree\n"
    sh("sh", "-c", f"echo new > {f}")
    assert f.read_text() == "new\n"
    sh("rm", str(f))
    assert not f.exists()
    with pytest.raises(FileNotFoundError):
        os.stat(f)


def test_directory_markers_survive_remount(mount_factory, bucket_name):
    m1 = mount_factory(name="m1")
    b = m1.path / bucket_name
    os.mkdir(b)
    os.makedirs(b / "empty" / "nested")
    assert os.path.isdir(b / "empty" / "nested")
    with pytest.raises(OSError) as e:
        os.rmdir(b / "empty")
    assert e.value.errno == errno.ENOTEMPTY
    m1.unmount()
    m2 = mount_factory(name="m2")
    assert os.path.isdir(m2.path / bucket_name / "empty" / "nested")
    os.rmdir(m2.path / bucket_name / "empty" / "nested")
    os.rmdir(m2.path / bucket_name / "empty")
    assert os.listdir(m2.path / bucket_name) == []


def test_visible_to_others_only_when_closed(mnt, nats_url, bucket_name):
    b = mnt.path / bucket_name
    os.mkdir(b)

    async def names(js):
        obs = await js.object_store(bucket_name)
        try:
            return sorted(i.name for i in await obs.list(ignore_deletes=True))
        except nats.js.errors.NotFoundError:  # no such bucket, or nothing in it
            return []

    with open(b / "partial.bin", "wb") as f:
        f.write(os.urandom(3 * 1024 * 1024))
        f.flush()
        assert "partial.bin" not in peer(nats_url, names)
    assert "partial.bin" in peer(nats_url, names)


def test_du_df_ls(mnt, bucket_name):
    b = mnt.path / bucket_name
    os.mkdir(b)
    for i in range(50):
        (b / f"f{i:03d}").write_bytes(b"x" * 1000)
    out = sh("ls", "-l", str(b)).stdout
    assert out.count("f0") == 50
    du = sh("du", "-s", "--apparent-size", "--block-size=1", str(b)).stdout.split()[0]
    assert int(du) >= 50_000
    df = sh("df", "-B1", str(mnt.path)).stdout.splitlines()[1].split()
    assert int(df[1]) > 0  # total size from JetStream limits
    vfs = os.statvfs(mnt.path)
    assert vfs.f_blocks > 0 and vfs.f_bavail <= vfs.f_blocks
