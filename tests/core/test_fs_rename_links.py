"""Rename (O(1), directories, EXDEV), unlink, symlinks and extended attributes."""

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


def test_file_rename_is_o1_and_replaces(run_fs) -> None:
    async def body(fs, store) -> None:
        await store.create_bucket(BucketConfig("b"))
        await write_file(fs, "b/a", b"AAA")
        await write_file(fs, "b/c", b"CCC")
        b = await resolve(fs, "b")
        a_ino = await resolve(fs, "b/a")
        nuid = (await store.info("b", "a")).nuid
        await fs.rename(b, "a", b, "c")
        info = await store.info("b", "c")
        assert info.nuid == nuid
        assert await listdir(fs, "b") == ["c"]
        assert await resolve(fs, "b/c") == a_ino
        assert await read_file(fs, "b/c") == b"AAA"
        await write_file(fs, "b/d", b"D")
        await raises(errno.EEXIST, fs.rename(b, "d", b, "c", 1))
        await raises(errno.EINVAL, fs.rename(b, "d", b, "c", 2))

    run_fs(body)


def test_directory_rename_moves_every_object(run_fs) -> None:
    async def body(fs, store) -> None:
        await store.create_bucket(BucketConfig("b"))
        for name in ["d/", "d/x", "d/s/y", "d//hidden", "dz"]:
            await store.put("b", ObjectMeta(name), name.encode())
        b = await resolve(fs, "b")
        y_ino = await resolve(fs, "b/d/s/y")
        await fs.mkdir(b, "e", 0o755)
        await fs.rename(b, "d", b, "e")
        names = sorted(i.name for i in await store.list_objects("b"))
        assert names == ["dz", "e/", "e//hidden", "e/s/y", "e/x"]
        assert await resolve(fs, "b/e/s/y") == y_ino
        assert await read_file(fs, "b/e/s/y") == b"d/s/y"
        await fs.mkdir(b, "f", 0o755)
        await write_file(fs, "b/f/keep", b"1")
        await raises(errno.ENOTEMPTY, fs.rename(b, "e", b, "f"))
        await raises(errno.ENOTDIR, fs.rename(b, "e", b, "dz"))
        await raises(errno.EISDIR, fs.rename(b, "dz", b, "e"))
        await raises(errno.EINVAL, fs.rename(b, "e", await resolve(fs, "b/e/s"), "x"))

    run_fs(body)


def test_rename_across_buckets_is_exdev_and_buckets_do_not_move(run_fs) -> None:
    async def body(fs, store) -> None:
        await store.create_bucket(BucketConfig("b"))
        await store.create_bucket(BucketConfig("c"))
        await write_file(fs, "b/f", b"1")
        await raises(errno.EXDEV, fs.rename(await resolve(fs, "b"), "f", await resolve(fs, "c"), "f"))
        await raises(errno.EPERM, fs.rename(ROOT_INODE, "b", ROOT_INODE, "z"))

    run_fs(body)


def test_rename_of_file_being_written(run_fs) -> None:
    async def body(fs, store) -> None:
        await store.create_bucket(BucketConfig("b"))
        b = await resolve(fs, "b")
        reply, _attr = await fs.create(b, "tmp", os.O_WRONLY, 0o644)
        await fs.write(reply.fh, 0, b"content")
        await fs.rename(b, "tmp", b, "final")
        assert await listdir(fs, "b") == ["final"]
        await fs.flush(reply.fh)
        await fs.release(reply.fh)
        assert [i.name for i in await store.list_objects("b")] == ["final"]
        assert await read_file(fs, "b/final") == b"content"

    run_fs(body)


def test_symlinks(run_fs) -> None:
    async def body(fs, store) -> None:
        await store.create_bucket(BucketConfig("b"))
        await store.create_bucket(BucketConfig("c"))
        await store.put("b", ObjectMeta("dir/f"), b"target")
        await store.put("c", ObjectMeta("g"), b"other")
        d = await resolve(fs, "b/dir")
        attr = await fs.symlink(d, "l1", "f")
        assert stat.S_ISLNK(attr.mode)
        assert await fs.readlink(attr.ino) == "f"
        l2 = await fs.symlink(await resolve(fs, "b"), "l2", "../c/g")
        assert await fs.readlink(l2.ino) == "../c/g"
        l3 = await fs.symlink(d, "l3", "../../c")
        assert await fs.readlink(l3.ino) == "../../c"
        assert (await store.info("b", "dir/l3")).link.is_bucket_link
        assert (await store.resolve("b", "dir/l1")).name == "dir/f"
        await store.add_link("b", "deep/x/l4", "b", "dir/f")
        await settle()
        assert await fs.readlink(await resolve(fs, "b/deep/x/l4")) == "../../dir/f"
        # anything else is a symlink object: the text as content and in the metadata
        for i, text in enumerate(["/etc/passwd", "../../../outside", "missing", "l1", ".", "../dir"]):
            attr = await fs.symlink(d, f"s{i}", text)
            assert stat.S_ISLNK(attr.mode) and attr.size == len(text)
            assert await fs.readlink(attr.ino) == text
            info = await store.info("b", f"dir/s{i}")
            assert info.link is None and info.metadata["osfs-type"] == "symlink"
            assert info.metadata["osfs-symlink"] == text
            assert b"".join([c async for c in store.get(info)]) == text.encode()
        await raises(errno.EEXIST, fs.symlink(d, "f", "l1"))
        # a text that is not UTF-8 is only in the content; the content is read back
        odd = await fs.symlink(d, "odd", "caf\udce9")
        assert await fs.readlink(odd.ino) == "caf\udce9" and odd.size == 4
        assert "osfs-symlink" not in (await store.info("b", "dir/odd")).metadata
        await store.put("b", ObjectMeta("other", metadata={"osfs-type": "symlink"}), b"dir/f")
        await settle()
        other = await fs.lookup(await resolve(fs, "b"), "other")
        assert stat.S_ISLNK(other.mode) and await fs.readlink(other.ino) == "dir/f"

    run_fs(body)


