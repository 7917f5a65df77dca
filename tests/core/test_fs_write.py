"""The write path: streaming, visibility on close/fsync, upload errors, spool, truncate."""

from __future__ import annotations

import errno
import os

import pytest
from corekit import read_file, resolve, settle, write_file

from osfs.errors import FsError
from osfs.store import errors as se
from osfs.store.types import BucketConfig, ObjectMeta

RW = os.O_RDWR


async def bucket(fs, store, name: str = "b") -> int:
    await store.create_bucket(BucketConfig(name))
    return await resolve(fs, name)


def test_create_write_visible_only_after_close(run_fs) -> None:
    data = os.urandom(300_000)

    async def body(fs, store) -> None:
        b = await bucket(fs, store)
        reply, attr = await fs.create(b, "f", os.O_WRONLY | os.O_CREAT, 0o644)
        for off in range(0, len(data), 65536):
            await fs.write(reply.fh, off, data[off : off + 65536])
        writer = fs.files.writer(attr.ino)
        assert writer.streaming
        with pytest.raises(se.NotFound):
            await store.info("b", "f")
        assert (await fs.getattr(attr.ino)).size == len(data)
        assert await read_file(fs, "b/f") == data
        await fs.flush(reply.fh)
        await fs.release(reply.fh)
        info = await store.info("b", "f")
        assert info.size == len(data) and info.max_chunk_size == fs.options.chunk_size
        assert await read_file(fs, "b/f") == data

    run_fs(body)


def test_fsync_publishes_and_later_writes_republish(run_fs) -> None:
    async def body(fs, store) -> None:
        b = await bucket(fs, store)
        reply, _ = await fs.create(b, "f", os.O_WRONLY, 0o644)
        await fs.write(reply.fh, 0, b"hello")
        await fs.fsync(reply.fh)
        first = await store.info("b", "f")
        assert first.size == 5
        await fs.write(reply.fh, 5, b" world")
        await fs.flush(reply.fh)
        await fs.release(reply.fh)
        assert await read_file(fs, "b/f") == b"hello world"
        assert (await store.info("b", "f")).nuid != first.nuid

    run_fs(body)


def test_upload_error_returned_by_close_and_next_fsync(run_fs) -> None:
    async def body(fs, store) -> None:
        b = await bucket(fs, store)
        await store.put("b", ObjectMeta("f"), b"old")
        await settle()
        reply, _ = await fs.create(b, "g", os.O_WRONLY, 0o644)
        await fs.write(reply.fh, 0, b"data")
        store.fail_next_put = se.NoSpace("account full")
        with pytest.raises(FsError) as exc:
            await fs.fsync(reply.fh)
        assert exc.value.errno == errno.ENOSPC
        with pytest.raises(se.NotFound):
            await store.info("b", "g")
        with pytest.raises(FsError) as exc:
            await fs.flush(reply.fh)
        assert exc.value.errno == errno.ENOSPC
        # the streamed content went with the failed upload: nothing is published, ever
        await fs.release(reply.fh)
        with pytest.raises(se.NotFound):
            await store.info("b", "g")

        ino = await resolve(fs, "b/f")
        h = await fs.open(ino, os.O_WRONLY | os.O_TRUNC)
        await fs.write(h.fh, 0, b"new")
        store.fail_next_put = se.Unavailable("server gone")
        with pytest.raises(FsError) as exc:
            await fs.flush(h.fh)
        assert exc.value.errno == errno.EIO
        assert await store.read(await store.info("b", "f"), 0, 10) == b"old"
        await fs.release(h.fh)
        assert await read_file(fs, "b/f") == b"old"  # no torn version: the old one stays

    run_fs(body)


def test_too_large_is_efbig_at_write(run_fs) -> None:
    async def body(fs, store) -> None:
        await store.create_bucket(BucketConfig("b", max_object_size=10))
        reply, _ = await fs.create(await resolve(fs, "b"), "f", os.O_WRONLY, 0o644)
        await fs.write(reply.fh, 0, b"12345")
        with pytest.raises(FsError) as exc:
            await fs.write(reply.fh, 5, b"1234567")
        assert exc.value.errno == errno.EFBIG
        await fs.release(reply.fh)

    run_fs(body)


