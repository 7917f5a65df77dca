"""Buckets, directories, markers and names, driven on the core over a MemoryStore."""

from __future__ import annotations

import errno
import os
import stat

import pytest
from corekit import listdir, read_file, resolve, settle, write_file

from osfs.errors import FsError
from osfs.inodes import ROOT_INODE
from osfs.store.types import BucketConfig, ObjectMeta


async def raises(err: int, coro) -> None:
    with pytest.raises(FsError) as exc:
        await coro
    assert exc.value.errno == err, exc.value


def test_tree_from_object_names(run_fs) -> None:
    async def body(fs, store) -> None:
        await store.create_bucket(BucketConfig("b"))
        for name in ["docs/a.txt", "docs/sub/b.txt", "top", "empty/"]:
            await store.put("b", ObjectMeta(name), name.encode())
        assert await listdir(fs, "") == ["b"]
        assert await listdir(fs, "b") == ["docs", "empty", "top"]
        assert await listdir(fs, "b/docs") == ["a.txt", "sub"]
        assert await listdir(fs, "b/empty") == []
        assert await read_file(fs, "b/docs/sub/b.txt") == b"docs/sub/b.txt"
        attr = await fs.getattr(await resolve(fs, "b/docs"))
        assert stat.S_ISDIR(attr.mode) and attr.nlink == 3
        f = await fs.getattr(await resolve(fs, "b/top"))
        assert stat.S_ISREG(f.mode) and f.size == 3 and f.blksize == 1 << 20 and f.blocks == 1
        assert f.mode & 0o777 == 0o644
        await raises(errno.ENOENT, fs.lookup(await resolve(fs, "b"), "nope"))
        await raises(errno.ENOENT, fs.lookup(ROOT_INODE, "nobucket"))

    run_fs(body)


def test_ls_of_many_objects_lists_once(run_fs) -> None:
    async def body(fs, store) -> None:
        await store.create_bucket(BucketConfig("b"))
        for i in range(300):
            await store.put("b", ObjectMeta(f"d/f{i:04}"), b"x")
        calls = []
        orig = store.info

        async def counting_info(*a, **k):
            calls.append(a)
            return await orig(*a, **k)

        store.info = counting_info
        d = await resolve(fs, "b/d")
        fh = await fs.opendir(d)
        entries = fs.readdir(fh, 2)
        fs.releasedir(fh)
        for e in entries:
            attr = await fs.lookup(d, e.name)
            await fs.getattr(attr.ino)
        assert len(entries) == 300 and calls == []

    run_fs(body)


def test_mkdir_rmdir_buckets(run_fs, spool) -> None:
    async def body(fs, store) -> None:
        attr = await fs.mkdir(ROOT_INODE, "nb", 0o755)
        assert stat.S_ISDIR(attr.mode)
        status = await store.bucket_status("nb")
        assert status.compression == "s2"
        await raises(errno.EEXIST, fs.mkdir(ROOT_INODE, "nb", 0o755))
        await raises(errno.EINVAL, fs.mkdir(ROOT_INODE, "bad.name", 0o755))
        await write_file(fs, "nb/f", b"1")
        await raises(errno.ENOTEMPTY, fs.rmdir(ROOT_INODE, "nb"))
        await fs.unlink(await resolve(fs, "nb"), "f")
        await fs.rmdir(ROOT_INODE, "nb")
        assert await store.bucket_names() == []
        assert await listdir(fs, "") == []

    from osfs.config import BucketDefaults

    run_fs(body, bucket_defaults=BucketDefaults(compression="s2"))


def test_mkdir_in_bucket_persists_marker(run_fs) -> None:
    async def body(fs, store) -> None:
        await store.create_bucket(BucketConfig("b"))
        b = await resolve(fs, "b")
        d = await fs.mkdir(b, "d", 0o755)
        await fs.mkdir(d.ino, "e", 0o700)
        names = {i.name: i for i in await store.list_objects("b")}
        assert set(names) == {"d/", "d/e/"}
        assert names["d/e/"].size == 0 and names["d/e/"].metadata["osfs-mode"] == "700"
        assert (await fs.getattr(await resolve(fs, "b/d/e"))).mode & 0o777 == 0o700
        await raises(errno.EEXIST, fs.mkdir(b, "d", 0o755))
        await raises(errno.ENOTEMPTY, fs.rmdir(b, "d"))
        await fs.rmdir(d.ino, "e")
        await fs.rmdir(b, "d")
        assert await store.list_objects("b") == []
        await raises(errno.EINVAL, fs.mkdir(b, "..", 0o755))
        await raises(errno.ENAMETOOLONG, fs.mkdir(b, "x" * 256, 0o755))
        await raises(errno.EINVAL, fs.mkdir(b, os.fsdecode(b"bad\xff"), 0o755))

    run_fs(body)


