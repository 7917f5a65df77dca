"""Inode stability, readdir offsets, and coherence with other clients via the watch."""

from __future__ import annotations

import errno
import os

import pytest
import trio
from corekit import listdir, read_file, resolve, settle, write_file

from osfs.errors import FsError
from osfs.handles import Invalidation
from osfs.store.errors import Unavailable
from osfs.store.types import BucketConfig, ObjectMeta


def test_remote_changes_show_up_and_invalidate(run_fs) -> None:
    async def body(fs, store) -> None:
        seen: list[Invalidation] = []

        async def record(inv: Invalidation) -> None:
            seen.append(inv)

        fs.invalidator = record
        await store.create_bucket(BucketConfig("b"))
        await store.put("b", ObjectMeta("d/f"), b"v1")
        b = await resolve(fs, "b")
        d = await resolve(fs, "b/d")
        f = await resolve(fs, "b/d/f")
        assert await read_file(fs, "b/d/f") == b"v1"
        await store.put("b", ObjectMeta("d/f"), b"version2")
        await settle()
        # the name still stands for a file: its inode is invalidated, its entry kept
        assert Invalidation(f) in seen and Invalidation(d, "f") not in seen
        assert (await fs.getattr(f)).size == 8
        assert await read_file(fs, "b/d/f") == b"version2"
        seen.clear()
        await store.put("b", ObjectMeta("d/new"), b"n")
        await settle()
        assert Invalidation(d, "new") in seen and Invalidation(b, "d") not in seen
        assert await listdir(fs, "b/d") == ["f", "new"]
        await store.rename("b", "d/new", "moved")
        await settle()
        assert await listdir(fs, "b") == ["d", "moved"]
        assert await listdir(fs, "b/d") == ["f"]
        await store.delete("b", "d/f")
        await settle()
        assert await listdir(fs, "b") == ["moved"]

    run_fs(body)


def test_own_changes_do_not_invalidate(run_fs) -> None:
    async def body(fs, store) -> None:
        seen: list[Invalidation] = []

        async def record(inv: Invalidation) -> None:
            seen.append(inv)

        fs.invalidator = record
        store.stream.echo_before_ack = True
        await store.create_bucket(BucketConfig("b"))
        await listdir(fs, "b")
        await write_file(fs, "b/f", b"mine")
        await fs.rename(await resolve(fs, "b"), "f", await resolve(fs, "b"), "g")
        await settle()
        assert seen == []
        b = await resolve(fs, "b")
        for name in ("a", "c", "e"):
            await fs.mkdir(b, name, 0o755)
        await fs.mkdir(await resolve(fs, "b/a"), "x", 0o755)
        await fs.symlink(b, "l", "nowhere")
        await fs.mknod(b, "p", 0o10644, 0)
        await fs.rename(await resolve(fs, "b/a"), "x", await resolve(fs, "b/c"), "y")
        await fs.rename(await resolve(fs, "b/c"), "y", b, "e")
        await settle()
        assert seen == []

    run_fs(body)


def test_keep_cache_only_for_unchanged_object(run_fs) -> None:
    async def body(fs, store) -> None:
        await store.create_bucket(BucketConfig("b"))
        await store.put("b", ObjectMeta("f"), b"one")
        ino = await resolve(fs, "b/f")
        first = await fs.open(ino, os.O_RDONLY)
        again = await fs.open(ino, os.O_RDONLY)
        assert not first.keep_cache and again.keep_cache
        await store.put("b", ObjectMeta("f"), b"two")
        await settle()
        third = await fs.open(ino, os.O_RDONLY)
        assert not third.keep_cache
        assert await fs.read(third.fh, 0, 10) == b"two"
        for h in (first, again, third):
            await fs.release(h.fh)

    run_fs(body)


def test_inodes_stable_and_forgotten(run_fs) -> None:
    async def body(fs, store) -> None:
        await store.create_bucket(BucketConfig("b"))
        await store.put("b", ObjectMeta("f"), b"1")
        b = await resolve(fs, "b")
        one = await fs.lookup(b, "f")
        two = await fs.lookup(b, "f")
        assert one.ino == two.ino
        assert fs.inodes.lookups(one.ino) == 2
        fs.forget([(one.ino, 2)])
        assert not fs.inodes.known(one.ino)
        fs.forget([(one.ino, 1), (12345, 3)])
        three = await fs.lookup(b, "f")
        assert three.ino != one.ino

    run_fs(body)


def test_readdir_offsets_stable_under_changes(run_fs) -> None:
    async def body(fs, store) -> None:
        await store.create_bucket(BucketConfig("b"))
        for i in range(10):
            await store.put("b", ObjectMeta(f"f{i}"), b"1")
        b = await resolve(fs, "b")
        fh = await fs.opendir(b)
        dots = fs.readdir(fh, 0)[:2]
        assert [(e.name, e.attr.ino) for e in dots] == [(".", b), ("..", 1)]
        first = fs.readdir(fh, 2)[:4]
        await store.delete("b", "f1")
        await store.put("b", ObjectMeta("a-new"), b"1")
        await settle()
        rest = list(fs.readdir(fh, first[-1].offset))
        names = [e.name for e in first + rest]
        assert names == [f"f{i}" for i in range(10)]
        fs.releasedir(fh)
        assert await listdir(fs, "b") == ["a-new"] + [f"f{i}" for i in range(10) if i != 1]

    run_fs(body)