def test_append_spools_existing_content(run_fs) -> None:
    async def body(fs, store) -> None:
        await bucket(fs, store)
        await store.put("b", ObjectMeta("log", metadata={"k": "v"}), b"line1\n" * 50000, chunk_size=4096)
        await settle()
        ino = await resolve(fs, "b/log")
        h = await fs.open(ino, os.O_WRONLY | os.O_APPEND)
        await fs.write(h.fh, 0, b"line2\n")
        assert not fs.files.writer(ino).streaming
        await fs.flush(h.fh)
        await fs.release(h.fh)
        info = await store.info("b", "log")
        assert info.size == 300006 and info.metadata["k"] == "v"
        assert (await read_file(fs, "b/log")).endswith(b"line1\nline2\n")

    run_fs(body)


def test_seek_back_switches_to_spool(run_fs) -> None:
    async def body(fs, store) -> None:
        b = await bucket(fs, store)
        reply, attr = await fs.create(b, "f", os.O_RDWR, 0o644)
        await fs.write(reply.fh, 0, b"aaaaaaaaaa")
        assert fs.files.writer(attr.ino).streaming
        await fs.write(reply.fh, 2, b"BB")
        assert not fs.files.writer(attr.ino).streaming
        await fs.write(reply.fh, 20, b"end")
        assert await fs.read(reply.fh, 0, 100) == b"aaBBaaaaaa" + b"\0" * 10 + b"end"
        await fs.flush(reply.fh)
        await fs.release(reply.fh)
        assert await read_file(fs, "b/f") == b"aaBBaaaaaa" + b"\0" * 10 + b"end"

    run_fs(body)


def test_write_into_middle_of_existing_object(run_fs) -> None:
    async def body(fs, store) -> None:
        await bucket(fs, store)
        await write_file(fs, "b/f", b"0123456789")
        ino = await resolve(fs, "b/f")
        h = await fs.open(ino, RW)
        await fs.write(h.fh, 3, b"xyz")
        await fs.release(h.fh)
        assert await read_file(fs, "b/f") == b"012xyz6789"

    run_fs(body)


def test_truncate(run_fs) -> None:
    async def body(fs, store) -> None:
        await bucket(fs, store)
        await write_file(fs, "b/f", b"0123456789")
        ino = await resolve(fs, "b/f")
        attr = await fs.setattr(ino, size=4)
        assert attr.size == 4
        assert (await store.info("b", "f")).size == 4
        assert await read_file(fs, "b/f") == b"0123"
        await fs.setattr(ino, size=0)
        assert (await store.info("b", "f")).size == 0
        await fs.setattr(ino, size=6)
        assert await read_file(fs, "b/f") == b"\0" * 6
        assert fs.files.in_flight == 0

    run_fs(body)


def test_chmod_chown_touch_in_metadata(run_fs) -> None:
    async def body(fs, store) -> None:
        await bucket(fs, store)
        await write_file(fs, "b/f", b"x")
        ino = await resolve(fs, "b/f")
        before = await fs.getattr(ino)
        attr = await fs.setattr(ino, mode=0o100600, uid=1234, gid=55)
        assert attr.mode & 0o7777 == 0o600 and (attr.uid, attr.gid) == (1234, 55)
        assert attr.mtime_ns == before.mtime_ns
        attr = await fs.setattr(ino, mtime_ns=1_000_000_000_123)
        assert attr.mtime_ns == 1_000_000_000_123
        meta = (await store.info("b", "f")).metadata
        assert meta["osfs-mode"] == "600" and meta["osfs-uid"] == "1234"
        h = await fs.open(ino, os.O_WRONLY | os.O_TRUNC)
        await fs.write(h.fh, 0, b"new")
        await fs.release(h.fh)
        info = await store.info("b", "f")
        assert "osfs-mtime" not in info.metadata and info.metadata["osfs-mode"] == "600"

    run_fs(body)


