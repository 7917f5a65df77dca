"""Directory handles: offsets stay valid while the directory changes, and a listing makes
inodes and attributes only for the entries it hands out."""

from __future__ import annotations

from corekit import listdir, resolve, settle

from osfs.store.types import BucketConfig, ObjectMeta

NAMES = [f"f{i:03d}" for i in range(300)]


def _read_in_pieces(fs, fh: int, offset: int, size: int) -> list:
    """Entries from ``offset`` on, as the kernel reads them: ``size`` at a time."""
    out = []
    while True:
        piece = fs.readdir(fh, offset)[:size]
        if not piece:
            return out
        out += piece
        offset = piece[-1].offset


def test_offsets_stay_valid_while_the_directory_changes(run_fs) -> None:
    async def body(fs, store) -> None:
        await store.create_bucket(BucketConfig("b"))
        for n in NAMES:
            await store.put("b", ObjectMeta(n), b"1")
        b = await resolve(fs, "b")
        one = await fs.opendir(b)
        first = fs.readdir(one, 2)[:100]
        # names before, among and after the ones read, removed and added
        for n in NAMES[50:60] + NAMES[150:170] + NAMES[290:]:
            await store.delete("b", n)
        for n in ["a-new", "f050x", "f155x", "z-new"]:
            await store.put("b", ObjectMeta(n), b"1")
        await settle()
        two = await fs.opendir(b)
        gone = {*NAMES[50:60], *NAMES[150:170], *NAMES[290:]}
        now = sorted({*NAMES} - gone | {"a-new", "f050x", "f155x", "z-new"})
        assert [e.name for e in _read_in_pieces(fs, two, 2, 37)] == now
        # the first handle goes on from where it was: nothing skipped, nothing repeated
        rest = _read_in_pieces(fs, one, first[-1].offset, 23)
        assert [e.name for e in first + rest] == NAMES
        # and an offset read again gives the same entries (seekdir back)
        again = fs.readdir(one, first[10].offset)[:5]
        assert [e.name for e in again] == NAMES[11:16]
        assert [e.offset for e in again] == [first[10].offset + k for k in range(1, 6)]
        fs.releasedir(one)
        fs.releasedir(two)
        assert await listdir(fs, "b") == now

    run_fs(body)


def test_a_listing_makes_inodes_only_for_entries_read(run_fs) -> None:
    async def body(fs, store) -> None:
        await store.create_bucket(BucketConfig("b"))
        for n in NAMES:
            await store.put("b", ObjectMeta(n), b"1")
        b = await resolve(fs, "b")
        before = len(fs.inodes)
        fh = await fs.opendir(b)
        assert len(fs.inodes) == before
        entries = fs.readdir(fh, 2)
        assert len(entries) == len(NAMES)
        taken = entries[:10]
        assert len(fs.inodes) == before + 10
        assert [e.attr.size for e in taken] == [1] * 10
        for e in taken:
            fs.remember(e.attr.ino)
        fs.releasedir(fh)
        assert len(fs.inodes) == before + 10
        fs.forget([(e.attr.ino, 1) for e in taken])
        assert len(fs.inodes) == before

    run_fs(body)
