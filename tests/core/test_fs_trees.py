"""Real trees in the core, over the memory store: special files, owners from the caller,
directories that stay and whose times follow their entries, atime."""

from __future__ import annotations

import errno
import os
import stat

import pytest
from corekit import listdir, resolve, settle, write_file

from osfs.callers import Caller
from osfs.errors import FsError
from osfs.store.types import BucketConfig, ObjectMeta


def test_mknod_makes_special_files(run_fs) -> None:
    async def body(fs, store) -> None:
        await store.create_bucket(BucketConfig("b"))
        b = await resolve(fs, "b")
        fifo = await fs.mknod(b, "fifo", stat.S_IFIFO | 0o640, 0)
        dev = await fs.mknod(b, "dev", stat.S_IFBLK | 0o600, os.makedev(8, 1))
        sock = await fs.mknod(b, "sock", stat.S_IFSOCK | 0o755, 0)
        assert stat.S_ISFIFO(fifo.mode) and stat.S_IMODE(fifo.mode) == 0o640
        assert stat.S_ISBLK(dev.mode) and dev.rdev == os.makedev(8, 1)
        assert stat.S_ISSOCK(sock.mode) and sock.size == 0
        info = await store.info("b", "dev")
        assert info.size == 0 and info.metadata["osfs-type"] == "block"
        assert info.metadata["osfs-rdev"] == str(os.makedev(8, 1))
        with pytest.raises(FsError) as exc:
            await fs.mknod(b, "fifo", stat.S_IFIFO | 0o600, 0)
        assert exc.value.errno == errno.EEXIST
        await fs.unlink(b, "sock")
        assert await listdir(fs, "b") == ["dev", "fifo"]

    run_fs(body)


def test_entries_belong_to_their_caller(run_fs) -> None:
    async def body(fs, store) -> None:
        await store.create_bucket(BucketConfig("b"))
        b = await resolve(fs, "b")
        me = Caller(fs.options.uid, fs.options.gid)
        alice = Caller(4001, 4002, umask=0o027)
        d = await fs.mkdir(b, "d", 0o777, alice)
        assert (d.uid, d.gid, stat.S_IMODE(d.mode)) == (4001, 4002, 0o750)
        _, f = await fs.create(d.ino, "f", os.O_WRONLY | os.O_CREAT, 0o666, alice)
        assert (f.uid, f.gid, stat.S_IMODE(f.mode)) == (4001, 4002, 0o640)
        link = await fs.symlink(d.ino, "l", "f", alice)
        assert (link.uid, link.gid) == (4001, 4002)
        mine = await fs.mkdir(b, "mine", 0o755, me)
        assert (await store.info("b", "d/")).metadata["osfs-uid"] == "4001"
        assert "osfs-uid" not in (await store.info("b", "mine/")).metadata
        # a setgid directory passes its group on, and its setgid bit to directories
        await fs.setattr(mine.ino, mode=0o2775, gid=4500)
        sub = await fs.mkdir(mine.ino, "sub", 0o755, alice)
        assert sub.gid == 4500 and sub.mode & stat.S_ISGID
        # only root changes owners; a non-owner does not chmod
        with pytest.raises(FsError) as exc:
            await fs.setattr(f.ino, uid=4003, caller=alice)
        assert exc.value.errno == errno.EPERM
        with pytest.raises(FsError) as exc:
            await fs.setattr(mine.ino, mode=0o777, caller=alice)
        assert exc.value.errno == errno.EPERM
        assert (await fs.setattr(f.ino, uid=4003, caller=Caller(0, 0))).uid == 4003

    run_fs(body)


def test_directories_stay_and_follow_their_entries(run_fs) -> None:
    async def body(fs, store) -> None:
        await store.create_bucket(BucketConfig("b"))
        await store.put("b", ObjectMeta("a/b/f"), b"1")
        await settle()
        ab = await resolve(fs, "b/a/b")
        before = (await fs.getattr(ab)).mtime_ns
        await fs.unlink(ab, "f")
        assert (await store.info("b", "a/b/")).size == 0  # the marker keeps it
        assert await listdir(fs, "b/a/b") == []
        after = await fs.getattr(ab)
        assert after.mtime_ns > before and after.ctime_ns >= after.mtime_ns
        # a change seen in the watch moves the directory's times too
        await store.put("b", ObjectMeta("a/b/g"), b"2")
        await settle()
        assert (await fs.getattr(ab)).mtime_ns > after.mtime_ns
        # explicit times win until the next change of the entries
        await fs.setattr(ab, mtime_ns=5 * 10**18, atime_ns=4 * 10**18)
        st = await fs.getattr(ab)
        assert (st.mtime_ns, st.atime_ns) == (5 * 10**18, 4 * 10**18)
        # attributes of a directory without a marker get one
        await fs.setxattr(await resolve(fs, "b/a"), "user.tag", b"t")
        assert (await store.info("b", "a/")).metadata["osfs-xattr.tag"] == "t"

    run_fs(body)


def test_atime_is_kept_apart(run_fs) -> None:
    async def body(fs, store) -> None:
        await store.create_bucket(BucketConfig("b"))
        ino = await write_file(fs, "b/f", b"x")
        await fs.setattr(ino, mtime_ns=2 * 10**18, atime_ns=10**18)
        st = await fs.getattr(ino)
        assert (st.atime_ns, st.mtime_ns) == (10**18, 2 * 10**18)
        assert (await store.info("b", "f")).metadata["osfs-atime"] == str(10**18)

    run_fs(body)