def test_bucket_made_by_another_client_appears(run_fs) -> None:
    async def body(fs, store) -> None:
        assert await listdir(fs, "") == []
        await store.create_bucket(BucketConfig("late"))
        assert (await fs.lookup(1, "late")).ino > 1
        await store.put("late", ObjectMeta("x"), b"1")
        await settle()
        assert await listdir(fs, "late") == ["x"]
        await store.delete_bucket("late")
        await settle()
        assert await listdir(fs, "") == []

    run_fs(body)


def test_listing_does_not_leak_inodes(run_fs) -> None:
    async def body(fs, store) -> None:
        await store.create_bucket(BucketConfig("b"))
        for i in range(50):
            await store.put("b", ObjectMeta(f"f{i}"), b"1")
        b = await resolve(fs, "b")
        before = len(fs.inodes)
        fh = await fs.opendir(b)
        entries = fs.readdir(fh, 2)  # after . and ..
        for e in entries[:10]:
            fs.remember(e.attr.ino)
        fs.releasedir(fh)
        assert len(fs.inodes) == before + 10
        fs.forget([(e.attr.ino, 1) for e in entries[:10]])
        assert len(fs.inodes) == before

    run_fs(body)


def test_failed_watch_falls_back_to_listing_then_recovers(run_fs) -> None:
    async def body(fs, store) -> None:
        await store.create_bucket(BucketConfig("b"))
        await store.put("b", ObjectMeta("one"), b"1")
        store.fail_next_watch = Unavailable("no watch")
        assert await listdir(fs, "b") == ["one"]
        assert not fs.views.get("b").watching
        await store.put("b", ObjectMeta("two"), b"2")
        await trio.sleep(1.2)
        assert await listdir(fs, "b") == ["one", "two"]
        assert fs.views.get("b").watching
        await store.put("b", ObjectMeta("three"), b"3")
        await settle()
        assert await listdir(fs, "b") == ["one", "three", "two"]

    run_fs(body)


def test_open_before_the_watch_caught_up_reads_the_new_version(run_fs) -> None:
    async def body(fs, store) -> None:
        await store.create_bucket(BucketConfig("b"))
        await store.put("b", ObjectMeta("f"), b"old")
        ino = await resolve(fs, "b/f")
        assert fs.views.get("b").watching
        # same size: whether or not the watch delivered it before the open, the reader
        # gets the new version (a different size would be ESTALE, as the kernel sized the
        # inode from the old one)
        await store.put("b", ObjectMeta("f"), b"new")
        h = await fs.open(ino, os.O_RDONLY)
        assert await fs.read(h.fh, 0, 100) == b"new"
        await store.put("b", ObjectMeta("f"), b"newer")
        with pytest.raises(FsError) as exc:
            await fs.read(h.fh, 0, 100)
        assert exc.value.errno == errno.ESTALE
        await fs.release(h.fh)

    run_fs(body)


def test_watch_updates_of_held_names_wait_for_the_hold() -> None:
    """A rename's watch echo that arrives before the rename's reply is applied after the
    rename (the view must not show moved content under a name whose inode has not moved)."""
    from datetime import UTC, datetime

    from osfs.store.memory import MemoryStore
    from osfs.store.types import ObjectInfo
    from osfs.views import BucketView

    changed: list[str] = []
    view = BucketView(MemoryStore(), "b", lambda _b, name: changed.append(name))

    def info(name: str, nuid: str, rev: int, deleted: bool = False) -> ObjectInfo:
        return ObjectInfo("b", name, nuid, 1, 1, "", datetime.now(UTC), deleted=deleted, revision=rev)

    view.apply(info("target", "OLD", 1))
    view.apply(info("tmp", "NEW", 2))
    with view.holding("tmp", "target"):
        view.apply(info("target", "NEW", 3), notify=True)  # the echo, early
        assert view.infos["target"].nuid == "OLD" and "tmp" in view.infos
        assert changed == []
        view.apply(info("unrelated", "U", 4), notify=True)  # other names are not held
        assert "unrelated" in view.infos
        # the rename's own result, applied by the filesystem
        view.remove("tmp")
        view.remove("target")
        view.apply(info("target", "NEW", 3))
    assert view.infos["target"].nuid == "NEW" and "tmp" not in view.infos
    assert changed == ["unrelated"]  # the deferred echo changed nothing once replayed
    with view.holding("target"):
        view.apply(info("elsewhere", "NEW", 5), notify=True)  # moves the held name's nuid away
        assert "target" in view.infos and "elsewhere" not in view.infos
    assert "target" not in view.infos and view.infos["elsewhere"].nuid == "NEW"