def test_rmdir_refuses_dir_holding_hidden_objects(run_fs) -> None:
    async def body(fs, store) -> None:
        await store.create_bucket(BucketConfig("b"))
        await store.put("b", ObjectMeta("d/"), b"")
        await store.put("b", ObjectMeta("d//weird"), b"")
        assert await listdir(fs, "b/d") == []
        await raises(errno.ENOTEMPTY, fs.rmdir(await resolve(fs, "b"), "d"))

    run_fs(body)


def test_single_bucket_mount(run_fs) -> None:
    async def body(fs, store) -> None:
        await store.create_bucket(BucketConfig("only"))
        await store.put("only", ObjectMeta("a/b"), b"hi")
        await settle()
        assert await listdir(fs, "") == ["a"]
        assert await read_file(fs, "a/b") == b"hi"
        await write_file(fs, "new", b"data")
        assert (await store.info("only", "new")).size == 4

    run_fs(body, bucket="only")


def test_bad_names_are_skipped_not_fatal(run_fs) -> None:
    async def body(fs, store) -> None:
        await store.create_bucket(BucketConfig("b"))
        for name in ["ok", "a//b", "c/./d", "x" * 300, "f", "f/g"]:
            await store.put("b", ObjectMeta(name), b"1")
        assert await listdir(fs, "b") == ["f", "f.~file", "ok"]
        assert await read_file(fs, "b/f.~file") == b"1"
        await fs.unlink(await resolve(fs, "b"), "f.~file")
        assert {i.name for i in await store.list_objects("b")} == {"ok", "a//b", "c/./d", "x" * 300, "f/g"}

    run_fs(body)


def test_statfs_from_account_usage(run_fs) -> None:
    async def body(fs, store) -> None:
        await store.create_bucket(BucketConfig("b"))
        await store.put("b", ObjectMeta("x"), b"1" * 10000)
        s = await fs.statfs()
        assert s.blocks - s.bfree == 10000 // s.frsize and s.namemax == 255

    run_fs(body)


def test_listing_the_top_does_not_load_buckets(run_fs) -> None:
    async def body(fs, store) -> None:
        for name in ["b1", "b2", "b3"]:
            await store.create_bucket(BucketConfig(name))
        fh = await fs.opendir(ROOT_INODE)
        for entry in fs.readdir(fh, 2):
            attr = await fs.lookup(ROOT_INODE, entry.name)
            assert stat.S_ISDIR((await fs.getattr(attr.ino)).mode)
        fs.releasedir(fh)
        assert fs.views.loaded() == []
        assert await listdir(fs, "b2") == []
        assert fs.views.loaded() == ["b2"]

    run_fs(body)


def test_sealed_bucket_is_read_only(run_fs) -> None:
    async def body(fs, store) -> None:
        await store.create_bucket(BucketConfig("b"))
        await store.put("b", ObjectMeta("f"), b"data")
        await store.seal_bucket("b")
        b = await resolve(fs, "b")
        await raises(errno.EROFS, fs.create(b, "new", os.O_WRONLY | os.O_CREAT, 0o644))
        await raises(errno.EROFS, fs.mkdir(b, "d", 0o755))
        await raises(errno.EROFS, fs.unlink(b, "f"))
        await raises(errno.EROFS, fs.setattr(await resolve(fs, "b/f"), mode=0o600))
        h = await fs.open(await resolve(fs, "b/f"), os.O_WRONLY | os.O_APPEND)
        await fs.write(h.fh, 0, b"more")
        await raises(errno.EROFS, fs.flush(h.fh))
        await fs.release(h.fh)
        assert await read_file(fs, "b/f") == b"data"

    run_fs(body)


def test_read_only_mount(run_fs) -> None:
    async def body(fs, store) -> None:
        await store.create_bucket(BucketConfig("b"))
        await store.put("b", ObjectMeta("f"), b"data")
        b = await resolve(fs, "b")
        f = await resolve(fs, "b/f")
        assert (await fs.getattr(f)).mode & 0o222 == 0
        await raises(errno.EROFS, fs.open(f, os.O_WRONLY))
        await raises(errno.EROFS, fs.mkdir(b, "d", 0o755))
        await raises(errno.EROFS, fs.unlink(b, "f"))
        await raises(errno.EROFS, fs.setxattr(f, "user.mime", b"x"))
        assert await read_file(fs, "b/f") == b"data"

    run_fs(body, read_only=True)
