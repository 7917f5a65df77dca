"""Directories behave like directories through a real mount: they stay when emptied (for
other mounts and after a remount) until ``rmdir``, ``rm -r`` removes any tree, their times
follow their entries, and listings have ``.`` and ``..``."""

from __future__ import annotations

import os
import time

import pytest
from mountkit import requires_fuse
from semkit import peer, sh, wait_for

pytestmark = [pytest.mark.mount, requires_fuse]


def _put_tree(nats_url: str, bucket: str, names: list[str]) -> None:
    """Write ``names`` with nats-py's ObjectStore (which writes no directory markers)."""

    async def fn(nc, js):
        obs = await js.create_object_store(bucket)
        for n in names:
            await obs.put(n, n.encode())

    peer(nats_url, fn)


def test_rm_r_of_a_tree_written_by_nats_py(mnt, nats_url, bucket_name):
    _put_tree(nats_url, bucket_name, ["a/b/c/f1", "a/b/f2", "a/g/f3", "a/f4", "top"])
    b = mnt.path / bucket_name
    assert wait_for(lambda: (b / "a" / "b" / "c" / "f1").exists())
    sh("rm", "-r", str(b / "a"))
    assert os.listdir(b) == ["top"]

    async def names(nc, js):
        obs = await js.object_store(bucket_name)
        return sorted(i.name for i in await obs.list() if not i.deleted)

    assert peer(nats_url, names) == ["top"]


def test_emptied_directory_stays_until_rmdir_also_after_remount(mount_factory, nats_url, bucket_name):
    _put_tree(nats_url, bucket_name, ["d/sub/only", "d/x"])
    m1 = mount_factory()
    other = mount_factory()
    b = m1.path / bucket_name
    assert wait_for(lambda: (b / "d" / "sub" / "only").exists())
    os.unlink(b / "d" / "sub" / "only")
    os.unlink(b / "d" / "x")
    assert os.listdir(b / "d") == ["sub"] and os.listdir(b / "d" / "sub") == []
    ob = other.path / bucket_name
    assert wait_for(lambda: not (ob / "d" / "x").exists())
    assert (ob / "d" / "sub").is_dir()
    m1.unmount()
    m2 = mount_factory()
    b2 = m2.path / bucket_name
    assert os.listdir(b2 / "d" / "sub") == []
    os.rmdir(b2 / "d" / "sub")
    os.rmdir(b2 / "d")
    assert os.listdir(b2) == []


def test_directory_times_follow_entries_and_listings_have_dots(mnt, bucket_name):
    b = mnt.path / bucket_name
    (b / "d").mkdir(parents=True)
    (b / "e").mkdir()
    os.utime(b / "d", ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    assert os.stat(b / "d").st_mtime_ns == 1_000_000_000_000_000_000
    steps = [
        lambda: (b / "d" / "f").write_bytes(b"1"),
        lambda: os.rename(b / "d" / "f", b / "d" / "g"),
        lambda: os.symlink("g", b / "d" / "l"),
        lambda: os.mkdir(b / "d" / "s"),
        lambda: os.rmdir(b / "d" / "s"),
        lambda: os.unlink(b / "d" / "l"),
        lambda: os.rename(b / "d" / "g", b / "e" / "g"),
    ]
    last = os.stat(b / "d").st_mtime_ns
    for step in steps:
        time.sleep(0.002)
        step()
        st = os.stat(b / "d")
        assert st.st_mtime_ns > last and st.st_ctime_ns >= st.st_mtime_ns
        last = st.st_mtime_ns
    out = sh("ls", "-a", str(b / "e")).stdout.split()
    assert out == [".", "..", "g"]
    assert os.stat(b / "e").st_ino == os.stat(b / "e" / ".").st_ino