def test_read_uses_readahead_hints_and_fetches_only_needed_chunks(run_fs) -> None:
    async def body(fs, store) -> None:
        await bucket(fs, store)
        await store.put("b", ObjectMeta("big"), os.urandom(64 * 1024), chunk_size=1024)
        await settle()
        ino = await resolve(fs, "b/big")
        h = await fs.open(ino, os.O_RDONLY)
        store.read_calls.clear()
        store.chunk_fetches = 0
        for off in range(0, 4096, 1024):
            await fs.read(h.fh, off, 1024)
        await fs.read(h.fh, 40960, 100)
        await fs.read(h.fh, 41060, 100)
        hints = [c[4] for c in store.read_calls]
        cs = fs.options.chunk_size
        assert hints == [cs, 2 * cs, 4 * cs, 8 * cs, 0, cs]
        assert store.chunk_fetches == 6
        await fs.release(h.fh)

    run_fs(body, chunk_size=1024)


def test_unlink_while_writing_publishes_nothing(run_fs) -> None:
    async def body(fs, store) -> None:
        b = await bucket(fs, store)
        reply, _ = await fs.create(b, "tmp", os.O_WRONLY, 0o644)
        await fs.write(reply.fh, 0, b"scratch")
        await fs.unlink(b, "tmp")
        await fs.flush(reply.fh)
        await fs.release(reply.fh)
        assert await store.list_objects("b") == []

    run_fs(body)


def test_flush_all_uploads_dirty_files(run_fs) -> None:
    async def body(fs, store) -> None:
        b = await bucket(fs, store)
        reply, _ = await fs.create(b, "f", os.O_WRONLY, 0o644)
        await fs.write(reply.fh, 0, b"pending")
        await fs.flush_all()
        assert (await store.info("b", "f")).size == 7

    run_fs(body)


def test_fstat_after_unlink_answers_from_the_handle(run_fs) -> None:
    async def body(fs, store) -> None:
        b = await bucket(fs, store)
        await write_file(fs, "b/f", b"12345")
        ino = await resolve(fs, "b/f")
        h = await fs.open(ino, os.O_RDONLY)
        await fs.unlink(b, "f")
        assert (await fs.getattr(ino)).size == 5
        await fs.release(h.fh)
        with pytest.raises(FsError):
            await fs.getattr(ino)

    run_fs(body)


def test_late_release_of_an_unlinked_file_leaves_its_successor_alone(run_fs) -> None:
    """stress-ng hdd's loop: create, unlink, write, close; create the same name again. The
    kernel sends RELEASE without waiting, so the old file's release can come after the new
    create: it must not hide the new file (``truncate(path)`` got ENOENT)."""

    async def body(fs, store) -> None:
        b = await bucket(fs, store)
        old, _ = await fs.create(b, "f", RW | os.O_CREAT | os.O_TRUNC, 0o600)
        await fs.unlink(b, "f")
        await fs.write(old.fh, 0, b"scratch")
        new, attr = await fs.create(b, "f", RW | os.O_CREAT | os.O_TRUNC, 0o600)
        await fs.release(old.fh)
        assert (await fs.lookup(b, "f")).ino == attr.ino
        await fs.setattr(attr.ino, size=0)
        await fs.write(new.fh, 0, b"second")
        await fs.release(new.fh)
        assert await read_file(fs, "b/f") == b"second"

    run_fs(body)


def test_file_open_for_writing_and_renamed_over_is_not_published(run_fs) -> None:
    """A file replaced by a rename while open for writing is gone, like an unlinked one:
    its last close must not publish it over the file that replaced it."""

    async def body(fs, store) -> None:
        b = await bucket(fs, store)
        victim, _ = await fs.create(b, "target", RW | os.O_CREAT, 0o600)
        await fs.write(victim.fh, 0, b"replaced")
        await write_file(fs, "b/tmp", b"winner")
        await fs.rename(b, "tmp", b, "target")
        await fs.write(victim.fh, 8, b" still writing")
        await fs.release(victim.fh)
        await settle()
        assert await read_file(fs, "b/target") == b"winner"
        assert [i.name for i in await store.list_objects("b")] == ["target"]

    run_fs(body)