def test_xattrs(run_fs) -> None:
    async def body(fs, store) -> None:
        await store.create_bucket(BucketConfig("b"))
        await write_file(fs, "b/f", b"x")
        ino = await resolve(fs, "b/f")
        await fs.setxattr(ino, "user.mime", b"text/plain")
        await fs.setxattr(ino, "user.description", b"a file")
        await fs.setxattr(ino, "user.meta.owner", b"me")
        await fs.setxattr(ino, "user.header.X-Tag", b"a, b")
        info = await store.info("b", "f")
        assert info.mime == "text/plain" and info.description == "a file"
        assert info.metadata["owner"] == "me" and info.headers["X-Tag"] == ("a", "b")
        names = await fs.listxattr(ino)
        assert {"user.mime", "user.description", "user.meta.owner", "user.header.X-Tag"} <= set(names)
        assert await fs.getxattr(ino, "user.digest") == info.digest.encode()
        assert await fs.getxattr(ino, "user.chunks") == b"1"
        await raises(errno.EPERM, fs.setxattr(ino, "user.digest", b"x"))
        await raises(errno.EPERM, fs.setxattr(ino, "user.meta.osfs-mode", b"777"))
        await raises(errno.ENOTSUP, fs.setxattr(ino, "trusted.x", b"1"))
        # computed attributes: not listed, readable, a write of the same value changes nothing
        assert not {"user.digest", "user.nuid", "user.chunks"} & set(names)
        await fs.setxattr(ino, "user.digest", info.digest.encode())
        await raises(errno.EPERM, fs.removexattr(ino, "user.nuid"))
        # any other user.* name is kept in the metadata, text as is, other bytes in base64
        await fs.setxattr(ino, "user.note", b"hello")
        await fs.setxattr(ino, "user.xdg.origin.url", b"http://x/")
        await fs.setxattr(ino, "user.bin", b"\xff\x00\x01")
        await fs.setxattr(ino, "user.caf\u00e9 100%", b"v")
        meta = (await store.info("b", "f")).metadata
        assert meta["osfs-xattr.note"] == "hello" and meta["osfs-xattr.xdg.origin.url"] == "http://x/"
        assert meta["osfs-xattr64.bin"] == "/wAB" and meta["osfs-xattr.caf%C3%A9%20100%25"] == "v"
        assert await fs.getxattr(ino, "user.bin") == b"\xff\x00\x01"
        assert await fs.getxattr(ino, "user.caf\u00e9 100%") == b"v"
        names = await fs.listxattr(ino)
        assert {"user.note", "user.xdg.origin.url", "user.bin", "user.caf\u00e9 100%"} <= set(names)
        await fs.setxattr(ino, "user.bin", b"text now")
        meta = (await store.info("b", "f")).metadata
        assert meta["osfs-xattr.bin"] == "text now" and "osfs-xattr64.bin" not in meta
        await fs.removexattr(ino, "user.note")
        await raises(errno.ENODATA, fs.getxattr(ino, "user.note"))
        await raises(errno.ENOSPC, fs.setxattr(ino, "user.big", b"x" * (300 * 1024)))
        await fs.removexattr(ino, "user.meta.owner")
        await raises(errno.ENODATA, fs.getxattr(ino, "user.meta.owner"))
        await raises(errno.ENODATA, fs.removexattr(ino, "user.meta.owner"))
        assert await read_file(fs, "b/f") == b"x"

    run_fs(body)


def test_symlinks_in_single_bucket_mount(run_fs) -> None:
    async def body(fs, store) -> None:
        await store.create_bucket(BucketConfig("only"))
        await store.put("only", ObjectMeta("..f"), b"1")
        await store.put("only", ObjectMeta("d/g"), b"2")
        await settle()
        link = await fs.symlink(ROOT_INODE, "l", "..f")
        assert await fs.readlink(link.ino) == "..f"
        deep = await fs.symlink(await resolve(fs, "d"), "l2", "../..f")
        assert await fs.readlink(deep.ino) == "../..f"
        assert (await store.resolve("only", "d/l2")).name == "..f"
        out = await fs.symlink(ROOT_INODE, "out", "../x")
        assert await fs.readlink(out.ino) == "../x"
        assert (await store.info("only", "out")).metadata["osfs-type"] == "symlink"

    run_fs(body, bucket="only")


def test_directory_keeps_its_inode_across_rename(run_fs) -> None:
    async def body(fs, store) -> None:
        await store.create_bucket(BucketConfig("b"))
        b = await resolve(fs, "b")
        for d in ("a", "c"):
            await fs.mkdir(b, d, 0o755)
        await fs.mkdir(await resolve(fs, "b/a"), "x", 0o755)
        await fs.mkdir(await resolve(fs, "b/a"), "full", 0o755)
        await write_file(fs, "b/a/full/f", b"F")
        x_ino = await resolve(fs, "b/a/x")
        full_ino = await resolve(fs, "b/a/full")
        await fs.rename(await resolve(fs, "b/a"), "x", await resolve(fs, "b/c"), "y")
        await fs.rename(await resolve(fs, "b/a"), "full", await resolve(fs, "b/c"), "full")
        await settle()
        assert await resolve(fs, "b/c/y") == x_ino
        assert await resolve(fs, "b/c/full") == full_ino
        assert (await fs.getattr(x_ino)).ino == x_ino

    run_fs(body)
