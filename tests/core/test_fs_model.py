"""Random operation sequences on the core compared with a dict model of the bucket."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import trio
from corekit import listdir, read_file, resolve, settle, write_file
from hypothesis import given, settings
from hypothesis import strategies as st

from osfs.config import FsOptions
from osfs.errors import FsError
from osfs.fs import Filesystem
from osfs.store.base import ObjectStore
from osfs.store.errors import NoSpace
from osfs.store.memory import MemoryStore
from osfs.store.types import BucketConfig, ObjectMeta

NAMES = ["a", "b", "d/c", "d/e"]

op = st.one_of(
    st.tuples(st.just("new"), st.sampled_from(NAMES), st.binary(max_size=3000)),
    st.tuples(st.just("append"), st.sampled_from(NAMES), st.binary(min_size=1, max_size=500)),
    st.tuples(
        st.just("poke"), st.sampled_from(NAMES), st.integers(0, 4000), st.binary(min_size=1, max_size=50)
    ),
    st.tuples(st.just("truncate"), st.sampled_from(NAMES), st.integers(0, 4000)),
    st.tuples(st.just("rename"), st.sampled_from(NAMES), st.sampled_from(NAMES)),
    st.tuples(st.just("unlink"), st.sampled_from(NAMES)),
    st.tuples(st.just("remote"), st.sampled_from(NAMES), st.binary(max_size=3000)),
    st.tuples(st.just("failput"), st.sampled_from(NAMES), st.binary(max_size=3000)),
)


async def apply(
    fs: Filesystem, store: ObjectStore, model: dict[str, bytes], step: tuple, bucket: str = "b"
) -> None:
    """Do ``step`` on the bucket's files through ``fs`` and record its effect in ``model``."""
    kind, name = step[0], step[1]
    path = f"{bucket}/{name}"
    target = step[2] if kind == "rename" else name
    if target.startswith("d/") and "d" not in await listdir(fs, bucket):
        await fs.mkdir(await resolve(fs, bucket), "d", 0o755)
    if kind == "new":
        await write_file(fs, path, step[2], block=700)
        model[name] = step[2]
        return
    if kind == "remote":
        await store.put(bucket, ObjectMeta(name), step[2], chunk_size=1000)
        await settle()
        model[name] = step[2]
        return
    if kind == "failput":
        parent, _, leaf = path.rpartition("/")
        h, _ = await fs.create(await resolve(fs, parent), leaf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        await fs.write(h.fh, 0, step[2])
        if not isinstance(store, MemoryStore):
            await fs.release(h.fh)
            model[name] = step[2]
            return
        store.fail_next_put = NoSpace("full")
        with pytest.raises(FsError):
            await fs.flush(h.fh)
        store.fail_next_put = NoSpace("full")
        await fs.release(h.fh)
        store.fail_next_put = None
        return
    if name not in model:
        return
    ino = await resolve(fs, path)
    if kind == "append":
        h = await fs.open(ino, os.O_WRONLY | os.O_APPEND)
        await fs.write(h.fh, 0, step[2])
        await fs.flush(h.fh)
        await fs.release(h.fh)
        model[name] += step[2]
    elif kind == "poke":
        off, data = step[2], step[3]
        h = await fs.open(ino, os.O_RDWR)
        await fs.write(h.fh, off, data)
        await fs.release(h.fh)
        cur = model[name].ljust(off, b"\0")
        model[name] = cur[:off] + data + cur[off + len(data) :]
    elif kind == "truncate":
        await fs.setattr(ino, size=step[2])
        model[name] = model[name][: step[2]].ljust(step[2], b"\0")
    elif kind == "rename":
        dest = step[2]
        src_parent, _, src = path.rpartition("/")
        dst_parent, _, dst = f"{bucket}/{dest}".rpartition("/")
        if dest != name:
            await fs.rename(await resolve(fs, src_parent), src, await resolve(fs, dst_parent), dst)
            model[dest] = model.pop(name)
    elif kind == "unlink":
        parent, _, leaf = path.rpartition("/")
        await fs.unlink(await resolve(fs, parent), leaf)
        del model[name]


async def check(fs: Filesystem, store: ObjectStore, model: dict[str, bytes], bucket: str = "b") -> None:
    """The mount and the store both hold exactly what ``model`` says."""
    shown = await listdir(fs, bucket)
    assert shown == sorted({n.split("/")[0] for n in model} | ({"d"} & set(shown)))
    for name, data in model.items():
        assert await read_file(fs, f"{bucket}/{name}") == data, name
    stored = {i.name: i for i in await store.list_objects(bucket) if not i.name.endswith("/")}
    assert set(stored) == set(model)
    for name, data in model.items():
        assert await store.read(stored[name], 0, len(data) + 1) == data, name
    assert fs.files.in_flight == 0


@settings(max_examples=40, deadline=None)
@given(st.lists(op, max_size=12))
def test_core_matches_model(steps: list[tuple]) -> None:
    with tempfile.TemporaryDirectory() as spool:

        async def main() -> None:
            store = MemoryStore()
            fs = Filesystem(store, FsOptions(spool_dir=Path(spool), chunk_size=1024))
            async with trio.open_nursery() as nursery:
                await fs.start(nursery)
                await store.create_bucket(BucketConfig("b"))
                model: dict[str, bytes] = {}
                for step in steps:
                    await apply(fs, store, model, step)
                await check(fs, store, model)
                await fs.close()
                nursery.cancel_scope.cancel()

        trio.run(main)
        assert os.listdir(spool) == []
