"""The size of a bucket's listing: what the view and its tree keep per object.

Big buckets are listed whole (issue 15): the view must keep a compact record per name, not
a full meta, and the inode table what a ``find`` makes the kernel hold (an inode per name:
pyfuse3 answers ``readdir`` with ``readdirplus``). Measured as the memory allocated while
building the view of N synthetic metas (fresh objects, as decoded from the wire) and then
an inode for each name, not as the process's RSS. Together they must stay within the
issue's 400 bytes per object of RSS with room for the allocator's own overhead.
"""

from __future__ import annotations

import gc
import random
import stat
import tracemalloc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import trio

from osfs.inodes import InodeTable
from osfs.listed import Listed
from osfs.store.types import ObjectInfo
from osfs.views import BucketView

#: Objects in the synthetic bucket, in directories of DIR_SIZE.
OBJECTS = 100_000
DIR_SIZE = 1000
#: Bounds per object: the listing (view and tree) measures 343 bytes, the inodes of a
#: ``find`` 119; each bound fails well before its structure doubles.
LISTING_BYTES = 380
INODE_BYTES = 140

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


class SyntheticStore:
    """Just enough of a store for a view: a watch that hands out ``count`` new metas
    (one-chunk objects named ``dNNNN/fNNNNNNN``), then the end of the snapshot."""

    def __init__(self, count: int) -> None:
        self.count = count

    def _infos(self) -> AsyncIterator[ObjectInfo | None]:
        rng = random.Random(15)
        start = datetime(2026, 1, 1, tzinfo=UTC)
        count = self.count

        async def gen() -> AsyncIterator[ObjectInfo | None]:
            for i in range(count):
                nuid = "".join(rng.choice(_ALPHABET) for _ in range(22))
                digest = "SHA-256=" + "".join(rng.choice(_ALPHABET) for _ in range(43)) + "="
                yield ObjectInfo(
                    "big",
                    f"d{i // DIR_SIZE:04d}/f{i:07d}",
                    nuid,
                    rng.randrange(1000, 100_000),
                    1,
                    digest,
                    start + timedelta(microseconds=rng.randrange(10**12)),
                    revision=2 * i + 2,
                )
            yield None
            await trio.sleep_forever()

        return gen()

    @asynccontextmanager
    async def watch(
        self, bucket: str, *, initial: bool = True
    ) -> AsyncIterator[AsyncIterator[ObjectInfo | None]]:
        yield self._infos()


async def _build(count: int) -> tuple[BucketView, int]:
    """The view of ``count`` synthetic metas with its tree, and the bytes allocated for it."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        view = BucketView(SyntheticStore(count), "big", lambda b, n: None)  # type: ignore[arg-type]
        async with trio.open_nursery() as nursery:
            nursery.start_soon(view.run)
            tree = await view.tree()
            nursery.cancel_scope.cancel()
        gc.collect()
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(view.infos) == count
    assert len(tree.dirs) == count // DIR_SIZE + 1
    return view, used


def test_listing_keeps_a_compact_record_per_object() -> None:
    view, used = trio.run(_build, OBJECTS)
    per_object = used / OBJECTS
    print(f"listing of {OBJECTS} objects: {per_object:.0f} bytes per object")
    assert per_object <= LISTING_BYTES, f"{per_object:.0f} bytes per object"
    listed = view.infos["d0001/f0001234"]
    assert listed.size > 0 and listed.revision == 2 * 1234 + 2 and listed.metadata == {}


def test_inodes_of_a_find_keep_no_object_per_name() -> None:
    """An inode for every name of the listing, as ``find`` makes them (each shown once by
    ``readdir``, the kernel taking one lookup, a regular file)."""
    view, _ = trio.run(_build, OBJECTS)
    tree = view.cached_tree
    assert tree is not None
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        inodes = InodeTable(("", ""))
        for d in tree.dirs.values():
            for c in d.children.values():
                key = ("big", c.name if isinstance(c, Listed) else c.path)
                ino = inodes.ino_for(key)
                inodes.set_kind(ino, stat.S_IFDIR if not isinstance(c, Listed) else stat.S_IFREG)
                inodes.remember(ino)
        gc.collect()
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(inodes) == OBJECTS + OBJECTS // DIR_SIZE + 1
    per_object = used / OBJECTS
    print(f"inodes of a find over {OBJECTS} objects: {per_object:.0f} bytes per object")
    assert per_object <= INODE_BYTES, f"{per_object:.0f} bytes per object"
    ino = inodes.find(("big", "d0001/f0001234"))
    assert ino is not None and inodes.lookups(ino) == 1 and inodes.kind(ino) == stat.S_IFREG
    assert inodes.key(ino) == ("big", "d0001/f0001234")
